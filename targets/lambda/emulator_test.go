package lambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// mixedBatch has several topics and partitions, a null key, an empty and a
// null value, headers with bytes above 127, duplicate and empty headers.
func mixedBatch() *pipeline.Batch {
	ts := time.UnixMilli(1_545_084_650_987)
	return batch(
		pipeline.Record{Topic: "orders", Partition: 0, Offset: 15, Timestamp: ts, Key: []byte("k1"), Value: []byte(`{"orderId":1}`),
			Headers: []pipeline.Header{{Key: "h", Value: []byte{0xdc, 0x00, 0x7f, 0x80, 0xff}}, {Key: "h", Value: []byte("dup")}, {Key: "empty", Value: []byte{}}}},
		pipeline.Record{Topic: "orders", Partition: 0, Offset: 16, Timestamp: ts.Add(time.Millisecond), Value: []byte("no key")},
		pipeline.Record{Topic: "orders", Partition: 3, Offset: 7, Timestamp: ts, TimestampType: pipeline.LogAppendTime, Key: []byte("k3"), Value: []byte{}},
		pipeline.Record{Topic: "audit.log", Partition: 1, Offset: 99, Timestamp: ts, Key: []byte{0xff, 0xfe}},
	)
}

func TestEmulatorEnvelope(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "echo"})
	tg := newTarget(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction)
	b := mixedBatch()
	if err := tg.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	evs := fn.Events(t)
	if len(evs) != 1 {
		t.Fatalf("the function received %d events, want 1", len(evs))
	}
	if want := pipeline.AppendEnvelope(nil, b); !bytes.Equal(evs[0].Payload, want) {
		t.Fatalf("the function received\n%s\nwant the envelope\n%s", evs[0].Payload, want)
	}
	ev := evs[0].Event
	if ev == nil {
		t.Fatal("the function could not decode events.KafkaEvent")
	}
	if ev.EventSource != "SelfManagedKafka" || ev.BootstrapServers != "b-1:9092,b-2:9092" {
		t.Errorf("eventSource %q, bootstrapServers %q", ev.EventSource, ev.BootstrapServers)
	}
	if len(ev.Records) != 3 {
		t.Errorf("records keyed %v, want orders-0, orders-3, audit.log-1", keys(ev.Records))
	}
	for _, r := range b.Records {
		pk := r.Topic + "-" + strconv.Itoa(int(r.Partition))
		var got *events.KafkaRecord
		for i := range ev.Records[pk] {
			if ev.Records[pk][i].Offset == r.Offset {
				got = &ev.Records[pk][i]
			}
		}
		if got == nil {
			t.Errorf("%s offset %d is missing from the decoded event", pk, r.Offset)
			continue
		}
		if got.Topic != r.Topic || got.Partition != int64(r.Partition) || !got.Timestamp.Equal(r.Timestamp) || got.TimestampType != r.TimestampType.String() {
			t.Errorf("%s offset %d decoded as %+v", pk, r.Offset, got)
		}
		if k, _ := base64.StdEncoding.DecodeString(got.Key); !bytes.Equal(k, r.Key) {
			t.Errorf("%s offset %d: key %q, want %q", pk, r.Offset, k, r.Key)
		}
		if v, _ := base64.StdEncoding.DecodeString(got.Value); !bytes.Equal(v, r.Value) {
			t.Errorf("%s offset %d: value %q, want %q", pk, r.Offset, v, r.Value)
		}
		if len(got.Headers) != len(r.Headers) {
			t.Errorf("%s offset %d: %d headers, want %d", pk, r.Offset, len(got.Headers), len(r.Headers))
			continue
		}
		for i, h := range r.Headers {
			if v, ok := got.Headers[i][h.Key]; !ok || !bytes.Equal(v, h.Value) || len(got.Headers[i]) != 1 {
				t.Errorf("%s offset %d: header %d is %v, want %s=%v", pk, r.Offset, i, got.Headers[i], h.Key, h.Value)
			}
		}
	}
	reqs := fn.Requests()
	if got := reqs[len(reqs)-1].Header.Get("X-Amz-Invocation-Type"); got != "RequestResponse" {
		t.Errorf("X-Amz-Invocation-Type %q, want RequestResponse", got)
	}
}

// TestEmulatorBatchItemFailures runs a batch through a pipe whose function
// reports two records as failed the first time it sees them: the retry
// invokes it with exactly those records and the later ones of their
// partitions.
func TestEmulatorBatchItemFailures(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "fail-keys", FailKeys: []string{"bad-a", "bad-b"}, FailOnce: true})
	tg := newTarget(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction, "reportBatchItemFailures: true")
	b := batch(
		rec(0, 10, "ok", "1"), rec(0, 11, "bad-a", "2"), rec(0, 12, "ok", "3"), rec(0, 13, "ok", "4"),
		rec(1, 20, "ok", "5"), rec(1, 21, "ok", "6"),
		rec(2, 30, "bad-b", "7"), rec(2, 31, "ok", "8"),
	)
	p := &pipeline.Pipe{Name: "test", Target: tg, Backoff: backoff.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	evs := fn.Events(t)
	if len(evs) != 2 {
		t.Fatalf("the function was invoked %d times, want 2", len(evs))
	}
	if want := pipeline.AppendEnvelope(nil, b); !bytes.Equal(evs[0].Payload, want) {
		t.Errorf("first invocation:\n%s\nwant\n%s", evs[0].Payload, want)
	}
	retried := batch(b.Records[1], b.Records[2], b.Records[3], b.Records[6], b.Records[7])
	if want := pipeline.AppendEnvelope(nil, retried); !bytes.Equal(evs[1].Payload, want) {
		t.Errorf("the retry invoked the function with\n%s\nwant exactly the failed records and the later ones of their partitions\n%s", evs[1].Payload, want)
	}
}

func TestEmulatorFireAndForget(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "echo"})
	tg := newTarget(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction, "invocationType: FIRE_AND_FORGET")
	b := mixedBatch()
	if err := tg.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	reqs := fn.Requests()
	if got := reqs[len(reqs)-1].Header.Get("X-Amz-Invocation-Type"); got != "Event" {
		t.Errorf("X-Amz-Invocation-Type %q, want Event", got)
	}
	evs := fn.Events(t)
	if len(evs) != 1 || !bytes.Equal(evs[0].Payload, pipeline.AppendEnvelope(nil, b)) {
		t.Fatalf("the function received %d events, want the envelope once", len(evs))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
