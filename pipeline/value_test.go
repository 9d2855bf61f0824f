package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var parseSeeds = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	` [ 1 , -0 , 0.5 , -12.5e-3 , 1E+2 , 123456789012345678901234567890 ] `,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \ud800 x"`,
	`{}`, `[]`, `{"":""}`, `[[[[]]]]`, `{"a":{"a":{"a":{}}}}`,
	`1e400`, `-1e400`, `1e-400`, `0`, `-0.0`, `9007199254740993`, `0.1`, `1.7976931348623157e308`,
	`{"dup":1,"dup":2}`, `"héllo wörld ☃ 😀"`, `[1,2,{"x":[3,{"y":4}]}]`,
	`{"a":1,}`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `"\x"`, `"\u12"`, "\"\x01\"", "\"\xff\"",
	`tru`, `nulll`, `{"a" 1}`, `{1:2}`, `[`, `]`, `{"a":[}`, `"unterminated`, ``, ` `,
}

// TestParseJSONAgainstEncodingJSON compares the parser with encoding/json
// on the seeds; FuzzParseJSON does the same on arbitrary input.
func TestParseJSONAgainstEncodingJSON(t *testing.T) {
	for _, s := range parseSeeds {
		checkParse(t, []byte(s))
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
	})
}

// fuzzArena is reused from one input to the next, as a view reset with
// ResetView reuses its slabs.
var fuzzArena arena

func checkParse(t *testing.T, data []byte) {
	t.Helper()
	v, err := ParseJSON(data)
	d := DecodeData(data)
	var aliased, reused Value
	decodeAliased(data, &aliased, nil)
	decodeAliased(data, &reused, &fuzzArena)
	for _, x := range []*Value{&aliased, &reused} {
		if !reflect.DeepEqual(x.Interface(), d.Interface()) {
			t.Fatalf("aliased decoding of %q = %#v, DecodeData %#v", data, x.Interface(), d.Interface())
		}
	}
	valid := json.Valid(data) && utf8.Valid(data) && depth(data) <= maxDepth
	if (err == nil) != valid {
		t.Fatalf("ParseJSON(%q) error %v, encoding/json valid %v", data, err, valid)
	}
	if err != nil {
		if d.Type != TypeString || d.Str != string(data) {
			t.Fatalf("DecodeData(%q) = %v, want the text as a string", data, d.Interface())
		}
		return
	}
	if got, want := string(v.AppendJSON(nil)), string(bytes.TrimSpace(data)); got != want {
		t.Fatalf("AppendJSON = %q, want the input %q", got, want)
	}
	checkRaw(t, &v)
	var want any
	if err := json.Unmarshal(data, &want); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return // a number beyond float64: encoding/json refuses it
		}
		t.Fatalf("encoding/json: %v", err)
	}
	if got := v.Interface(); !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseJSON(%q) = %#v, encoding/json %#v", data, got, want)
	}
	if got := d.Interface(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeData(%q) = %#v, encoding/json %#v", data, got, want)
	}
}

// checkRaw checks that every value's Raw is its text and that numbers keep
// their literal.
func checkRaw(t *testing.T, v *Value) {
	t.Helper()
	if !json.Valid(v.Raw) {
		t.Fatalf("Raw %q is not JSON", v.Raw)
	}
	switch v.Type {
	case TypeNumber:
		if v.Str != string(v.Raw) {
			t.Fatalf("number Str %q, Raw %q", v.Str, v.Raw)
		}
		f, err := strconv.ParseFloat(v.Str, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || f != v.Num && !(math.IsNaN(f) && math.IsNaN(v.Num)) {
			t.Fatalf("number %q decoded to %v, strconv says %v", v.Str, v.Num, f)
		}
		if math.Signbit(f) != math.Signbit(v.Num) {
			t.Fatalf("number %q decoded to %v: wrong sign", v.Str, v.Num)
		}
	case TypeString:
		var s string
		if err := json.Unmarshal(v.Raw, &s); err != nil || s != v.Str {
			t.Fatalf("string Raw %q, Str %q", v.Raw, v.Str)
		}
	case TypeArray:
		if v.Elems == nil {
			t.Fatalf("array %q has nil Elems", v.Raw)
		}
		for i := range v.Elems {
			checkRaw(t, &v.Elems[i])
		}
	case TypeObject:
		if v.Fields == nil {
			t.Fatalf("object %q has nil Fields", v.Raw)
		}
		for i := range v.Fields {
			checkRaw(t, &v.Fields[i].Value)
		}
	}
}

// depth is the nesting depth of data, strings skipped.
func depth(data []byte) int {
	d, deepest, inStr, esc := 0, 0, false, false
	for _, c := range data {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest - 1
}

func TestParseJSONDepth(t *testing.T) {
	ok := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if _, err := ParseJSON([]byte(ok)); err != nil {
		t.Errorf("%d levels: %v", maxDepth+1, err)
	}
	deep := "[" + ok + "]"
	if _, err := ParseJSON([]byte(deep)); err == nil {
		t.Errorf("%d levels: want an error", maxDepth+2)
	}
}

// TestParseJSONCopies checks that ParseJSON and DecodeData strings do not
// share the input's bytes, while the record view's do not need to.
func TestParseJSONCopies(t *testing.T) {
	data := []byte(`{"name":"value","n":12,"e":"a\nb"}`)
	v, err := ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	d := DecodeData(data)
	plain := []byte("not json")
	p := DecodeData(plain)
	for i := range data {
		data[i] = 'X'
	}
	plain[0] = 'X'
	for _, x := range []*Value{&v, &d} {
		if x.Get("name").Str != "value" || x.Fields[0].Name != "name" || x.Get("n").Str != "12" || x.Get("e").Str != "a\nb" {
			t.Errorf("strings changed with the input: %#v", x.Interface())
		}
	}
	if p.Str != "not json" {
		t.Errorf("DecodeData text changed with the input: %q", p.Str)
	}
}

// TestDecodeIndependent decodes many documents, keeping them all, and
// checks them afterwards: the slabs carved for one never overlap another's.
func TestDecodeIndependent(t *testing.T) {
	var docs [][]byte
	var got []Value
	for i := 0; i < 2000; i++ {
		doc := []byte(`{"i":` + strconv.Itoa(i) + `,"s":"v\u00e9` + strconv.Itoa(i) + `","a":[` + strconv.Itoa(i) + `,{"b":[true]}],"o":{"k":"` + strings.Repeat("x", i%50) + `"}}`)
		docs = append(docs, doc)
		var v Value
		decodeAliased(doc, &v, nil)
		got = append(got, v)
	}
	for i := range docs {
		var want any
		if err := json.Unmarshal(docs[i], &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i].Interface(), want) {
			t.Fatalf("document %d decoded to %#v, want %#v", i, got[i].Interface(), want)
		}
	}
}

func TestView(t *testing.T) {
	r := Record{
		Topic: "orders", Partition: 2, Offset: 1234567890123, Timestamp: time.UnixMilli(1700000000123),
		TimestampType: LogAppendTime,
		Key:           []byte("k-1"),
		Value:         []byte(`{"a":[1,"x\ty"],"b":{}}`),
		Headers: []Header{
			{Key: "h1", Value: []byte("one")}, {Key: "h2", Value: nil}, {Key: "h1", Value: []byte("uno")},
			{Key: "h3", Value: []byte("3")}, {Key: "h4", Value: []byte("4")}, {Key: "h5", Value: []byte("5")},
		},
	}
	v := r.View()
	if r.View() != v {
		t.Fatal("the view is rebuilt on each call")
	}
	got, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"headers":{"h1":"uno","h2":"","h3":"3","h4":"4","h5":"5"},"key":"k-1","offset":1234567890123,"partition":2,` +
		`"timestamp":1700000000123,"timestampType":"LOG_APPEND_TIME","topic":"orders","value":{"a":[1,"x\ty"],"b":{}}}`
	if string(got) != want {
		t.Errorf("view\n got %s\nwant %s", got, want)
	}
	for _, name := range []string{"partition", "offset", "timestamp"} {
		n := v.Get(name)
		if n.Type != TypeNumber || n.Str != strconv.FormatFloat(n.Num, 'f', -1, 64) {
			t.Errorf("%s: %#v", name, n)
		}
	}
	if h := v.Get("headers"); len(h.Fields) != 6 || h.Fields[0].Name != "h1" || h.Get("h1").Str != "uno" {
		t.Errorf("headers: %#v", h.Interface())
	}
	var order []string
	for _, f := range v.Fields {
		order = append(order, f.Name)
	}
	if got := strings.Join(order, ","); got != "topic,partition,offset,timestamp,timestampType,key,value,headers" {
		t.Errorf("field order %s", got)
	}

	tomb := Record{Topic: "t", Timestamp: time.UnixMilli(0)}
	tv := tomb.View()
	if tv.Get("key") != nil || tv.Get("value") != nil {
		t.Errorf("null key and value are not missing: %#v", tv.Interface())
	}
	if h := tv.Get("headers"); h == nil || h.Type != TypeObject || h.Fields == nil || len(h.Fields) != 0 {
		t.Errorf("no headers: %#v", h)
	}
	empty := Record{Value: []byte{}}
	if ev := empty.View().Get("value"); ev == nil || ev.Type != TypeString || ev.Str != "" {
		t.Errorf("empty value: %#v", ev)
	}
}

// TestResetView decodes a stream of different records through one Record,
// as a source reusing its records would, and compares each view with a
// fresh one.
func TestResetView(t *testing.T) {
	values := []string{
		`{"a":1}`,
		`{"a":[1,2,3,{"b":"x\ty"}],"c":{"d":[[],[{}]]},"e":"` + strings.Repeat("long ", 40) + `"}`,
		`[1,2]`, `not json`, `{"small":true}`, `"\u00e9\n"`, ``,
		`{"k":[` + strings.Repeat(`{"x":"\"q\""},`, 300) + `{}]}`,
		`{"a":1}`,
	}
	headers := [][]Header{nil, {{Key: "a", Value: []byte("1")}}, {{Key: "h1"}, {Key: "h2"}, {Key: "h3"}, {Key: "h4"}, {Key: "h5", Value: []byte("5")}}}
	var r Record
	for round := 0; round < 3; round++ {
		for i, val := range values {
			r.Topic = "t" + strconv.Itoa(i)
			r.Offset = int64(i)
			r.Key = []byte(`{"id":` + strconv.Itoa(i) + `}`)
			r.Value = []byte(val)
			r.Headers = headers[i%len(headers)]
			r.ResetView()
			fresh := Record{Topic: r.Topic, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: r.Headers}
			got, want := r.View().Interface(), fresh.View().Interface()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, value %q: reused view %#v, fresh %#v", round, val, got, want)
			}
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.ResetView()
		if r.View().Get("value") == nil {
			t.Fatal("no value")
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("a reset view allocates %v times per record", allocs)
	}
	var fresh Record
	fresh.ResetView() // no view yet: nothing to do
	if fresh.View() == nil {
		t.Error("no view")
	}
}
