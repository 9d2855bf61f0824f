package pipeline

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
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
// allowed). The Values' Raw slices point into data.
func ParseJSON(data []byte) (Value, error) {
	p := jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.i != len(p.data) {
		return Value{}, errJSON
	}
	return v, nil
}

type jsonParser struct {
	data []byte
	i    int
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (Value, error) {
	if depth > maxDepth || p.i >= len(p.data) {
		return Value{}, errJSON
	}
	start := p.i
	switch c := p.data[p.i]; {
	case c == '{':
		p.i++
		var fields []Field
		p.skipSpace()
		if p.i < len(p.data) && p.data[p.i] == '}' {
			p.i++
			return Value{Type: TypeObject, Fields: []Field{}, Raw: p.data[start:p.i]}, nil
		}
		for {
			p.skipSpace()
			if p.i >= len(p.data) || p.data[p.i] != '"' {
				return Value{}, errJSON
			}
			name, err := p.str()
			if err != nil {
				return Value{}, err
			}
			p.skipSpace()
			if p.i >= len(p.data) || p.data[p.i] != ':' {
				return Value{}, errJSON
			}
			p.i++
			p.skipSpace()
			v, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			fields = append(fields, Field{Name: name, Value: v})
			p.skipSpace()
			if p.i >= len(p.data) {
				return Value{}, errJSON
			}
			if p.data[p.i] == ',' {
				p.i++
				continue
			}
			if p.data[p.i] != '}' {
				return Value{}, errJSON
			}
			p.i++
			return Value{Type: TypeObject, Fields: fields, Raw: p.data[start:p.i]}, nil
		}
	case c == '[':
		p.i++
		var elems []Value
		p.skipSpace()
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.i++
			return Value{Type: TypeArray, Elems: []Value{}, Raw: p.data[start:p.i]}, nil
		}
		for {
			p.skipSpace()
			v, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			elems = append(elems, v)
			p.skipSpace()
			if p.i >= len(p.data) {
				return Value{}, errJSON
			}
			if p.data[p.i] == ',' {
				p.i++
				continue
			}
			if p.data[p.i] != ']' {
				return Value{}, errJSON
			}
			p.i++
			return Value{Type: TypeArray, Elems: elems, Raw: p.data[start:p.i]}, nil
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return Value{}, err
		}
		return Value{Type: TypeString, Str: s, Raw: p.data[start:p.i]}, nil
	case c == 't':
		return p.literal("true", Value{Type: TypeBool, Bool: true})
	case c == 'f':
		return p.literal("false", Value{Type: TypeBool})
	case c == 'n':
		return p.literal("null", Value{Type: TypeNull})
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return Value{}, errJSON
}

func (p *jsonParser) literal(word string, v Value) (Value, error) {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return Value{}, errJSON
	}
	v.Raw = p.data[p.i : p.i+len(word)]
	p.i += len(word)
	return v, nil
}

func (p *jsonParser) number() (Value, error) {
	start := p.i
	d := p.data
	if p.i < len(d) && d[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(d) && d[p.i] >= '0' && d[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(d) && d[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return Value{}, errJSON
	}
	if p.i < len(d) && d[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return Value{}, errJSON
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return Value{}, errJSON
		}
	}
	raw := d[start:p.i]
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// Out of float64 range: still valid JSON; keep the sign of infinity.
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			return Value{}, errJSON
		}
	}
	return Value{Type: TypeNumber, Num: f, Str: string(raw), Raw: raw}, nil
}

// str reads a JSON string at p.i and returns it unescaped. Invalid UTF-8 and
// control characters make the text invalid JSON.
func (p *jsonParser) str() (string, error) {
	d := p.data
	p.i++ // opening quote
	start := p.i
	for p.i < len(d) {
		c := d[p.i]
		switch {
		case c == '"':
			s := string(d[start:p.i])
			p.i++
			return s, nil
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return "", errJSON
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(d[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", errJSON
			}
			p.i += size
		}
	}
	return "", errJSON
}

func (p *jsonParser) strEscaped(start int) (string, error) {
	d := p.data
	buf := append([]byte(nil), d[start:p.i]...)
	for p.i < len(d) {
		c := d[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c == '\\':
			if p.i+1 >= len(d) {
				return "", errJSON
			}
			e := d[p.i+1]
			p.i += 2
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
				r, ok := p.hex4()
				if !ok {
					return "", errJSON
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if p.i+1 < len(d) && d[p.i] == '\\' && d[p.i+1] == 'u' {
						save := p.i
						p.i += 2
						var ok2 bool
						if r2, ok2 = p.hex4(); !ok2 {
							return "", errJSON
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							p.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", errJSON
			}
		case c < 0x20:
			return "", errJSON
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(d[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", errJSON
			}
			buf = append(buf, d[p.i:p.i+size]...)
			p.i += size
		}
	}
	return "", errJSON
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.i : p.i+4] {
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
	p.i += 4
	return r, true
}
