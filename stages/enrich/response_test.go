package enrich

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

func testBatch() *pipeline.Batch {
	ts := time.UnixMilli(1_700_000_000_000)
	return &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b:9092", Records: []pipeline.Record{
		{Topic: "orders", Partition: 0, Offset: 5, Timestamp: ts, Key: []byte("k5"), Value: []byte(`{"id":5}`), Headers: []pipeline.Header{{Key: "h", Value: []byte("v")}}},
		{Topic: "orders", Partition: 0, Offset: 6, Timestamp: ts, Key: []byte("k6"), Value: []byte(`{"id":6}`)},
		{Topic: "orders-eu", Partition: 2, Offset: 9, Timestamp: ts, TimestampType: pipeline.LogAppendTime, Value: []byte("plain")},
	}}
}

// show writes a batch's records one per line, so results compare as text.
func show(b *pipeline.Batch) string {
	if b == nil {
		return "<nothing>"
	}
	var s strings.Builder
	for _, r := range b.Records {
		key := "null"
		if r.Key != nil {
			key = fmt.Sprintf("%q", r.Key)
		}
		val := "null"
		if r.Value != nil {
			val = fmt.Sprintf("%q", r.Value)
		}
		fmt.Fprintf(&s, "%s-%d/%d ts=%d %s key=%s value=%s headers=", r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli(), r.TimestampType, key, val)
		for _, h := range r.Headers {
			fmt.Fprintf(&s, "%s:%q;", h.Key, h.Value)
		}
		s.WriteString("\n")
	}
	return s.String()
}

const (
	r5 = "orders-0/5 ts=1700000000000 CREATE_TIME key=\"k5\" value=\"{\\\"id\\\":5}\" headers=h:\"v\";\n"
	r6 = "orders-0/6 ts=1700000000000 CREATE_TIME key=\"k6\" value=\"{\\\"id\\\":6}\" headers=\n"
	r9 = "orders-eu-2/9 ts=1700000000000 LOG_APPEND_TIME key=null value=\"plain\" headers=\n"
)

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name, answer, want string
	}{
		// Nothing to deliver.
		{"empty", ``, "<nothing>"},
		{"blank", " \n\t", "<nothing>"},
		{"null", `null`, "<nothing>"},
		{"empty string", `""`, "<nothing>"},
		{"empty object", `{}`, "<nothing>"},
		{"empty array", ` [ ] `, "<nothing>"},
		{"no records", `{"records":{}}`, "<nothing>"},
		{"null records", `{"eventSource":"x","records":null}`, "<nothing>"},

		// Envelope-shaped: replaced by coordinates.
		{"envelope echo", string(pipeline.AppendEnvelope(nil, testBatch())), r5 + r6 + r9},
		{"envelope drops the missing", `{"records":{"orders-eu-2":[{"topic":"orders-eu","partition":2,"offset":9}]}}`, r9},
		{"envelope keeps batch order", `{"records":{"orders-eu-2":[{"topic":"orders-eu","partition":2,"offset":9}],"orders-0":[{"topic":"orders","partition":0,"offset":6},{"topic":"orders","partition":0,"offset":5}]}}`, r5 + r6 + r9},
		{"envelope new value", `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":6,"value":"eyJpZCI6NiwidGllciI6Imdvb2QifQ=="}]}}`,
			"orders-0/6 ts=1700000000000 CREATE_TIME key=\"k6\" value=\"{\\\"id\\\":6,\\\"tier\\\":\\\"good\\\"}\" headers=\n"},
		{"envelope everything", `{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":{"orders-0":[{"topic":"orders","partition":0,"offset":5,"timestamp":1,"timestampType":"LOG_APPEND_TIME","key":"","value":null,"headers":[{"a":[-36,1]},{"a":[255]}]}]}}`,
			"orders-0/5 ts=1 LOG_APPEND_TIME key=\"\" value=null headers=a:\"\\xdc\\x01\";a:\"\\xff\";\n"},
		{"envelope null key and headers", `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":5,"key":null,"headers":null}]}}`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"{\\\"id\\\":5}\" headers=\n"},

		// One element per record: new values.
		{"per record", `[{"id":5,"x":true}, "text", 42]`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=\"k5\" value=\"{\\\"id\\\":5,\\\"x\\\":true}\" headers=h:\"v\";\n" +
				"orders-0/6 ts=1700000000000 CREATE_TIME key=\"k6\" value=\"text\" headers=\n" +
				"orders-eu-2/9 ts=1700000000000 LOG_APPEND_TIME key=null value=\"42\" headers=\n"},
		{"per record drops null", `[null, {"a" : [1, 2]}, null]`,
			"orders-0/6 ts=1700000000000 CREATE_TIME key=\"k6\" value=\"{\\\"a\\\" : [1, 2]}\" headers=\n"},
		{"per record all null", `[null,null,null]`, "<nothing>"},
		{"per record escaped string", `["a\"b\u00e9", "", false]`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=\"k5\" value=\"a\\\"bé\" headers=h:\"v\";\n" +
				"orders-0/6 ts=1700000000000 CREATE_TIME key=\"k6\" value=\"\" headers=\n" +
				"orders-eu-2/9 ts=1700000000000 LOG_APPEND_TIME key=null value=\"false\" headers=\n"},

		// Any other array: new events at the first record's coordinates.
		{"new events", `[{"n":1}, "two"]`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"{\\\"n\\\":1}\" headers=\n" +
				"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"two\" headers=\n"},
		{"new events skip null", `[1, null, 2, 3]`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"1\" headers=\n" +
				"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"2\" headers=\n" +
				"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"3\" headers=\n"},
		{"one new event", `[{"summary":3}]`,
			"orders-0/5 ts=1700000000000 CREATE_TIME key=null value=\"{\\\"summary\\\":3}\" headers=\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testBatch()
			before := show(in)
			out, err := Apply([]byte(tc.answer), in)
			if err != nil {
				t.Fatalf("answer %s: %v", tc.answer, err)
			}
			if got := show(out); got != tc.want {
				t.Errorf("answer %s:\n got %s\nwant %s", tc.answer, got, tc.want)
			}
			if out != nil && (out.EventSource != in.EventSource || out.BootstrapServers != in.BootstrapServers || len(out.Records) == 0) {
				t.Errorf("batch fields %q %q, %d records", out.EventSource, out.BootstrapServers, len(out.Records))
			}
			if show(in) != before {
				t.Errorf("Apply changed its input")
			}
		})
	}
}

func TestApplyFailures(t *testing.T) {
	rec := func(fields string) string {
		return `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":5` + fields + `}]}}`
	}
	for _, tc := range []struct{ name, answer, want string }{
		{"not JSON", `ok`, "not JSON"},
		{"truncated", `[1,2`, "not JSON"},
		{"two values", `{} {}`, "not JSON"},
		{"number", `42`, "a JSON number"},
		{"boolean", `true`, "a JSON boolean"},
		{"string", `"done"`, "a JSON string"},
		{"object without records", `{"statusCode":200,"body":"x"}`, `an object without "records"`},
		{"function error body", `{"errorMessage":"boom","errorType":"Error"}`, `an object without "records"`},
		{"records a list", `{"records":[1]}`, `"records" is array`},
		{"partition not a list", `{"records":{"orders-0":{}}}`, `records["orders-0"] is object`},
		{"record not an object", `{"records":{"orders-0":[5]}}`, `is number, not a record`},
		{"no topic", `{"records":{"orders-0":[{"partition":0,"offset":5}]}}`, `no "topic" string`},
		{"no offset", `{"records":{"orders-0":[{"topic":"orders","partition":0}]}}`, `no integer "offset"`},
		{"fractional offset", `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":5.5}]}}`, `no integer "offset"`},
		{"partition as string", `{"records":{"orders-0":[{"topic":"orders","partition":"0","offset":5}]}}`, `no integer "partition"`},
		{"wrong key", `{"records":{"orders-1":[{"topic":"orders","partition":0,"offset":5}]}}`, `listed under "orders-1"`},
		{"unknown record", `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":7}]}}`, "not in the batch"},
		{"twice", `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":5},{"topic":"orders","partition":0,"offset":5}]}}`, "twice"},
		{"value not base64", rec(`,"value":"not base64!"`), `"value" is not standard base64`},
		{"value an object", rec(`,"value":{"id":1}`), `"value" is object`},
		{"key a number", rec(`,"key":1`), `"key" is number`},
		{"bad timestamp", rec(`,"timestamp":"now"`), `"timestamp" is not an integer`},
		{"bad timestampType", rec(`,"timestampType":"NOW"`), `"timestampType" is not`},
		{"headers object", rec(`,"headers":{"a":[1]}`), `"headers" is object`},
		{"header two keys", rec(`,"headers":[{"a":[1],"b":[2]}]`), `headers[0] is not an object with one key`},
		{"header text", rec(`,"headers":[{"a":"text"}]`), `headers[0] is not an object with one key`},
		{"header byte too big", rec(`,"headers":[{"a":[256]}]`), `headers[0] holds something other than bytes`},
		{"header byte too small", rec(`,"headers":[{"a":[-129]}]`), `headers[0] holds something other than bytes`},
		{"too large", `"` + strings.Repeat("x", MaxResponseSize) + `"`, "above the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Apply([]byte(tc.answer), testBatch())
			if err == nil {
				t.Fatalf("answer %.100s: got %s, want an error", tc.answer, show(out))
			}
			if !errors.Is(err, ErrBadResponse) || pipeline.IsPermanent(err) {
				t.Errorf("error %v: want a retryable ErrBadResponse", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestApplyLargestAnswer(t *testing.T) {
	// An answer of exactly 6 MB is accepted.
	in := testBatch()
	v := strings.Repeat("y", MaxResponseSize-len(`["",null,null]`))
	out, err := Apply([]byte(`["`+v+`",null,null]`), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || len(out.Records[0].Value) != len(v) {
		t.Fatalf("got %d records", len(out.Records))
	}
}

func TestRequest(t *testing.T) {
	b := testBatch()
	env := pipeline.Env{Pipe: "orders-pipe"}

	s := NewStage(env, nil, nil, "test")
	if got := s.Request(nil, b); !bytes.Equal(got, pipeline.AppendEnvelope(nil, b)) {
		t.Errorf("without a template the request is not the envelope:\n%s", got)
	}

	for _, tc := range []struct{ tmpl, want string }{
		{`{"id": <$.value.id>, "key": "<$.key>", "pipe": "<aws.pipes.pipe-name>"}`,
			`[{"id": 5, "key": "k5", "pipe": "orders-pipe"},{"id": 6, "key": "k6", "pipe": "orders-pipe"},{"id": null, "key": "", "pipe": "orders-pipe"}]`},
		{`<$.value>`, `["{\"id\":5}","{\"id\":6}","plain"]`},
		{`order "<$.value.id>" from <aws.pipes.pipe-name>`, `["order \"5\" from orders-pipe","order \"6\" from orders-pipe","order \"\" from orders-pipe"]`},
		{`static`, `["static","static","static"]`},
	} {
		tmpl, p := ParseInputTemplate(tc.tmpl)
		if p != nil {
			t.Fatalf("%s: %s", tc.tmpl, p.Msg)
		}
		got := NewStage(env, nil, tmpl, "test").Request(nil, b)
		if string(got) != tc.want {
			t.Errorf("template %s:\n got %s\nwant %s", tc.tmpl, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("template %s: the request is not JSON: %s", tc.tmpl, got)
		}
	}

	if _, p := ParseInputTemplate(`{"id": <$.value.>}`); p == nil || p.Field != "inputTemplate" {
		t.Errorf("a bad template gave %v", p)
	}
}
