package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
)

// Pipe is one built pipe: source -> stages -> target.
type Pipe struct {
	Name   string
	Source Source
	// Stages run in order: filter, transform, enrichment.
	Stages []Stage
	// StageNames names Stages in logs and failure records.
	StageNames []string
	Target     Target
	// Backoff spaces the retries of a failing batch.
	Backoff backoff.Policy
	// MaxRetries is how many times a failing batch is retried before its
	// records go to OnFailure; -1 retries for ever.
	MaxRetries int
	// MaxAge sends records older than it to OnFailure; <= 0 is no limit.
	MaxAge time.Duration
	// Bisect splits a failing batch in halves.
	Bisect bool
	// OnFailure receives the records given up on; nil keeps retrying.
	OnFailure Destination
	Logger    *slog.Logger
	// Stats counts what the pipe did.
	Stats Stats
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Stats counts a pipe's retries, bisections and dead-lettered records.
type Stats struct {
	Retries          atomic.Int64
	Bisects          atomic.Int64
	DeadLettered     atomic.Int64 // records sent to the on-failure destination
	DestinationFails atomic.Int64 // failed sends to the destination
}

// Build makes the pipes of a config. Nothing is connected yet: building
// touches no network.
func Build(cfg *Config, logger *slog.Logger) ([]*Pipe, error) {
	var pipes []*Pipe
	for i := range cfg.Pipes {
		pc := &cfg.Pipes[i]
		env := Env{Pipe: pc.Name, Logger: logger.With("pipe", pc.Name), DrainTimeout: cfg.ShutdownTimeout, Source: pc.Source}
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
		var dest Destination
		if pc.OnFailure != nil {
			if dest, err = pc.OnFailure.NewDestination(env); err != nil {
				tgt.Close()
				closeAll(pipes)
				return nil, fmt.Errorf("%s:%d:%d: pipe %q: onFailure: %w", cfg.File, pc.Line, pc.Column, pc.Name, err)
			}
		}
		var stages []Stage
		var names []string
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
				if dest != nil {
					dest.Close()
				}
				closeAll(pipes)
				return nil, fmt.Errorf("%s:%d:%d: pipe %q: %s: %w", cfg.File, pc.Line, pc.Column, pc.Name, slot.name, err)
			}
			stages = append(stages, st)
			names = append(names, slot.name)
		}
		pipes = append(pipes, &Pipe{Name: pc.Name, Source: src, Stages: stages, StageNames: names, Target: tgt,
			Backoff:    backoff.Policy{Initial: pc.RetryBackoff.Initial, Max: pc.RetryBackoff.Maximum},
			MaxRetries: pc.RetryLimit(), MaxAge: pc.MaximumRecordAge, Bisect: pc.BisectBatchOnError,
			OnFailure: dest, Logger: env.Logger})
	}
	return pipes, nil
}

func closeAll(pipes []*Pipe) {
	for _, p := range pipes {
		p.Target.Close()
		if p.OnFailure != nil {
			p.OnFailure.Close()
		}
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
	if p.OnFailure != nil {
		if cerr := p.OnFailure.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing on-failure destination: %w", cerr)
		}
	}
	if err != nil {
		p.Logger.Error("pipe stopped", "error", err)
		return fmt.Errorf("pipe %q: %w", p.Name, err)
	}
	p.Logger.Info("pipe stopped")
	return nil
}

// work is a part of a batch on its way: the whole batch, a half of it after
// a bisection, or the records a target said failed.
type work struct {
	b        *Batch
	attempts int
	// targetOnly: the stages ran already; only the target is tried again
	// (the records a target said failed).
	targetOnly bool
}

// Handle takes one batch through the stages and the target until every
// record is delivered, filtered, or sent to the on-failure destination, or
// ctx is cancelled. A failing batch is retried with backoff (MaxRetries,
// MaxAge), split in halves when Bisect is set, and given up to OnFailure;
// with no destination it is retried for ever. Only its own partition waits.
func (p *Pipe) Handle(ctx context.Context, b *Batch) error {
	queue := []work{{b: b}}
	var logged bool
	for len(queue) > 0 {
		w := &queue[0]
		if p.MaxAge > 0 && p.OnFailure != nil {
			old, fresh := p.splitAged(w.b)
			if old != nil {
				f := p.failure(old, RecordAgeExceeded, w.attempts, "", nil)
				if err := p.deadLetter(ctx, f); err != nil {
					return err
				}
			}
			if fresh == nil {
				queue = queue[1:]
				continue
			}
			w.b = fresh
		}
		var err error
		if w.targetOnly {
			err = p.deliver(ctx, w.b)
		} else {
			err = p.attempt(ctx, w.b)
		}
		if err == nil {
			if w.attempts > 0 {
				p.Logger.Info("batch delivered after retries", batchAttrs(w.b, "attempts", w.attempts+1)...)
			}
			queue = queue[1:]
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.attempts++
		var pf *partialFailure
		if errors.As(err, &pf) {
			w.b, w.targetOnly = pf.rest, true
		}
		if p.Bisect && len(w.b.Records) > 1 && pf == nil {
			half := len(w.b.Records) / 2
			left, right := w.b.slice(0, half), w.b.slice(half, len(w.b.Records))
			p.Stats.Bisects.Add(1)
			p.Logger.Warn("batch failed; splitting it in halves", batchAttrs(w.b, "stage", StageOf(err), "error", err.Error())...)
			queue = append([]work{{b: left, targetOnly: w.targetOnly}, {b: right, targetOnly: w.targetOnly}}, queue[1:]...)
			continue
		}
		exhausted := IsPermanent(err) || p.MaxRetries >= 0 && w.attempts > p.MaxRetries
		if exhausted && p.OnFailure != nil {
			cond := RetryAttemptsExhausted
			if IsTooLarge(err) {
				cond = MaximumPayloadSizeExceeded
			}
			recs := w.b
			if w.targetOnly {
				recs = sourceRecords(b, w.b)
			}
			f := p.failure(recs, cond, w.attempts, StageOf(err), err)
			if err := p.deadLetter(ctx, f); err != nil {
				return err
			}
			queue = queue[1:]
			continue
		}
		delay := p.Backoff.Delay(w.attempts - 1)
		if ra := RetryAfterOf(err); ra > delay {
			delay = ra
		}
		p.Stats.Retries.Add(1)
		if !logged {
			logged = true
			level := slog.LevelWarn
			msg := "batch failed; retrying, the partition waits"
			if IsPermanent(err) {
				level = slog.LevelError
				msg = "batch failed permanently; retrying since no on-failure destination is configured, the partition waits"
			}
			p.Logger.Log(ctx, level, msg, batchAttrs(w.b, "stage", StageOf(err), "error", err.Error(), "retryIn", delay.String())...)
		} else {
			p.Logger.Debug("batch failed again", batchAttrs(w.b, "attempt", w.attempts, "stage", StageOf(err), "error", err.Error(), "retryIn", delay.String())...)
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pipe) clock() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// splitAged returns the records older than MaxAge and the others, each nil
// when empty.
func (p *Pipe) splitAged(b *Batch) (old, fresh *Batch) {
	cutoff := p.clock().Add(-p.MaxAge)
	n := 0
	for i := range b.Records {
		if b.Records[i].Timestamp.Before(cutoff) {
			n++
		}
	}
	switch n {
	case 0:
		return nil, b
	case len(b.Records):
		return b, nil
	}
	old, fresh = b.slice(0, 0), b.slice(0, 0)
	old.Records, fresh.Records = make([]Record, 0, n), make([]Record, 0, len(b.Records)-n)
	for _, r := range b.Records {
		if r.Timestamp.Before(cutoff) {
			old.Records = append(old.Records, r)
		} else {
			fresh.Records = append(fresh.Records, r)
		}
	}
	return old, fresh
}

// sourceRecords maps records the target said failed (after the stages) back
// to the source records of orig with the same coordinates, so that the
// on-failure destination holds what the pipe read and a redrive runs the
// stages again. Records without a source record (new events from an
// enrichment) are kept as they are.
func sourceRecords(orig, failed *Batch) *Batch {
	type coord struct {
		topic     string
		partition int32
		offset    int64
	}
	at := make(map[coord]int, len(orig.Records))
	for i, r := range orig.Records {
		at[coord{r.Topic, r.Partition, r.Offset}] = i
	}
	out := orig.slice(0, 0)
	out.Records = make([]Record, 0, len(failed.Records))
	seen := make(map[coord]bool, len(failed.Records))
	for _, r := range failed.Records {
		c := coord{r.Topic, r.Partition, r.Offset}
		i, ok := at[c]
		switch {
		case !ok:
			out.Records = append(out.Records, r)
		case !seen[c]:
			seen[c] = true
			out.Records = append(out.Records, orig.Records[i])
		}
	}
	return out
}

// slice returns a batch of records [i, j) of b, sharing them.
func (b *Batch) slice(i, j int) *Batch {
	return &Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers, Records: b.Records[i:j:j]}
}

func (p *Pipe) failure(b *Batch, cond string, attempts int, stage string, err error) *Failure {
	f := &Failure{Pipe: p.Name, RequestID: newRequestID(), Condition: cond, Attempts: attempts, Stage: stage,
		Err: err, Batch: b, Time: p.clock()}
	if d, ok := p.Target.(Describer); ok {
		f.Target = d.Describe()
	}
	return f
}

// deadLetter sends f to the on-failure destination, retrying until it is
// stored or ctx is cancelled: the records' offsets wait for it.
func (p *Pipe) deadLetter(ctx context.Context, f *Failure) error {
	p.Logger.Warn("records sent to the on-failure destination", batchAttrs(f.Batch, "condition", f.Condition,
		"attempts", f.Attempts, "stage", f.Stage, "error", errText(f.Err))...)
	for attempt := 0; ; attempt++ {
		err := p.OnFailure.Send(ctx, f)
		if err == nil {
			p.Stats.DeadLettered.Add(int64(len(f.Batch.Records)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.Stats.DestinationFails.Add(1)
		delay := p.Backoff.Delay(attempt)
		if attempt == 0 {
			p.Logger.Error("on-failure destination failed; retrying, the partition waits", batchAttrs(f.Batch, "error", err.Error(), "retryIn", delay.String())...)
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return err
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (p *Pipe) attempt(ctx context.Context, b *Batch) error {
	for i, s := range p.Stages {
		nb, err := s.Process(ctx, b)
		if err != nil {
			name := fmt.Sprintf("stage %d", i+1)
			if i < len(p.StageNames) {
				name = p.StageNames[i]
			}
			return &stageError{stage: name, err: err}
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

// Try runs b once through the stages and the target, without retries or
// on-failure destination: nil when every record was delivered or filtered
// out. `pipe redrive` uses it.
func (p *Pipe) Try(ctx context.Context, b *Batch) error {
	return p.attempt(ctx, b)
}
