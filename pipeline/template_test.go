package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pipe-run/pipe/pipeline"
)

// tmplTime is the ingestion time of the golden renders.
var tmplTime = time.Date(2024, 3, 9, 17, 4, 5, 123_000_000, time.UTC)

func tmplContext() *pipeline.TemplateContext {
	c := pipeline.NewTemplateContext("orders-to-http")
	c.IngestionTime = tmplTime
	return &c
}

// tmplRecords are the records the golden templates render.
func tmplRecords() map[string]pipeline.Record {
	at := time.UnixMilli(1545084650987)
	return map[string]pipeline.Record{
		// A JSON value with strings that need escaping, and a text key.
		"json": {Topic: "orders", Partition: 3, Offset: 15, Timestamp: at,
			Key: []byte("order-1"),
			Value: []byte(`{"orderId": "o-1", "amount": 12.50, "customer": {"name": "Zoë \"Z\" <z@example.com>", "tags": ["a", "b"]},` +
				` "items": [{"sku": "s1", "qty": 2}, {"sku": "s2", "qty": 1}], "note": null, "ok": true, "line": "a\nb\tc\u2028\\"}`),
			Headers: []pipeline.Header{{Key: "trace-id", Value: []byte("t-1")}, {Key: "content-type", Value: []byte("application/json")}}},
		// A value that is not JSON, with quotes and backslashes, and a key
		// that is a JSON number.
		"text": {Topic: "orders", Partition: 0, Offset: 7, Timestamp: at, TimestampType: pipeline.LogAppendTime,
			Key: []byte("42"), Value: []byte("plain \"quoted\" text\\with\tcontrol\x01"), Headers: []pipeline.Header{}},
		// Bytes that are not UTF-8, in the value and in a header; no key.
		"binary": {Topic: "raw", Partition: 1, Offset: 99, Timestamp: at,
			Value:   []byte("\xff\xfe{\"a\":1}\x00\xdc"),
			Headers: []pipeline.Header{{Key: "sig", Value: []byte{0xdc, 0x01, 'o', 'k'}}, {Key: "empty"}, {Key: "sig", Value: []byte("second")}}},
		// A value that is a JSON string; a JSON object key.
		"jsonstring": {Topic: "orders", Partition: 0, Offset: 1, Timestamp: at,
			Key: []byte(`{"id": 1}`), Value: []byte(`"just a \"string\""`)},
		// A tombstone: null value.
		"tombstone": {Topic: "orders", Partition: 0, Offset: 2, Timestamp: at, Key: []byte("order-1")},
	}
}

type tmplCase struct {
	template string
	record   string
	json     bool // whether the template is a JSON template
}

// tmplGolden are the templates whose output is kept in
// testdata/template/<name>.golden, with the record they render.
var tmplGolden = map[string]tmplCase{
	"static-text":       {`Hello, sender`, "json", false},
	"static-json":       {`{"key1": "value1", "key2": "value2"}`, "json", true},
	"bare-json-value":   {`<$.value>`, "json", false},
	"bare-string":       {`<$.value.orderId>`, "json", false},
	"bare-number":       {`<$.value.amount>`, "json", false},
	"bare-object":       {`<$.value.customer>`, "json", false},
	"bare-text-value":   {`<$.value>`, "text", false},
	"bare-binary-value": {`<$.value>`, "binary", false},
	"bare-missing":      {`<$.value.missing>`, "json", false},
	"bare-wildcard":     {`<$.value.items[*].sku>`, "json", false},
	"bare-record-view":  {`<$>`, "binary", false},
	"bare-event-json":   {`<aws.pipes.event.json>`, "binary", false},
	"bare-with-newline": {"  <$.value.orderId>\n", "json", false},
	"text-paths": {`Order <$.value.orderId> for <$.value.customer.name>: <$.value.amount> (<$.value.missing>) ` +
		`<$.value.customer.tags> <$.value.ok> <$.value.note>`, "json", false},
	"text-reserved": {`<aws.pipes.pipe-name> <aws.pipes.pipe-arn> <aws.pipes.source-arn> <aws.pipes.enrichment-arn> ` +
		`<aws.pipes.target-arn> <aws.pipes.event.ingestion-time>`, "json", false},
	"text-event":    {`event=<aws.pipes.event>`, "binary", false},
	"text-literals": {`a < b, <b>bold</b>, <aws, <<$.key>>`, "json", false},
	"json-values": {`{"id": <$.value.orderId>, "amount": <$.value.amount>, "customer": <$.value.customer>, "note": <$.value.note>, ` +
		`"ok": <$.value.ok>, "missing": <$.value.missing>, "line": <$.value.line>, "key": <$.key>}`, "json", true},
	"json-in-strings": {`{"msg": "order <$.value.orderId> by <$.value.customer.name>", "obj": "<$.value.customer>", ` +
		`"num": "<$.value.amount>", "missing": "[<$.value.missing>]", "line": "<$.value.line>", "esc": "\"\\<$.key>\\\""}`, "json", true},
	"json-text-value":   {`{"v": <$.value>, "s": "<$.value>", "k": <$.key>, "ks": "<$.key>"}`, "text", true},
	"json-binary-value": {`{"v": <$.value>, "s": "<$.value>", "sig": <$.headers.sig>, "sigIn": "<$.headers.sig>"}`, "binary", true},
	"json-wildcards": {`{"skus": <$.value.items[*].sku>, "qtys": "<$.value.items[*].qty>", "none": <$.value.missing[*]>, ` +
		`"noneIn": "<$.value.missing[*]>", "tags": <$.value.customer.*>, "all": <$.value.items.*.*>}`, "json", true},
	"json-indexes": {`{"first": <$.value.items[0]>, "last": <$.value.items[-1].sku>, "tag": "<$.value.customer.tags[1]>", ` +
		`"out": <$.value.items[5]>, "quoted": <$['value']["orderId"]>}`, "json", true},
	"json-array":       {`[<$.value.orderId>, "<$.key>", <$.partition>, <$.offset>, <$.missing>]`, "json", true},
	"json-string":      {`"<$.value.customer.name>"`, "json", true},
	"json-string-obj":  {`"<$.value.customer>"`, "json", true},
	"json-headers":     {`{"headers": <$.headers>, "sig": "<$.headers.sig>", "all": <$.headers.*>, "empty": <$.headers.empty>}`, "binary", true},
	"json-metadata":    {`{"topic": <$.topic>, "partition": <$.partition>, "offset": <$.offset>, "timestamp": <$.timestamp>, "timestampType": <$.timestampType>}`, "text", true},
	"json-reserved":    {`{"pipe": <aws.pipes.pipe-name>, "arn": "<aws.pipes.pipe-arn>", "source": <aws.pipes.source-arn>, "target": <aws.pipes.target-arn>, "enrichment": <aws.pipes.enrichment-arn>, "time": <aws.pipes.event.ingestion-time>, "timeIn": "at <aws.pipes.event.ingestion-time>"}`, "json", true},
	"json-event":       {`{"event": <aws.pipes.event>, "eventJSON": <aws.pipes.event.json>, "eventText": "<aws.pipes.event>"}`, "json", true},
	"json-event-bin":   {`{"event": <aws.pipes.event>, "eventJSON": <aws.pipes.event.json>, "eventJSONText": "<aws.pipes.event.json>"}`, "binary", true},
	"json-name-key":    {`{"<$.value.orderId>": <$.value.amount>, "<$.value.missing>": 1}`, "json", true},
	"json-tombstone":   {`{"value": <$.value>, "text": "<$.value>", "key": <$.key>}`, "tombstone", true},
	"json-string-json": {`{"v": <$.value>, "vs": "<$.value>", "k": <$.key.id>, "kobj": <$.key>}`, "jsonstring", true},
	"json-literal-lt":  {`{"html": "<b>bold</b> a < b <aws", "v": <$.value.orderId>}`, "json", true},
	"json-multiline":   {"{\n  \"id\": <$.value.orderId>,\n  \"items\": <$.value.items>\n}\n", "json", true},
	// The "Dynamic JSON" example of the Pipes documentation lacks a comma,
	// so it is not JSON: a text template, rendered as written.
	"aws-doc-dynamic-json": {"{\n  \"key1\": \"value1\"\n  \"key2\": <$.value.orderId>,\n  \"d\": <aws.pipes.event.ingestion-time>\n}", "json", false},
}

func TestTemplateGolden(t *testing.T) {
	records := tmplRecords()
	for name, c := range tmplGolden {
		t.Run(name, func(t *testing.T) {
			tm, err := pipeline.ParseTemplate(c.template)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", c.template, err)
			}
			if tm.JSON() != c.json {
				t.Errorf("JSON() = %v, want %v", tm.JSON(), c.json)
			}
			if tm.String() != c.template {
				t.Errorf("String() = %q", tm.String())
			}
			r, ok := records[c.record]
			if !ok {
				t.Fatalf("no record %q", c.record)
			}
			got := tm.Render(nil, &r, tmplContext())
			file := filepath.Join("testdata", "template", name+".golden")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s\n got: %s\nwant: %s", file, got, want)
			}
			if c.json && !validJSON(got) {
				t.Errorf("a JSON template rendered invalid JSON: %s", got)
			}
		})
	}
}

// TestTemplateGoldenFilesUsed fails on a golden file no case writes.
func TestTemplateGoldenFilesUsed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "template", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tmplGolden[strings.TrimSuffix(filepath.Base(f), ".golden")]; !ok || !strings.HasSuffix(f, ".golden") {
			t.Errorf("%s belongs to no test case", f)
		}
	}
	if len(files) != len(tmplGolden) {
		t.Errorf("%d golden files for %d cases", len(files), len(tmplGolden))
	}
}

// validJSON is json.Valid and valid UTF-8, which json.Valid does not check.
func validJSON(b []byte) bool { return json.Valid(b) && utf8.Valid(b) }

// TestTemplateRules spells out the rendering rules on small cases, so that
// they do not rest on golden files alone.
func TestTemplateRules(t *testing.T) {
	r := pipeline.Record{Topic: "t", Key: []byte("k\"ey"), Value: []byte(`{"s": "a\"b", "n": 1.50, "o": {"x": [1, 2]}, "z": null, "arr": [{"id": 1}, {"id": 2}, {}]}`)}
	bin := pipeline.Record{Topic: "t", Value: []byte{'a', 0xff, '"'}}
	for _, c := range []struct {
		template string
		r        *pipeline.Record
		want     string
	}{
		// Bare: a string's text, another value's JSON text, nothing when missing.
		{`<$.value.s>`, &r, `a"b`},
		{`<$.value.n>`, &r, `1.50`},
		{`<$.value.o>`, &r, `{"x": [1, 2]}`},
		{`<$.value.z>`, &r, `null`},
		{`<$.value.missing>`, &r, ``},
		{`<$.key>`, &r, `k"ey`},
		{`<$.value>`, &bin, "a\xff\""},
		{`<$.value.arr[*].id>`, &r, `[1,2]`},
		{`<$.value.missing[*]>`, &r, `[]`},
		// Text: the same, around literal text.
		{`s=<$.value.s> n=<$.value.n> m=<$.value.missing>.`, &r, `s=a"b n=1.50 m=.`},
		// JSON value position: the value's JSON, null when missing.
		{`{"a": <$.value.s>}`, &r, `{"a": "a\"b"}`},
		{`{"a": <$.value.n>}`, &r, `{"a": 1.50}`},
		{`{"a": <$.value.o>}`, &r, `{"a": {"x": [1, 2]}}`},
		{`{"a": <$.value.missing>}`, &r, `{"a": null}`},
		{`{"a": <$.key>}`, &r, `{"a": "k\"ey"}`},
		{`{"a": <$.value>}`, &bin, `{"a": "a\ufffd\""}`},
		{`[<$.value.arr[*].id>]`, &r, `[[1,2]]`},
		// Inside a JSON string: escaped text, nothing when missing.
		{`{"a": "<$.value.s>"}`, &r, `{"a": "a\"b"}`},
		{`{"a": "<$.value.n>"}`, &r, `{"a": "1.50"}`},
		{`{"a": "<$.value.o>"}`, &r, `{"a": "{\"x\": [1, 2]}"}`},
		{`{"a": "<$.value.z>"}`, &r, `{"a": "null"}`},
		{`{"a": "(<$.value.missing>)"}`, &r, `{"a": "()"}`},
		{`{"a": "<$.value>"}`, &bin, `{"a": "a\ufffd\""}`},
		{`{"a": "<$.value.arr[*].id>"}`, &r, `{"a": "[1,2]"}`},
		{`"<$.value.s>"`, &r, `"a\"b"`},
		// A < that starts no placeholder is text.
		{`{"a": "x < y <b>", "b": <$.value.n>}`, &r, `{"a": "x < y <b>", "b": 1.50}`},
	} {
		tm, err := pipeline.ParseTemplate(c.template)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", c.template, err)
			continue
		}
		if got := string(tm.Render(nil, c.r, nil)); got != c.want {
			t.Errorf("%s renders %s, want %s", c.template, got, c.want)
		}
	}
}

func TestTemplateForms(t *testing.T) {
	for _, c := range []struct {
		template string
		json     bool
	}{
		{`<$.a>`, false},
		{" <$.a>\n", false},
		{`<$.a><$.b>`, false},
		{`<$.a>, <$.b>`, false},
		{`Hello <$.a>`, false},
		{`{"a": <$.a>}`, true},
		{`[<$.a>]`, true},
		{`[<$.a>, <$.b>]`, true},
		{`[<$.a><$.b>]`, false},
		{`"<$.a>"`, true},
		{`"<$.a>" "<$.b>"`, false},
		{`"static"`, true},
		{`{}`, true},
		{`5`, false},
		{`null`, false},
		{`{"a": 1,}`, false},
		{`{<$.a>: 1}`, false},         // a placeholder as a key needs quotes
		{`{"a": 1<$.b>}`, false},      // a placeholder glued to a number
		{`{"a": <$.b>1}`, false},      // ... on either side
		{`{"a": tr<$.b>}`, false},     // ... or to a literal
		{`{"a": "\<$.b>"}`, false},    // after a backslash in a string
		{`{"a": "\\<$.b>"}`, true},    // after an escaped backslash
		{`{"a": "\"<$.b>\""}`, true},  // between escaped quotes
		{`{"a": <$.b> <$.c>}`, false}, // two values in one place
		{`{"a": [<$.b>, {"c": "<$.c>"}]}`, true},
		{`{"<$.a>": "<$.b>"}`, true},
	} {
		tm, err := pipeline.ParseTemplate(c.template)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", c.template, err)
			continue
		}
		if tm.JSON() != c.json {
			t.Errorf("ParseTemplate(%q).JSON() = %v, want %v", c.template, tm.JSON(), c.json)
		}
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, c := range []struct {
		template string
		offset   int
		msg      string
	}{
		{`<$.a`, 0, "unterminated placeholder"},
		{`{"a": <$.value.b}`, 16, "unexpected '}'"},
		{`{"a": <$.value b>}`, 14, "unexpected ' '"},
		{`x <aws.pipes.nope> y`, 3, "unknown reserved variable <aws.pipes.nope>"},
		{`<aws.events.rule-name>`, 1, "unknown reserved variable"},
		{`x <aws.pipes.pipe-name`, 2, "unterminated placeholder"},
		{`<aws.pipes.pipe name>`, 15, "unexpected ' '"},
		{`ok <$..a>`, 5, "recursive descent"},
		{`ok <$.a[>`, 8, "expected an index"},
		{`<$.>`, 3, "a name must follow the dot"},
		{`<$x>`, 2, "unexpected 'x'"},
		{`price <$5>`, 8, "unexpected '5'"},
		{`<$.a> and <$.b['c]>`, 15, "unterminated quoted name"},
	} {
		_, err := pipeline.ParseTemplate(c.template)
		var se *pipeline.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseTemplate(%q) = %v, want a *SyntaxError", c.template, err)
			continue
		}
		if se.Offset != c.offset || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("ParseTemplate(%q): offset %d %q, want offset %d and %q", c.template, se.Offset, se.Msg, c.offset, c.msg)
		}
	}
}

func TestTemplateRenderAppends(t *testing.T) {
	tm, err := pipeline.ParseTemplate(`{"a": "<$.value>", "b": <aws.pipes.event.json>}`)
	if err != nil {
		t.Fatal(err)
	}
	r := pipeline.Record{Topic: "t", Value: []byte("x\"y")}
	want := string(tm.Render(nil, &r, nil))
	// Escaping in place must not disturb what dst already holds, with and
	// without room to grow.
	for _, prefix := range []string{"", "P", "prefix-\"-"} {
		for _, room := range []int{0, 1, 1000} {
			dst := make([]byte, len(prefix), len(prefix)+room)
			copy(dst, prefix)
			got := string(tm.Render(dst, &r, nil))
			if got != prefix+want {
				t.Errorf("Render after %q with room %d = %s, want %s", prefix, room, got, prefix+want)
			}
		}
	}
}

func TestTemplateIngestionTime(t *testing.T) {
	tm, err := pipeline.ParseTemplate(`{"t": <aws.pipes.event.ingestion-time>}`)
	if err != nil {
		t.Fatal(err)
	}
	r := pipeline.Record{}
	c := pipeline.NewTemplateContext("p")
	c.IngestionTime = time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("X", 3600))
	if got := string(tm.Render(nil, &r, &c)); got != `{"t": "2024-01-02T02:04:05.006Z"}` {
		t.Errorf("ingestion time renders %s, want UTC with milliseconds", got)
	}
	// With no time given, the time of rendering.
	before := time.Now().UTC().Truncate(time.Millisecond)
	out := tm.Render(nil, &r, nil)
	after := time.Now().UTC()
	var v struct{ T string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	got, err := time.Parse(time.RFC3339Nano, v.T)
	if err != nil {
		t.Fatalf("%s is not RFC 3339: %v", out, err)
	}
	if got.Before(before) || got.After(after) {
		t.Errorf("ingestion time %s is not between %s and %s", got, before, after)
	}
}

func TestNewTemplateContext(t *testing.T) {
	c := pipeline.NewTemplateContext("orders")
	want := pipeline.TemplateContext{PipeName: "orders", PipeARN: "pipe:orders", SourceARN: "pipe:orders:source",
		EnrichmentARN: "pipe:orders:enrichment", TargetARN: "pipe:orders:target"}
	if c != want {
		t.Errorf("NewTemplateContext = %+v, want %+v", c, want)
	}
}

// TestTemplateConcurrent renders one template from several goroutines (run
// with -race).
func TestTemplateConcurrent(t *testing.T) {
	tm, err := pipeline.ParseTemplate(`{"id": <$.value.id>, "s": "<$.value.s>", "all": <$.value.*>}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r := pipeline.Record{Value: fmt.Appendf(nil, `{"id": %d, "s": "g%d"}`, i, g)}
				want := fmt.Sprintf(`{"id": %d, "s": "g%d", "all": [%d,"g%d"]}`, i, g, i, g)
				if got := string(tm.Render(nil, &r, nil)); got != want {
					errs <- got
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent render: %s", e)
	}
}

func TestParam(t *testing.T) {
	r := pipeline.Record{Topic: "orders", Partition: 2, Key: []byte("k-1"),
		Value:   []byte(`{"customer": {"id": "c-9", "tier": 3}, "tags": ["a", "b"]}`),
		Headers: []pipeline.Header{{Key: "group", Value: []byte("g1")}}}
	ctx := pipeline.NewTemplateContext("p")
	for _, c := range []struct {
		param, want string
		static      bool
		withCtx     string // Append with a context, when it differs from Resolve
	}{
		{"static value", "static value", true, ""},
		{"", "", true, ""},
		{"$", "$", true, ""},
		{"$5 off", "$5 off", true, ""},
		{"a < b", "a < b", true, ""},
		{"$.value.customer.id", "c-9", false, ""},
		{"$.value.customer.tier", "3", false, ""},
		{"$.value.customer", `{"id": "c-9", "tier": 3}`, false, ""},
		{"$.value.tags[*]", `["a","b"]`, false, ""},
		{"$.value.missing", "", false, ""},
		{"$.key", "k-1", false, ""},
		{"$.headers.group", "g1", false, ""},
		{"$.partition", "2", false, ""},
		{"$['value']['customer']['id']", "c-9", false, ""},
		{"group-<$.value.customer.id>-<$.partition>", "group-c-9-2", false, ""},
		{"<aws.pipes.pipe-name>/<$.key>", "/k-1", false, "p/k-1"},
	} {
		p, err := pipeline.ParseParam(c.param)
		if err != nil {
			t.Errorf("ParseParam(%q): %v", c.param, err)
			continue
		}
		if got := p.Resolve(&r); got != c.want {
			t.Errorf("ParseParam(%q).Resolve = %q, want %q", c.param, got, c.want)
		}
		want := c.want
		if c.withCtx != "" {
			want = c.withCtx
		}
		if got := string(p.Append([]byte(">"), &r, &ctx)); got != ">"+want {
			t.Errorf("ParseParam(%q).Append = %q, want %q", c.param, got, ">"+want)
		}
		if p.Static() != c.static {
			t.Errorf("ParseParam(%q).Static() = %v", c.param, p.Static())
		}
		if p.String() != c.param {
			t.Errorf("ParseParam(%q).String() = %q", c.param, p.String())
		}
	}
	var zero pipeline.Param
	if zero.Resolve(&r) != "" || !zero.Static() {
		t.Error("the zero Param is not the static empty string")
	}
	for _, c := range []struct {
		param  string
		offset int
	}{
		{"$.", 2}, {"$.a b", 3}, {"$[x]", 2}, {"id-<$.a", 3}, {"<aws.pipes.nope>", 1},
	} {
		_, err := pipeline.ParseParam(c.param)
		var se *pipeline.SyntaxError
		if !errors.As(err, &se) || se.Offset != c.offset {
			t.Errorf("ParseParam(%q) = %v, want a *SyntaxError at offset %d", c.param, err, c.offset)
		}
	}
}

func TestParamResolveDoesNotAllocate(t *testing.T) {
	r := pipeline.Record{Value: []byte(`{"group": "g-1"}`)}
	p, err := pipeline.ParseParam("$.value.group")
	if err != nil {
		t.Fatal(err)
	}
	r.View()
	if n := testing.AllocsPerRun(100, func() { _ = p.Resolve(&r) }); n != 0 {
		t.Errorf("Resolve of a string path: %v allocations, want 0", n)
	}
}

// ---- The property test: JSON templates render valid JSON, holding what
// an independent reading of the record says they should.

// oobj is a JSON object that keeps its member order and repeats.
type oobj []okv

type okv struct {
	k string
	v any
}

// A JSON tree in test form: nil, bool, json.Number, string, []any, oobj.

// decodeOrdered decodes one JSON text into a tree, keeping member order.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readOrdered(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

func readOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			o := oobj{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readOrdered(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, okv{k.(string), v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := readOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", tok)
	}
	return tok, nil
}

// fixUTF8 replaces each byte that is not UTF-8 with U+FFFD, as the encoder
// does.
func fixUTF8(s string) string { return string([]rune(s)) }

// oracleData reads a key or value as the record view should.
func oracleData(b []byte) any {
	if utf8.Valid(b) && json.Valid(b) {
		if v, err := decodeOrdered(b); err == nil {
			return v
		}
	}
	return string(b)
}

// oracleView builds the record view from the record's fields, without the
// pipeline's JSON code. Its strings are the record's bytes, which may not be
// UTF-8: paths match them as they are, and sameJSON compares them as output.
func oracleView(r *pipeline.Record) oobj {
	o := oobj{
		{"topic", r.Topic},
		{"partition", json.Number(strconv.Itoa(int(r.Partition)))},
		{"offset", json.Number(strconv.FormatInt(r.Offset, 10))},
		{"timestamp", json.Number(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))},
		{"timestampType", r.TimestampType.String()},
	}
	if r.Key != nil {
		o = append(o, okv{"key", oracleData(r.Key)})
	}
	if r.Value != nil {
		o = append(o, okv{"value", oracleData(r.Value)})
	}
	hs := oobj{}
	for _, h := range r.Headers {
		hs = append(hs, okv{h.Key, string(h.Value)})
	}
	return append(o, okv{"headers", hs})
}

type tstep struct {
	all  bool
	name *string
	idx  int
}

// oracleMatches walks steps over v as the Path rules say.
func oracleMatches(v any, steps []tstep, out []any) []any {
	if len(steps) == 0 {
		return append(out, v)
	}
	st, rest := steps[0], steps[1:]
	switch {
	case st.all:
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				out = oracleMatches(e, rest, out)
			}
		case oobj:
			for _, m := range v {
				out = oracleMatches(m.v, rest, out)
			}
		}
	case st.name != nil:
		if o, ok := v.(oobj); ok {
			for i := len(o) - 1; i >= 0; i-- {
				if o[i].k == *st.name {
					return oracleMatches(o[i].v, rest, out)
				}
			}
		}
	default:
		if a, ok := v.([]any); ok {
			i := st.idx
			if i < 0 {
				i += len(a)
			}
			if i >= 0 && i < len(a) {
				return oracleMatches(a[i], rest, out)
			}
		}
	}
	return out
}

// inString is what a placeholder inside a JSON string must give: the
// string pre + text + post, where text is a string's own text or, for
// other values, JSON text that decodes to want.
type inString struct {
	pre, post string
	want      any
	missing   bool
}

// sameJSON compares a decoded output with an expectation, whose strings
// are taken as the encoder writes them (bytes that are not UTF-8 as U+FFFD).
func sameJSON(got, want any) bool {
	switch w := want.(type) {
	case inString:
		g, ok := got.(string)
		if !ok || !strings.HasPrefix(g, w.pre) || !strings.HasSuffix(g, w.post) || len(g) < len(w.pre)+len(w.post) {
			return false
		}
		text := g[len(w.pre) : len(g)-len(w.post)]
		if w.missing {
			return text == ""
		}
		if s, ok := w.want.(string); ok {
			return text == fixUTF8(s)
		}
		v, err := decodeOrdered([]byte(text))
		return err == nil && sameJSON(v, w.want)
	case oobj:
		g, ok := got.(oobj)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i].k != fixUTF8(w[i].k) || !sameJSON(g[i].v, w[i].v) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameJSON(g[i], w[i]) {
				return false
			}
		}
		return true
	case string:
		return got == fixUTF8(w)
	}
	return reflect.DeepEqual(got, want)
}

// gen makes random records and JSON templates with their expected output.
type gen struct {
	rng  *rand.Rand
	view oobj
	r    *pipeline.Record
	ctx  *pipeline.TemplateContext
	t    testing.TB
}

var genNames = []string{"a", "b", "id", "order-id", "a b", "it's", `q"`, `back\`, "", "é", "dup", "dup", "x>y", "<$.a>", "u\u2028"}

var genStrings = []string{"", "plain", `quo"te`, `back\slash`, "new\nline", "tab\t", "ctl\x01\x1f", "é ü", "\u2028\u2029", "😀", "<$.value>", "</script>", "a&b"}

var genNumbers = []string{"0", "-1", "1.5", "12.50", "1e3", "1E-2", "-0", "123456789012345678901234567890", "3.0e2"}

// randomJSON returns a random tree and its text with random white space.
func (g *gen) randomJSON(depth int) (any, string) {
	ws := func() string { return []string{"", "", " ", "\n  ", "\t"}[g.rng.IntN(5)] }
	n := g.rng.IntN(10)
	if depth <= 0 {
		n = g.rng.IntN(6)
	}
	switch n {
	case 0:
		return nil, "null"
	case 1:
		b := g.rng.IntN(2) == 0
		return b, strconv.FormatBool(b)
	case 2, 3:
		s := genNumbers[g.rng.IntN(len(genNumbers))]
		return json.Number(s), s
	case 4, 5:
		s := genStrings[g.rng.IntN(len(genStrings))]
		b, _ := json.Marshal(s)
		return s, string(b)
	case 6, 7:
		a := []any{}
		var sb strings.Builder
		sb.WriteString("[" + ws())
		for i := range g.rng.IntN(4) {
			if i > 0 {
				sb.WriteString("," + ws())
			}
			v, text := g.randomJSON(depth - 1)
			a = append(a, v)
			sb.WriteString(text + ws())
		}
		sb.WriteString("]")
		return a, sb.String()
	default:
		o := oobj{}
		var sb strings.Builder
		sb.WriteString("{" + ws())
		for i := range g.rng.IntN(5) {
			if i > 0 {
				sb.WriteString("," + ws())
			}
			k := genNames[g.rng.IntN(len(genNames))]
			kb, _ := json.Marshal(k)
			v, text := g.randomJSON(depth - 1)
			o = append(o, okv{k, v})
			sb.WriteString(string(kb) + ws() + ":" + ws() + text + ws())
		}
		sb.WriteString("}")
		return o, sb.String()
	}
}

// randomData returns a key or value: null, JSON, text or binary.
func (g *gen) randomData() []byte {
	switch g.rng.IntN(6) {
	case 0:
		return nil
	case 1, 2:
		_, text := g.randomJSON(3)
		return []byte(text)
	case 3:
		return []byte(genStrings[g.rng.IntN(len(genStrings))] + `"{` + genStrings[g.rng.IntN(len(genStrings))])
	case 4:
		b := make([]byte, g.rng.IntN(12))
		for i := range b {
			b[i] = byte(g.rng.UintN(256))
		}
		return b
	default:
		return []byte{}
	}
}

func (g *gen) randomRecord() *pipeline.Record {
	topics := []string{"orders", `t"q`, `t\b`, "ünï", "bad\xff"}
	r := &pipeline.Record{
		Topic:     topics[g.rng.IntN(len(topics))],
		Partition: g.rng.Int32N(100), Offset: g.rng.Int64N(1 << 40),
		Timestamp:     time.UnixMilli(g.rng.Int64N(1 << 42)),
		TimestampType: pipeline.TimestampType(g.rng.IntN(2)),
		Key:           g.randomData(), Value: g.randomData(),
	}
	for range g.rng.IntN(4) {
		k := genNames[g.rng.IntN(len(genNames))]
		if g.rng.IntN(5) == 0 {
			k += "\xfe"
		}
		r.Headers = append(r.Headers, pipeline.Header{Key: k, Value: g.randomData()})
	}
	return r
}

// randomPath walks the view to make a path that mostly selects something,
// and returns its text and steps.
func (g *gen) randomPath() (string, []tstep) {
	var sb strings.Builder
	sb.WriteString("$")
	var steps []tstep
	var cur any = g.view
	for g.rng.IntN(5) != 0 {
		var st tstep
		switch v := cur.(type) {
		case oobj:
			switch k := g.rng.IntN(10); {
			case k == 0:
				st.all = true
			case k == 1 || len(v) == 0:
				name := genNames[g.rng.IntN(len(genNames))] + "-missing"
				st.name = &name
			default:
				name := v[g.rng.IntN(len(v))].k
				st.name = &name
			}
		case []any:
			switch k := g.rng.IntN(10); {
			case k == 0:
				st.all = true
			case k == 1 || len(v) == 0:
				st.idx = len(v) + g.rng.IntN(3)
			default:
				st.idx = g.rng.IntN(len(v))
				if g.rng.IntN(3) == 0 {
					st.idx -= len(v)
				}
			}
		default:
			// A step into a scalar, which selects nothing.
			name := "x"
			st.name = &name
		}
		steps = append(steps, st)
		switch {
		case st.all:
			if g.rng.IntN(2) == 0 {
				sb.WriteString(".*")
			} else {
				sb.WriteString("[*]")
			}
		case st.name != nil:
			sb.WriteString(pathName(*st.name, g.rng))
		default:
			fmt.Fprintf(&sb, "[%d]", st.idx)
		}
		if st.all {
			// Keep walking into one of the values * selects.
			if m := oracleMatches(cur, []tstep{st}, nil); len(m) > 0 {
				cur = m[g.rng.IntN(len(m))]
			}
			continue
		}
		if m := oracleMatches(cur, []tstep{st}, nil); len(m) == 1 {
			cur = m[0]
		} else {
			cur = nil
		}
	}
	return sb.String(), steps
}

// pathName writes a name step: after a dot when it is plain, else quoted.
func pathName(name string, rng *rand.Rand) string {
	plain := name != ""
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			plain = false
		}
	}
	if plain && rng.IntN(4) != 0 {
		return "." + name
	}
	q := "'"
	if rng.IntN(2) == 0 {
		q = `"`
	}
	var sb strings.Builder
	sb.WriteString("[" + q)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == q[0] || c == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(name[i])
	}
	sb.WriteString(q + "]")
	return sb.String()
}

// placeholder returns a random placeholder with what it selects: found
// says whether it selects a value (a wildcard always does: an array).
func (g *gen) placeholder() (text string, v any, found bool) {
	switch g.rng.IntN(12) {
	case 0:
		return "<aws.pipes.pipe-name>", g.ctx.PipeName, true
	case 1:
		return "<aws.pipes.target-arn>", g.ctx.TargetARN, true
	case 2:
		return "<aws.pipes.event.ingestion-time>", g.ctx.IngestionTime.UTC().Format("2006-01-02T15:04:05.000Z"), true
	case 3:
		return "<aws.pipes.event.json>", g.view, true
	case 4:
		ev, err := decodeOrdered(pipeline.AppendRecord(nil, g.r))
		if err != nil {
			g.t.Fatalf("AppendRecord: %v", err)
		}
		return "<aws.pipes.event>", ev, true
	}
	path, steps := g.randomPath()
	m := oracleMatches(g.view, steps, nil)
	for _, st := range steps {
		if st.all {
			if m == nil {
				m = []any{}
			}
			return "<" + path + ">", m, true
		}
	}
	if len(m) == 0 {
		return "<" + path + ">", nil, false
	}
	return "<" + path + ">", m[0], true
}

var genLiterals = []string{"", "a", " ", `\"`, `\\`, `\n`, `\u00e9`, "é", "<", ">", "<b>", "[", "]", "{", ":", ","}

// literal returns string content in template form and what it decodes to.
func (g *gen) literal() (string, string) {
	var src strings.Builder
	for range g.rng.IntN(4) {
		src.WriteString(genLiterals[g.rng.IntN(len(genLiterals))])
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+src.String()+`"`), &s); err != nil {
		g.t.Fatalf("literal %q: %v", src.String(), err)
	}
	return src.String(), s
}

// node returns a random piece of JSON template and what its output must
// decode to.
func (g *gen) node(depth int) (string, any) {
	switch k := g.rng.IntN(8); {
	case k <= 2:
		text, v, found := g.placeholder()
		if !found {
			v = nil
		}
		return text, v
	case k <= 4:
		text, v, found := g.placeholder()
		preSrc, pre := g.literal()
		postSrc, post := g.literal()
		return `"` + preSrc + text + postSrc + `"`, inString{pre: pre, post: post, want: v, missing: !found}
	case k == 5 || depth <= 0:
		v, text := g.randomJSON(1)
		return text, v
	case k == 6:
		var sb strings.Builder
		a := []any{}
		sb.WriteString("[")
		for i := range g.rng.IntN(4) {
			if i > 0 {
				sb.WriteString(", ")
			}
			text, v := g.node(depth - 1)
			sb.WriteString(text)
			a = append(a, v)
		}
		sb.WriteString("]")
		return sb.String(), a
	default:
		return g.object(depth - 1)
	}
}

func (g *gen) object(depth int) (string, any) {
	var sb strings.Builder
	o := oobj{}
	sb.WriteString("{\n")
	for i := range g.rng.IntN(6) {
		if i > 0 {
			sb.WriteString(",\n")
		}
		text, v := g.node(depth)
		key := "k" + strconv.Itoa(i)
		sb.WriteString(`  "` + key + `": ` + text)
		o = append(o, okv{key, v})
	}
	sb.WriteString("\n}")
	return sb.String(), o
}

func TestJSONTemplateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		g := &gen{rng: rng, t: t}
		c := pipeline.NewTemplateContext(genStrings[rng.IntN(len(genStrings))])
		c.IngestionTime = time.UnixMilli(rng.Int64N(1 << 42))
		g.ctx = &c
		g.r = g.randomRecord()
		g.view = oracleView(g.r)
		var src string
		var want any
		if rng.IntN(4) == 0 {
			src, want = g.node(2)
		} else {
			src, want = g.object(2)
		}
		tm, err := pipeline.ParseTemplate(src)
		if err != nil {
			t.Fatalf("case %d: ParseTemplate(%s): %v", i, src, err)
		}
		if !tm.JSON() && !strings.Contains(src, "<") {
			continue // a scalar without placeholders is static text
		}
		if !tm.JSON() && src[0] != '<' {
			t.Fatalf("case %d: %s is not a JSON template", i, src)
		}
		out := tm.Render(nil, g.r, g.ctx)
		if !tm.JSON() {
			continue // a bare placeholder
		}
		if !validJSON(out) {
			t.Fatalf("case %d: invalid JSON\ntemplate: %s\nrecord: %+v\noutput: %s", i, src, g.r, out)
		}
		got, err := decodeOrdered(out)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !sameJSON(got, want) {
			t.Fatalf("case %d: output does not hold what the record says\ntemplate: %s\nrecord: %+v\noutput: %s\nwant: %#v", i, src, g.r, out, want)
		}
	}
}

// FuzzParseTemplate checks that parsing never panics, that a parsed
// template renders any record without panicking, and that a JSON template
// renders valid JSON.
func FuzzParseTemplate(f *testing.F) {
	for _, c := range tmplGolden {
		f.Add(c.template, []byte("k"), []byte(`{"orderId": "o\"1", "items": [1, {"a": "\u2028"}]}`), "h", []byte{0xff})
	}
	f.Add(`{"a": "\\<$.value>"}`, []byte(nil), []byte("\xff\""), "\xfe", []byte(nil))
	f.Add(`["<aws.pipes.event>", <aws.pipes.event.json>]`, []byte(`"k"`), []byte(`[1,2]`), "h\"", []byte("v\\"))
	ctx := tmplContext()
	f.Fuzz(func(t *testing.T, src string, key, value []byte, hkey string, hval []byte) {
		tm, err := pipeline.ParseTemplate(src)
		if err != nil {
			var se *pipeline.SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("ParseTemplate(%q): bad error %v", src, err)
			}
			return
		}
		r := pipeline.Record{Topic: hkey, Key: key, Value: value, Headers: []pipeline.Header{{Key: hkey, Value: hval}}}
		out := tm.Render([]byte("prefix"), &r, ctx)
		if !bytes.HasPrefix(out, []byte("prefix")) {
			t.Fatalf("Render lost what dst held: %q", out)
		}
		if tm.JSON() && !validJSON(out[len("prefix"):]) {
			t.Fatalf("JSON template %q rendered invalid JSON for %+v: %s", src, r, out)
		}
		if _, err := pipeline.ParseParam(src); err != nil && !strings.HasPrefix(src, "$") {
			t.Fatalf("ParseParam(%q) fails where ParseTemplate does not: %v", src, err)
		}
	})
}

// ---- Allocations and benchmarks.

// benchValue is a 1 KiB JSON order.
func benchValue() []byte {
	var b bytes.Buffer
	b.WriteString(`{"orderId": "ord-000123456", "customer": {"id": "c-42", "name": "Ada Lovelace", "email": "ada@example.com", "tier": 3},` +
		` "currency": "EUR", "total": 1234.56, "items": [`)
	for i := 0; b.Len() < 900; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"sku": "sku-%05d", "qty": %d, "price": %d.99}`, i, i%5+1, i*3)
	}
	b.WriteString(`], "note": "`)
	for b.Len() < 1022 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

const benchTemplate = `{"id": <$.value.orderId>, "customer": "<$.value.customer.name>", "tier": <$.value.customer.tier>, ` +
	`"skus": <$.value.items[*].sku>, "topic": <$.topic>, "at": <aws.pipes.event.ingestion-time>}`

func benchRecord(t testing.TB) pipeline.Record {
	v := benchValue()
	if len(v) != 1024 || !json.Valid(v) {
		t.Fatalf("bench value: %d bytes, valid %v", len(v), json.Valid(v))
	}
	return pipeline.Record{Topic: "orders", Partition: 1, Offset: 1000, Timestamp: tmplTime,
		Key: []byte("ord-000123456"), Value: v,
		Headers: []pipeline.Header{{Key: "content-type", Value: []byte("application/json")}}}
}

func TestRenderDoesNotAllocate(t *testing.T) {
	r := benchRecord(t)
	r.View()
	for _, src := range []string{benchTemplate, `{"in": "<$.value.customer>", "event": <aws.pipes.event>, "view": "<aws.pipes.event.json>"}`, `Hello <$.value.customer.name>`} {
		tm, err := pipeline.ParseTemplate(src)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 16<<10)
		n := testing.AllocsPerRun(100, func() { buf = tm.Render(buf[:0], &r, tmplContext()) })
		if n != 0 {
			t.Errorf("Render of %s into a large enough buffer, view decoded: %v allocations, want 0", src, n)
		}
	}
}

// BenchmarkTemplateRender renders a small JSON template on a record of
// 1 KiB JSON whose view is already decoded (as when a filter read it).
func BenchmarkTemplateRender(b *testing.B) {
	r := benchRecord(b)
	r.View()
	tm, err := pipeline.ParseTemplate(benchTemplate)
	if err != nil {
		b.Fatal(err)
	}
	ctx := tmplContext()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = tm.Render(buf[:0], &r, ctx)
	}
}

// BenchmarkTemplateRenderDecode is the same with the view decoded for
// each record, as when the template is the first to read it.
func BenchmarkTemplateRenderDecode(b *testing.B) {
	base := benchRecord(b)
	tm, err := pipeline.ParseTemplate(benchTemplate)
	if err != nil {
		b.Fatal(err)
	}
	ctx := tmplContext()
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(base.Value)))
	b.ReportAllocs()
	for b.Loop() {
		r := base // a copy with no view yet
		buf = tm.Render(buf[:0], &r, ctx)
	}
}

// BenchmarkRecordView decodes the view alone, to set the figure above
// apart.
func BenchmarkRecordView(b *testing.B) {
	base := benchRecord(b)
	b.SetBytes(int64(len(base.Value)))
	b.ReportAllocs()
	for b.Loop() {
		r := base
		r.View()
	}
}

// BenchmarkParamResolve reads a string path from a decoded record.
func BenchmarkParamResolve(b *testing.B) {
	r := benchRecord(b)
	r.View()
	p, err := pipeline.ParseParam("$.value.customer.id")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Resolve(&r)
	}
}
