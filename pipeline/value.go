package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Type is the JSON type of a Value.
type Type uint8

const (
	// TypeMissing is the zero Type: no value at all (an absent field).
	TypeMissing Type = iota
	TypeNull
	TypeBool
	TypeNumber
	TypeString
	TypeArray
	TypeObject
)

var typeNames = [...]string{"missing", "null", "boolean", "number", "string", "array", "object"}

func (t Type) String() string { return typeNames[t] }

// Value is a decoded JSON value. Raw is its JSON text, a slice of the
// decoded input (nil for values made in code): templates copy it verbatim.
type Value struct {
	Type Type
	Bool bool
	// Num is the number of a Number.
	Num float64
	// Str is the text of a String (unescaped) or the literal of a Number.
	Str    string
	Elems  []Value
	Fields []Field
	Raw    []byte
}

// Field is one member of an Object, in document order.
type Field struct {
	Name  string
	Value Value
}

// Get returns the member name of an Object (the last one, if the name
// repeats), or nil.
func (v *Value) Get(name string) *Value {
	if v == nil || v.Type != TypeObject {
		return nil
	}
	for i := len(v.Fields) - 1; i >= 0; i-- {
		if v.Fields[i].Name == name {
			return &v.Fields[i].Value
		}
	}
	return nil
}

// AppendJSON appends v as JSON text: Raw when it has one, else encoded.
func (v *Value) AppendJSON(dst []byte) []byte {
	if v.Raw != nil {
		return append(dst, v.Raw...)
	}
	switch v.Type {
	case TypeNull, TypeMissing:
		return append(dst, "null"...)
	case TypeBool:
		return strconv.AppendBool(dst, v.Bool)
	case TypeNumber:
		if v.Str != "" {
			return append(dst, v.Str...)
		}
		return strconv.AppendFloat(dst, v.Num, 'g', -1, 64)
	case TypeString:
		return appendString(dst, v.Str)
	case TypeArray:
		dst = append(dst, '[')
		for i := range v.Elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = v.Elems[i].AppendJSON(dst)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i := range v.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, v.Fields[i].Name)
			dst = append(dst, ':')
			dst = v.Fields[i].Value.AppendJSON(dst)
		}
		return append(dst, '}')
	}
}

// Interface converts v to the encoding/json shapes: nil, bool, float64,
// string, []any, map[string]any.
func (v *Value) Interface() any {
	switch v.Type {
	case TypeBool:
		return v.Bool
	case TypeNumber:
		return v.Num
	case TypeString:
		return v.Str
	case TypeArray:
		out := make([]any, len(v.Elems))
		for i := range v.Elems {
			out[i] = v.Elems[i].Interface()
		}
		return out
	case TypeObject:
		out := make(map[string]any, len(v.Fields))
		for i := range v.Fields {
			out[v.Fields[i].Name] = v.Fields[i].Value.Interface()
		}
		return out
	}
	return nil
}

// maxDepth bounds nesting; deeper input is not decoded as JSON.
const maxDepth = 512

var errJSON = errors.New("invalid JSON")

// ParseJSON decodes one JSON text (RFC 8259, surrounding white space
// allowed). The Values' Raw slices point into data; their strings do not:
// data may change after the call.
func ParseJSON(data []byte) (Value, error) {
	var v Value
	if !decodeJSON(data, &v, false, nil) {
		return Value{}, errJSON
	}
	return v, nil
}

// The decoder reads the text in one pass. The members of an open object or
// array wait on a stack whose entries never move (it grows by chunks, and
// is reused from document to document); when the container closes, they
// are copied side by side into a slab. Slabs are carved from chunks of up
// to 32 KiB shared by the documents decoded one after another, so a small
// document costs no allocation of its own for its Fields and elements (see
// carver); given an arena (a view being decoded again), the slabs of its
// previous document are reused instead.
//
// Strings and number literals point into a copy of the text made in one
// piece (ParseJSON, DecodeData) or, for the record view, into the record's
// own bytes, which live as long as the view; escaped strings are unescaped
// into the copy in place or, when aliasing, into a buffer of their own.

// arena keeps a view's slabs so that decoding the next record into the
// same view can reuse them.
type arena struct {
	fields []Field
	elems  []Value
	esc    []byte
	// What the last document used, so the next one takes one slab of
	// each.
	fieldsUsed, elemsUsed int
}

// decodeJSON decodes data into v. With alias, strings share data's bytes.
// ar, when not nil, lends and keeps the slabs.
func decodeJSON(data []byte, v *Value, alias bool, ar *arena) bool {
	i := 0
	for i < len(data) && isSpace[data[i]] {
		i++
	}
	if i == len(data) || !startsValue[data[i]] {
		return false // not JSON: spare the work
	}
	d := jsonDecoder{data: data, src: data, ar: ar}
	if data[i] == '{' || data[i] == '[' {
		s := jsonScratchPool.Get().(*jsonScratch)
		defer s.put(&d)
		d.fs, d.vs = s.fs, s.vs
		if ar == nil {
			d.carve = carvers.Get().(*carver)
			defer carvers.Put(d.carve)
			// Every member has a ':'; strings may hold more.
			d.carve.begin(bytes.Count(data, colon))
		} else {
			// Every member has a ':' and every element but the first of
			// an array follows a ','; strings may hold either, so these
			// bound the arena's slabs without sizing them.
			d.fieldBound = bytes.Count(data, colon)
			d.elemBound = bytes.Count(data, comma) + bytes.Count(data, bracket)
		}
	}
	if !alias {
		d.src = append([]byte(nil), data...)
		d.copied = true
	}
	end, ok := d.value(i, v, 0)
	if !ok || skip(data, end) != len(data) {
		*v = Value{}
		return false
	}
	if ar != nil {
		ar.fieldsUsed, ar.elemsUsed = d.fieldsUsed, d.elemsUsed
	}
	return true
}

var (
	colon   = []byte{':'}
	comma   = []byte{','}
	bracket = []byte{'['}
)

// jsonScratch is the decoder's stacks, reused across documents.
type jsonScratch struct {
	fs stack[Field]
	vs stack[Value]
}

var jsonScratchPool = sync.Pool{New: func() any { return new(jsonScratch) }}

// maxScratchChunks is the most stack chunks kept for reuse.
const maxScratchChunks = 8

// put keeps the stacks d grew for the next document, unless they are
// large. The entries keep the last document's values until overwritten.
func (s *jsonScratch) put(d *jsonDecoder) {
	if len(d.fs.chunks) > maxScratchChunks || len(d.vs.chunks) > maxScratchChunks {
		return
	}
	s.fs, s.vs = stack[Field]{chunks: d.fs.chunks}, stack[Value]{chunks: d.vs.chunks}
	jsonScratchPool.Put(s)
}

type jsonDecoder struct {
	data       []byte       // the text
	src        []byte       // where strings point: data, or a copy of it
	copied     bool         // src is a copy of data
	i          int          // position in data, for strEscaped
	fs         stack[Field] // members of the open objects
	vs         stack[Value] // elements of the open arrays
	esc        []byte       // the rest of the buffer for unescaped strings
	carve      *carver      // slabs to carve from, without an arena
	ar         *arena       // slabs to reuse, or nil; then:
	fout       []Field      // the rest of the current Field slab
	vout       []Value      // the rest of the current element slab
	fieldBound int          // Fields yet to come, at most
	elemBound  int          // elements yet to come, at most
	fieldsUsed int          // Fields taken so far
	elemsUsed  int          // elements taken so far
}

// slabChunk is the size of a new arena slab: room for n, at least first or
// what the last document used, else twice the last slab, and never more
// than bound.
func slabChunk(n, last, first, hint, bound int) int {
	return max(n, min(bound, max(first, hint, 2*last)))
}

// takeFields returns room for n Fields: carved, or from the arena's slab
// or a new one.
func (d *jsonDecoder) takeFields(n int) []Field {
	if d.ar == nil {
		c := d.carve
		return carveSlab(&c.fields, n, c.fieldsSize, &c.fieldsTaken, &c.ended, &c.fieldsUsed)
	}
	if len(d.fout) < n {
		first := d.fout == nil
		size := slabChunk(n, cap(d.fout), 64, d.ar.fieldsUsed, d.fieldBound)
		if first && cap(d.ar.fields) >= size {
			d.fout = d.ar.fields[:cap(d.ar.fields)] // the slots used are overwritten
		} else {
			d.fout = make([]Field, size)
			if cap(d.fout) > cap(d.ar.fields) {
				d.ar.fields = d.fout
			}
		}
	}
	s := d.fout[:n:n]
	d.fout = d.fout[n:]
	d.fieldBound -= n
	d.fieldsUsed += n
	return s
}

// takeElems returns room for n array elements, as takeFields does.
func (d *jsonDecoder) takeElems(n int) []Value {
	if d.ar == nil {
		c := d.carve
		return carveSlab(&c.elems, n, c.elemsSize, &c.elemsTaken, &c.ended, &c.elemsUsed)
	}
	if len(d.vout) < n {
		first := d.vout == nil
		size := slabChunk(n, cap(d.vout), 16, d.ar.elemsUsed, d.elemBound)
		if first && cap(d.ar.elems) >= size {
			d.vout = d.ar.elems[:cap(d.ar.elems)]
		} else {
			d.vout = make([]Value, size)
			if cap(d.vout) > cap(d.ar.elems) {
				d.ar.elems = d.vout
			}
		}
	}
	s := d.vout[:n:n]
	d.vout = d.vout[n:]
	d.elemBound -= n
	d.elemsUsed += n
	return s
}

// carver hands out slabs carved from chunks shared by the documents
// decoded one after another, so that a small document costs an allocation
// only every few documents.
//
// The chunks belong to a generation, and a document takes its slabs from
// the generation current when it starts and from no other. A document
// whose Fields may not fit in what is left (it has at most one per ':' of
// its text) starts a new generation; one that still runs short takes a
// new chunk for the generation, which then ends with that document. So
// the chunks of a generation point only into the generation (and into
// slabs of their own documents), never into an older one, and a
// generation's memory is freed once its documents are unreachable. Were a
// document free to take its first slabs from one chunk and its last from
// the next, it would tie the two together; the next such document would
// tie that one to the one after, and the chain would keep every document
// the decoder ever carved alive for as long as the carver is in use.
//
// The chunks of a generation are sized by what the last one used, so that
// objects without arrays, say, do not leave a chunk of elements unused.
type carver struct {
	fields []Field // the rest of the generation's Field chunk
	elems  []Value // the rest of its element chunk
	esc    []byte  // unescaped strings: bytes point nowhere, so any chunk
	// The size of the generation's chunks, and whether they were taken.
	fieldsSize, elemsSize   int
	fieldsTaken, elemsTaken bool
	// ended: a chunk was taken in the middle of a document, which then
	// holds slabs of two chunks: the next document starts a generation.
	ended bool
	// What the generation's documents took.
	fieldsUsed, elemsUsed int
}

var carvers = sync.Pool{New: func() any { return &carver{ended: true} }}

const carveChunk = 32 << 10

var (
	fieldsPerChunk = carveChunk / int(unsafe.Sizeof(Field{}))
	elemsPerChunk  = carveChunk / int(unsafe.Sizeof(Value{}))
)

// begin prepares for a document with at most maxFields Fields: in the
// current generation when they fit, else in a new one.
func (c *carver) begin(maxFields int) {
	left := c.fieldsSize
	if c.fieldsTaken {
		left = len(c.fields)
	}
	if !c.ended && maxFields <= left {
		return
	}
	// Room for twice what the last generation needed, the document that
	// did not fit counted, so that generations grow to a full chunk of
	// Fields; elements half as much again as the last one used, so that a
	// generation usually ends by its Fields running short.
	c.fieldsSize = min(fieldsPerChunk, max(64, 2*(c.fieldsUsed+maxFields)))
	if c.fieldsSize == fieldsPerChunk && maxFields > 0 {
		// A full chunk holds a whole number of documents like this one.
		c.fieldsSize -= c.fieldsSize % maxFields
	}
	c.elemsSize = min(elemsPerChunk, max(16, c.elemsUsed+c.elemsUsed/2))
	c.fields, c.elems = nil, nil
	c.fieldsTaken, c.elemsTaken, c.ended = false, false, false
	c.fieldsUsed, c.elemsUsed = 0, 0
}

// carveSlab returns n entries from rest, the rest of a generation's chunk
// of size entries, taking the chunk when the generation has none yet.
// When the chunk is short, a large slab gets memory of its own, and a
// small one a new chunk, which ends the generation.
func carveSlab[T any](rest *[]T, n, size int, taken, ended *bool, used *int) []T {
	*used += n
	if len(*rest) < n {
		var zero T
		if n > carveChunk/int(unsafe.Sizeof(zero))/4 || *taken && n > size/4 {
			return make([]T, n) // large: a slab of its own
		}
		if *taken {
			*ended = true
		}
		*rest = make([]T, max(size, n))
		*taken = true
	}
	s := (*rest)[:n:n]
	*rest = (*rest)[n:]
	return s
}

// carve returns n entries from the chunk rest, taking a new chunk when it
// is short; for bytes, which point nowhere.
func carve[T any](rest *[]T, n int) []T {
	if len(*rest) < n {
		var zero T
		size := carveChunk / int(unsafe.Sizeof(zero))
		if n > size/4 {
			return make([]T, n) // large: a slab of its own
		}
		*rest = make([]T, size)
	}
	s := (*rest)[:n:n]
	*rest = (*rest)[n:]
	return s
}

// emptyFields and emptyElems are what empty objects and arrays hold: not
// nil, so an empty container is told apart from a scalar.
var (
	emptyFields = []Field{}
	emptyElems  = []Value{}
)

// value decodes the value at i, which is not white space, into v, and
// returns the position after it. v may point into the stacks: their
// entries never move.
func (d *jsonDecoder) value(i int, v *Value, depth int) (int, bool) {
	data := d.data
	if depth > maxDepth || i >= len(data) {
		return i, false
	}
	start := i
	switch c := data[i]; {
	case c == '"':
		s, j, ok := d.str(i + 1)
		*v = Value{Type: TypeString, Str: s, Raw: data[start:j]}
		return j, ok
	case c == '-' || c >= '0' && c <= '9':
		return d.number(i, v)
	case c == '{':
		i = skip(data, i+1)
		if i < len(data) && data[i] == '}' {
			*v = Value{Type: TypeObject, Fields: emptyFields, Raw: data[start : i+1]}
			return i + 1, true
		}
		base := d.fs.top
		for {
			if i >= len(data) || data[i] != '"' {
				return i, false
			}
			f := d.fs.push()
			var ok bool
			if f.Name, i, ok = d.str(i + 1); !ok {
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
			if i, ok = d.value(i, &f.Value, depth+1); !ok {
				return i, false
			}
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
		out := d.takeFields(d.fs.top - base)
		d.fs.pop(base, out)
		*v = Value{Type: TypeObject, Fields: out, Raw: data[start:i]}
		return i, true
	case c == '[':
		i = skip(data, i+1)
		if i < len(data) && data[i] == ']' {
			*v = Value{Type: TypeArray, Elems: emptyElems, Raw: data[start : i+1]}
			return i + 1, true
		}
		base := d.vs.top
		for {
			var ok bool
			if i, ok = d.value(i, d.vs.push(), depth+1); !ok {
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
	case c == 't':
		return literal(data, i, v, "true", TypeBool, true)
	case c == 'f':
		return literal(data, i, v, "false", TypeBool, false)
	case c == 'n':
		return literal(data, i, v, "null", TypeNull, false)
	}
	return i, false
}

// stackChunk is how many entries a chunk of a decoder stack holds.
const stackChunk = 128

// stack is a stack of T in chunks that never move, so an entry's address
// holds while entries are pushed above it.
type stack[T any] struct {
	chunks []*[stackChunk]T
	top    int
}

// push returns a new entry on top. It may hold an old value: the decoder
// overwrites all of it.
func (s *stack[T]) push() *T {
	if s.top == len(s.chunks)*stackChunk {
		s.chunks = append(s.chunks, new([stackChunk]T))
	}
	e := &s.chunks[s.top/stackChunk][s.top%stackChunk]
	s.top++
	return e
}

// pop moves the entries from base up into out, which has room for them.
func (s *stack[T]) pop(base int, out []T) {
	for p := base; p < s.top; {
		c := s.chunks[p/stackChunk][p%stackChunk:]
		n := copy(out, c[:min(len(c), s.top-p)])
		out = out[n:]
		p += n
	}
	s.top = base
}

// skip returns the position of the first byte at or after i that is not
// white space.
func skip(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && isSpace[data[i]] {
		i++
	}
	return i
}

func literal(data []byte, i int, v *Value, word string, t Type, b bool) (int, bool) {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return i, false
	}
	*v = Value{Type: t, Bool: b, Raw: data[i : i+len(word)]}
	return i + len(word), true
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// number decodes the number at i. Up to 15 significant digits and a
// decimal exponent within ±22, the float64 is one exact multiplication or
// division of exact values, hence correctly rounded; strconv does the rest.
func (d *jsonDecoder) number(i int, v *Value) (int, bool) {
	data := d.data
	start := i
	neg := data[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	nd, exp := 0, 0 // significant digits in mant; decimal exponent
	exact := true
	if i < len(data) && data[i] == '0' {
		i++
	} else {
		j := i
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			if nd < 19 {
				mant = mant*10 + uint64(data[i]-'0')
				nd++
			} else {
				exact = false
				exp++
			}
		}
		if i == j {
			return i, false
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		j := i
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			switch {
			case nd == 0 && data[i] == '0':
				exp--
			case nd < 19:
				mant = mant*10 + uint64(data[i]-'0')
				nd++
				exp--
			default:
				exact = false
			}
		}
		if i == j {
			return i, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		eneg := false
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			eneg = data[i] == '-'
			i++
		}
		j := i
		e := 0
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			if e < 100000 {
				e = e*10 + int(data[i]-'0')
			}
		}
		if i == j {
			return i, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	var f float64
	switch {
	case mant == 0 && exact:
		f = 0
	case exact && nd <= 15 && exp >= -22 && exp <= 22:
		f = float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		} else {
			f *= pow10[exp]
		}
	default:
		var err error
		f, err = strconv.ParseFloat(unsafe.String(&data[start], i-start), 64)
		if err != nil {
			// Out of float64 range: still valid JSON; ParseFloat gives ±Inf.
			if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
				return i, false
			}
		}
		neg = false // ParseFloat read the sign
	}
	if neg {
		f = -f
	}
	*v = Value{Type: TypeNumber, Num: f, Str: unsafe.String(&d.src[start], i-start), Raw: data[start:i]}
	return i, true
}

// str reads the JSON string whose first byte (after the opening quote) is
// at i, and returns the position after its closing quote. Invalid UTF-8 and
// control characters make the text invalid JSON.
func (d *jsonDecoder) str(i int) (string, int, bool) {
	data := d.data
	start := i
	for {
		// Eight bytes at a time while none is a quote, a backslash, a
		// control character or non-ASCII; then straight to the first one
		// that is.
		if i+8 <= len(data) {
			x := binary.LittleEndian.Uint64(data[i:])
			quote := x ^ 0x2222222222222222
			slash := x ^ 0x5c5c5c5c5c5c5c5c
			special := (quote - lsb) &^ quote
			special |= (slash - lsb) &^ slash
			special |= x - 0x2020202020202020 // borrows into the top bit below 0x20
			special = (special | x) & msb
			if special == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(special) >> 3
		} else {
			for i < len(data) && strClass[data[i]] == strPlain {
				i++
			}
			if i >= len(data) {
				return "", i, false
			}
		}
		switch strClass[data[i]] {
		case strQuote:
			if i == start {
				return "", i + 1, true
			}
			return unsafe.String(&d.src[start], i-start), i + 1, true
		case strEscape:
			d.i = i
			s, ok := d.strEscaped(start)
			return s, d.i, ok
		case strHigh:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return "", i, false
			}
			i += size
		default:
			return "", i, false // a control character
		}
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// strEscaped unescapes a string whose first escape is at d.i, writing into
// the copy in place (the text never grows when unescaped) or into d.esc.
func (d *jsonDecoder) strEscaped(start int) (string, bool) {
	data := d.data
	var buf []byte
	if d.copied {
		buf = d.src[start:d.i:len(d.src)]
	} else {
		if need := rawStringLen(data, d.i) + d.i - start; len(d.esc) < need {
			d.newEsc(need)
		}
		buf = append(d.esc[:0], data[start:d.i]...)
	}
	for d.i < len(data) {
		c := data[d.i]
		switch {
		case c == '"':
			d.i++
			n := len(buf)
			if !d.copied {
				if n <= len(d.esc) {
					d.esc = d.esc[n:]
				} else {
					d.esc = nil // cannot happen: unescaping never grows a string
				}
			}
			if n == 0 {
				return "", true
			}
			return unsafe.String(&buf[0], n), true
		case c == '\\':
			if d.i+1 >= len(data) {
				return "", false
			}
			e := data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if d.i+1 < len(data) && data[d.i] == '\\' && data[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						var ok2 bool
						if r2, ok2 = d.hex4(); !ok2 {
							return "", false
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							d.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			buf = append(buf, data[d.i:d.i+size]...)
			d.i += size
		}
	}
	return "", false
}

// rawStringLen is how far from i the string's closing quote is (or the
// end of data).
func rawStringLen(data []byte, i int) int {
	for j := i; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j - i
		}
	}
	return len(data) - i
}

// newEsc makes room for unescaping at least n bytes.
func (d *jsonDecoder) newEsc(n int) {
	if d.ar == nil && d.carve != nil {
		d.esc = carve(&d.carve.esc, min(len(d.data), max(n, 64)))
		return
	}
	size := min(len(d.data), max(n, 64))
	if d.ar != nil && d.esc == nil && cap(d.ar.esc) >= size {
		d.esc = d.ar.esc[:cap(d.ar.esc)]
		return
	}
	d.esc = make([]byte, size)
	if d.ar != nil && cap(d.ar.esc) < size {
		d.ar.esc = d.esc
	}
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// Byte classes inside a string.
const (
	strControl = iota
	strPlain
	strHigh
	strQuote
	strEscape
)

var (
	isSpace     [256]bool
	startsValue [256]bool
	strClass    [256]uint8
)

func init() {
	for _, c := range " \t\n\r" {
		isSpace[c] = true
	}
	for _, c := range "{[\"tfn-0123456789" {
		startsValue[c] = true
	}
	for c := 0x20; c < 256; c++ {
		strClass[c] = strPlain
		if c >= utf8.RuneSelf {
			strClass[c] = strHigh
		}
	}
	strClass['"'] = strQuote
	strClass['\\'] = strEscape
}
