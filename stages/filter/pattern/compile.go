package pattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pipe-run/pipe/pipeline"
)

// Limits AWS puts on patterns, enforced when a pattern is compiled.
const (
	// MaxLength is the longest pattern text, in characters (UTF-16 code
	// units, as the Lambda API counts them).
	MaxLength = 4096
	// MaxCombinations is the most alternatives the $or operators of one
	// pattern may multiply out to.
	MaxCombinations = 1000
)

// reserved are the names that may not be field names inside $or: event-ruler
// reads them as operators there.
var reserved = map[string]bool{
	"exactly": true, "equals-ignore-case": true, "prefix": true, "suffix": true,
	"anything-but": true, "exists": true, "wildcard": true, "numeric": true,
	"cidr": true, "=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regex": true, "not-wildcard": true, "not-equals-ignore-case": true,
	"date-after": true, "date-on-or-after": true, "date-before": true,
	"date-on-or-before": true, "in-date-range": true,
	"ip-address-in-range": true, "ip-address-not-in-range": true,
}

// astObj is one object of the pattern, before $or is multiplied out.
type astObj struct {
	items []astItem
}

// astItem is one member of a pattern object: a leaf (name: [...]), a nested
// object (name: {...}) or an $or.
type astItem struct {
	name string
	leaf *leaf
	obj  *astObj
	or   []*astObj
	path []string // for errors
	raw  *pipeline.Value
}

type compiler struct {
	src []byte
}

// Compile compiles the JSON text of one event pattern. Errors are *Error.
func Compile(src []byte) (*Pattern, error) {
	if n := textLength(src); n > MaxLength {
		return nil, &Error{Msg: fmt.Sprintf("pattern is %d characters long; the limit is %d", n, MaxLength), Offset: -1}
	}
	root, err := pipeline.ParseJSON(src)
	if err != nil {
		return nil, syntaxError(src)
	}
	c := compiler{src: src}
	if root.Type != pipeline.TypeObject {
		return nil, c.errAt(&root, nil, "a pattern is a JSON object, not %s", article(root.Type))
	}
	ast, err := c.object(&root, nil, false)
	if err != nil {
		return nil, err
	}
	rules, err := c.expand(ast, nil, []flatRule{nil})
	if err != nil {
		return nil, err
	}
	p := &Pattern{src: string(src), combos: len(rules)}
	for _, r := range rules {
		p.branches = append(p.branches, buildTree(r))
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be valid; it panics on error.
func MustCompile(src string) *Pattern {
	p, err := Compile([]byte(src))
	if err != nil {
		panic(err)
	}
	return p
}

// textLength counts UTF-16 code units, as Java's String.length does.
func textLength(src []byte) int {
	n := 0
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		n += utf16.RuneLen(r) // 1 for U+FFFD, which invalid UTF-8 decodes to
		i += size
	}
	return n
}

// syntaxError reports where src stops being JSON.
func syntaxError(src []byte) *Error {
	var v any
	err := json.Unmarshal(src, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// encoding/json counts the bytes read, the offending one included.
		off := int(se.Offset) - 1
		if strings.HasPrefix(se.Error(), "unexpected end") {
			off = len(src)
		}
		return &Error{Msg: "invalid JSON: " + se.Error(), Offset: max(off, 0)}
	}
	if !utf8.Valid(src) {
		return &Error{Msg: "invalid JSON: the text is not valid UTF-8", Offset: invalidUTF8At(src)}
	}
	return &Error{Msg: "invalid JSON: nested too deep", Offset: -1}
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

func article(t pipeline.Type) string {
	switch t {
	case pipeline.TypeArray, pipeline.TypeObject:
		return "an " + t.String()
	case pipeline.TypeNull:
		return "null"
	}
	return "a " + t.String()
}

// offset is where v's text starts in the source: v.Raw is a slice of it.
func (c *compiler) offset(v *pipeline.Value) int {
	if v == nil || v.Raw == nil {
		return -1
	}
	off := cap(c.src) - cap(v.Raw)
	if off < 0 || off > len(c.src) {
		return -1
	}
	return off
}

func (c *compiler) errAt(v *pipeline.Value, path []string, format string, args ...any) *Error {
	return &Error{Path: append([]string(nil), path...), Msg: fmt.Sprintf(format, args...), Offset: c.offset(v)}
}

func with(path []string, elems ...string) []string {
	out := make([]string, 0, len(path)+len(elems))
	return append(append(out, path...), elems...)
}

// object compiles a pattern object. inOr says it is (inside) a branch of
// $or, where operator names may not be field names.
func (c *compiler) object(v *pipeline.Value, path []string, inOr bool) (*astObj, error) {
	if len(v.Fields) == 0 {
		return nil, c.errAt(v, path, "empty objects are not allowed")
	}
	obj := &astObj{}
	for i := range v.Fields {
		f := &v.Fields[i]
		fpath := with(path, f.Name)
		item := astItem{name: f.Name, path: fpath, raw: &f.Value}
		switch {
		case f.Name == "$or":
			if f.Value.Type != pipeline.TypeArray {
				return nil, c.errAt(&f.Value, fpath, "$or takes an array of at least two objects, not %s", article(f.Value.Type))
			}
			if len(f.Value.Elems) < 2 {
				return nil, c.errAt(&f.Value, fpath, "$or needs at least two objects; it has %d", len(f.Value.Elems))
			}
			for j := range f.Value.Elems {
				e := &f.Value.Elems[j]
				if e.Type != pipeline.TypeObject {
					return nil, c.errAt(e, with(fpath, strconv.Itoa(j)), "$or takes objects only, not %s", article(e.Type))
				}
				b, err := c.object(e, with(fpath, strconv.Itoa(j)), true)
				if err != nil {
					return nil, err
				}
				item.or = append(item.or, b)
			}
		case inOr && reserved[f.Name]:
			return nil, c.errAt(&f.Value, fpath, "%q is an operator name and cannot be a field name inside $or", f.Name)
		case f.Value.Type == pipeline.TypeObject:
			o, err := c.object(&f.Value, fpath, inOr)
			if err != nil {
				return nil, err
			}
			item.obj = o
		case f.Value.Type == pipeline.TypeArray:
			l, err := c.leaf(&f.Value, fpath)
			if err != nil {
				return nil, err
			}
			item.leaf = l
		default:
			return nil, c.errAt(&f.Value, fpath, "%q must be an object or an array of values to match, not %s; write [%s]",
				f.Name, article(f.Value.Type), compactJSON(&f.Value))
		}
		obj.items = append(obj.items, item)
	}
	return obj, nil
}

// flatRule is one alternative of a pattern once $or is multiplied out: the
// leaves by path, in the order they were first written.
type flatRule []flatEntry

type flatEntry struct {
	path []string
	leaf *leaf
}

// put sets the leaf at path, replacing one written before (the last one
// wins, as in event-ruler).
func (r flatRule) put(path []string, l *leaf) flatRule {
	for i := range r {
		if equalPath(r[i].path, path) {
			out := append(flatRule(nil), r...)
			out[i].leaf = l
			return out
		}
	}
	return append(r[:len(r):len(r)], flatEntry{path: path, leaf: l})
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// expand multiplies out the $or operators of obj, as event-ruler's
// JsonRuleCompiler does: each branch of an $or copies every alternative built
// so far. prefix is obj's path in the event.
func (c *compiler) expand(obj *astObj, prefix []string, rules []flatRule) ([]flatRule, error) {
	for _, it := range obj.items {
		switch {
		case it.leaf != nil:
			p := with(prefix, it.name)
			for i := range rules {
				rules[i] = rules[i].put(p, it.leaf)
			}
		case it.obj != nil:
			var err error
			rules, err = c.expand(it.obj, with(prefix, it.name), rules)
			if err != nil {
				return nil, err
			}
		default:
			var out []flatRule
			for _, b := range it.or {
				copies := append([]flatRule(nil), rules...)
				copies, err := c.expand(b, prefix, copies)
				if err != nil {
					return nil, err
				}
				out = append(out, copies...)
				if len(out) > MaxCombinations {
					return nil, c.errAt(it.raw, it.path, "the $or operators combine into more than %d alternatives", MaxCombinations)
				}
			}
			rules = out
		}
	}
	return rules, nil
}

// leaf compiles the array of values to match at one field.
func (c *compiler) leaf(v *pipeline.Value, path []string) (*leaf, error) {
	if len(v.Elems) == 0 {
		return nil, c.errAt(v, path, "empty arrays are not allowed; list at least one value to match")
	}
	l := &leaf{text: compactJSON(v)}
	for i := range v.Elems {
		e := &v.Elems[i]
		epath := with(path, strconv.Itoa(i))
		switch e.Type {
		case pipeline.TypeString:
			if a, ok := parseIP(e.Str); ok {
				l.ms = append(l.ms, matcher{kind: opIP, addr: a})
			} else {
				l.ms = append(l.ms, matcher{kind: opString, str: e.Str})
			}
		case pipeline.TypeNumber:
			if math.IsInf(e.Num, 0) || math.IsNaN(e.Num) {
				l.ms = append(l.ms, matcher{kind: opNumberText, str: e.Str})
			} else {
				l.ms = append(l.ms, matcher{kind: opNumber, num: e.Num})
			}
		case pipeline.TypeBool:
			if e.Bool {
				l.ms = append(l.ms, matcher{kind: opTrue})
			} else {
				l.ms = append(l.ms, matcher{kind: opFalse})
			}
		case pipeline.TypeNull:
			l.ms = append(l.ms, matcher{kind: opNull})
		case pipeline.TypeObject:
			m, err := c.operator(e, epath)
			if err != nil {
				return nil, err
			}
			switch m.kind {
			case opAbsent:
				l.absent = true
			default:
				l.ms = append(l.ms, m)
			}
		default:
			return nil, c.errAt(e, epath, "values to match are strings, numbers, true, false, null or operator objects, not arrays")
		}
	}
	l.index()
	return l, nil
}

// operator compiles an operator object such as {"prefix": "x"}.
func (c *compiler) operator(v *pipeline.Value, path []string) (matcher, error) {
	if len(v.Fields) == 0 {
		return matcher{}, c.errAt(v, path, "empty operator object; write an operator such as {\"prefix\": \"abc\"}")
	}
	if len(v.Fields) > 1 {
		return matcher{}, c.errAt(&v.Fields[1].Value, with(path, v.Fields[1].Name),
			"an operator object holds exactly one operator; found %q after %q", v.Fields[1].Name, v.Fields[0].Name)
	}
	name := v.Fields[0].Name
	arg := &v.Fields[0].Value
	opath := with(path, name)
	switch name {
	case "exactly":
		if arg.Type != pipeline.TypeString {
			return matcher{}, c.errAt(arg, opath, "exactly takes a string, not %s", article(arg.Type))
		}
		return matcher{kind: opString, str: arg.Str}, nil
	case "prefix", "suffix":
		kind, foldKind := opPrefix, opPrefixFold
		if name == "suffix" {
			kind, foldKind = opSuffix, opSuffixFold
		}
		switch arg.Type {
		case pipeline.TypeString:
			return matcher{kind: kind, str: arg.Str}, nil
		case pipeline.TypeObject:
			s, err := c.foldOperand(arg, opath, name)
			if err != nil {
				return matcher{}, err
			}
			return matcher{kind: foldKind, fold: compileFold(s)}, nil
		}
		return matcher{}, c.errAt(arg, opath, "%s takes a string or {\"equals-ignore-case\": string}, not %s", name, article(arg.Type))
	case "equals-ignore-case":
		if arg.Type != pipeline.TypeString {
			return matcher{}, c.errAt(arg, opath, "equals-ignore-case takes a string, not %s", article(arg.Type))
		}
		return matcher{kind: opFold, fold: compileFold(arg.Str)}, nil
	case "wildcard":
		if arg.Type != pipeline.TypeString {
			return matcher{}, c.errAt(arg, opath, "wildcard takes a string, not %s", article(arg.Type))
		}
		g, err := compileGlob(arg.Str)
		if err != nil {
			return matcher{}, c.errAt(arg, opath, "%v", err)
		}
		return matcher{kind: opWildcard, glob: g}, nil
	case "numeric":
		return c.numeric(arg, opath)
	case "exists":
		if arg.Type != pipeline.TypeBool {
			return matcher{}, c.errAt(arg, opath, "exists takes true or false, not %s", article(arg.Type))
		}
		if arg.Bool {
			return matcher{kind: opExists}, nil
		}
		return matcher{kind: opAbsent}, nil
	case "cidr":
		if arg.Type != pipeline.TypeString {
			return matcher{}, c.errAt(arg, opath, "cidr takes a string such as \"10.0.0.0/24\", not %s", article(arg.Type))
		}
		p, err := parseCIDR(arg.Str)
		if err != nil {
			return matcher{}, c.errAt(arg, opath, "%v", err)
		}
		return matcher{kind: opCIDR, prefix: p}, nil
	case "anything-but":
		return c.anythingBut(arg, opath)
	}
	return matcher{}, c.errAt(v, path, "unknown operator %q; the operators are prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr and exactly", name)
}

// foldOperand reads {"equals-ignore-case": "x"} under prefix or suffix.
func (c *compiler) foldOperand(arg *pipeline.Value, path []string, op string) (string, error) {
	if len(arg.Fields) != 1 || arg.Fields[0].Name != "equals-ignore-case" {
		name := ""
		if len(arg.Fields) > 0 {
			name = arg.Fields[0].Name
		}
		if len(arg.Fields) > 1 {
			return "", c.errAt(arg, path, "%s takes a string or {\"equals-ignore-case\": string}; found %d keys", op, len(arg.Fields))
		}
		return "", c.errAt(arg, path, "%s takes a string or {\"equals-ignore-case\": string}, not %q", op, name)
	}
	s := &arg.Fields[0].Value
	if s.Type != pipeline.TypeString {
		return "", c.errAt(s, with(path, "equals-ignore-case"), "equals-ignore-case takes a string, not %s", article(s.Type))
	}
	return s.Str, nil
}

// numeric compiles ["=", x], ["<", x], ["<=", x], [">", x], [">=", x] and
// the ranges [">" or ">=", a, "<" or "<=", b].
func (c *compiler) numeric(arg *pipeline.Value, path []string) (matcher, error) {
	if arg.Type != pipeline.TypeArray {
		return matcher{}, c.errAt(arg, path, "numeric takes an array such as [\">\", 0, \"<=\", 5], not %s", article(arg.Type))
	}
	es := arg.Elems
	op := func(i int) (string, error) {
		if i >= len(es) {
			return "", c.errAt(arg, path, "numeric needs an operator and a number, such as [\">\", 0]")
		}
		if es[i].Type != pipeline.TypeString {
			return "", c.errAt(&es[i], with(path, strconv.Itoa(i)), "expected a comparison operator (=, <, <=, >, >=), found %s", compactJSON(&es[i]))
		}
		return es[i].Str, nil
	}
	num := func(i int, after string) (float64, error) {
		if i >= len(es) {
			return 0, c.errAt(arg, path, "%q needs a number after it", after)
		}
		if es[i].Type != pipeline.TypeNumber {
			return 0, c.errAt(&es[i], with(path, strconv.Itoa(i)), "the value after %q must be a number, not %s", after, compactJSON(&es[i]))
		}
		if math.IsInf(es[i].Num, 0) {
			return 0, c.errAt(&es[i], with(path, strconv.Itoa(i)), "%s is out of the range of numbers", es[i].Str)
		}
		return es[i].Num, nil
	}
	end := func(n int, what string) error {
		if len(es) > n {
			return c.errAt(&es[n], with(path, strconv.Itoa(n)), "too many elements in numeric expression: %s", what)
		}
		return nil
	}
	o, err := op(0)
	if err != nil {
		return matcher{}, err
	}
	x, err := num(1, o)
	if err != nil && (o == "=" || o == "<" || o == "<=" || o == ">" || o == ">=") {
		return matcher{}, err
	}
	m := matcher{kind: opRange, lo: math.Inf(-1), hi: math.Inf(1)}
	switch o {
	case "=":
		if err := end(2, "\"=\" takes one number"); err != nil {
			return matcher{}, err
		}
		m.lo, m.hi = x, x
		return m, nil
	case "<", "<=":
		if err := end(2, "write the lower bound first, as in [\">\", 0, \"<\", 10]"); err != nil {
			return matcher{}, err
		}
		m.hi, m.hiOpen = x, o == "<"
		return m, nil
	case ">", ">=":
		m.lo, m.loOpen = x, o == ">"
		if len(es) == 2 {
			return m, nil
		}
		o2, err := op(2)
		if err != nil {
			return matcher{}, err
		}
		if o2 != "<" && o2 != "<=" {
			return matcher{}, c.errAt(&es[2], with(path, "2"), "a range continues with \"<\" or \"<=\", not %q", o2)
		}
		y, err := num(3, o2)
		if err != nil {
			return matcher{}, err
		}
		if err := end(4, "a range has two bounds"); err != nil {
			return matcher{}, err
		}
		if !(x < y) {
			return matcher{}, c.errAt(&es[3], with(path, "3"), "the lower bound %s must be less than the upper bound %s", es[1].Str, es[3].Str)
		}
		m.hi, m.hiOpen = y, o2 == "<"
		return m, nil
	}
	return matcher{}, c.errAt(&es[0], with(path, "0"), "unknown numeric operator %q; use =, <, <=, > or >=", o)
}

// anythingBut compiles the operand of anything-but: a string, a number, a
// list of strings or of numbers, or one of equals-ignore-case, prefix, suffix
// and wildcard with a string or a list of strings.
func (c *compiler) anythingBut(arg *pipeline.Value, path []string) (matcher, error) {
	n := &notSet{}
	switch arg.Type {
	case pipeline.TypeString:
		n.kind, n.strs = opString, []string{arg.Str}
	case pipeline.TypeNumber:
		if math.IsInf(arg.Num, 0) {
			return matcher{}, c.errAt(arg, path, "%s is out of the range of numbers", arg.Str)
		}
		n.kind, n.nums = opNumber, []float64{arg.Num}
	case pipeline.TypeArray:
		if len(arg.Elems) == 0 {
			return matcher{}, c.errAt(arg, path, "anything-but needs at least one value")
		}
		for i := range arg.Elems {
			e := &arg.Elems[i]
			switch e.Type {
			case pipeline.TypeString:
				n.strs = append(n.strs, e.Str)
			case pipeline.TypeNumber:
				if math.IsInf(e.Num, 0) {
					return matcher{}, c.errAt(e, with(path, strconv.Itoa(i)), "%s is out of the range of numbers", e.Str)
				}
				n.nums = append(n.nums, e.Num)
			default:
				return matcher{}, c.errAt(e, with(path, strconv.Itoa(i)), "an anything-but list holds strings or numbers, not %s", article(e.Type))
			}
			if len(n.strs) > 0 && len(n.nums) > 0 {
				return matcher{}, c.errAt(e, with(path, strconv.Itoa(i)), "an anything-but list holds only strings or only numbers, not both")
			}
		}
		n.kind = opString
		if len(n.nums) > 0 {
			n.kind = opNumber
		}
	case pipeline.TypeObject:
		if len(arg.Fields) != 1 {
			return matcher{}, c.errAt(arg, path, "anything-but takes one of equals-ignore-case, prefix, suffix or wildcard; found %d keys", len(arg.Fields))
		}
		op := arg.Fields[0].Name
		opArg := &arg.Fields[0].Value
		opath := with(path, op)
		switch op {
		case "equals-ignore-case":
			n.kind = opFold
		case "prefix":
			n.kind = opPrefix
		case "suffix":
			n.kind = opSuffix
		case "wildcard":
			n.kind = opWildcard
		default:
			return matcher{}, c.errAt(arg, opath, "anything-but does not take %q; it takes equals-ignore-case, prefix, suffix or wildcard", op)
		}
		var strs []*pipeline.Value
		switch opArg.Type {
		case pipeline.TypeString:
			strs = []*pipeline.Value{opArg}
		case pipeline.TypeArray:
			if len(opArg.Elems) == 0 {
				return matcher{}, c.errAt(opArg, opath, "anything-but %s needs at least one string", op)
			}
			for i := range opArg.Elems {
				strs = append(strs, &opArg.Elems[i])
			}
		default:
			return matcher{}, c.errAt(opArg, opath, "anything-but %s takes a string or a list of strings, not %s", op, article(opArg.Type))
		}
		for i, s := range strs {
			spath := opath
			if opArg.Type == pipeline.TypeArray {
				spath = with(opath, strconv.Itoa(i))
			}
			if s.Type != pipeline.TypeString {
				return matcher{}, c.errAt(s, spath, "anything-but %s takes strings, not %s", op, article(s.Type))
			}
			switch n.kind {
			case opFold:
				n.folds = append(n.folds, compileFold(s.Str))
			case opWildcard:
				g, err := compileGlob(s.Str)
				if err != nil {
					return matcher{}, c.errAt(s, spath, "%v", err)
				}
				n.globs = append(n.globs, g)
			default:
				if s.Str == "" {
					return matcher{}, c.errAt(s, spath, "anything-but %s needs a non-empty string", op)
				}
				n.strs = append(n.strs, s.Str)
			}
		}
	default:
		return matcher{}, c.errAt(arg, path, "anything-but takes a string, a number, a list of strings or of numbers, or an object with equals-ignore-case, prefix, suffix or wildcard; not %s", article(arg.Type))
	}
	return matcher{kind: opNot, not: n}, nil
}
