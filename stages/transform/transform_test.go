package transform_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka"
	"github.com/pipe-run/pipe/stages/transform"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// pipeYAML is a whole pipes.yaml whose one pipe has the transform: block
// block (indented by four spaces).
func pipeYAML(block string) string {
	return `pipes:
  - name: p
    source:
      kafka: {bootstrapServers: "127.0.0.1:9092", topics: orders}
` + block + `    target:
      stdout: {}
`
}

// newStage loads a pipe whose transform expression is src and builds its
// stage.
func newStage(t testing.TB, src string) *transform.Stage {
	t.Helper()
	cfg, err := pipeline.Parse("pipes.yaml", []byte(pipeYAML("    transform:\n      expression: '"+strings.ReplaceAll(src, "'", "''")+"'\n")))
	if err != nil {
		t.Fatalf("parsing %q: %v", src, err)
	}
	tc, ok := cfg.Pipes[0].Transform.(*transform.Config)
	if !ok {
		t.Fatalf("transform is %T", cfg.Pipes[0].Transform)
	}
	st, err := tc.NewStage(pipeline.Env{Pipe: "p"})
	if err != nil {
		t.Fatal(err)
	}
	return st.(*transform.Stage)
}

func testBatch(values ...[]byte) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for i, v := range values {
		b.Records = append(b.Records, pipeline.Record{
			Topic: "orders", Partition: 4, Offset: int64(70 + i),
			Timestamp:     time.UnixMilli(1_700_000_000_000 + int64(i)),
			TimestampType: pipeline.LogAppendTime,
			Key:           []byte(`{"id":` + string(rune('0'+i)) + `}`),
			Value:         v,
			Headers:       []pipeline.Header{{Key: "source", Value: []byte("web")}, {Key: "empty"}},
		})
	}
	return b
}

const orderValue = `{"orderId":"o-1","amount":250.5,"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}],"customer":{"country":"DE","vip":true},"big":12345678901234567890}`

// TestResultTypes: each kind of result becomes the new value as the
// package documents.
func TestResultTypes(t *testing.T) {
	cases := []struct {
		src   string
		value string
		want  []byte // nil: no value
	}{
		// A string: its text, not JSON-quoted.
		{`value.orderId`, orderValue, []byte("o-1")},
		{`"id=" + value.orderId + "\n"`, orderValue, []byte("id=o-1\n")},
		{`""`, orderValue, []byte{}},
		{`value`, `plain text`, []byte("plain text")},
		{`value`, `"a JSON string"`, []byte("a JSON string")},
		{`rawValue`, orderValue, []byte(orderValue)},
		// A map: JSON with its keys sorted.
		{`{"z": value.orderId, "a": value.amount * 2, "m": {"y": 1, "b": [true, nil]}}`, orderValue,
			[]byte(`{"a":501,"m":{"b":[true,null],"y":1},"z":"o-1"}`)},
		{`value.customer`, orderValue, []byte(`{"country":"DE","vip":true}`)},
		{`{"html": "<a & b>"}`, orderValue, []byte(`{"html":"\u003ca \u0026 b\u003e"}`)},
		// A whole JSON value goes through the map shapes: keys sorted,
		// numbers as float64.
		{`value`, `{"b":1,"a":1e2,"c":[1.50]}`, []byte(`{"a":100,"b":1,"c":[1.5]}`)},
		{`value.big`, orderValue, []byte(`12345678901234567000`)},
		// A list.
		{`map(value.items, .sku)`, orderValue, []byte(`["a","b"]`)},
		{`value.items`, orderValue, []byte(`[{"qty":2,"sku":"a"},{"qty":1,"sku":"b"}]`)},
		{`[]`, orderValue, []byte(`[]`)},
		// Numbers: ints and floats.
		{`len(value.items)`, orderValue, []byte(`2`)},
		{`value.amount`, orderValue, []byte(`250.5`)},
		{`value.amount * 4`, orderValue, []byte(`1002`)},
		{`partition + offset`, orderValue, []byte(`74`)},
		// Booleans.
		{`value.customer.vip`, orderValue, []byte(`true`)},
		{`value.amount < 100`, orderValue, []byte(`false`)},
		// nil: no value (a Kafka null).
		{`nil`, orderValue, nil},
		{`value.missing`, orderValue, nil},
		{`value`, ``, []byte{}}, // an empty value is the empty text
		// Bytes: no expression yields a []byte, but a string holds any
		// bytes, and they are taken as they are.
		{`fromBase64("AP/+")`, orderValue, []byte{0x00, 0xff, 0xfe}},
		// A time: JSON's RFC 3339 string.
		{`date("2024-05-17T10:21:33Z")`, orderValue, []byte(`"2024-05-17T10:21:33Z"`)},
	}
	for _, c := range cases {
		t.Run(c.src+" on "+c.value, func(t *testing.T) {
			s := newStage(t, c.src)
			b := testBatch([]byte(c.value))
			out, err := s.Process(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			got := out.Records[0].Value
			if (got == nil) != (c.want == nil) || !bytes.Equal(got, c.want) {
				t.Fatalf("value %q (nil: %v), want %q (nil: %v)", got, got == nil, c.want, c.want == nil)
			}
			// Apply gives the same bytes.
			if v, err := s.Apply(&b.Records[0]); err != nil || !bytes.Equal(v, c.want) || (v == nil) != (c.want == nil) {
				t.Fatalf("Apply = %q, %v", v, err)
			}
		})
	}
	// A nil value is a Kafka null: the envelope has no value.
	out, err := newStage(t, `nil`).Process(context.Background(), testBatch([]byte(orderValue)))
	if err != nil {
		t.Fatal(err)
	}
	if env := string(pipeline.AppendEnvelope(nil, out)); strings.Contains(env, `"value"`) || !strings.Contains(env, `"key"`) {
		t.Fatalf("envelope of a nil value: %s", env)
	}
}

// TestRecordsKeepTheRest: key, headers, coordinates and timestamps stay;
// the records come out in order; the batch handed in is not changed; the
// new records are decoded afresh (their view is of the new value).
func TestRecordsKeepTheRest(t *testing.T) {
	s := newStage(t, `{"id": value.orderId, "n": offset, "src": headers.source}`)
	b := testBatch([]byte(`{"orderId":"a"}`), []byte(`{"orderId":"b"}`), []byte(`{"orderId":"c"}`))
	for i := range b.Records {
		b.Records[i].View() // the old view must not leak into the new records
	}
	before := pipeline.AppendEnvelope(nil, b)
	for attempt := range 2 {
		out, err := s.Process(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		if out == b || len(out.Records) != 3 {
			t.Fatalf("attempt %d: %d records, same batch: %v", attempt, len(out.Records), out == b)
		}
		if out.EventSource != b.EventSource || out.BootstrapServers != b.BootstrapServers {
			t.Fatalf("envelope fields %q %q", out.EventSource, out.BootstrapServers)
		}
		for i := range out.Records {
			r, in := &out.Records[i], &b.Records[i]
			if r.Topic != in.Topic || r.Partition != in.Partition || r.Offset != in.Offset ||
				!r.Timestamp.Equal(in.Timestamp) || r.TimestampType != in.TimestampType ||
				!bytes.Equal(r.Key, in.Key) || !reflect.DeepEqual(r.Headers, in.Headers) {
				t.Fatalf("record %d changed beyond its value:\n got %+v\nwant %+v", i, r, in)
			}
			want := `{"id":"` + string(rune('a'+i)) + `","n":` + string(rune('0'+70/10)) + string(rune('0'+i)) + `,"src":"web"}`
			if string(r.Value) != want {
				t.Fatalf("record %d value %s, want %s", i, r.Value, want)
			}
			if got := r.View().Get("value").Get("id"); got == nil || got.Str != string(rune('a'+i)) {
				t.Fatalf("record %d's view shows %v, not the new value", i, got)
			}
		}
		if !bytes.Equal(pipeline.AppendEnvelope(nil, b), before) {
			t.Fatalf("Process changed the batch it was given")
		}
	}
}

// TestRuntimeErrorFailsTheBatch: a record the expression fails on fails
// the whole batch with a permanent error naming it; the batch is left as
// it was.
func TestRuntimeErrorFailsTheBatch(t *testing.T) {
	s := newStage(t, `value.items[1].sku`)
	b := testBatch([]byte(orderValue), []byte(`{"items":[{"sku":"x"}]}`), []byte(orderValue))
	before := pipeline.AppendEnvelope(nil, b)
	out, err := s.Process(context.Background(), b)
	if err == nil {
		t.Fatalf("no error; got %d records", len(out.Records))
	}
	if out != nil {
		t.Errorf("a batch came back with the error")
	}
	if !pipeline.IsPermanent(err) {
		t.Errorf("error is not permanent: %v", err)
	}
	if want := "transform failed on orders-4 offset 71: index out of range: 1 (array length is 1)"; err.Error() != want {
		t.Errorf("error\n  %s\nwant\n  %s", err, want)
	}
	if !bytes.Equal(pipeline.AppendEnvelope(nil, b), before) {
		t.Errorf("the failed Process changed the batch")
	}

	// A result JSON cannot hold fails the same way.
	_, err = newStage(t, `value.amount / 0 - value.amount / 0`).Process(context.Background(), testBatch([]byte(orderValue)))
	if err == nil || !pipeline.IsPermanent(err) || !strings.HasPrefix(err.Error(), "transform failed on orders-4 offset 70: result is not JSON: ") {
		t.Errorf("NaN result: %v", err)
	}
	var je interface{ Unwrap() error }
	if !errors.As(err, &je) {
		t.Errorf("error wraps nothing: %v", err)
	}
}

// TestConfigProblems: a transform needs its expression, and the expression
// is compiled with its place in the file.
func TestConfigProblems(t *testing.T) {
	cases := []struct{ block, want string }{
		{"    transform: {}\n", `pipes.yaml:5:16: pipe "p": transform: missing required key "expression"`},
		{"    transform:\n      expression:\n", `pipes.yaml:6:18: pipe "p": transform.expression: is required and cannot be null`},
		{"    transform:\n      expression: ''\n", `pipes.yaml:6:20: pipe "p": transform.expression: expression: is empty`},
		{"    transform:\n      expression: [value]\n", `pipes.yaml:6:19: pipe "p": transform.expression: expected an expression (a string)`},
		{"    transform:\n      expression: valu\n", `pipes.yaml:6:19: pipe "p": transform.expression: expression: unknown name valu`},
		{"    transform:\n      expression: topic + 1\n", `pipes.yaml:6:25: pipe "p": transform.expression: expression: invalid operation: + (mismatched types string and int)`},
		{"    transform:\n      expression: 'topic + 1'\n", `pipes.yaml:6:26: pipe "p": transform.expression: expression: invalid operation: + (mismatched types string and int)`},
		{"    transform:\n      expression: |\n        {\"a\": value,\n         \"b\": topic * 2}\n", `pipes.yaml:8:19: pipe "p": transform.expression: expression: invalid operation: * (mismatched types string and int) (column 13 of that line of the expression)`},
		{"    transform:\n      expr: value\n", `pipes.yaml:6:7: pipe "p": transform.expr: unknown key "expr" (known: expression)` + "\n" +
			`pipes.yaml:6:7: pipe "p": transform: missing required key "expression"`},
	}
	for _, c := range cases {
		_, err := pipeline.Parse("pipes.yaml", []byte(pipeYAML(c.block)))
		if err == nil || err.Error() != c.want {
			t.Errorf("transform block\n%serror\n  %v\nwant\n  %s", c.block, err, c.want)
		}
	}
}
