package pipeline_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// TestParseEnvelopeRoundTrip: what AppendEnvelope writes, ParseEnvelope
// reads back, header bytes, null key and value and timestamp type included.
func TestParseEnvelopeRoundTrip(t *testing.T) {
	in := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "a:9092,b:9092"}
	ts := time.UnixMilli(1700000000123)
	in.Records = []pipeline.Record{
		{Topic: "a", Partition: 0, Offset: 4, Timestamp: ts, Key: []byte("k"), Value: []byte(`{"x":1}`),
			Headers: []pipeline.Header{{Key: "h1", Value: []byte{0x00, 0x7f, 0x80, 0xdc, 0xff}}, {Key: "h2", Value: []byte{}}}},
		{Topic: "a", Partition: 0, Offset: 5, Timestamp: ts, TimestampType: pipeline.LogAppendTime},
		{Topic: "b", Partition: 3, Offset: 9, Timestamp: ts, Value: []byte{}},
	}
	data := pipeline.AppendEnvelope(nil, in)
	out, err := pipeline.ParseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pipeline.AppendEnvelope(nil, out), data) {
		t.Fatalf("round trip differs:\n%s\n%s", pipeline.AppendEnvelope(nil, out), data)
	}
	if out.Records[1].Key != nil || out.Records[1].Value != nil || out.Records[2].Value == nil {
		t.Fatalf("null and empty values not kept: %+v", out.Records)
	}
	if !bytes.Equal(out.Records[0].Headers[0].Value, []byte{0x00, 0x7f, 0x80, 0xdc, 0xff}) {
		t.Fatalf("header bytes %v", out.Records[0].Headers[0].Value)
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[]`, "not a Kafka batch envelope: json: cannot unmarshal array into Go value of type struct { EventSource string \"json:\\\"eventSource\\\"\"; BootstrapServers string \"json:\\\"bootstrapServers\\\"\"; Records map[string][]json.RawMessage \"json:\\\"records\\\"\" }"},
		{`{}`, "not a Kafka batch envelope: no records object"},
		{`{"records":{"a-0":[{"partition":0,"offset":1}]}}`, `records["a-0"][0]: no topic`},
		{`{"records":{"a-0":[{"topic":"a","offset":1}]}}`, `records["a-0"][0]: no partition`},
		{`{"records":{"a-0":[{"topic":"a","partition":0}]}}`, `records["a-0"][0]: no offset`},
		{`{"records":{"a-0":[{"topic":"a","partition":0,"offset":1,"value":"!!"}]}}`, `records["a-0"][0]: value is not base64: illegal base64 data at input byte 0`},
		{`{"records":{"a-0":[{"topic":"a","partition":0,"offset":1,"headers":[{"h":[300]}]}]}}`, `records["a-0"][0]: header "h": 300 is not a byte`},
		{`{"records":{"a-0":[{"topic":"a","partition":0,"offset":1,"timestampType":"X"}]}}`, `records["a-0"][0]: timestampType "X" is not CREATE_TIME or LOG_APPEND_TIME`},
	} {
		_, err := pipeline.ParseEnvelope([]byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.in, err, tc.want)
		}
	}
}
