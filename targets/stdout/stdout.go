// Package stdout is the `stdout` target: it writes each batch's envelope as
// one line of JSON to standard output.
package stdout

import (
	"bufio"
	"context"
	"io"
	"os"
	"sync"

	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("stdout", "Writes each batch's envelope as one line of JSON to standard output.",
		func() *Config { return &Config{} })
}

// Config is the `target: {stdout: {}}` block. It has no settings.
type Config struct{}

// NewTarget builds the target.
func (c *Config) NewTarget(pipeline.Env) (pipeline.Target, error) {
	return New(os.Stdout), nil
}

// out is shared by every stdout target of the process, so lines of different
// pipes never interleave.
var (
	mu     sync.Mutex
	writer *bufio.Writer
	dest   io.Writer
)

type target struct{ w io.Writer }

var _ pipeline.Target = (*target)(nil)

// New returns a target writing to w.
func New(w io.Writer) pipeline.Target { return &target{w: w} }

func (t *target) Deliver(_ context.Context, b *pipeline.Batch) error {
	mu.Lock()
	defer mu.Unlock()
	if writer == nil || dest != t.w {
		writer, dest = bufio.NewWriterSize(t.w, 64<<10), t.w
	}
	buf := writer.AvailableBuffer()
	buf = pipeline.AppendEnvelope(buf, b)
	buf = append(buf, '\n')
	if _, err := writer.Write(buf); err != nil {
		return err
	}
	return writer.Flush()
}

func (t *target) Close() error { return nil }
