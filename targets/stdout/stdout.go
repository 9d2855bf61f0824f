package stdout

import (
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

// turn is held while a line is written. It is shared by every stdout
// target of the process, so lines of different pipes never interleave; a
// channel rather than a mutex, so that waiting for it can end with a
// context.
var turn = make(chan struct{}, 1)

// lines are the buffers lines are rendered into.
var lines = sync.Pool{New: func() any { return new([]byte) }}

// maxKept is the largest buffer put back in lines.
const maxKept = 1 << 20

type target struct{ w io.Writer }

var _ pipeline.Target = (*target)(nil)

// New returns a target writing to w.
func New(w io.Writer) pipeline.Target { return &target{w: w} }

// Deliver writes the batch's envelope as one line. The line is rendered
// before waiting for the writer, so b is not read after Deliver returns.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bp := lines.Get().(*[]byte)
	line := append(pipeline.AppendEnvelope((*bp)[:0], b), '\n')
	*bp = line
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		release(bp)
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		// Both were ready and the turn won: nothing is written.
		<-turn
		release(bp)
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := t.w.Write(line)
		<-turn
		release(bp)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(bp *[]byte) {
	if cap(*bp) <= maxKept {
		lines.Put(bp)
	}
}

func (t *target) Close() error { return nil }
