package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/metrics"
	"github.com/pipe-run/pipe/pipeline"
)

// restartBackoff spaces the restarts of a pipe that cannot be built or
// whose run ended on its own.
var restartBackoff = backoff.Policy{Initial: time.Second, Max: time.Minute}

// rebuildAfter is how long a pipe may stay failed out of its group (a
// rejected password, an untrusted certificate) before it is built anew,
// which reads its certificate and key files again; the client retries the
// connection meanwhile. It doubles with each rebuild, up to 5m.
var rebuildAfter = backoff.Policy{Initial: 30 * time.Second, Max: 5 * time.Minute}

// Options configure a Supervisor.
type Options struct {
	// Logger is the process logger (pipeline.NewLogger).
	Logger *slog.Logger
	// Level is the process log level; a reload sets it from the new
	// file's logLevel. Nil: the level is not changed on reload.
	Level *slog.LevelVar
	// Metrics is the process's registry; nil makes one.
	Metrics *metrics.Registry
}

// Supervisor runs the pipes of a config, restarts a pipe that fails, and
// applies a new config without stopping the pipes it leaves unchanged.
type Supervisor struct {
	log     *slog.Logger
	level   *slog.LevelVar
	metrics *metrics.Registry

	// changing serialises Run's start and stop and Reload, which may take
	// as long as draining a pipe; mu guards the fields below for a moment
	// only, so that Pipes answers during a reload.
	changing sync.Mutex
	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run and after it ends
	cfg      *pipeline.Config
	entries  map[string]*entry
	order    []string // pipe names in file order
	ended    []error  // errors of pipes that ended at shutdown
}

// entry is one pipe under supervision: one version of its config.
type entry struct {
	name   string
	cfg    *pipeline.Config
	pc     *pipeline.PipeConfig
	level  *pipeline.PipeLevel
	status *pipeline.Status
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	pipe     *pipeline.Pipe // the running instance, nil between runs
	execData bool
	err      error // what the last run returned, at stop
}

// New makes a supervisor; Run starts it.
func New(o Options) *Supervisor {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	return &Supervisor{log: o.Logger, level: o.Level, metrics: o.Metrics, entries: map[string]*entry{}}
}

// Metrics returns the registry the pipes count into.
func (s *Supervisor) Metrics() *metrics.Registry { return s.metrics }

// Run runs the pipes of cfg until ctx is cancelled, then stops them all
// (drain, commit, leave the groups) and returns the errors they ended
// with. A pipe that cannot be built, or whose run ends on its own, is
// failed and retried with backoff; the others run on.
func (s *Supervisor) Run(ctx context.Context, cfg *pipeline.Config) error {
	s.changing.Lock()
	s.mu.Lock()
	s.ctx, s.cfg = ctx, cfg
	s.mu.Unlock()
	for i := range cfg.Pipes {
		pc := &cfg.Pipes[i]
		e := s.newEntry(cfg, pc)
		p, err := s.build(e)
		if err != nil {
			e.status.Fail("", "building the pipe: "+err.Error())
		}
		s.start(e, p)
	}
	s.changing.Unlock()

	<-ctx.Done()

	s.changing.Lock()
	defer s.changing.Unlock()
	all := s.current()
	s.stop(all)
	s.mu.Lock()
	s.ctx = nil
	errs := s.ended
	s.mu.Unlock()
	for _, e := range all {
		errs = append(errs, e.err)
	}
	return errors.Join(errs...)
}

// current returns the entries in file order.
func (s *Supervisor) current() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := make([]*entry, 0, len(s.order))
	for _, name := range s.order {
		es = append(es, s.entries[name])
	}
	return es
}

func (s *Supervisor) newEntry(cfg *pipeline.Config, pc *pipeline.PipeConfig) *entry {
	lv := &pipeline.PipeLevel{}
	lv.Set(pc.LogLevel)
	logger := pipeline.NewPipeLogger(s.log, pc.Name, lv)
	return &entry{
		name: pc.Name, cfg: cfg, pc: pc, level: lv, execData: pc.IncludeExecutionData,
		status: pipeline.NewStatus(pc.Name, logger, s.metrics.Pipe(pc.Name), pc.EffectiveStallTimeout()),
		done:   make(chan struct{}),
	}
}

func (s *Supervisor) build(e *entry) (*pipeline.Pipe, error) {
	return pipeline.BuildPipe(e.cfg, e.pc, pipeline.Options{Logger: s.log, Metrics: s.metrics, Status: e.status, Level: e.level})
}

// start runs e (with p, already built, or building it) and registers it.
// Called with s.changing held.
func (s *Supervisor) start(e *entry, p *pipeline.Pipe) {
	ctx, cancel := context.WithCancel(s.ctx)
	e.cancel = cancel
	s.mu.Lock()
	if _, ok := s.entries[e.name]; !ok {
		s.order = append(s.order, e.name)
	}
	s.entries[e.name] = e
	s.mu.Unlock()
	go s.runEntry(ctx, e, p)
}

// runEntry runs a pipe until ctx is cancelled, building it again after a
// failure, with backoff. p is the pipe already built, or nil when building
// it failed (the status says why).
func (s *Supervisor) runEntry(ctx context.Context, e *entry, p *pipeline.Pipe) {
	defer close(e.done)
	rebuilds, failures := 0, 0
	for {
		if p == nil {
			// Building failed, or the run ended on its own: wait, then
			// build anew.
			if backoff.Sleep(ctx, restartBackoff.Delay(failures)) != nil {
				e.status.SetState(pipeline.StateStopped)
				return
			}
			failures++
			var err error
			if p, err = s.build(e); err != nil {
				e.status.Fail("", "building the pipe: "+err.Error())
				continue
			}
		}
		e.mu.Lock()
		e.pipe = p
		p.SetIncludeExecutionData(e.execData)
		e.mu.Unlock()
		runCtx, cancelRun := context.WithCancel(ctx)
		stuck := make(chan struct{})
		go e.watchStuck(runCtx, cancelRun, rebuilds, stuck)
		err := p.Run(runCtx)
		cancelRun()
		e.mu.Lock()
		e.pipe = nil
		e.mu.Unlock()
		p = nil
		if ctx.Err() != nil {
			e.err = err
			return
		}
		select {
		case <-stuck:
			// Failed for long: build anew at once, to read its files again.
			rebuilds++
			if p, err = s.build(e); err != nil {
				e.status.Fail("", "building the pipe: "+err.Error())
			}
			continue
		default:
		}
		if err == nil {
			e.status.Fail("", "the pipe stopped on its own")
		}
		failures = 0 // it ran: the backoff starts over
	}
}

// watchStuck stops a run that stays failed out of its group for longer
// than rebuildAfter, closing stuck, so that the pipe is built anew.
func (e *entry) watchStuck(ctx context.Context, cancel context.CancelFunc, rebuilds int, stuck chan struct{}) {
	limit := rebuildAfter.Max
	if d := rebuildAfter.Initial << min(rebuilds, 8); d < limit {
		limit = d
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d, ok := e.status.FailedFor(); ok && d >= limit {
			e.status.Error("failed for " + d.Round(time.Second).String() + "; building the pipe anew to read its files again")
			close(stuck)
			cancel()
			return
		}
	}
}

// stop cancels the entries and waits for them to end. Called with
// s.changing held.
func (s *Supervisor) stop(es []*entry) {
	for _, e := range es {
		e.cancel()
	}
	for _, e := range es {
		<-e.done
	}
}

// Changes says what a reload did, by pipe name.
type Changes struct {
	Added, Removed, Restarted, Unchanged []string
}

func (c Changes) String() string {
	part := func(label string, names []string) string {
		if len(names) == 0 {
			return ""
		}
		return fmt.Sprintf(" %s=%s", label, strings.Join(names, ","))
	}
	out := strings.TrimSpace(part("added", c.Added) + part("removed", c.Removed) + part("restarted", c.Restarted) + part("unchanged", c.Unchanged))
	if out == "" {
		return "no pipes"
	}
	return out
}

// Reload applies a new config: pipes that are new start, pipes that are
// gone stop, pipes whose settings changed (pipeline.PipeConfig.Fingerprint)
// stop cleanly (drain, commit, leave the group) and start with the new
// ones, and the others run on untouched, keeping their group membership.
// A failed pipe restarts too, so that files it reads (certificates, keys)
// are read again. A pipe's logLevel and includeExecutionData apply in
// place. When a new or
// changed pipe cannot be built, nothing changes and the error says why.
func (s *Supervisor) Reload(cfg *pipeline.Config) (Changes, error) {
	s.changing.Lock()
	defer s.changing.Unlock()
	var ch Changes
	s.mu.Lock()
	running := s.ctx != nil && s.ctx.Err() == nil
	s.mu.Unlock()
	if !running {
		return ch, errors.New("not running")
	}
	type plan struct {
		e    *entry
		pipe *pipeline.Pipe
	}
	var starts []plan
	var stops []*entry
	var inPlace []func()
	seen := map[string]bool{}
	var buildErrs []error
	for i := range cfg.Pipes {
		pc := &cfg.Pipes[i]
		seen[pc.Name] = true
		s.mu.Lock()
		old := s.entries[pc.Name]
		s.mu.Unlock()
		failed := false
		if old != nil {
			st, _ := old.status.State()
			failed = st == pipeline.StateFailed
		}
		if old != nil && old.pc.Fingerprint() == pc.Fingerprint() && !failed {
			ch.Unchanged = append(ch.Unchanged, pc.Name)
			inPlace = append(inPlace, func() { old.applyInPlace(pc) })
			continue
		}
		e := s.newEntry(cfg, pc)
		p, err := s.build(e)
		if err != nil {
			buildErrs = append(buildErrs, err)
			continue
		}
		starts = append(starts, plan{e, p})
		if old != nil {
			stops = append(stops, old)
			ch.Restarted = append(ch.Restarted, pc.Name)
		} else {
			ch.Added = append(ch.Added, pc.Name)
		}
	}
	if len(buildErrs) > 0 {
		for _, pl := range starts {
			pl.pipe.Close()
		}
		return Changes{}, errors.Join(buildErrs...)
	}
	for _, e := range s.current() {
		if !seen[e.name] {
			stops = append(stops, e)
			ch.Removed = append(ch.Removed, e.name)
		}
	}
	s.warnTopLevel(cfg)
	for _, f := range inPlace {
		f()
	}
	s.stop(stops)
	s.mu.Lock()
	for _, e := range stops {
		if e.err != nil {
			s.ended = append(s.ended, e.err)
		}
		if !seen[e.name] {
			delete(s.entries, e.name)
			s.metrics.RemovePipe(e.name)
		}
	}
	s.cfg = cfg
	s.mu.Unlock()
	for _, pl := range starts {
		s.start(pl.e, pl.pipe)
	}
	s.mu.Lock()
	s.order = s.order[:0] // the new file's order
	for _, pc := range cfg.Pipes {
		s.order = append(s.order, pc.Name)
	}
	s.mu.Unlock()
	for _, l := range []*[]string{&ch.Added, &ch.Removed, &ch.Restarted, &ch.Unchanged} {
		sort.Strings(*l)
	}
	return ch, nil
}

// warnTopLevel applies the new file's logLevel and says which top-level
// settings wait for a restart of the process.
func (s *Supervisor) warnTopLevel(cfg *pipeline.Config) {
	if s.level != nil {
		if l, ok := pipeline.ParseLevel(cfg.LogLevel); ok {
			s.level.Set(l)
		}
	}
	old := s.cfg
	var later []string
	if cfg.LogFormat != old.LogFormat {
		later = append(later, "logFormat")
	}
	if cfg.Admin != old.Admin {
		later = append(later, "admin")
	}
	if cfg.ShutdownTimeout != old.ShutdownTimeout {
		later = append(later, "shutdownTimeout (applies to pipes started from now on)")
	}
	if len(later) > 0 {
		s.log.Warn("reload: some top-level settings apply only at the next start of the process", "settings", strings.Join(later, ", "))
	}
}

// applyInPlace applies the settings of an unchanged pipe that need no
// restart.
func (e *entry) applyInPlace(pc *pipeline.PipeConfig) {
	e.level.Set(pc.LogLevel)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.execData = pc.IncludeExecutionData
	if e.pipe != nil {
		e.pipe.SetIncludeExecutionData(pc.IncludeExecutionData)
	}
}

// Pipes returns the status of every pipe, in file order.
func (s *Supervisor) Pipes() []pipeline.PipeReport {
	es := s.current()
	out := make([]pipeline.PipeReport, 0, len(es))
	for _, e := range es {
		out = append(out, e.status.Snapshot())
	}
	return out
}
