// Package file is the `file` on-failure destination: each failure is
// appended to a local file as one line of JSON, the on-failure record of
// Lambda with the error text and the records themselves under "payload", so
// `pipe redrive` can send them again. The file is synced to disk before a
// failure counts as stored (and the records' offsets may be committed).
package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterDestination("file", "Appends each on-failure record, with its records, as a line of JSON to a local file.",
		func() *Config { return &Config{} })
}

// Config is the `onFailure: {file: ...}` block.
type Config struct {
	Path string `yaml:"path" required:"true" doc:"File to append to; created (with its directory) when missing. Several pipes may share one file."`
	Sync bool   `yaml:"sync" default:"true" doc:"Sync the file to disk after each record, so a crash right after cannot lose it. Turn off only when the file system syncs on its own."`
}

// Validate checks the path.
func (c *Config) Validate() []pipeline.FieldProblem {
	if fi, err := os.Stat(c.Path); err == nil && fi.IsDir() {
		return []pipeline.FieldProblem{{Field: "path", Msg: "is a directory"}}
	}
	return nil
}

// NewDestination opens nothing yet: the file is opened on the first failure.
func (c *Config) NewDestination(env pipeline.Env) (pipeline.Destination, error) {
	return &destination{path: c.Path, sync: c.Sync}, nil
}

// files are shared by destinations writing the same path, so lines of
// several pipes never interleave.
var (
	filesMu sync.Mutex
	files   = map[string]*sharedFile{}
)

type sharedFile struct {
	mu    sync.Mutex
	f     *os.File
	users int
}

type destination struct {
	path string
	sync bool

	mu  sync.Mutex
	sf  *sharedFile
	buf []byte
}

func (d *destination) open() (*sharedFile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sf != nil {
		return d.sf, nil
	}
	abs, err := filepath.Abs(d.path)
	if err != nil {
		return nil, err
	}
	filesMu.Lock()
	defer filesMu.Unlock()
	sf := files[abs]
	if sf == nil {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, fmt.Errorf("on-failure file: %w", err)
		}
		f, err := os.OpenFile(abs, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("on-failure file: %w", err)
		}
		sf = &sharedFile{f: f}
		files[abs] = sf
	}
	sf.users++
	d.sf = sf
	return sf, nil
}

// Send appends the failure as one line and syncs it.
func (d *destination) Send(ctx context.Context, f *pipeline.Failure) error {
	sf, err := d.open()
	if err != nil {
		return err
	}
	line := pipeline.AppendFailureRecord(nil, f, true)
	line = append(line, '\n')
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if _, err := sf.f.Write(line); err != nil {
		return fmt.Errorf("on-failure file %s: %w", d.path, err)
	}
	if d.sync {
		if err := sf.f.Sync(); err != nil {
			return fmt.Errorf("on-failure file %s: %w", d.path, err)
		}
	}
	return nil
}

// Close closes the file when no other destination uses it.
func (d *destination) Close() error {
	d.mu.Lock()
	sf := d.sf
	d.sf = nil
	d.mu.Unlock()
	if sf == nil {
		return nil
	}
	filesMu.Lock()
	defer filesMu.Unlock()
	sf.users--
	if sf.users > 0 {
		return nil
	}
	for k, v := range files {
		if v == sf {
			delete(files, k)
		}
	}
	return sf.f.Close()
}
