package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/pipe-run/pipe/internal/backoff"
)

// Pipe is one built pipe: source -> stages -> target.
type Pipe struct {
	Name   string
	Source Source
	// Stages run in order: the filter slot, then the enrichment slot.
	Stages []Stage
	Target Target
	// Backoff spaces the retries of a failing batch.
	Backoff backoff.Policy
	Logger  *slog.Logger
}

// Build makes the pipes of a config. Nothing is connected yet: building
// touches no network.
func Build(cfg *Config, logger *slog.Logger) ([]*Pipe, error) {
	var pipes []*Pipe
	for i := range cfg.Pipes {
		pc := &cfg.Pipes[i]
		env := Env{Pipe: pc.Name, Logger: logger.With("pipe", pc.Name), DrainTimeout: cfg.ShutdownTimeout}
		src, err := pc.Source.NewSource(env)
		if err != nil {
			closeAll(pipes)
			return nil, fmt.Errorf("%s:%d:%d: pipe %q: source: %w", cfg.File, pc.Line, pc.Column, pc.Name, err)
		}
		tgt, err := pc.Target.NewTarget(env)
		if err != nil {
			closeAll(pipes)
			return nil, fmt.Errorf("%s:%d:%d: pipe %q: target: %w", cfg.File, pc.Line, pc.Column, pc.Name, err)
		}
		var stages []Stage
		for _, slot := range []struct {
			name string
			cfg  interface{ NewStage(Env) (Stage, error) }
		}{{"filter", pc.Filter}, {"transform", pc.Transform}, {"enrichment", pc.Enrichment}} {
			if slot.cfg == nil || reflect.ValueOf(slot.cfg).IsNil() {
				continue
			}
			st, err := slot.cfg.NewStage(env)
			if err != nil {
				tgt.Close()
				closeAll(pipes)
				return nil, fmt.Errorf("%s:%d:%d: pipe %q: %s: %w", cfg.File, pc.Line, pc.Column, pc.Name, slot.name, err)
			}
			stages = append(stages, st)
		}
		pipes = append(pipes, &Pipe{Name: pc.Name, Source: src, Stages: stages, Target: tgt, Backoff: backoff.Default, Logger: env.Logger})
	}
	return pipes, nil
}

func closeAll(pipes []*Pipe) {
	for _, p := range pipes {
		p.Target.Close()
	}
}

// Run runs every pipe until ctx is cancelled, then shuts them down: fetching
// stops, in-flight batches drain, offsets are committed and the groups are
// left. It returns the first error of a pipe that failed, after all stopped.
func Run(ctx context.Context, pipes []*Pipe) error {
	var wg sync.WaitGroup
	errs := make([]error, len(pipes))
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run runs the pipe until ctx is cancelled and closes its target.
func (p *Pipe) Run(ctx context.Context) error {
	p.Logger.Info("pipe starting")
	err := p.Source.Run(ctx, p)
	if cerr := p.Target.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing target: %w", cerr)
	}
	if err != nil {
		p.Logger.Error("pipe stopped", "error", err)
		return fmt.Errorf("pipe %q: %w", p.Name, err)
	}
	p.Logger.Info("pipe stopped")
	return nil
}

// Handle takes one batch through the stages and the target, retrying with
// backoff until it is done or ctx is cancelled. A failing batch blocks only
// its own partition.
func (p *Pipe) Handle(ctx context.Context, b *Batch) error {
	var firstErr error
	// rest is set once the target reported that only some records failed:
	// the later attempts deliver those records only, without running the
	// stages again.
	var rest *Batch
	for attempt := 0; ; attempt++ {
		var err error
		if rest != nil {
			err = p.deliver(ctx, rest)
		} else {
			err = p.attempt(ctx, b)
		}
		if err == nil {
			if attempt > 0 {
				p.Logger.Info("batch delivered after retries", batchAttrs(b, "attempts", attempt+1)...)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *partialFailure
		if errors.As(err, &pe) {
			rest = pe.rest
		}
		delay := p.Backoff.Delay(attempt)
		if ra := RetryAfterOf(err); ra > delay {
			delay = ra
		}
		if firstErr == nil {
			firstErr = err
			level := slog.LevelWarn
			msg := "batch failed; retrying, the partition waits"
			if IsPermanent(err) {
				level = slog.LevelError
				msg = "batch failed permanently; retrying since no on-failure destination is configured, the partition waits"
			}
			p.Logger.Log(ctx, level, msg, batchAttrs(b, "error", err.Error(), "retryIn", delay.String())...)
		} else {
			p.Logger.Debug("batch failed again", batchAttrs(b, "attempt", attempt+1, "error", err.Error(), "retryIn", delay.String())...)
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return err
		}
	}
}

func (p *Pipe) attempt(ctx context.Context, b *Batch) error {
	for _, s := range p.Stages {
		nb, err := s.Process(ctx, b)
		if err != nil {
			return err
		}
		if nb == nil || len(nb.Records) == 0 {
			return nil
		}
		b = nb
	}
	return p.deliver(ctx, b)
}

// partialFailure carries the records still to deliver after a target said
// only some failed.
type partialFailure struct {
	error
	rest *Batch
}

func (e *partialFailure) Unwrap() error { return e.error }

// deliver hands b to the target. When the target reports that only some
// records failed, the error carries the batch of those records.
func (p *Pipe) deliver(ctx context.Context, b *Batch) error {
	err := p.Target.Deliver(ctx, b)
	if err == nil {
		return nil
	}
	failed, ok := RetryOnlyOf(err)
	if !ok {
		return err
	}
	rest := &Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
	for _, i := range failed {
		if i >= 0 && i < len(b.Records) {
			rest.Records = append(rest.Records, b.Records[i])
		}
	}
	if len(rest.Records) == 0 {
		return nil
	}
	return &partialFailure{error: err, rest: rest}
}

// batchAttrs names a batch's records for a log line: topic, partition and
// offset range of its first partition, and its size.
func batchAttrs(b *Batch, kv ...any) []any {
	if len(b.Records) == 0 {
		return kv
	}
	first := &b.Records[0]
	last := first
	for i := range b.Records {
		r := &b.Records[i]
		if r.Topic != first.Topic || r.Partition != first.Partition {
			break
		}
		last = r
	}
	return append([]any{"topic", first.Topic, "partition", first.Partition,
		"offsets", fmt.Sprintf("%d-%d", first.Offset, last.Offset), "records", len(b.Records)}, kv...)
}
