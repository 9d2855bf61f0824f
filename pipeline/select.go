package pipeline

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// Selector decodes the parts of a record's view that a fixed set of paths
// reach, and only those: what an event pattern needs to decide a record,
// for a fraction of the cost of the whole view (Record.View).
//
// A path names members from the root of the view, such as
// [value customer country]. Arrays are transparent, as they are to event
// patterns: a path that meets an array goes on into each of its elements.
// At each object on a path, the members the paths name are decoded and the
// others are skipped; the value at the end of a path is decoded when it is
// a scalar, and an object there is decoded as an object without members
// (its Raw still holds its text). A member name that repeats is kept as
// often as it occurs, so Get returns the last one, as on the whole view.
//
// Skipping is not trusting: the skipped text is checked as strictly as
// the whole view's decoder checks it, so a key or value that is not valid
// JSON anywhere, even far from the paths, is its text as a string in the
// selection as it is in the view.
//
// A Selector is read-only and safe for concurrent use; the memory it
// decodes into is a Selection, which is not.
type Selector struct {
	root selNode
	// The record fields the paths start with.
	topic, partition, offset, timestamp, timestampType bool
	key, value, headers                                *selNode
}

// selNode is a node of the paths' trie: the members wanted below it.
type selNode struct {
	name string // the member it selects, for its parent
	kids []selKid
	// byName indexes kids when there are many.
	byName map[string]*selNode
	// short holds the kids whose names are shorter than eight bytes, by
	// wordKey, for shortKid.
	short []shortKid
}

type shortKid struct {
	key  uint64
	node *selNode
}

// wordKey is the key of a name of n < 8 bytes whose bytes are the low n
// of the little-endian word x: the name and its length in one word.
func wordKey(x uint64, n int) uint64 {
	return x&(1<<(8*n)-1) | uint64(n)<<56
}

type selKid struct {
	name string
	node *selNode
}

// manyKids is how many kids a node holds before it looks them up in a map.
const manyKids = 8

// NewSelector builds a Selector for paths from the root of the record's
// view. A path may be a prefix of another; an empty path selects nothing
// more than the others do.
func NewSelector(paths [][]string) *Selector {
	s := &Selector{}
	for _, p := range paths {
		n := &s.root
		for _, name := range p {
			n = n.add(name)
		}
	}
	s.root.index()
	s.topic = s.root.kid("topic") != nil
	s.partition = s.root.kid("partition") != nil
	s.offset = s.root.kid("offset") != nil
	s.timestamp = s.root.kid("timestamp") != nil
	s.timestampType = s.root.kid("timestampType") != nil
	s.key, s.value, s.headers = s.root.kid("key"), s.root.kid("value"), s.root.kid("headers")
	return s
}

func (n *selNode) add(name string) *selNode {
	if k := n.kid(name); k != nil {
		return k
	}
	k := &selNode{name: name}
	n.kids = append(n.kids, selKid{name, k})
	return k
}

func (n *selNode) index() {
	for _, k := range n.kids {
		if len(k.name) < 8 {
			var b [8]byte
			copy(b[:], k.name)
			n.short = append(n.short, shortKid{wordKey(binary.LittleEndian.Uint64(b[:]), len(k.name)), k.node})
		}
	}
	if len(n.kids) > manyKids {
		n.byName = make(map[string]*selNode, len(n.kids))
		for _, k := range n.kids {
			n.byName[k.name] = k.node
		}
	}
	for _, k := range n.kids {
		k.node.index()
	}
}

// kid returns the node of the member name, or nil when no path goes on
// through it.
func (n *selNode) kid(name string) *selNode {
	if n.byName != nil {
		return n.byName[name]
	}
	for i := range n.kids {
		if n.kids[i].name == name {
			return n.kids[i].node
		}
	}
	return nil
}

// shortKid is kid for a name of n < 8 bytes, the low n bytes of the
// little-endian word x.
func (n *selNode) shortKid(x uint64, size int) *selNode {
	if n.byName != nil {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		return n.byName[string(b[:size])]
	}
	key := wordKey(x, size)
	for i := range n.short {
		if n.short[i].key == key {
			return n.short[i].node
		}
	}
	return nil
}

// Selection is the memory a Selector decodes a record into. Reused from
// record to record, it costs no allocation once it has grown to fit. It is
// not safe for concurrent use.
type Selection struct {
	root    Value
	fields  [8]Field
	headers []Field
	// How many fields and headers the last record had, to clear those the
	// next one does not overwrite.
	nfields, nheaders int
	digits            [3 * 20]byte
	key               arena
	value             arena
	scratch           jsonScratch
}

// Select decodes into sel the parts of r's view that s's paths reach, and
// returns them as a view holding only those parts (see Selector). The
// record's own view is neither used nor built. The selection is valid
// until the next Select into sel; like the view, its strings share the
// record's bytes, which must not change while it is in use.
func (s *Selector) Select(r *Record, sel *Selection) *Value {
	digits := sel.digits[:0]
	f := sel.fields[:0]
	if s.topic {
		f = append(f, Field{"topic", Value{Type: TypeString, Str: r.Topic}})
	}
	if s.partition {
		f = append(f, Field{"partition", metaNumber(&digits, int64(r.Partition))})
	}
	if s.offset {
		f = append(f, Field{"offset", metaNumber(&digits, r.Offset)})
	}
	if s.timestamp {
		f = append(f, Field{"timestamp", metaNumber(&digits, r.Timestamp.UnixMilli())})
	}
	if s.timestampType {
		f = append(f, Field{"timestampType", Value{Type: TypeString, Str: r.TimestampType.String()}})
	}
	if s.key != nil && r.Key != nil {
		f = append(f, Field{Name: "key"})
		selectData(r.Key, &f[len(f)-1].Value, s.key, &sel.key, &sel.scratch)
	}
	if s.value != nil && r.Value != nil {
		f = append(f, Field{Name: "value"})
		selectData(r.Value, &f[len(f)-1].Value, s.value, &sel.value, &sel.scratch)
	}
	if s.headers != nil {
		hs := sel.headers[:0]
		for _, h := range r.Headers {
			if s.headers.kid(h.Key) != nil {
				hs = append(hs, Field{h.Key, Value{Type: TypeString, Str: aliasString(h.Value)}})
			}
		}
		clear(hs[len(hs):max(len(hs), sel.nheaders)]) // let go of the last record's headers
		sel.nheaders = len(hs)
		sel.headers = hs
		if len(hs) == 0 {
			hs = emptyFields
		}
		f = append(f, Field{"headers", Value{Type: TypeObject, Fields: hs}})
	}
	clear(f[len(f):max(len(f), sel.nfields)])
	sel.nfields = len(f)
	sel.root = Value{Type: TypeObject, Fields: f}
	return &sel.root
}

// selectData decodes what n selects of a key or value: JSON when the bytes
// are valid JSON, else a string of their text, as decodeAliased does.
func selectData(b []byte, v *Value, n *selNode, ar *arena, sc *jsonScratch) {
	i := skip(b, 0)
	if i == len(b) || !startsValue[b[i]] {
		*v = Value{Type: TypeString, Str: aliasString(b)}
		return
	}
	// Members and elements take at least two bytes each: bounds for the
	// arena's slabs.
	d := jsonDecoder{data: b, src: b, ar: ar, fs: sc.fs, vs: sc.vs, fieldBound: len(b)/2 + 1, elemBound: len(b)/2 + 1}
	end, ok := d.selValue(i, v, 0, n)
	sc.fs, sc.vs = stack[Field]{chunks: d.fs.chunks}, stack[Value]{chunks: d.vs.chunks}
	if !ok || skip(b, end) != len(b) {
		*v = Value{Type: TypeString, Str: aliasString(b)}
		return
	}
	ar.fieldsUsed, ar.elemsUsed = d.fieldsUsed, d.elemsUsed
}

// selValue is value for the parts of the value at i that n selects: the
// members of objects named in n (decoded with their own nodes), every
// element of arrays (with n), scalars whole; everything else is checked by
// skipValue.
func (d *jsonDecoder) selValue(i int, v *Value, depth int, n *selNode) (int, bool) {
	data := d.data
	if depth > maxDepth || i >= len(data) {
		return i, false
	}
	start := i
	switch data[i] {
	case '{':
		if len(n.kids) == 0 {
			end, ok := skipValue(data, i, depth)
			if ok {
				*v = Value{Type: TypeObject, Fields: emptyFields, Raw: data[start:end]}
			}
			return end, ok
		}
		i = skip(data, i+1)
		if i < len(data) && data[i] == '}' {
			*v = Value{Type: TypeObject, Fields: emptyFields, Raw: data[start : i+1]}
			return i + 1, true
		}
		base := d.fs.top
		for {
			// The members n does not select are skipped in scan's loop,
			// which stops at those it does.
			j, k, st := scan(data, i, depth, n)
			i = j
			var ok bool
			switch st {
			case scanFail:
				return i, false
			case scanEscaped:
				var name string
				if name, i, ok = d.str(i + 1); !ok {
					return i, false
				}
				if i < len(data) && data[i] == ':' {
					i++
				} else if i = skip(data, i); i < len(data) && data[i] == ':' {
					i++
				} else {
					return i, false
				}
				if i = skip(data, i); i >= len(data) {
					return i, false
				}
				if k = n.kid(name); k == nil {
					if i, ok = skipValue(data, i, depth+1); !ok {
						return i, false
					}
				}
			}
			if st == scanDone {
				break // after the closing brace
			}
			if k != nil {
				f := d.fs.push()
				f.Name = k.name
				if i, ok = d.selValue(i, &f.Value, depth+1, k); !ok {
					return i, false
				}
			}
			// The member ends at i.
			if i = skip(data, i); i >= len(data) {
				return i, false
			}
			if data[i] == ',' {
				i = skip(data, i+1)
				continue
			}
			if data[i] != '}' {
				return i, false
			}
			i++
			break
		}
		out := emptyFields
		if d.fs.top > base {
			out = d.takeFields(d.fs.top - base)
			d.fs.pop(base, out)
		}
		*v = Value{Type: TypeObject, Fields: out, Raw: data[start:i]}
		return i, true
	case '[':
		i = skip(data, i+1)
		if i < len(data) && data[i] == ']' {
			*v = Value{Type: TypeArray, Elems: emptyElems, Raw: data[start : i+1]}
			return i + 1, true
		}
		base := d.vs.top
		for {
			var ok bool
			if i, ok = d.selValue(i, d.vs.push(), depth+1, n); !ok {
				return i, false
			}
			if i = skip(data, i); i >= len(data) {
				return i, false
			}
			if data[i] == ',' {
				i = skip(data, i+1)
				continue
			}
			if data[i] != ']' {
				return i, false
			}
			i++
			break
		}
		out := d.takeElems(d.vs.top - base)
		d.vs.pop(base, out)
		*v = Value{Type: TypeArray, Elems: out, Raw: data[start:i]}
		return i, true
	case '"':
		if j := i + 1; len(data)-j >= 8 {
			// A short plain string, as most are: as str reads it.
			x := load64(data, j)
			if q := bits.TrailingZeros64(quoteBits(x)); q < bits.TrailingZeros64(oddBits(x)) {
				end := j + q>>3
				*v = Value{Type: TypeString, Str: unsafe.String(&data[j], end-j), Raw: data[i : end+1]}
				return end + 1, true
			}
		}
	}
	return d.value(i, v, depth)
}

// skipValue checks the value at i without decoding it, and returns the
// position after it. It accepts exactly the text value accepts: strings
// with the same escapes and UTF-8, numbers, literals, and nesting up to
// maxDepth, depth being that of the value at i.
func skipValue(data []byte, i, depth int) (int, bool) {
	j, _, st := scan(data, i, depth, nil)
	return j, st == scanDone
}

// What scan found.
const (
	scanFail    = iota // the text is not JSON
	scanDone           // the value, or the rest of the object, ends before j
	scanFound          // the member of the object that n selects has its value at j
	scanEscaped        // a member name of the object, with an escape, starts at j
)

// scan is skipValue, and the loop that skips the members of an object
// that a node does not select.
//
// With n nil, it checks the value at i, of the given depth, and returns
// the position after it (scanDone).
//
// With n not nil, i is where a member name starts in an object at depth
// whose members n selects: scan checks and skips the members n does not
// select, and stops at the first one it does, returning the position of
// its value and its node (scanFound); or after the object's
// closing brace (scanDone); or at the quote of a name with an escape
// (scanEscaped), for the caller to read.
//
// It reads nested containers in one loop, with the open ones on a stack of
// bits (set for an object), and the common tokens without a call: strings
// of up to fifteen plain bytes, integers, and no white space between
// tokens. The loop is three states joined by goto: a value starts at i
// (value), a value ends at i (after), a member name starts at i (name).
func scan(data []byte, i, depth int, n *selNode) (j int, k *selNode, st int) {
	var objects [maxDepth/64 + 1]uint64
	var (
		level  int
		object bool // the innermost open container is an object
		ok     bool
		esc    bool
		c      byte
		x      uint64
		q      int
	)
	if n != nil {
		// In the object, as at level 1: its members are a level deeper.
		if depth >= maxDepth {
			return i, nil, scanFail
		}
		objects[0], level, object = 1, 1, true
		goto name
	}
	if depth > maxDepth {
		return i, nil, scanFail
	}
value:
	if i >= len(data) {
		return i, nil, scanFail
	}
	c = data[i]
	if c == '"' {
		i++
		if len(data)-i >= 8 {
			x = load64(data, i)
			if q = bits.TrailingZeros64(quoteBits(x)); q < bits.TrailingZeros64(oddBits(x)) {
				i += q>>3 + 1
				goto after
			}
			if q == 64 && oddBits(x) == 0 && len(data)-i >= 16 {
				x = load64(data, i+8)
				if q = bits.TrailingZeros64(quoteBits(x)); q < bits.TrailingZeros64(oddBits(x)) {
					i += 8 + q>>3 + 1
					goto after
				}
			}
		}
		if i, ok = skipStr(data, i); !ok {
			return i, nil, scanFail
		}
		goto after
	}
	if c-'0' <= 9 {
		// Digits with nothing after them, as many numbers are.
		j = i + 1
		if c != '0' {
			for j < len(data) && data[j]-'0' <= 9 {
				j++
			}
		}
		if j < len(data) && (data[j] == '.' || data[j]|0x20 == 'e') {
			if i, ok = skipNumber(data, i); !ok {
				return i, nil, scanFail
			}
		} else {
			i = j
		}
		goto after
	}
	switch c {
	case '{', '[':
		// An empty container is a value like any other; one with members
		// puts them a level deeper, which must be allowed.
		if i = skip(data, i+1); i < len(data) && data[i] == c+2 { // } or ]
			i++
			goto after
		}
		if depth+level >= maxDepth {
			return i, nil, scanFail
		}
		object = c == '{'
		if object {
			objects[level>>6] |= 1 << (level & 63)
			level++
			goto name
		}
		objects[level>>6] &^= 1 << (level & 63)
		level++
		goto value
	case 't':
		i, ok = skipWord(data, i, "true")
	case 'f':
		i, ok = skipWord(data, i, "false")
	case 'n':
		i, ok = skipWord(data, i, "null")
	default:
		i, ok = skipNumber(data, i)
	}
	if !ok {
		return i, nil, scanFail
	}
after:
	// A value ends at i: the next one starts after a comma, unless the
	// containers end.
	if level == 0 {
		return i, nil, scanDone
	}
	if i >= len(data) {
		return i, nil, scanFail
	}
	c = data[i]
	if c == ',' {
		i++
		if i < len(data) && data[i] <= ' ' {
			i = skip(data, i)
		}
		if object {
			goto name
		}
		goto value
	}
	if c == '}' && object || c == ']' && !object {
		i++
		level--
		if j = level - 1; j >= 0 {
			object = objects[j>>6]&(1<<(j&63)) != 0
		}
		goto after
	}
	if c <= ' ' && isSpace[c] {
		i = skip(data, i)
		goto after
	}
	return i, nil, scanFail
name:
	if i >= len(data) || data[i] != '"' {
		return i, nil, scanFail
	}
	i++
	if len(data)-i >= 8 {
		x = load64(data, i)
		if q = bits.TrailingZeros64(quoteBits(x)); q < bits.TrailingZeros64(oddBits(x)) {
			if q >>= 3; n != nil && level == 1 {
				k = n.shortKid(x, q)
			}
			i += q + 1
			goto colon
		}
		if q == 64 && oddBits(x) == 0 && len(data)-i >= 16 {
			x = load64(data, i+8)
			if q = bits.TrailingZeros64(quoteBits(x)); q < bits.TrailingZeros64(oddBits(x)) {
				if q = 8 + q>>3; n != nil && level == 1 {
					k = n.kid(unsafe.String(&data[i], q))
				}
				i += q + 1
				goto colon
			}
		}
	}
	if j, esc, ok = scanStr(data, i); !ok {
		return j, nil, scanFail
	}
	if n != nil && level == 1 {
		if esc {
			return i - 1, nil, scanEscaped
		}
		k = n.kid(unsafe.String(&data[i], j-1-i))
	}
	i = j
colon:
	if i < len(data) && data[i] == ':' {
		i++
	} else if i = skip(data, i); i < len(data) && data[i] == ':' {
		i++
	} else {
		return i, nil, scanFail
	}
	if i < len(data) && data[i] <= ' ' {
		i = skip(data, i)
	}
	if k != nil {
		return i, k, scanFound
	}
	goto value
}

func skipWord(data []byte, i int, word string) (int, bool) {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return i, false
	}
	return i + len(word), true
}

// skipNumber checks the number at i, as number reads it.
func skipNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i < len(data) && data[i] == '0' {
		i++
	} else {
		j := i
		for i < len(data) && data[i]-'0' <= 9 {
			i++
		}
		if i == j {
			return i, false
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		j := i
		for i < len(data) && data[i]-'0' <= 9 {
			i++
		}
		if i == j {
			return i, false
		}
	}
	if i < len(data) && data[i]|0x20 == 'e' {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := i
		for i < len(data) && data[i]-'0' <= 9 {
			i++
		}
		if i == j {
			return i, false
		}
	}
	return i, true
}

// load64 reads the eight bytes of data from i, which the caller knows are
// there, as a little-endian word, without checking bounds.
func load64(data []byte, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(data)), i))[:])
}

// quoteBits has the top bit set in each byte of x that is a quote, and
// maybe in bytes after the first one, never before.
func quoteBits(x uint64) uint64 {
	q := x ^ 0x2222222222222222
	return (q - lsb) &^ q & msb
}

// oddBits has the top bit set in each byte of x that is a backslash, a
// control character or not ASCII, and maybe in bytes after the first
// one, never before.
func oddBits(x uint64) uint64 {
	s := x ^ 0x5c5c5c5c5c5c5c5c
	return ((s-lsb)&^s | x - 0x2020202020202020 | x) & msb
}

// skipStr checks the string whose first byte (after the opening quote) is
// at i, as str and strEscaped read it, and returns the position after its
// closing quote.
func skipStr(data []byte, i int) (int, bool) {
	end, _, ok := scanStr(data, i)
	return end, ok
}

// scanStr is skipStr that also says whether the string has an escape:
// when it has none, its text is data[i:end-1].
func scanStr(data []byte, i int) (end int, escaped, ok bool) {
	for {
		// Sixteen bytes at a time: where the first quote is, found
		// without a branch, so that a string shorter than sixteen bytes,
		// as most are, costs no mispredicted branch; and whether any byte
		// before it needs a closer look, which few strings have.
		if i+16 <= len(data) {
			x1 := load64(data, i)
			x2 := load64(data, i+8)
			q1 := bits.TrailingZeros64(quoteBits(x1))
			q := (q1 + bits.TrailingZeros64(quoteBits(x2))&-(q1>>6)) >> 3 // 16: no quote
			o1 := bits.TrailingZeros64(oddBits(x1))
			o := (o1 + bits.TrailingZeros64(oddBits(x2))&-(o1>>6)) >> 3
			if o >= q {
				if q < 16 {
					return i + q + 1, escaped, true
				}
				i += 16
				continue
			}
			i += o
		} else {
			for i < len(data) && strClass[data[i]] == strPlain {
				i++
			}
			if i >= len(data) {
				return i, escaped, false
			}
			if data[i] == '"' {
				return i + 1, escaped, true
			}
		}
		switch c := data[i]; {
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return i, escaped, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				// A surrogate half needs no partner: strEscaped reads an
				// unpaired one as U+FFFD, and the \u that follows it as an
				// escape of its own, so each \u needs only four hex digits.
				if len(data)-i < 6 || !isHex[data[i+2]] || !isHex[data[i+3]] || !isHex[data[i+4]] || !isHex[data[i+5]] {
					return i, escaped, false
				}
				i += 6
			default:
				return i, escaped, false
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, false
			}
			i += size
		default:
			return i, escaped, false // a control character
		}
	}
}

var isHex [256]bool

func init() {
	for _, c := range "0123456789abcdefABCDEF" {
		isHex[c] = true
	}
}
