package pattern

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// seedPatterns are patterns the fuzzers start from.
var seedPatterns = []string{
	`{"a":["x"]}`,
	`{"value":{"amount":[{"numeric":[">",100]}]},"topic":["orders"]}`,
	`{"a":{"b":["x",{"exists":false}],"c":[1]}}`,
	`{"$or":[{"a":[{"prefix":"x"}]},{"b":[{"anything-but":{"suffix":"y"}}]}]}`,
	`{"a":[{"wildcard":"a*b\\*c"},{"equals-ignore-case":"ß"},{"cidr":"10.0.0.0/8"}]}`,
	`{"a":[{"numeric":[">=",0,"<",5]},{"anything-but":[1,2]},null,true,"10.0.0.1"]}`,
	`{"x":{"$or":[{"a":[1]},{"b":[{"exists":true}]}]},"y":{"$or":[{"c":[1]},{"d":[2]}]}}`,
}

var seedEvents = []string{
	`{"a":"x"}`,
	`{"value":{"amount":150},"topic":"orders"}`,
	`{"a":[{"b":"x","c":1},{"c":1}]}`,
	`{"a":[[1,"x"],{"b":null}],"b":"zy"}`,
	`{"a":["aXb*c","SS","10.1.2.3",3e2]}`,
	`{"x":{"a":1},"y":[{"c":1},{"d":2}]}`,
}

// FuzzCompile feeds arbitrary text to the compiler: it must not panic, and
// what it accepts must match without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range seedPatterns {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":[{"numeric":[">",1,"<",`))
	f.Add([]byte(`{"$or":[{},{}]}`))
	events := make([]pipeline.Value, len(seedEvents))
	for i, s := range seedEvents {
		events[i], _ = pipeline.ParseJSON([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Compile(src)
		if err != nil {
			pe, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if pe.Offset < -1 || pe.Offset > len(src) {
				t.Fatalf("offset %d outside the %d-byte pattern", pe.Offset, len(src))
			}
			return
		}
		if p.combos > MaxCombinations || len(p.branches) != p.combos {
			t.Fatalf("%d branches for %d combinations", len(p.branches), p.combos)
		}
		for i := range events {
			m := p.Match(&events[i])
			ok, why := p.Explain(&events[i])
			if ok != m || ok == (why != "") {
				t.Fatalf("Match %v, Explain %v %q", m, ok, why)
			}
		}
	})
}

// FuzzMatch matches random patterns against random events. When the inputs
// are not a valid pattern and event, they seed a generator that builds
// them. The matcher must not panic, Explain must agree with Match, and
// Match must agree with reference, a brute-force reading of event-ruler's
// rules on flattened fields.
func FuzzMatch(f *testing.F) {
	for _, p := range seedPatterns {
		for _, e := range seedEvents {
			f.Add(p, e)
		}
	}
	f.Add("\x01\x02\x03\x04", "\x05\x06\x07\x08")
	f.Fuzz(func(t *testing.T, patText, evText string) {
		p, err := Compile([]byte(patText))
		if err != nil {
			g := &gen{data: []byte(patText + evText)}
			patText = g.pattern(0)
			p, err = Compile([]byte(patText))
			if err != nil {
				return // the generator may exceed a limit
			}
		}
		ev, err := pipeline.ParseJSON([]byte(evText))
		if err != nil {
			g := &gen{data: []byte(evText + patText)}
			evText = g.event(0)
			if ev, err = pipeline.ParseJSON([]byte(evText)); err != nil {
				t.Fatalf("generated event %s: %v", evText, err)
			}
		}
		got := p.Match(&ev)
		ok, why := p.Explain(&ev)
		if ok != got || ok == (why != "") {
			t.Fatalf("Match %v, Explain %v %q", got, ok, why)
		}
		if want, ok := reference(p, &ev); ok && got != want {
			t.Fatalf("pattern %s\nevent   %s\nMatch = %v, reference = %v", patText, evText, got, want)
		}
	})
}

// gen builds JSON text from fuzz bytes.
type gen struct {
	data []byte
	i    int
}

func (g *gen) next(n int) int {
	if g.i >= len(g.data) {
		return 0
	}
	b := int(g.data[g.i])
	g.i++
	return b % n
}

var (
	genNames   = []string{"a", "b", "c", "d"}
	genStrings = []string{`""`, `"x"`, `"X"`, `"xy"`, `"yx"`, `"10.0.0.1"`, `"ß"`, `"SS"`, `"a*b"`, `"é"`}
	genNumbers = []string{`0`, `-0`, `1`, `1.5`, `100`, `300`, `3e2`, `1e400`, `-7`}
	genOps     = []string{
		`{"prefix":"x"}`, `{"suffix":"y"}`, `{"equals-ignore-case":"X"}`, `{"equals-ignore-case":"ss"}`,
		`{"wildcard":"*x*"}`, `{"wildcard":"a\\*b"}`, `{"anything-but":["x"]}`, `{"anything-but":1}`,
		`{"anything-but":{"prefix":"x"}}`, `{"anything-but":{"equals-ignore-case":["X","y"]}}`,
		`{"numeric":[">",0]}`, `{"numeric":[">=",1,"<",100]}`, `{"numeric":["=",300]}`,
		`{"exists":true}`, `{"exists":false}`, `{"exists":false}`, `{"cidr":"10.0.0.0/8"}`,
		`{"prefix":{"equals-ignore-case":"X"}}`, `{"suffix":{"equals-ignore-case":"Y"}}`,
	}
)

func (g *gen) event(depth int) string {
	k := g.next(10)
	if depth >= 4 {
		k %= 6 // scalars only
	}
	switch k {
	case 0, 1, 2:
		return genStrings[g.next(len(genStrings))]
	case 3, 4:
		return genNumbers[g.next(len(genNumbers))]
	case 5:
		return []string{"true", "false", "null"}[g.next(3)]
	case 6, 7:
		n := g.next(4)
		var es []string
		for i := 0; i < n; i++ {
			es = append(es, g.event(depth+1))
		}
		return "[" + strings.Join(es, ",") + "]"
	}
	n := g.next(4)
	var fs []string
	for i := 0; i < n; i++ {
		fs = append(fs, fmt.Sprintf("%q:%s", genNames[g.next(len(genNames))], g.event(depth+1)))
	}
	if depth == 0 && n == 0 {
		fs = append(fs, `"a":"x"`)
	}
	return "{" + strings.Join(fs, ",") + "}"
}

func (g *gen) pattern(depth int) string {
	n := 1 + g.next(3)
	var fs []string
	for i := 0; i < n; i++ {
		switch k := g.next(8); {
		case k == 0 && depth < 3:
			m := 2 + g.next(2)
			var bs []string
			for j := 0; j < m; j++ {
				bs = append(bs, g.pattern(depth+1))
			}
			fs = append(fs, `"$or":[`+strings.Join(bs, ",")+`]`)
		case k <= 2 && depth < 3:
			fs = append(fs, fmt.Sprintf("%q:%s", genNames[g.next(len(genNames))], g.pattern(depth+1)))
		default:
			fs = append(fs, fmt.Sprintf("%q:%s", genNames[g.next(len(genNames))], g.leaf()))
		}
	}
	return "{" + strings.Join(fs, ",") + "}"
}

func (g *gen) leaf() string {
	n := 1 + g.next(3)
	var vs []string
	for i := 0; i < n; i++ {
		switch g.next(5) {
		case 0:
			vs = append(vs, genStrings[g.next(len(genStrings))])
		case 1:
			vs = append(vs, genNumbers[g.next(len(genNumbers))])
		case 2:
			vs = append(vs, []string{"true", "false", "null"}[g.next(3)])
		default:
			vs = append(vs, genOps[g.next(len(genOps))])
		}
	}
	return "[" + strings.Join(vs, ",") + "]"
}

// reference matches the way event-ruler's rules read, by brute force: the
// event is flattened into leaf values, each remembering which element of
// which array it sits in; an alternative matches when some choice of one
// value per positive condition, all from consistent array elements, leaves
// no value consistent with that choice at the paths that must be absent.
// It gives up (ok false) when the search would be too long.
func reference(p *Pattern, root *pipeline.Value) (match, ok bool) {
	fields := flattenEvent(root)
	for _, b := range p.branches {
		var conds []refCond
		collectLeaves(b, nil, &conds)
		tries := 1
		for _, c := range conds {
			n := 1
			for _, f := range fields {
				if f.path == c.path {
					n++
				}
			}
			if tries *= n; tries > 20000 {
				return false, false
			}
		}
		if refMatch(conds, fields, 0, membership{}, nil) {
			return true, true
		}
	}
	return false, true
}

type refCond struct {
	path string
	l    *leaf
}

type refField struct {
	path string
	v    *pipeline.Value
	m    membership
}

// membership maps an array's number to the element index a value sits in.
type membership map[int]int

func (m membership) consistent(o membership) bool {
	for k, v := range o {
		if w, ok := m[k]; ok && w != v {
			return false
		}
	}
	return true
}

func (m membership) union(o membership) membership {
	u := membership{}
	for k, v := range m {
		u[k] = v
	}
	for k, v := range o {
		u[k] = v
	}
	return u
}

// collectLeaves lists the conditions under n, whose path is path.
func collectLeaves(n *node, path []string, out *[]refCond) {
	if n.leaf != nil {
		*out = append(*out, refCond{path: joinPath(path), l: n.leaf})
	}
	for _, k := range n.kids {
		collectLeaves(k, append(append([]string(nil), path...), k.name), out)
	}
}

func joinPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte(0)
		b.WriteString(p)
	}
	return b.String()
}

func flattenEvent(root *pipeline.Value) []refField {
	var out []refField
	arrays := 0
	var walk func(v *pipeline.Value, path []string, m membership)
	walk = func(v *pipeline.Value, path []string, m membership) {
		switch v.Type {
		case pipeline.TypeObject:
			for i := range v.Fields {
				f := &v.Fields[i]
				if v.Get(f.Name) != &f.Value {
					continue // a repeated name: the last one wins
				}
				walk(&f.Value, append(append([]string(nil), path...), f.Name), m)
			}
		case pipeline.TypeArray:
			id := arrays
			arrays++
			for i := range v.Elems {
				walk(&v.Elems[i], path, m.union(membership{id: i}))
			}
		default:
			out = append(out, refField{path: joinPath(path), v: v, m: m})
		}
	}
	walk(root, nil, membership{})
	return out
}

// refMatch tries every way to satisfy conds[i:] given the membership chosen
// so far; absent collects the paths chosen to be absent.
func refMatch(conds []refCond, fields []refField, i int, m membership, absent []string) bool {
	if i == len(conds) {
		for _, path := range absent {
			for _, f := range fields {
				if f.path == path && m.consistent(f.m) {
					return false
				}
			}
		}
		return true
	}
	c := conds[i]
	if len(c.l.ms) > 0 || c.l.strs != nil {
		for _, f := range fields {
			if f.path == c.path && m.consistent(f.m) && c.l.match(f.v) {
				if refMatch(conds, fields, i+1, m.union(f.m), absent) {
					return true
				}
			}
		}
	}
	if c.l.absent {
		return refMatch(conds, fields, i+1, m, append(absent, c.path))
	}
	return false
}
