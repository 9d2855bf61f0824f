package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// recorder is an on-failure destination that keeps what it got; it fails
// its first fails sends.
type recorder struct {
	mu       sync.Mutex
	fails    int
	sends    int
	failures []*pipeline.Failure
	lines    [][]byte
}

func (r *recorder) Send(ctx context.Context, f *pipeline.Failure) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends++
	if r.sends <= r.fails {
		return errors.New("destination down")
	}
	r.failures = append(r.failures, f)
	r.lines = append(r.lines, pipeline.AppendFailureRecord(nil, f, true))
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) offsets() [][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]int64
	for _, f := range r.failures {
		var offs []int64
		for _, rec := range f.Batch.Records {
			offs = append(offs, rec.Offset)
		}
		out = append(out, offs)
	}
	return out
}

// poison is a target that rejects every batch holding one of the poison
// offsets, and records the offsets it accepted.
type poison struct {
	bad       map[int64]bool
	permanent bool
	mu        sync.Mutex
	calls     int
	delivered []int64
}

func (p *poison) Deliver(ctx context.Context, b *pipeline.Batch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, r := range b.Records {
		if p.bad[r.Offset] {
			err := fmt.Errorf("record %d is poison", r.Offset)
			if p.permanent {
				return pipeline.Permanent(err)
			}
			return err
		}
	}
	for _, r := range b.Records {
		p.delivered = append(p.delivered, r.Offset)
	}
	return nil
}

func (p *poison) Close() error { return nil }

func policyPipe(tg pipeline.Target, dest pipeline.Destination, retries int, bisect bool) *pipeline.Pipe {
	return &pipeline.Pipe{Name: "test", Target: tg, Backoff: tiny, MaxRetries: retries, Bisect: bisect,
		OnFailure: dest, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestBisectIsolatesPoison: with bisect, each poison record of a batch of
// 100 ends alone in the destination after its retries, the other records are
// delivered in order.
func TestBisectIsolatesPoison(t *testing.T) {
	tg := &poison{bad: map[int64]bool{3: true, 50: true, 99: true}}
	dest := &recorder{}
	p := policyPipe(tg, dest, 2, true)
	if err := p.Handle(context.Background(), testBatch(100)); err != nil {
		t.Fatal(err)
	}
	if got := dest.offsets(); fmt.Sprint(got) != "[[3] [50] [99]]" {
		t.Fatalf("dead-lettered %v, want [[3] [50] [99]]", got)
	}
	var want []int64
	for i := int64(0); i < 100; i++ {
		if !tg.bad[i] {
			want = append(want, i)
		}
	}
	if !slices.Equal(tg.delivered, want) {
		t.Fatalf("delivered %v", tg.delivered)
	}
	for _, f := range dest.failures {
		if f.Condition != pipeline.RetryAttemptsExhausted || f.Attempts != 3 || f.Stage != "target" {
			t.Errorf("failure %+v: want RetryAttemptsExhausted after 3 attempts at the target", f)
		}
	}
	if p.Stats.DeadLettered.Load() != 3 || p.Stats.Bisects.Load() == 0 {
		t.Errorf("stats: %d dead-lettered, %d bisects", p.Stats.DeadLettered.Load(), p.Stats.Bisects.Load())
	}
}

// TestRetriesThenDestination: without bisect, the whole batch is retried
// maxRetries times, then goes to the destination as one failure.
func TestRetriesThenDestination(t *testing.T) {
	tg := &poison{bad: map[int64]bool{2: true}}
	dest := &recorder{}
	p := policyPipe(tg, dest, 3, false)
	if err := p.Handle(context.Background(), testBatch(5)); err != nil {
		t.Fatal(err)
	}
	if tg.calls != 4 {
		t.Errorf("%d calls, want 4 (1 + 3 retries)", tg.calls)
	}
	if got := dest.offsets(); fmt.Sprint(got) != "[[0 1 2 3 4]]" {
		t.Fatalf("dead-lettered %v", got)
	}
	if p.Stats.Retries.Load() != 3 {
		t.Errorf("%d retries counted", p.Stats.Retries.Load())
	}
}

// TestPermanentSkipsRetries: a permanent failure goes to the destination at
// once.
func TestPermanentSkipsRetries(t *testing.T) {
	tg := &poison{bad: map[int64]bool{0: true}, permanent: true}
	dest := &recorder{}
	p := policyPipe(tg, dest, 10, false)
	if err := p.Handle(context.Background(), testBatch(2)); err != nil {
		t.Fatal(err)
	}
	if tg.calls != 1 || len(dest.failures) != 1 || dest.failures[0].Attempts != 1 {
		t.Fatalf("%d calls, failures %+v", tg.calls, dest.failures)
	}
}

// TestPermanentWithoutDestinationRetries: nothing is dropped when there is
// no destination: the batch is retried until the target accepts it.
func TestPermanentWithoutDestinationRetries(t *testing.T) {
	tg := &flaky{failures: 4, err: pipeline.Permanent(errors.New("400"))}
	p := policyPipe(tg, nil, 0, false)
	if err := p.Handle(context.Background(), testBatch(2)); err != nil {
		t.Fatal(err)
	}
	if tg.count() != 5 {
		t.Fatalf("%d calls, want 5", tg.count())
	}
}

// TestDestinationDownWaits: a destination that fails is retried until it
// stores the failure; Handle returns only then.
func TestDestinationDownWaits(t *testing.T) {
	tg := &poison{bad: map[int64]bool{0: true}, permanent: true}
	dest := &recorder{fails: 3}
	p := policyPipe(tg, dest, 0, false)
	if err := p.Handle(context.Background(), testBatch(1)); err != nil {
		t.Fatal(err)
	}
	if dest.sends != 4 || len(dest.failures) != 1 || p.Stats.DestinationFails.Load() != 3 {
		t.Fatalf("%d sends, %d stored, %d fails counted", dest.sends, len(dest.failures), p.Stats.DestinationFails.Load())
	}
}

// TestDestinationDownCancelled: while the destination is down, cancelling
// ends Handle with the batch not done.
func TestDestinationDownCancelled(t *testing.T) {
	tg := &poison{bad: map[int64]bool{0: true}, permanent: true}
	dest := &recorder{fails: 1 << 30}
	p := policyPipe(tg, dest, 0, false)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			dest.mu.Lock()
			n := dest.sends
			dest.mu.Unlock()
			if n >= 3 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := p.Handle(ctx, testBatch(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Handle: %v, want context.Canceled", err)
	}
}

// TestRecordAge: records older than MaxAge go to the destination with
// RecordAgeExceeded before the target is tried; the others are delivered.
func TestRecordAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	b := testBatch(4)
	for i := range b.Records {
		b.Records[i].Timestamp = now.Add(-time.Duration(4-i) * time.Minute)
	}
	tg := &poison{}
	dest := &recorder{}
	p := policyPipe(tg, dest, 0, false)
	p.MaxAge = 150 * time.Second
	p.Now = func() time.Time { return now }
	if err := p.Handle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := dest.offsets(); fmt.Sprint(got) != "[[0 1]]" || dest.failures[0].Condition != pipeline.RecordAgeExceeded {
		t.Fatalf("dead-lettered %v", got)
	}
	if !slices.Equal(tg.delivered, []int64{2, 3}) {
		t.Fatalf("delivered %v", tg.delivered)
	}
}

// TestTooLarge: a target's TooLarge error gives condition
// MaximumPayloadSizeExceeded and a null responseContext.
func TestTooLarge(t *testing.T) {
	tg := &flaky{failures: 1, err: pipeline.TooLarge(errors.New("413 request too large"))}
	dest := &recorder{}
	p := policyPipe(tg, dest, 5, false)
	if err := p.Handle(context.Background(), testBatch(1)); err != nil {
		t.Fatal(err)
	}
	if len(dest.failures) != 1 || dest.failures[0].Condition != pipeline.MaximumPayloadSizeExceeded {
		t.Fatalf("failures %+v", dest.failures)
	}
	var rec map[string]any
	if err := json.Unmarshal(dest.lines[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec["responseContext"] != nil {
		t.Errorf("responseContext %v, want null", rec["responseContext"])
	}
}

// TestStageFailureNamed: a stage that fails is named in the failure.
func TestStageFailureNamed(t *testing.T) {
	bad := stageFunc(func(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		return nil, pipeline.Permanent(errors.New("cannot transform"))
	})
	dest := &recorder{}
	p := policyPipe(&poison{}, dest, 1, false)
	p.Stages, p.StageNames = []pipeline.Stage{bad}, []string{"transform"}
	if err := p.Handle(context.Background(), testBatch(2)); err != nil {
		t.Fatal(err)
	}
	if len(dest.failures) != 1 || dest.failures[0].Stage != "transform" || dest.failures[0].Err.Error() != "transform: cannot transform" {
		t.Fatalf("failures %+v", dest.failures)
	}
}

// statusErr carries an HTTP status, as a target's error may.
type statusErr struct{ code int }

func (e statusErr) Error() string   { return fmt.Sprintf("status %d", e.code) }
func (e statusErr) StatusCode() int { return e.code }

// TestFailureRecordFormat checks the on-failure record field by field.
func TestFailureRecordFormat(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	b := testBatch(3)
	for i := range b.Records {
		b.Records[i].Topic, b.Records[i].Partition, b.Records[i].Offset = "orders", 2, int64(15+i)
		b.Records[i].Timestamp = ts.Add(time.Duration(i) * time.Second)
	}
	f := &pipeline.Failure{Pipe: "p1", RequestID: "id-1", Condition: pipeline.RetryAttemptsExhausted, Attempts: 3,
		Stage: "target", Target: "https://example.com/in", Err: fmt.Errorf("POST: %w", statusErr{503}), Batch: b, Time: ts}
	got := string(pipeline.AppendFailureRecord(nil, f, false))
	want := `{"requestContext":{"requestId":"id-1","functionArn":"https://example.com/in","condition":"RetryAttemptsExhausted","approximateInvokeCount":3},` +
		`"responseContext":{"statusCode":503},"version":"1.0","timestamp":"2026-01-02T03:04:05.006Z",` +
		`"KafkaBatchInfo":{"batchSize":3,"bootstrapServers":"k:9092","payloadSize":` + fmt.Sprint(pipeline.EnvelopeSize(b)) + `,` +
		`"recordsInfo":{"orders-2":{"firstRecordOffset":"15","lastRecordOffset":"17","firstRecordTimestamp":"2026-01-02T03:04:05.006Z","lastRecordTimestamp":"2026-01-02T03:04:07.006Z"}}},` +
		`"pipe":"p1","stage":"target","errorMessage":"POST: status 503"}`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// With the payload, redrive reads the records back.
	back, err := pipeline.ParseFailureRecord(pipeline.AppendFailureRecord(nil, f, true))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pipeline.AppendEnvelope(nil, back), pipeline.AppendEnvelope(nil, b)) {
		t.Fatal("payload does not round-trip")
	}
}

// TestPartialFailureDeadLettersSourceRecords: records a target rejects
// after a transform go to the destination as the pipe read them, so a
// redrive runs the transform again.
func TestPartialFailureDeadLettersSourceRecords(t *testing.T) {
	upper := stageFunc(func(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		out := &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
		for _, r := range b.Records {
			r.Value = []byte("T(" + string(r.Value) + ")")
			out.Records = append(out.Records, r)
		}
		return out, nil
	})
	always := &alwaysPartial{failFrom: 2}
	dest := &recorder{}
	p := policyPipe(always, dest, 1, false)
	p.Stages, p.StageNames = []pipeline.Stage{upper}, []string{"transform"}
	if err := p.Handle(context.Background(), testBatch(4)); err != nil {
		t.Fatal(err)
	}
	if got := dest.offsets(); fmt.Sprint(got) != "[[2 3]]" {
		t.Fatalf("dead-lettered %v", got)
	}
	for _, r := range dest.failures[0].Batch.Records {
		if string(r.Value) != "v" {
			t.Errorf("dead-lettered value %q, want the source value", r.Value)
		}
	}
	if fmt.Sprint(always.seen) != "[[0 1 2 3] [2 3]]" {
		t.Errorf("target saw %v", always.seen)
	}
}

// alwaysPartial accepts the records before offset failFrom and reports the
// others as failed, every time.
type alwaysPartial struct {
	failFrom int64
	seen     [][]int64
}

func (a *alwaysPartial) Deliver(ctx context.Context, b *pipeline.Batch) error {
	var offs []int64
	var failed []int
	for i, r := range b.Records {
		offs = append(offs, r.Offset)
		if r.Offset >= a.failFrom {
			failed = append(failed, i)
		}
	}
	a.seen = append(a.seen, offs)
	if failed == nil {
		return nil
	}
	return pipeline.RetryOnly(errors.New("item failures"), failed)
}

func (a *alwaysPartial) Close() error { return nil }

// TestRetryBackoffDefaults: a pipe without a retryBackoff block gets its
// defaults, so retries wait.
func TestRetryBackoffDefaults(t *testing.T) {
	cfg, err := pipeline.Parse("pipes.yaml", []byte(`pipes:
  - name: a
    source:
      kafka: {bootstrapServers: k:9092, topics: [a]}
    target: {stdout: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Pipes[0].RetryBackoff; b.Initial != 200*time.Millisecond || b.Maximum != 30*time.Second {
		t.Fatalf("retryBackoff %+v, want 200ms to 30s", b)
	}
	pipes, err := pipeline.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if p := pipes[0]; p.Backoff.Initial != 200*time.Millisecond || p.Backoff.Max != 30*time.Second {
		t.Fatalf("pipe backoff %+v", p.Backoff)
	}
}
