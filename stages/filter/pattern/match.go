package pattern

import (
	"strings"
	"unicode/utf8"

	"github.com/pipe-run/pipe/pipeline"
)

// node is one object of a pattern alternative (no $or left): conditions on
// the value at its path (leaf) and on the members of that value (kids).
type node struct {
	name string
	path string // dotted, for explanations
	leaf *leaf
	kids []*node
	// canPos: some choice of the node's conditions needs a value to be
	// present (a positive match); canAbs: some choice is made only of
	// exists: false. Both can hold when a leaf lists exists: false along
	// with values, such as ["x", {"exists": false}].
	canPos, canAbs bool
}

// buildTree turns one alternative's leaves into a tree of nodes.
func buildTree(r flatRule) *node {
	root := &node{}
	for _, e := range r {
		n := root
		for _, name := range e.path {
			var next *node
			for _, k := range n.kids {
				if k.name == name {
					next = k
					break
				}
			}
			if next == nil {
				path := name
				if n.path != "" {
					path = n.path + "." + name
				}
				next = &node{name: name, path: path}
				n.kids = append(n.kids, next)
			}
			n = next
		}
		n.leaf = e.leaf
	}
	root.classify()
	return root
}

func (n *node) classify() {
	n.canPos, n.canAbs = false, true
	if n.leaf != nil {
		n.canPos = len(n.leaf.ms) > 0 || n.leaf.strs != nil
		n.canAbs = n.leaf.absent
	}
	for _, k := range n.kids {
		k.classify()
		n.canPos = n.canPos || k.canPos
		n.canAbs = n.canAbs && k.canAbs
	}
}

// appendPaths appends to dst the paths from the root to the ends of the
// branches below n, whose path is prefix, unless dst holds them already.
func (n *node) appendPaths(prefix []string, dst [][]string) [][]string {
	if len(n.kids) == 0 {
		if len(prefix) == 0 {
			return dst
		}
		for _, p := range dst {
			if hasPrefix(p, prefix) {
				return dst
			}
		}
		out := dst[:0]
		for _, p := range dst {
			if !hasPrefix(prefix, p) {
				out = append(out, p)
			}
		}
		return append(out, append([]string(nil), prefix...))
	}
	for _, k := range n.kids {
		dst = k.appendPaths(append(prefix[:len(prefix):len(prefix)], k.name), dst)
	}
	return dst
}

// hasPrefix says whether path starts with prefix.
func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && equalPath(path[:len(prefix)], prefix)
}

// eval matches the node against v, the event's value at the node's path (nil
// when missing). It reports two things: pos, that the conditions hold with
// at least one positive match, and abs, that they hold with exists: false
// alone. The difference matters for arrays: fields matched positively inside
// an array of objects must come from the same element, while exists: false
// holds for an array only when no element has the field. This is
// event-ruler's array consistency, evaluated on the tree rather than on
// flattened fields.
func (n *node) eval(v *pipeline.Value) (pos, abs bool) {
	if v != nil && v.Type == pipeline.TypeArray {
		abs = n.canAbs
		for i := range v.Elems {
			p, a := n.eval(&v.Elems[i])
			pos = pos || p
			abs = abs && a
			if pos && !abs {
				return true, false
			}
		}
		return pos, abs
	}
	abs = true
	if n.leaf != nil {
		if v == nil || v.Type == pipeline.TypeObject {
			if !n.leaf.absent {
				return false, false
			}
		} else {
			if !n.leaf.match(v) {
				return false, false
			}
			pos, abs = true, false
		}
	}
	if len(n.kids) == 0 {
		return pos, abs
	}
	var obj *pipeline.Value
	if v != nil && v.Type == pipeline.TypeObject {
		obj = v
	}
	for _, k := range n.kids {
		p, a := k.eval(obj.Get(k.name))
		if !p && !a {
			return false, false
		}
		pos = pos || p
		abs = abs && a
	}
	return pos, abs
}

// explain says why the node does not match root.
func (n *node) explain(root *pipeline.Value) string {
	if w := n.explainAt([]*pipeline.Value{root}, ""); w != "" {
		return w
	}
	return "does not match"
}

// explainAt names the first condition of n that fails on vals, the event's
// values at n's path (more than one when the path crosses an array; nil
// entries are missing values). note says why the values are missing, when
// they are.
func (n *node) explainAt(vals []*pipeline.Value, note string) string {
	var cands []*pipeline.Value
	for _, v := range vals {
		cands = flatten(cands, v)
	}
	if n.leaf != nil && !leafHolds(n.leaf, cands) {
		return n.path + ": " + describe(cands, note) + " does not match " + n.leaf.text
	}
	for _, k := range n.kids {
		var kvals []*pipeline.Value
		knote := ""
		for _, c := range cands {
			if c != nil && c.Type == pipeline.TypeObject {
				kvals = append(kvals, c.Get(k.name))
				continue
			}
			kvals = append(kvals, nil)
			if c != nil && knote == "" && n.path != "" {
				knote = n.path + " is " + article(c.Type) + ", not an object"
			}
		}
		if knote == "" {
			knote = note
		}
		holds := false
		for _, kv := range kvals {
			if p, a := k.eval(kv); p || a {
				holds = true
				break
			}
		}
		if !holds {
			return k.explainAt(kvals, knote)
		}
	}
	if len(cands) > 1 {
		return n.path + ": no single element of the array matches all the fields the pattern gives under " + n.name
	}
	return ""
}

// flatten appends v, or the elements of v when it is an array (at any
// depth), to dst.
func flatten(dst []*pipeline.Value, v *pipeline.Value) []*pipeline.Value {
	if v == nil || v.Type != pipeline.TypeArray {
		return append(dst, v)
	}
	for i := range v.Elems {
		dst = flatten(dst, &v.Elems[i])
	}
	return dst
}

// leafHolds says whether the leaf alone holds for any of the candidates.
func leafHolds(l *leaf, cands []*pipeline.Value) bool {
	scalars := false
	for _, c := range cands {
		if c == nil || c.Type == pipeline.TypeObject {
			continue
		}
		scalars = true
		if l.match(c) {
			return true
		}
	}
	return l.absent && !scalars
}

// describe renders the event's values at a path for an explanation.
func describe(cands []*pipeline.Value, note string) string {
	var present []*pipeline.Value
	for _, c := range cands {
		if c != nil {
			present = append(present, c)
		}
	}
	switch len(present) {
	case 0:
		if note != "" {
			return "missing (" + note + ")"
		}
		return "missing"
	case 1:
		return truncate(compactJSON(present[0]))
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range present {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(compactJSON(c))
		if b.Len() > maxShown {
			break
		}
	}
	b.WriteByte(']')
	return truncate(b.String())
}

// maxShown is how many bytes of an event value an explanation shows.
const maxShown = 120

func truncate(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// compactJSON renders v as JSON without white space, for people: <, > and &
// are written as they are rather than as \u escapes.
func compactJSON(v *pipeline.Value) string {
	return htmlUnescaper.Replace(string(appendCompact(nil, v)))
}

var htmlUnescaper = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")

func appendCompact(dst []byte, v *pipeline.Value) []byte {
	switch v.Type {
	case pipeline.TypeArray:
		dst = append(dst, '[')
		for i := range v.Elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCompact(dst, &v.Elems[i])
		}
		return append(dst, ']')
	case pipeline.TypeObject:
		dst = append(dst, '{')
		for i := range v.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			name := pipeline.Value{Type: pipeline.TypeString, Str: v.Fields[i].Name}
			dst = name.AppendJSON(dst)
			dst = append(dst, ':')
			dst = appendCompact(dst, &v.Fields[i].Value)
		}
		return append(dst, '}')
	}
	return v.AppendJSON(dst)
}
