package pattern

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/pipe-run/pipe/pipeline"
)

// Pattern is a compiled event pattern. It is read-only and safe for
// concurrent use.
type Pattern struct {
	src string
	// branches are the alternatives $or multiplies out to (one when the
	// pattern has no $or); the pattern matches when one of them does.
	branches []*node
	combos   int
}

// String returns the pattern's text as it was compiled.
func (p *Pattern) String() string { return p.src }

// Match says whether the decoded record (or any JSON value) root matches.
func (p *Pattern) Match(root *pipeline.Value) bool {
	for _, b := range p.branches {
		if pos, abs := b.eval(root); pos || abs {
			return true
		}
	}
	return false
}

// MatchRecord matches the record's view, decoding it on first use.
func (p *Pattern) MatchRecord(r *pipeline.Record) bool { return p.Match(r.View()) }

// Explain is Match that also says, when root does not match, which field of
// the pattern failed and why, such as
//
//	value.amount: 42 does not match [{"numeric":[">",100]}]
func (p *Pattern) Explain(root *pipeline.Value) (ok bool, why string) {
	if p.Match(root) {
		return true, ""
	}
	if len(p.branches) == 1 {
		return false, p.branches[0].explain(root)
	}
	var whys []string
	for _, b := range p.branches {
		if w := b.explain(root); !contains(whys, w) {
			whys = append(whys, w)
		}
	}
	return false, "no $or alternative matches: " + strings.Join(whys, "; ")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// MaxPatterns is how many patterns a filter may hold, as Lambda's quota
// allows at most.
const MaxPatterns = 10

// Set is several patterns ORed: a record passes when any of them matches.
// An empty Set matches every record.
type Set struct {
	patterns []*Pattern
	// sel decodes what the patterns read of a record, into selections
	// reused from record to record.
	sel        *pipeline.Selector
	selections sync.Pool
}

// NewSet makes a Set of at most MaxPatterns patterns.
func NewSet(patterns ...*Pattern) (*Set, error) {
	if len(patterns) > MaxPatterns {
		return nil, fmt.Errorf("a filter holds at most %d patterns, not %d", MaxPatterns, len(patterns))
	}
	for _, p := range patterns {
		if p == nil {
			return nil, errors.New("nil pattern")
		}
	}
	s := &Set{patterns: append([]*Pattern(nil), patterns...)}
	s.sel = pipeline.NewSelector(s.Paths())
	return s, nil
}

// Paths returns the paths of the record the patterns read, from its root
// (such as [value customer country]), each once; a path that another one
// extends is left out. Nothing outside them decides whether a pattern
// matches, but for the value and key being valid JSON at all.
func (s *Set) Paths() [][]string {
	var paths [][]string
	for _, p := range s.patterns {
		for _, b := range p.branches {
			paths = b.appendPaths(nil, paths)
		}
	}
	return paths
}

// Patterns returns the patterns of the set.
func (s *Set) Patterns() []*Pattern { return append([]*Pattern(nil), s.patterns...) }

// Match says whether any pattern matches root. The value is decoded once,
// by the caller (Record.View), whatever the number of patterns.
func (s *Set) Match(root *pipeline.Value) bool {
	if len(s.patterns) == 0 {
		return true
	}
	for _, p := range s.patterns {
		if p.Match(root) {
			return true
		}
	}
	return false
}

// MatchRecord matches the record's view, decoding it on first use.
func (s *Set) MatchRecord(r *pipeline.Record) bool {
	if len(s.patterns) == 0 {
		return true
	}
	return s.Match(r.View())
}

// MatchSelected decides as MatchRecord does, but decodes only the parts of
// the record the patterns read (see pipeline.Selector), in memory reused
// from record to record, rather than the record's whole view, which it
// neither builds nor keeps. It is the cheaper way to decide a record whose
// view nothing else needs; when the view is decoded anyway, matching it
// (MatchRecord) costs less.
func (s *Set) MatchSelected(r *pipeline.Record) bool {
	if len(s.patterns) == 0 {
		return true
	}
	sel, _ := s.selections.Get().(*pipeline.Selection)
	if sel == nil {
		sel = new(pipeline.Selection)
	}
	ok := s.Match(s.sel.Select(r, sel))
	s.selections.Put(sel)
	return ok
}

// Explain is Match that also says why no pattern matched.
func (s *Set) Explain(root *pipeline.Value) (ok bool, why string) {
	if s.Match(root) {
		return true, ""
	}
	if len(s.patterns) == 1 {
		return s.patterns[0].Explain(root)
	}
	var b strings.Builder
	b.WriteString("no pattern matches: ")
	for i, p := range s.patterns {
		if i > 0 {
			b.WriteString("; ")
		}
		_, w := p.Explain(root)
		b.WriteString("pattern ")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(": ")
		b.WriteString(w)
	}
	return false, b.String()
}
