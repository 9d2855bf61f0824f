package filter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/pipeline"
)

// recorder is a target that keeps what it is given; failFirst makes its
// first n deliveries fail.
type recorder struct {
	mu        sync.Mutex
	batches   [][]string // per delivery: "offset=value"
	failFirst int
}

func (r *recorder) Deliver(_ context.Context, b *pipeline.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, rec := range b.Records {
		got = append(got, fmt.Sprintf("%s-%d@%d key=%s value=%s", rec.Topic, rec.Partition, rec.Offset, rec.Key, rec.Value))
	}
	r.batches = append(r.batches, got)
	if r.failFirst > 0 {
		r.failFirst--
		return errors.New("target unavailable")
	}
	return nil
}

func (r *recorder) Close() error { return nil }

var _ pipeline.Target = (*recorder)(nil)

const filterTransformPipe = `pipes:
  - name: big-orders
    source:
      kafka:
        bootstrapServers: 127.0.0.1:9092
        topics: [orders]
    filter:
      patterns:
        - '{"value": {"type": ["order"], "country": [{"anything-but": ["XX"]}]}}'
        - value:
            amount: [{numeric: [">=", 1000]}]
      expression: headers["source"] != "test"
    transform:
      expression: '{"id": value.orderId, "total": value.amount, "country": value.country ?? "unknown"}'
    target:
      stdout: {}
`

// buildPipe loads and builds the pipe with a recording target in place of
// the stdout one.
func buildPipe(t *testing.T, rec *recorder) *pipeline.Pipe {
	t.Helper()
	cfg, err := pipeline.Parse("pipes.yaml", []byte(filterTransformPipe))
	if err != nil {
		t.Fatal(err)
	}
	pipes, err := pipeline.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(pipes) != 1 || len(pipes[0].Stages) != 2 {
		t.Fatalf("built %d pipes, %d stages", len(pipes), len(pipes[0].Stages))
	}
	p := pipes[0]
	p.Target = rec
	p.Backoff = backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}
	return p
}

func orderBatch() *pipeline.Batch {
	values := []struct{ value, source string }{
		{`{"type":"order","orderId":1,"amount":10,"country":"DE"}`, "web"},   // 0 pattern 1
		{`{"type":"order","orderId":2,"amount":20,"country":"XX"}`, "web"},   // 1 anything-but XX: out
		{`{"type":"refund","orderId":3,"amount":5000}`, "web"},               // 2 pattern 2, no country
		{`{"type":"order","orderId":4,"amount":30,"country":"FR"}`, "test"},  // 3 expression: out
		{`{"type":"refund","orderId":5,"amount":999.99,"country":"DE"}`, ""}, // 4 no pattern: out
		{`not json`, "web"}, // 5 no pattern: out
		{`{"type":"order","orderId":6,"amount":1e3,"country":"XX"}`, "web"}, // 6 pattern 2
	}
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for i, v := range values {
		r := pipeline.Record{Topic: "orders", Partition: 0, Offset: int64(i), Timestamp: time.UnixMilli(1_700_000_000_000),
			Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v.value)}
		if v.source != "" {
			r.Headers = []pipeline.Header{{Key: "source", Value: []byte(v.source)}}
		}
		b.Records = append(b.Records, r)
	}
	return b
}

// TestPipeFilterThenTransform runs a batch through a pipe built from its
// YAML: the filter keeps the records that match a pattern and the
// expression, the transform reshapes them, and the target receives exactly
// those records with the new values.
func TestPipeFilterThenTransform(t *testing.T) {
	rec := &recorder{}
	p := buildPipe(t, rec)
	if err := p.Handle(context.Background(), orderBatch()); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{
		`orders-0@0 key=k0 value={"country":"DE","id":1,"total":10}`,
		`orders-0@2 key=k2 value={"country":"unknown","id":3,"total":5000}`,
		`orders-0@6 key=k6 value={"country":"XX","id":6,"total":1000}`,
	}}
	if !slices.EqualFunc(rec.batches, want, slices.Equal) {
		t.Fatalf("target received\n%s\nwant\n%s", show(rec.batches), show(want))
	}
}

// TestPipeRetryStartsFromTheOriginalBatch: when the target fails, the next
// attempt runs the stages again on the batch as the source gave it, and
// delivers the same records.
func TestPipeRetryStartsFromTheOriginalBatch(t *testing.T) {
	rec := &recorder{failFirst: 2}
	p := buildPipe(t, rec)
	b := orderBatch()
	before := pipeline.AppendEnvelope(nil, b)
	if err := p.Handle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(rec.batches) != 3 {
		t.Fatalf("%d deliveries, want 3", len(rec.batches))
	}
	for i := 1; i < 3; i++ {
		if !slices.Equal(rec.batches[i], rec.batches[0]) {
			t.Fatalf("delivery %d differs:\n%s", i+1, show(rec.batches))
		}
	}
	if len(rec.batches[0]) != 3 {
		t.Fatalf("delivered %d records, want 3", len(rec.batches[0]))
	}
	if string(pipeline.AppendEnvelope(nil, b)) != string(before) {
		t.Fatalf("the pipe changed the source's batch")
	}
}

// TestPipeAllFiltered: a batch whose records are all filtered out is done
// without calling the target.
func TestPipeAllFiltered(t *testing.T) {
	rec := &recorder{}
	p := buildPipe(t, rec)
	b := orderBatch()
	b.Records = slices.Delete(b.Records, 6, 7)
	b.Records = slices.Delete(b.Records, 2, 3)
	b.Records = slices.Delete(b.Records, 0, 1)
	if err := p.Handle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(rec.batches) != 0 {
		t.Fatalf("target called with\n%s", show(rec.batches))
	}
}

func show(batches [][]string) string {
	var b strings.Builder
	for i, recs := range batches {
		fmt.Fprintf(&b, "delivery %d:\n", i+1)
		for _, r := range recs {
			b.WriteString("  " + r + "\n")
		}
	}
	return b.String()
}
