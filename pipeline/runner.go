package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/metrics"
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
	// Status is the pipe's live state, partitions and metrics; nil gets
	// one of its own when the pipe runs.
	Status *Status
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	level    *PipeLevel
	execData atomic.Bool
	// stageM are the metrics of Stages, then of the target.
	stageM []*metrics.Stage
	// evalErrs follow the expression failures of stages that count them.
	evalErrs  []evalErrors
	setupOnce sync.Once
}

// evalErrors carries a stage's own count of expression failures (the
// filter's EvalErrors) over to a metric. The stage counts across the
// batches of all partitions, so the count moves the metric forward with a
// compare-and-swap, never twice for the same failures.
type evalErrors struct {
	stage interface{ EvalErrors() int64 }
	seen  atomic.Int64
}

func (e *evalErrors) sync(c interface{ Add(float64) }) {
	cur := e.stage.EvalErrors()
	for {
		prev := e.seen.Load()
		if cur <= prev {
			return
		}
		if e.seen.CompareAndSwap(prev, cur) {
			c.Add(float64(cur - prev))
			return
		}
	}
}

// Stats counts a pipe's retries, bisections and dead-lettered records.
type Stats struct {
	Retries          atomic.Int64
	Bisects          atomic.Int64
	DeadLettered     atomic.Int64 // records sent to the on-failure destination
	DestinationFails atomic.Int64 // failed sends to the destination
}

// Options are what BuildPipe needs besides the config.
type Options struct {
	// Logger is the process logger; the pipe's logs go to its handler at
	// the pipe's own level.
	Logger *slog.Logger
	// Metrics is the process's metrics registry; nil is one of the pipe's
	// own.
	Metrics *metrics.Registry
	// Status is the pipe's status, kept by a supervisor across restarts;
	// nil makes a new one.
	Status *Status
	// Level is the pipe's log level, kept by a supervisor across
	// restarts; nil makes one from the pipe's logLevel.
	Level *PipeLevel
}

// Build makes the pipes of a config. Nothing is connected yet: building
// touches no network.
func Build(cfg *Config, logger *slog.Logger) ([]*Pipe, error) {
	var pipes []*Pipe
	reg := metrics.New()
	for i := range cfg.Pipes {
		p, err := BuildPipe(cfg, &cfg.Pipes[i], Options{Logger: logger, Metrics: reg})
		if err != nil {
			closeAll(pipes)
			return nil, err
		}
		pipes = append(pipes, p)
	}
	return pipes, nil
}

// BuildPipe makes one pipe of a config. Nothing is connected yet: building
// touches no network.
func BuildPipe(cfg *Config, pc *PipeConfig, o Options) (*Pipe, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	lv := o.Level
	if lv == nil {
		lv = &PipeLevel{}
		lv.Set(pc.LogLevel)
	}
	logger := NewPipeLogger(o.Logger, pc.Name, lv)
	st := o.Status
	if st == nil {
		st = NewStatus(pc.Name, logger, o.Metrics.Pipe(pc.Name), pc.EffectiveStallTimeout())
	}
	if eff := pc.EffectiveStallTimeout(); eff != pc.StallTimeout {
		logger.Warn("stallTimeout is shorter than twice the source's commitInterval; stalls are reported after that instead",
			"stallTimeout", pc.StallTimeout.String(), "effective", eff.String())
	}
	env := Env{Pipe: pc.Name, Logger: logger, DrainTimeout: cfg.ShutdownTimeout, Source: pc.Source, Status: st}
	src, err := pc.Source.NewSource(env)
	if err != nil {
		return nil, fmt.Errorf("%s:%d:%d: pipe %q: source: %w", cfg.File, pc.Line, pc.Column, pc.Name, err)
	}
	tgt, err := pc.Target.NewTarget(env)
	if err != nil {
		return nil, fmt.Errorf("%s:%d:%d: pipe %q: target: %w", cfg.File, pc.Line, pc.Column, pc.Name, err)
	}
	var dest Destination
	if pc.OnFailure != nil {
		if dest, err = pc.OnFailure.NewDestination(env); err != nil {
			tgt.Close()
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
		stage, err := slot.cfg.NewStage(env)
		if err != nil {
			tgt.Close()
			if dest != nil {
				dest.Close()
			}
			return nil, fmt.Errorf("%s:%d:%d: pipe %q: %s: %w", cfg.File, pc.Line, pc.Column, pc.Name, slot.name, err)
		}
		stages = append(stages, stage)
		names = append(names, slot.name)
	}
	p := &Pipe{Name: pc.Name, Source: src, Stages: stages, StageNames: names, Target: tgt,
		Backoff:    backoff.Policy{Initial: pc.RetryBackoff.Initial, Max: pc.RetryBackoff.Maximum},
		MaxRetries: pc.RetryLimit(), MaxAge: pc.MaximumRecordAge, Bisect: pc.BisectBatchOnError,
		OnFailure: dest, Logger: logger, Status: st, level: lv}
	p.execData.Store(pc.IncludeExecutionData)
	return p, nil
}

// SetLogLevel sets the pipe's log level (a name of LogLevels); "" follows
// the process's. It applies at once, to the pipe's components too.
func (p *Pipe) SetLogLevel(name string) {
	if p.level != nil {
		p.level.Set(name)
	}
}

// SetIncludeExecutionData turns the logging of payloads at TRACE on or off.
func (p *Pipe) SetIncludeExecutionData(on bool) { p.execData.Store(on) }

// setup fills in what a pipe built by hand (not by BuildPipe) lacks.
func (p *Pipe) setup() {
	p.setupOnce.Do(func() {
		if p.Logger == nil {
			p.Logger = slog.New(slog.DiscardHandler)
		}
		if p.Status == nil {
			p.Status = NewStatus(p.Name, p.Logger, nil, 0)
		}
		p.evalErrs = make([]evalErrors, len(p.Stages))
		for i, s := range p.Stages {
			p.stageM = append(p.stageM, p.Status.m.Stage(p.stageName(i)))
			if ee, ok := s.(interface{ EvalErrors() int64 }); ok {
				p.evalErrs[i].stage = ee
			}
		}
		p.stageM = append(p.stageM, p.Status.m.Stage("target"))
	})
}

func closeAll(pipes []*Pipe) {
	for _, p := range pipes {
		p.Close()
	}
}

// Close releases what building the pipe made (its target and on-failure
// destination), for a pipe that will not run; Run closes them itself.
func (p *Pipe) Close() error {
	err := p.Target.Close()
	if p.OnFailure != nil {
		err = errors.Join(err, p.OnFailure.Close())
	}
	return err
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

// Run runs the pipe until ctx is cancelled and closes its target. Its
// Status goes from starting to running (once the source is connected) and,
// after ctx is cancelled, to stopping and stopped; it is failed when the
// source ends with an error.
func (p *Pipe) Run(ctx context.Context) error {
	p.setup()
	st := p.Status
	st.SetState(StateStarting)
	p.Logger.Info("pipe starting")
	watchCtx, stopWatch := context.WithCancel(context.Background())
	go st.watch(watchCtx)
	stopping := context.AfterFunc(ctx, func() { st.SetState(StateStopping) })
	err := p.Source.Run(ctx, p)
	stopping()
	stopWatch()
	if cerr := p.Target.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing target: %w", cerr)
	}
	if p.OnFailure != nil {
		if cerr := p.OnFailure.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing on-failure destination: %w", cerr)
		}
	}
	st.ReleaseAll()
	if err != nil {
		if ctx.Err() != nil {
			st.Error(err.Error())
			st.SetState(StateStopped)
		} else {
			st.Fail("", err.Error())
		}
		p.Logger.Error("pipe stopped", "error", err)
		return fmt.Errorf("pipe %q: %w", p.Name, err)
	}
	st.SetState(StateStopped)
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
// with no destination it is retried for ever. Only its own partition waits,
// and its status says so (blocked on retry, the failing offset and reason).
func (p *Pipe) Handle(ctx context.Context, b *Batch) error {
	p.setup()
	m := p.Status.m
	start := time.Now()
	size := batchBytes(b)
	m.Batches.Inc()
	m.BatchRecords.Observe(float64(len(b.Records)))
	m.InflightBatches.Inc()
	m.InflightBytes.Add(float64(size))
	ps := p.Status.partition(b)
	trace := p.Logger.Enabled(ctx, LevelTrace)
	if trace {
		p.Logger.Log(ctx, LevelTrace, "batch received", batchAttrs(b, "bytes", size)...)
	}
	err := p.handle(ctx, b, ps, trace)
	m.InflightBatches.Dec()
	m.InflightBytes.Sub(float64(size))
	if ps != nil {
		ps.unblock()
	}
	if err != nil {
		return err
	}
	end := time.Now()
	m.BatchDuration.Observe(end.Sub(start).Seconds())
	endMs := end.UnixMilli()
	lat := m.Latency.Tally()
	for i := range b.Records {
		lat.Observe(float64(endMs-b.Records[i].Timestamp.UnixMilli()) / 1000)
	}
	lat.Flush()
	if trace {
		p.Logger.Log(ctx, LevelTrace, "batch done", batchAttrs(b, "duration", end.Sub(start).String())...)
	}
	return nil
}

func (p *Pipe) handle(ctx context.Context, b *Batch, ps *PartitionStatus, trace bool) error {
	m := p.Status.m
	queue := []work{{b: b}}
	var logged bool
	for len(queue) > 0 {
		w := &queue[0]
		if p.MaxAge > 0 && p.OnFailure != nil {
			old, fresh := p.splitAged(w.b)
			if old != nil {
				if w.targetOnly {
					old = sourceRecords(b, old)
				}
				f := p.failure(old, RecordAgeExceeded, w.attempts, "", nil)
				if err := p.deadLetter(ctx, f, ps); err != nil {
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
		var res result
		if w.targetOnly {
			res, err = p.deliver(ctx, w.b, trace)
		} else {
			res, err = p.attempt(ctx, w.b, trace)
		}
		var pf *partialFailure
		if err != nil {
			pf = asPartial(err)
		}
		if err == nil || pf != nil {
			// Delivered, or delivered in part: those records are done.
			m.Filtered.Add(float64(res.filtered))
			m.Delivered.Add(float64(res.delivered))
		}
		if err == nil {
			if w.attempts > 0 {
				p.Logger.Info("batch delivered after retries", batchAttrs(w.b, "attempts", w.attempts+1)...)
			}
			if trace {
				p.Logger.Log(ctx, LevelTrace, "records done", batchAttrs(w.b, "delivered", res.delivered, "filtered", res.filtered)...)
			}
			queue = queue[1:]
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.Status.Error(StageOf(err) + ": " + err.Error())
		w.attempts++
		if pf != nil {
			w.b, w.targetOnly = pf.rest, true
		}
		if p.Bisect && len(w.b.Records) > 1 && pf == nil {
			half := len(w.b.Records) / 2
			left, right := w.b.slice(0, half), w.b.slice(half, len(w.b.Records))
			p.Stats.Bisects.Add(1)
			m.Bisects.Inc()
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
			if err := p.deadLetter(ctx, f, ps); err != nil {
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
		m.Retries.Inc()
		if ps != nil && len(w.b.Records) > 0 {
			since := time.Now()
			if old := ps.blocked.Load(); old != nil {
				since = old.Since
			}
			ps.block(&Blocked{Offset: w.b.Records[0].Offset, Stage: StageOf(err), Reason: err.Error(), Attempts: w.attempts, Since: since})
		}
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

// batchBytes is the size of a batch's keys, values and headers.
func batchBytes(b *Batch) int {
	n := 0
	for i := range b.Records {
		r := &b.Records[i]
		n += len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			n += len(h.Key) + len(h.Value)
		}
	}
	return n
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
func (p *Pipe) deadLetter(ctx context.Context, f *Failure, ps *PartitionStatus) error {
	p.Logger.Warn("records sent to the on-failure destination", batchAttrs(f.Batch, "condition", f.Condition,
		"attempts", f.Attempts, "stage", f.Stage, "error", errText(f.Err))...)
	for attempt := 0; ; attempt++ {
		err := p.OnFailure.Send(ctx, f)
		if err == nil {
			p.Stats.DeadLettered.Add(int64(len(f.Batch.Records)))
			p.Status.m.SentToOnFailure(f.Condition, len(f.Batch.Records))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.Stats.DestinationFails.Add(1)
		p.Status.m.OnFailureErrors.Inc()
		p.Status.Error("onFailure: " + err.Error())
		if ps != nil && len(f.Batch.Records) > 0 {
			ps.block(&Blocked{Offset: f.Batch.Records[0].Offset, Stage: "onFailure", Reason: err.Error(), Attempts: attempt + 1, Since: f.Time})
		}
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

// result counts what an attempt finished: records the filter dropped and
// records the target accepted.
type result struct {
	filtered, delivered int
}

func (p *Pipe) attempt(ctx context.Context, b *Batch, trace bool) (result, error) {
	var res result
	for i, s := range p.Stages {
		t0 := time.Now()
		nb, err := s.Process(ctx, b)
		sm := p.stageM[i]
		sm.Duration.Observe(time.Since(t0).Seconds())
		if ec := &p.evalErrs[i]; ec.stage != nil {
			ec.sync(p.Status.m.FilterErrors)
		}
		if err != nil {
			if ctx.Err() == nil {
				sm.Error(errorKind(err))
				sm.Failed.Add(float64(len(b.Records)))
			}
			return res, &stageError{stage: p.stageName(i), err: err}
		}
		out := 0
		if nb != nil {
			out = len(nb.Records)
		}
		if i < len(p.StageNames) && p.StageNames[i] == "filter" {
			res.filtered += len(b.Records) - out
		}
		if trace {
			p.Logger.Log(ctx, LevelTrace, "stage done", "stage", p.stageName(i), "records", len(b.Records), "out", out,
				"duration", time.Since(t0).String())
		}
		if out == 0 {
			return res, nil
		}
		b = nb
	}
	d, err := p.deliver(ctx, b, trace)
	res.delivered = d.delivered
	return res, err
}

func (p *Pipe) stageName(i int) string {
	if i < len(p.StageNames) {
		return p.StageNames[i]
	}
	return fmt.Sprintf("stage %d", i+1)
}

// errorKind sorts a stage's error for pipe_stage_errors_total.
func errorKind(err error) string {
	var sc StatusCoder
	var ne net.Error
	switch {
	case errors.As(err, new(*partialError)):
		return metrics.KindPartial
	case RetryAfterOf(err) > 0, errors.As(err, &sc) && sc.StatusCode() == 429:
		return metrics.KindThrottled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return metrics.KindTimeout
	}
	return metrics.KindError
}

// partialFailure carries the records still to deliver after a target said
// only some failed.
type partialFailure struct {
	error
	rest *Batch
}

func (e *partialFailure) Unwrap() error { return e.error }

func asPartial(err error) *partialFailure {
	var pf *partialFailure
	if errors.As(err, &pf) {
		return pf
	}
	return nil
}

// maxTracePayload bounds the payload of a TRACE line.
const maxTracePayload = 64 << 10

// deliver hands b to the target. When the target reports that only some
// records failed, the error carries the batch of those records and the
// result counts the others as delivered.
func (p *Pipe) deliver(ctx context.Context, b *Batch, trace bool) (result, error) {
	sm := p.stageM[len(p.stageM)-1]
	exec := trace && p.execData.Load()
	if exec {
		p.traceRequest(ctx, b)
	}
	t0 := time.Now()
	err := p.Target.Deliver(ctx, b)
	took := time.Since(t0)
	sm.Duration.Observe(took.Seconds())
	if exec {
		p.traceResponse(ctx, b, err, took)
	}
	if err == nil {
		return result{delivered: len(b.Records)}, nil
	}
	if ctx.Err() == nil {
		sm.Error(errorKind(err))
	}
	failed, ok := RetryOnlyOf(err)
	if !ok {
		if ctx.Err() == nil {
			sm.Failed.Add(float64(len(b.Records)))
		}
		return result{}, err
	}
	rest := &Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
	for _, i := range failed {
		if i >= 0 && i < len(b.Records) {
			rest.Records = append(rest.Records, b.Records[i])
		}
	}
	if len(rest.Records) == 0 {
		return result{delivered: len(b.Records)}, nil
	}
	sm.Failed.Add(float64(len(rest.Records)))
	return result{delivered: len(b.Records) - len(rest.Records)}, &partialFailure{error: err, rest: rest}
}

// traceRequest logs what the target is about to be sent, at TRACE with
// includeExecutionData: the target's description, its requests' summaries
// when it can tell them, and the payload (the envelope, cut short). Header
// values and other parameters are left out: they may hold secrets.
func (p *Pipe) traceRequest(ctx context.Context, b *Batch) {
	attrs := batchAttrs(b)
	if d, ok := p.Target.(Describer); ok {
		attrs = append(attrs, "target", d.Describe())
	}
	if pv, ok := p.Target.(Previewer); ok {
		tctx := NewTemplateContext(p.Name)
		var sums []string
		for _, r := range pv.Preview(b, &tctx) {
			sums = append(sums, r.Summary)
		}
		attrs = append(attrs, "requests", sums)
	}
	payload := AppendEnvelope(nil, b)
	attrs = append(attrs, "payloadBytes", len(payload))
	if len(payload) > maxTracePayload {
		payload = payload[:maxTracePayload]
		attrs = append(attrs, "payloadTruncated", true)
	}
	attrs = append(attrs, "payload", string(payload))
	p.Logger.Log(ctx, LevelTrace, "target request", attrs...)
}

// traceResponse logs how the target answered, at TRACE with
// includeExecutionData.
func (p *Pipe) traceResponse(ctx context.Context, b *Batch, err error, took time.Duration) {
	attrs := batchAttrs(b, "duration", took.String())
	var sc StatusCoder
	if errors.As(err, &sc) && sc.StatusCode() != 0 {
		attrs = append(attrs, "statusCode", sc.StatusCode())
	}
	if err == nil {
		attrs = append(attrs, "result", "ok")
	} else {
		attrs = append(attrs, "result", "error", "error", err.Error())
		if failed, ok := RetryOnlyOf(err); ok {
			attrs = append(attrs, "failedRecords", len(failed))
		}
	}
	p.Logger.Log(ctx, LevelTrace, "target response", attrs...)
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
	p.setup()
	_, err := p.attempt(ctx, b, false)
	return err
}
