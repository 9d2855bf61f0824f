package pattern

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pipe-run/pipe/pipeline"
)

type opKind uint8

const (
	opString     opKind = iota // exact string
	opIP                       // a string that is this IP address
	opNumber                   // exact number, compared by value
	opNumberText               // exact number out of float64 range, compared as text
	opTrue
	opFalse
	opNull
	opPrefix
	opSuffix
	opFold       // equals-ignore-case
	opPrefixFold // prefix with equals-ignore-case
	opSuffixFold // suffix with equals-ignore-case
	opWildcard
	opRange // numeric
	opCIDR
	opExists // exists: true
	opAbsent // exists: false (kept on the leaf, never in leaf.ms)
	opNot    // anything-but
)

// leaf is the list of values to match at one field: it matches when any of
// them does.
type leaf struct {
	ms     []matcher
	strs   map[string]struct{} // the exact strings of ms, when there are many
	absent bool                // exists: false is in the list
	text   string              // the list as compact JSON, for explanations
}

// manyStrings is how many exact strings a leaf holds before it looks them up
// in a map rather than one by one.
const manyStrings = 8

func (l *leaf) index() {
	n := 0
	for i := range l.ms {
		if l.ms[i].kind == opString {
			n++
		}
	}
	if n < manyStrings {
		return
	}
	l.strs = make(map[string]struct{}, n)
	ms := l.ms[:0]
	for _, m := range l.ms {
		if m.kind == opString {
			l.strs[m.str] = struct{}{}
		} else {
			ms = append(ms, m)
		}
	}
	l.ms = ms
}

// match says whether the scalar v matches any value of the leaf.
func (l *leaf) match(v *pipeline.Value) bool {
	if l.strs != nil && v.Type == pipeline.TypeString {
		if _, ok := l.strs[v.Str]; ok {
			return true
		}
	}
	for i := range l.ms {
		if l.ms[i].match(v) {
			return true
		}
	}
	return false
}

// matcher is one compiled value or operator of a leaf.
type matcher struct {
	kind           opKind
	loOpen, hiOpen bool
	str            string
	num            float64
	lo, hi         float64
	fold           *fold
	glob           *glob
	addr           netip.Addr
	prefix         netip.Prefix
	not            *notSet
}

// match says whether the scalar v (never an array or object) matches.
func (m *matcher) match(v *pipeline.Value) bool {
	switch m.kind {
	case opString:
		return v.Type == pipeline.TypeString && v.Str == m.str
	case opIP:
		if v.Type != pipeline.TypeString {
			return false
		}
		a, ok := parseIP(v.Str)
		return ok && a == m.addr
	case opNumber:
		return v.Type == pipeline.TypeNumber && v.Num == m.num
	case opNumberText:
		return v.Type == pipeline.TypeNumber && numberText(v) == m.str
	case opTrue:
		return v.Type == pipeline.TypeBool && v.Bool
	case opFalse:
		return v.Type == pipeline.TypeBool && !v.Bool
	case opNull:
		return v.Type == pipeline.TypeNull
	case opPrefix:
		return v.Type == pipeline.TypeString && strings.HasPrefix(v.Str, m.str)
	case opSuffix:
		return v.Type == pipeline.TypeString && strings.HasSuffix(v.Str, m.str)
	case opFold:
		return v.Type == pipeline.TypeString && m.fold.equal(v.Str)
	case opPrefixFold:
		return v.Type == pipeline.TypeString && m.fold.prefix(v.Str)
	case opSuffixFold:
		return v.Type == pipeline.TypeString && m.fold.suffix(v.Str)
	case opWildcard:
		return v.Type == pipeline.TypeString && m.glob.match(v.Str)
	case opRange:
		if v.Type != pipeline.TypeNumber || math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
			return false
		}
		x := v.Num
		if x < m.lo || m.loOpen && x == m.lo {
			return false
		}
		return x < m.hi || !m.hiOpen && x == m.hi
	case opCIDR:
		if v.Type != pipeline.TypeString {
			return false
		}
		a, ok := parseIP(v.Str)
		return ok && m.prefix.Contains(a)
	case opExists:
		return true
	case opNot:
		return !m.not.hit(v)
	}
	return false
}

func numberText(v *pipeline.Value) string {
	if v.Str != "" {
		return v.Str
	}
	return strconv.FormatFloat(v.Num, 'g', -1, 64)
}

// notSet is what anything-but excludes. A value that is not of the kind
// excluded (a number against a list of strings, null, a boolean) is never
// excluded, as in event-ruler.
type notSet struct {
	kind  opKind // opString, opNumber, opPrefix, opSuffix, opFold or opWildcard
	strs  []string
	nums  []float64
	folds []*fold
	globs []*glob
}

// hit says whether v is one of the values excluded.
func (n *notSet) hit(v *pipeline.Value) bool {
	if n.kind == opNumber {
		if v.Type != pipeline.TypeNumber {
			return false
		}
		for _, x := range n.nums {
			if v.Num == x {
				return true
			}
		}
		return false
	}
	if v.Type != pipeline.TypeString {
		return false
	}
	s := v.Str
	switch n.kind {
	case opString:
		for _, x := range n.strs {
			if s == x {
				return true
			}
		}
	case opPrefix:
		for _, x := range n.strs {
			if strings.HasPrefix(s, x) {
				return true
			}
		}
	case opSuffix:
		for _, x := range n.strs {
			if strings.HasSuffix(s, x) {
				return true
			}
		}
	case opFold:
		for _, f := range n.folds {
			if f.equal(s) {
				return true
			}
		}
	case opWildcard:
		for _, g := range n.globs {
			if g.match(s) {
				return true
			}
		}
	}
	return false
}

// glob is a compiled wildcard: the literal text between the stars.
type glob struct {
	segs []string // len(segs) == stars+1
}

// compileGlob reads a wildcard operand: * matches any run of characters, \*
// is a star and \\ a backslash; any other escape and two stars in a row are
// errors, as in event-ruler.
func compileGlob(s string) (*glob, error) {
	g := &glob{}
	var seg strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				return nil, fmt.Errorf("wildcard %q has consecutive wildcard characters at position %d", s, i)
			}
			g.segs = append(g.segs, seg.String())
			seg.Reset()
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '\\') {
				seg.WriteByte(s[i+1])
				i++
				continue
			}
			return nil, fmt.Errorf("wildcard %q has an invalid escape at position %d; only \\* and \\\\ are escapes", s, i)
		default:
			seg.WriteByte(c)
		}
	}
	g.segs = append(g.segs, seg.String())
	return g, nil
}

func (g *glob) match(s string) bool {
	segs := g.segs
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// parseIP reads an IP address literal the way event-ruler recognises one:
// four dot-separated decimal numbers, or hex digits and colons with at least
// one colon. An IPv4-mapped IPv6 address is its IPv4 address, as Java reads
// it.
func parseIP(s string) (netip.Addr, bool) {
	if !looksLikeIPv4(s) && !looksLikeIPv6(s) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func looksLikeIPv4(s string) bool {
	dots, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && digits > 0 && dots < 3:
			dots++
			digits = 0
		default:
			return false
		}
	}
	return dots == 3 && digits > 0
}

func looksLikeIPv6(s string) bool {
	colon := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			colon = true
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return colon
}

// parseCIDR reads "address/bits". As in event-ruler, the mask of an IPv4
// range is at most 31 bits and of an IPv6 range at most 127 (a single
// address is matched by writing it as a plain string value).
func parseCIDR(s string) (netip.Prefix, error) {
	addrText, bitsText, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(bitsText, "/") {
		return netip.Prefix{}, fmt.Errorf("malformed CIDR %q: one '/' required", s)
	}
	bits, err := strconv.Atoi(bitsText)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("malformed CIDR %q: mask bits must be an integer", s)
	}
	if bits < 0 {
		return netip.Prefix{}, fmt.Errorf("malformed CIDR %q: mask bits must not be negative", s)
	}
	a, ok := parseIP(addrText)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q in CIDR %q", addrText, s)
	}
	if a.Is4() && bits > 31 {
		return netip.Prefix{}, fmt.Errorf("IPv4 mask bits must be < 32 in %q; to match one address, write it as a string value", s)
	}
	if a.Is6() && bits > 127 {
		return netip.Prefix{}, fmt.Errorf("IPv6 mask bits must be < 128 in %q; to match one address, write it as a string value", s)
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, errors.New("malformed CIDR " + strconv.Quote(s))
	}
	return p, nil
}
