package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is a compiled JSONPath lookup, the subset EventBridge Pipes accepts in
// input templates and dynamic parameters:
//
//	$             the root
//	.name         a member of an object
//	['any name']  a member whose name needs quoting ("..." works too; \' \" \\ escape)
//	[n]           an array element; negative counts from the end ([-1] is the last)
//	[*] or .*     every element of an array or member of an object
//
// A name after a dot may hold any character but white space, control
// characters and . [ ] < > ' " \ * { } ( ) , (quote names with those).
// Recursive descent (..), filters and slices are not supported. A Path is
// read-only after ParsePath and safe for concurrent use.
type Path struct {
	steps []pathStep
	wild  bool
}

type stepKind uint8

const (
	stepName stepKind = iota
	stepIndex
	stepAll
)

type pathStep struct {
	kind  stepKind
	name  string
	index int
}

// SyntaxError is a path or template that does not parse. Offset is the byte
// offset in the text where the problem is.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Msg)
}

func syntaxErrorf(offset int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

// ParsePath compiles a path such as $.value.items[0].sku. Errors are
// *SyntaxError with the offset of the problem.
func ParsePath(s string) (Path, error) {
	p, end, err := parsePath(s, 0)
	if err != nil {
		return Path{}, err
	}
	if end != len(s) {
		return Path{}, unexpected(s, end)
	}
	return p, nil
}

// maxIndexDigits bounds [n] so the index fits an int everywhere.
const maxIndexDigits = 9

// parsePath reads a path starting at s[i] ('$') and stops at the first
// character that cannot continue it, returning that offset.
func parsePath(s string, i int) (Path, int, error) {
	if i >= len(s) || s[i] != '$' {
		return Path{}, i, syntaxErrorf(i, "a path starts with $")
	}
	i++
	var p Path
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				return Path{}, i, syntaxErrorf(i-1, "recursive descent (..) is not supported")
			}
			if i < len(s) && s[i] == '*' {
				p.steps = append(p.steps, pathStep{kind: stepAll})
				p.wild = true
				i++
				continue
			}
			start := i
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !nameRune(r) || r == utf8.RuneError && size == 1 {
					break
				}
				i += size
			}
			if i == start {
				if i == len(s) {
					return Path{}, i, syntaxErrorf(i, "a name must follow the dot")
				}
				return Path{}, i, syntaxErrorf(i, "a name must follow the dot, not %s (quote other names: ['...'])", quoteChar(s, i))
			}
			p.steps = append(p.steps, pathStep{kind: stepName, name: s[start:i]})
		case '[':
			open := i
			i++
			if i >= len(s) {
				return Path{}, i, syntaxErrorf(open, "unterminated [")
			}
			switch c := s[i]; {
			case c == '*':
				i++
				p.steps = append(p.steps, pathStep{kind: stepAll})
				p.wild = true
			case c == '\'' || c == '"':
				name, end, err := quotedName(s, i)
				if err != nil {
					return Path{}, end, err
				}
				i = end
				p.steps = append(p.steps, pathStep{kind: stepName, name: name})
			case c == '-' || c >= '0' && c <= '9':
				start := i
				if c == '-' {
					i++
				}
				digits := i
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
				if i == digits {
					return Path{}, i, syntaxErrorf(start, "an index needs digits")
				}
				if i-digits > maxIndexDigits {
					return Path{}, i, syntaxErrorf(start, "index %s is too large", s[start:i])
				}
				n, _ := strconv.Atoi(s[start:i])
				p.steps = append(p.steps, pathStep{kind: stepIndex, index: n})
			default:
				return Path{}, i, syntaxErrorf(i, "expected an index, * or a quoted name after [, found %s", quoteChar(s, i))
			}
			if i >= len(s) {
				return Path{}, i, syntaxErrorf(open, "unterminated [")
			}
			if s[i] != ']' {
				return Path{}, i, syntaxErrorf(i, "expected ], found %s", quoteChar(s, i))
			}
			i++
		default:
			return p, i, nil
		}
	}
	return p, i, nil
}

// quotedName reads a name in quotes at s[i] and returns it with the offset
// after the closing quote.
func quotedName(s string, i int) (string, int, error) {
	q := s[i]
	open := i
	i++
	var b []byte // only when the name has escapes
	start := i
	for i < len(s) {
		c := s[i]
		switch {
		case c == q:
			if b == nil {
				return s[start:i], i + 1, nil
			}
			return string(append(b, s[start:i]...)), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", i, syntaxErrorf(open, "unterminated quoted name")
			}
			e := s[i+1]
			if e != '\'' && e != '"' && e != '\\' {
				return "", i, syntaxErrorf(i, "unknown escape \\%c in a quoted name (use \\' \\\" or \\\\)", e)
			}
			b = append(b, s[start:i]...)
			b = append(b, e)
			i += 2
			start = i
		default:
			i++
		}
	}
	return "", i, syntaxErrorf(open, "unterminated quoted name")
}

// nameRune reports whether r may appear in a name after a dot.
func nameRune(r rune) bool {
	if r <= ' ' || r == 0x7f {
		return false
	}
	switch r {
	case '.', '[', ']', '<', '>', '\'', '"', '\\', '*', '{', '}', '(', ')', ',':
		return false
	}
	return true
}

func unexpected(s string, i int) error {
	return syntaxErrorf(i, "unexpected %s after the path", quoteChar(s, i))
}

// quoteChar shows the character at s[i] for an error message.
func quoteChar(s string, i int) string {
	if i >= len(s) {
		return "end of text"
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("byte 0x%02x", s[i])
	}
	return strconv.QuoteRune(r)
}

// String returns the path in canonical form: names as .name where they
// can be, else ['name']; wildcards as [*]. ParsePath(p.String()) is p.
func (p Path) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, st := range p.steps {
		switch st.kind {
		case stepName:
			if plainName(st.name) {
				b.WriteByte('.')
				b.WriteString(st.name)
				continue
			}
			b.WriteString("['")
			for i := 0; i < len(st.name); i++ {
				if c := st.name[i]; c == '\'' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(st.name[i])
			}
			b.WriteString("']")
		case stepIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(st.index))
			b.WriteByte(']')
		case stepAll:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !nameRune(r) || r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// Lookup returns the values the path selects in root, in document order:
// at most one for a path without *, any number with it. A missing member,
// an index out of range or a step into the wrong type selects nothing.
func (p Path) Lookup(root *Value) []*Value {
	if !p.wild {
		if v := lookupSteps(root, p.steps); v != nil {
			return []*Value{v}
		}
		return nil
	}
	var out []*Value
	eachMatch(root, p.steps, func(v *Value) { out = append(out, v) })
	return out
}

// Wildcard reports whether the path has a * step (and so may select
// several values).
func (p Path) Wildcard() bool { return p.wild }

// one returns the value a path without * selects, or nil.
func (p *Path) one(root *Value) *Value { return lookupSteps(root, p.steps) }

func lookupSteps(v *Value, steps []pathStep) *Value {
	for i := range steps {
		if v == nil {
			return nil
		}
		v = step(v, &steps[i])
	}
	return v
}

func step(v *Value, st *pathStep) *Value {
	switch st.kind {
	case stepName:
		return v.Get(st.name)
	case stepIndex:
		if v.Type != TypeArray {
			return nil
		}
		n := st.index
		if n < 0 {
			n += len(v.Elems)
		}
		if n < 0 || n >= len(v.Elems) {
			return nil
		}
		return &v.Elems[n]
	}
	return nil
}

// eachMatch calls f with every value the steps select under v.
func eachMatch(v *Value, steps []pathStep, f func(*Value)) {
	for i := range steps {
		if v == nil {
			return
		}
		if steps[i].kind != stepAll {
			v = step(v, &steps[i])
			continue
		}
		rest := steps[i+1:]
		switch v.Type {
		case TypeArray:
			for j := range v.Elems {
				eachMatch(&v.Elems[j], rest, f)
			}
		case TypeObject:
			for j := range v.Fields {
				eachMatch(&v.Fields[j].Value, rest, f)
			}
		}
		return
	}
	if v != nil {
		f(v)
	}
}

// appendMatches appends the values a wildcard path selects under root as a
// JSON array.
func appendMatches(dst []byte, root *Value, steps []pathStep) []byte {
	dst = append(dst, '[')
	first := true
	eachMatch(root, steps, func(v *Value) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = v.AppendJSON(dst)
	})
	return append(dst, ']')
}
