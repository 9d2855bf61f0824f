package pipeline

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// selectSeeds are values for the selector tests: valid JSON of every
// shape, and text that is not JSON for a reason anywhere in it.
var selectSeeds = append(append([]string(nil), parseSeeds...),
	string(benchDoc),
	`{"type":"order", "x": tru}`,
	`{"type":"order","x":[1,2,{"y":"\ud800\u0041"}],"type":"refund"}`,
	`{"type":"order","skip":{"a":[{"b":"\q"}]}}`,
	`{"type":"order","skip":"\u12G4"}`,
	`{"type":"order","skip":"a`+"\x01"+`b"}`,
	`{"type":"order","skip":"`+"\xed\xa0\x80"+`"}`,
	`{"type":"order","skip":"`+"\xc3\xa9 \xf0\x9f\x98\x80"+`"}`,
	`{"type":"order","skip":[1,2,}`,
	`{"type":"order","skip":{"a":1,}}`,
	`{"type":"order","skip":01}`,
	`{"type":"order","skip":-}`,
	`{"type":"order","skip":1.e5}`,
	`{"type":"order","skip":1e+}`,
	`{"type":"order","skip":[nul]}`,
	`{"type":"order","skip":{"a" 1}}`,
	`{"type":"order","skip":{1:1}}`,
	`{"type":"order","skip":[1 2]}`,
	`{"type":"order","skip":{"a":1 "b":2}}`,
	`{"type":"order","skip":[]]}`,
	`{"type":"order","skip":[}`,
	`{"type":"order","skip":{]}`,
	`{"type":"order"} x`,
	` {"type" : "order" , "skip" : [ { "a" : [ ] , "b" : { } } , true , false , null , -1.5E-3 ] } `,
	`{"a":{"b":{"c":[{"d":"x"},{"d":["y",{"e":1}]}],"f":2},"g":{}}}`,
	`[{"type":"order"},{"type":"refund","type":"order"}]`,
	`{"esc\u0061ped":1,"escaped":2,"t\"q":3}`,
	`{"long":"`+strings.Repeat("abcdefghijklmnop", 9)+`\n","n":"`+strings.Repeat("x", 15)+`"}`,
	strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1),
	strings.Repeat("[", maxDepth+2)+strings.Repeat("]", maxDepth+2),
	`{"skip":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)+`}`,
	`{"skip":`+strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1)+`}`,
	`{"skip":`+strings.Repeat(`{"a":`, maxDepth-1)+`1`+strings.Repeat("}", maxDepth-1)+`}`,
	`{"skip":`+strings.Repeat(`{"a":`, maxDepth)+`1`+strings.Repeat("}", maxDepth)+`}`,
	// Objects whose members a path selects, as deep as they may be and
	// one deeper: arrays keep a path going.
	`{"a":`+strings.Repeat("[", maxDepth-2)+`{"b":1}`+strings.Repeat("]", maxDepth-2)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth-1)+`{"b":1}`+strings.Repeat("]", maxDepth-1)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth-1)+`{}`+strings.Repeat("]", maxDepth-1)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth)+`{}`+strings.Repeat("]", maxDepth)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth-2)+`{"b":[]}`+strings.Repeat("]", maxDepth-2)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth-2)+`{"b":[1]}`+strings.Repeat("]", maxDepth-2)+`}`,
	// What is checked within a string's first eight or sixteen bytes, with
	// more text after it, and in a string with no text after it.
	`{"a":"ab`+"\x01"+`cd","b":"xxxxxxxxxxxxxxxx"}`,
	`{"a":"abcdefghij`+"\x01"+`l","b":"xxxxxxxxxxxxxxxx"}`,
	`{"a":"abc\qdefghijk","b":"xxxxxxxxxxxxxxxx"}`,
	`{"a":"abc`+"\xff"+`defghijk","b":"xxxxxxxxxxxxxxxx"}`,
	`{"a":"abc\u123Gdefghijk","b":"xxxxxxxxxxxxxxxx"}`,
	`{"a":"\u123G"}`, `{"a":"\u12"}`, `{"a":"\`, `{"a":"abc\"}`,
	`{"a":"abcdefghijklmnopqrstuvwxyz0123456789`+"\x7f\xc3\xa9"+`\"\/","b":1}`,
	`{"ab`+"\x01"+`cd":1,"b":"xxxxxxxxxxxxxxxx"}`,
	`{"abc\qdefghijk":1,"b":"xxxxxxxxxxxxxxxx"}`,
	`{"abcdefgh`+"\x01"+`jk":1,"b":"xxxxxxxxxxxxxxxx"}`,
	// Closers of the other kind.
	`[1}`, `{"a":1]`, `{"a":[1}}`, `[{"a":1]]`, `{"b":{"a":[1,{"c":2]}}}`,
	`{"a":`+strings.Repeat("[", maxDepth-2)+`{"c":1}`+strings.Repeat("]", maxDepth-2)+`}`,
	`{"a":`+strings.Repeat("[", maxDepth-1)+`{"c":1}`+strings.Repeat("]", maxDepth-1)+`}`,
)

// TestSkipValue checks that skipValue accepts exactly what the decoder
// accepts, and ends where it ends.
func TestSkipValue(t *testing.T) {
	for _, s := range selectSeeds {
		checkSkip(t, []byte(s))
	}
}

func checkSkip(t *testing.T, data []byte) {
	t.Helper()
	var v Value
	want := decodeJSON(data, &v, true, nil)
	i := skip(data, 0)
	got := false
	if i < len(data) && startsValue[data[i]] {
		end, ok := skipValue(data, i, 0)
		got = ok && skip(data, end) == len(data)
		if ok && want && data[end-1] != v.Raw[len(v.Raw)-1] {
			t.Fatalf("%q: skipValue ends at %d", data, end)
		}
	}
	if got != want {
		t.Fatalf("%q: skipValue says valid %v, the decoder %v", data, got, want)
	}
}

// TestSelect selects paths of records and compares each selection with
// the record's whole view, projected on the paths.
func TestSelect(t *testing.T) {
	paths := [][][]string{
		{{"value", "type"}},
		{{"value", "type"}, {"value", "x", "y"}},
		{{"value"}},
		{{"value", "skip"}},
		{{"value", "a", "b", "c", "d", "e"}, {"value", "a", "g"}, {"key", "id"}},
		{{"value", "escaped"}, {"value", "t\"q"}, {"headers", "h1"}, {"topic"}, {"offset"}},
		{{"value", "status"}, {"value", "amount"}, {"value", "customer", "country"}, {"value", "items", "tags"}},
		{{"partition"}, {"timestamp"}, {"timestampType"}, {"headers"}, {"key"}, {"nothing", "here"}},
		{{"value", "1"}, {"value", "2"}, {"value", "3"}, {"value", "4"}, {"value", "5"}, {"value", "6"},
			{"value", "7"}, {"value", "8"}, {"value", "9"}, {"value", "type"}, {"value", "long"}},
		// A name that is another one with a NUL after it.
		{{"value", "a\x00"}, {"value", "b\x00\x00"}, {"value", "type\x00"}},
		{},
	}
	var sel Selection // reused throughout, as a pool would
	for _, ps := range paths {
		s := NewSelector(ps)
		for _, val := range selectSeeds {
			for _, key := range []string{`{"id":7}`, `k-1`, "\x00"} {
				r := &Record{
					Topic: "orders", Partition: 3, Offset: 42, Timestamp: time.UnixMilli(1700000000123),
					Key: []byte(key), Value: []byte(val),
					Headers: []Header{{Key: "h1", Value: []byte("one")}, {Key: "h2"}, {Key: "h1", Value: []byte("uno")}},
				}
				checkSelect(t, s, r, &sel)
			}
		}
		checkSelect(t, s, &Record{Topic: "tombstone"}, &sel)
		checkSelect(t, s, &Record{Value: []byte{}}, &sel)
	}
}

func checkSelect(t *testing.T, s *Selector, r *Record, sel *Selection) {
	t.Helper()
	got := s.Select(r, sel)
	if r.HasView() {
		t.Fatal("Select built the record's view")
	}
	if why := sameSelection(got, r.View(), &s.root); why != "" {
		t.Fatalf("paths %v, key %q, value %q: %s", s.root.paths(nil, nil), r.Key, r.Value, why)
	}
	r.ResetView()
}

// paths lists the trie's paths, for messages.
func (n *selNode) paths(prefix []string, out [][]string) [][]string {
	if len(n.kids) == 0 && len(prefix) > 0 {
		return append(out, append([]string(nil), prefix...))
	}
	for _, k := range n.kids {
		out = k.node.paths(append(prefix[:len(prefix):len(prefix)], k.name), out)
	}
	return out
}

// sameSelection says how got differs from full projected on n: the
// members of full's objects that n names, every element of its arrays,
// the scalars as they are; "" when they are the same.
func sameSelection(got, full *Value, n *selNode) string {
	if got.Type != full.Type {
		return "type " + got.Type.String() + ", want " + full.Type.String()
	}
	if string(got.Raw) != string(full.Raw) || (got.Raw == nil) != (full.Raw == nil) {
		return "raw " + string(got.Raw) + ", want " + string(full.Raw)
	}
	switch full.Type {
	case TypeObject:
		if got.Fields == nil {
			return "nil Fields"
		}
		var want []Field
		for _, f := range full.Fields {
			if n.kid(f.Name) != nil {
				want = append(want, f)
			}
		}
		if len(got.Fields) != len(want) {
			return "object " + string(full.Raw) + ": " + itoa(len(got.Fields)) + " members, want " + itoa(len(want))
		}
		for i := range want {
			if got.Fields[i].Name != want[i].Name {
				return "member " + got.Fields[i].Name + ", want " + want[i].Name
			}
			if why := sameSelection(&got.Fields[i].Value, &want[i].Value, n.kid(want[i].Name)); why != "" {
				return want[i].Name + ": " + why
			}
		}
	case TypeArray:
		if len(got.Elems) != len(full.Elems) || got.Elems == nil {
			return "array of " + itoa(len(got.Elems)) + ", want " + itoa(len(full.Elems))
		}
		for i := range full.Elems {
			if why := sameSelection(&got.Elems[i], &full.Elems[i], n); why != "" {
				return "[" + itoa(i) + "]: " + why
			}
		}
	default:
		if got.Bool != full.Bool || got.Str != full.Str ||
			math.Float64bits(got.Num) != math.Float64bits(full.Num) {
			return "scalar " + got.Str + ", want " + full.Str
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzSelect decodes arbitrary values, selecting paths made of the names
// the value holds (and a few it does not), and compares the selection with
// the whole view projected on the paths; and checks that skipValue accepts
// what the decoder accepts.
func FuzzSelect(f *testing.F) {
	for i, s := range selectSeeds {
		f.Add([]byte(s), []byte{byte(i), byte(i * 7), byte(i * 13)})
	}
	var sel Selection
	f.Fuzz(func(t *testing.T, data, pick []byte) {
		checkSkip(t, data)
		r := &Record{Topic: "t", Key: []byte(`{"id":1}`), Value: data}
		// The names the value holds, in document order.
		var names []string
		var walk func(v *Value)
		walk = func(v *Value) {
			for i := range v.Fields {
				names = append(names, v.Fields[i].Name)
				walk(&v.Fields[i].Value)
			}
			for i := range v.Elems {
				walk(&v.Elems[i])
			}
		}
		walk(r.View().Get("value"))
		r.ResetView()
		names = append(names, "value", "key", "id", "zz")
		var paths [][]string
		path := []string{"value"}
		for _, b := range pick {
			switch {
			case b < 16 && len(path) > 1:
				paths = append(paths, path)
				path = []string{"value"}
			case b < 20:
				path = []string{"key"}
			default:
				path = append(path[:len(path):len(path)], names[int(b)%len(names)])
			}
		}
		paths = append(paths, path)
		checkSelect(t, NewSelector(paths), r, &sel)
	})
}

// TestSelectionLetsGo checks that a selection reused for a record with
// fewer fields or headers than the last one keeps no reference to the
// last one's.
func TestSelectionLetsGo(t *testing.T) {
	s := NewSelector([][]string{{"topic"}, {"offset"}, {"value", "a"}, {"headers", "h"}})
	var sel Selection
	r := &Record{Topic: "t", Value: []byte(`{"a":1}`), Headers: []Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}}}
	s.Select(r, &sel)
	r = &Record{Topic: "t", Headers: []Header{{Key: "h", Value: []byte("3")}}}
	v := s.Select(r, &sel)
	if len(v.Fields) != 3 || v.Get("headers").Get("h").Str != "3" {
		t.Fatalf("selection %#v", v.Interface())
	}
	for i, f := range sel.fields[len(v.Fields):] {
		if f.Name != "" || f.Value.Type != TypeMissing || f.Value.Str != "" || f.Value.Fields != nil || f.Value.Raw != nil {
			t.Errorf("field %d beyond the record's still holds %q", len(v.Fields)+i, f.Name)
		}
	}
	if h := sel.headers[:2]; h[1].Name != "" || h[1].Value.Str != "" {
		t.Errorf("the second header of the last record is still held: %q", h[1].Value.Str)
	}
}
