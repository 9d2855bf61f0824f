// Package filter is the pipe's filter stage: event patterns (Lambda
// FilterCriteria / EventBridge syntax, see package pattern) and an optional
// expr-lang expression. A record passes when any pattern matches (or there are
// none) and the expression is true (or there is none). Records that do not
// pass count as done: the source commits past them.
//
// An expression that fails to evaluate on a record (a type error on an
// unexpected value, say) counts as no match: the record is filtered out, the
// failure is counted, and the first failure of each kind is logged at WARN
// with the record's topic, partition and offset. Failing closed keeps
// unexpected records away from the target; a user who prefers them to pass
// writes the expression so ((value?.amount ?? 0) > 100, or `not (...)`).
package filter

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/expr"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

// Stage filters batches.
type Stage struct {
	set  *pattern.Set
	prog *expr.Program
	log  *slog.Logger

	filtered   atomic.Int64
	evalErrors atomic.Int64

	mu     sync.Mutex
	warned map[string]bool
}

var _ pipeline.Stage = (*Stage)(nil)

// maxWarnKinds bounds the error kinds remembered for log-once.
const maxWarnKinds = 100

// New builds a filter stage from its config.
func New(c *Config, env pipeline.Env) (*Stage, error) {
	pats := make([]*pattern.Pattern, len(c.Patterns))
	for i, p := range c.Patterns {
		pats[i] = p.Pattern
	}
	set, err := pattern.NewSet(pats...)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{set: set, prog: c.Expression.prog, log: log.With("stage", "filter"), warned: map[string]bool{}}, nil
}

// Process returns the records of b that pass; b itself when all do. It does
// not change b.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	var out *pipeline.Batch
	for i := range b.Records {
		r := &b.Records[i]
		pass, err := s.pass(r)
		if err != nil {
			s.warnOnce(r, err)
		}
		switch {
		case pass && out != nil:
			out.Records = append(out.Records, *r)
		case !pass && out == nil:
			out = &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers,
				Records: make([]pipeline.Record, i, len(b.Records)-1)}
			copy(out.Records, b.Records[:i])
			s.filtered.Add(1)
		case !pass:
			s.filtered.Add(1)
		}
	}
	if out == nil {
		return b, nil
	}
	return out, nil
}

// pass decides a record. Patterns alone decide it from the parts of the
// record they read (Set.MatchSelected), unless the record's view is
// decoded already; an expression reads the whole view, so with one the
// patterns match the view too. Either way the decision is the same; the
// view stays for whatever needs it later (templates, transforms), which
// decode it then.
func (s *Stage) pass(r *pipeline.Record) (bool, error) {
	if s.prog == nil {
		if r.HasView() {
			return s.set.MatchRecord(r), nil
		}
		return s.set.MatchSelected(r), nil
	}
	if !s.set.MatchRecord(r) {
		return false, nil
	}
	ok, err := s.prog.RunBool(expr.NewEnv(r))
	if err != nil {
		s.evalErrors.Add(1)
		return false, err
	}
	return ok, nil
}

// Decision is what the filter decided about one record, and why.
type Decision struct {
	Pass bool
	// Why says which pattern field or the expression kept the record out.
	Why string
	// Err is the expression's evaluation error, when it failed.
	Err error
}

// Explain decides like Process and says why a record does not pass.
func (s *Stage) Explain(r *pipeline.Record) Decision {
	if ok, why := s.set.Explain(r.View()); !ok {
		return Decision{Why: why}
	}
	if s.prog == nil {
		return Decision{Pass: true}
	}
	ok, err := s.prog.RunBool(expr.NewEnv(r))
	switch {
	case err != nil:
		return Decision{Why: "expression failed: " + err.Error(), Err: err}
	case !ok:
		return Decision{Why: "expression is false: " + s.prog.String()}
	}
	return Decision{Pass: true}
}

// Filtered is how many records the stage has filtered out.
func (s *Stage) Filtered() int64 { return s.filtered.Load() }

// EvalErrors is how many records the expression failed on.
func (s *Stage) EvalErrors() int64 { return s.evalErrors.Load() }

func (s *Stage) warnOnce(r *pipeline.Record, err error) {
	kind := expr.Kind(err)
	s.mu.Lock()
	seen := s.warned[kind] || len(s.warned) >= maxWarnKinds
	if !seen {
		s.warned[kind] = true
	}
	s.mu.Unlock()
	if seen {
		return
	}
	s.log.Warn("filter expression failed on a record; the record is filtered out (later failures of this kind are counted, not logged)",
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err.Error())
}
