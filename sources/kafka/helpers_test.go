package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/targets/stdout" // a target kind for the test configs
)

// bed is one test's broker and topic.
type bed struct {
	t     *testing.T
	kc    *testenv.Cluster
	topic string
	// quit is closed before the test's sources are stopped, so that
	// handlers blocked on purpose let go.
	quit     chan struct{}
	quitOnce sync.Once
}

func newBed(t *testing.T, partitions int32) *bed {
	t.Helper()
	topic := "orders"
	return &bed{t: t, kc: testenv.Kafka(t, partitions, topic), topic: topic, quit: make(chan struct{})}
}

func (b *bed) letGo() { b.quitOnce.Do(func() { close(b.quit) }) }

// testLogger discards the source's log unless PIPE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("PIPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// source builds a Kafka source from a pipes.yaml, so the config decoder
// applies its defaults and checks. settings are extra lines of the kafka
// block ("batchSize: 10").
func (b *bed) source(group string, drain time.Duration, settings ...string) *source {
	b.t.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "pipes:\n  - name: test\n    source:\n      kafka:\n")
	fmt.Fprintf(&y, "        bootstrapServers: %s\n        topics: [%s]\n        consumerGroupId: %s\n", b.kc.Addr, b.topic, group)
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	y.WriteString("    target:\n      stdout: {}\n")
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		b.t.Fatalf("config:\n%s\n%v", y.String(), err)
	}
	src, err := cfg.Pipes[0].Source.NewSource(pipeline.Env{Pipe: "test", Logger: testLogger(), DrainTimeout: drain})
	if err != nil {
		b.t.Fatal(err)
	}
	s := src.(*source)
	// Notice rebalances sooner than the 3s default, to keep tests short.
	s.opts = append(s.opts, kgo.HeartbeatInterval(100*time.Millisecond))
	return s
}

// running is a source's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

func (b *bed) run(s pipeline.Source, h pipeline.Handler) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = s.Run(ctx, h)
		close(r.done)
	}()
	b.t.Cleanup(func() {
		b.letGo()
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			b.t.Error("source did not stop within 60s")
		}
	})
	return r
}

// stop cancels the source and waits for Run to return nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.wait(t, 60*time.Second)
}

// wait waits at most d for Run to return, and fails unless it returned nil.
func (r *running) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run returned %v", r.err)
		}
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
	}
}

// part returns the source's partition worker, or nil.
func (s *source) part(topic string, n int32) *partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[tp{topic, n}]
}

// buffered returns how many records and bytes the partition holds.
func (p *partition) buffered() (records, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.chunks {
		records += len(c.recs)
	}
	return records - p.head, p.bytes
}

// got is what a handler saw of one batch; the batch itself is reused after
// Handle returns.
type got struct {
	by         string // which source's handler
	topic      string
	partition  int32
	offsets    []int64
	values     []string // only for values under 1 KiB
	valueBytes int
	envSize    int // pipeline.EnvelopeSize of the batch
	firstSize  int // pipeline.RecordSize of its first record
	timestamps []time.Time
}

func snapshot(by string, b *pipeline.Batch) got {
	g := got{by: by, envSize: pipeline.EnvelopeSize(b)}
	if len(b.Records) > 0 {
		g.topic, g.partition = b.Records[0].Topic, b.Records[0].Partition
		g.firstSize = pipeline.RecordSize(&b.Records[0])
	}
	for i := range b.Records {
		r := &b.Records[i]
		g.offsets = append(g.offsets, r.Offset)
		g.timestamps = append(g.timestamps, r.Timestamp)
		g.valueBytes += len(r.Value)
		if len(r.Value) < 1024 {
			g.values = append(g.values, string(r.Value))
		}
	}
	return g
}

func (g got) first() int64 { return g.offsets[0] }
func (g got) last() int64  { return g.offsets[len(g.offsets)-1] }

// recorder is a handler that keeps what it saw and checks, on every call,
// that a partition never has two batches in flight and that no more than
// limit batches are in flight at once. before, when set, runs inside the
// handler, after the checks.
type recorder struct {
	name   string
	limit  int
	before func(ctx context.Context, g got) error

	mu        sync.Mutex
	batches   []got
	inflight  map[int32]int
	global    int
	maxGlobal int
	problems  []string
	calls     atomic.Int64
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, inflight: map[int32]int{}}
}

func (r *recorder) Handle(ctx context.Context, b *pipeline.Batch) error {
	return r.handle(ctx, r.name, b)
}

// as returns a handler that records into r under another name, so that
// several sources share one in-flight account.
func (r *recorder) as(name string) pipeline.Handler {
	return pipeline.HandlerFunc(func(ctx context.Context, b *pipeline.Batch) error {
		return r.handle(ctx, name, b)
	})
}

func (r *recorder) handle(ctx context.Context, name string, b *pipeline.Batch) error {
	r.calls.Add(1)
	g := snapshot(name, b)
	for i := range b.Records {
		if b.Records[i].Topic != g.topic || b.Records[i].Partition != g.partition {
			r.problem("a batch holds records of %s-%d and %s-%d", g.topic, g.partition, b.Records[i].Topic, b.Records[i].Partition)
		}
	}
	r.mu.Lock()
	r.inflight[g.partition]++
	r.global++
	r.maxGlobal = max(r.maxGlobal, r.global)
	if n := r.inflight[g.partition]; n > 1 {
		r.problems = append(r.problems, fmt.Sprintf("partition %d has %d batches in flight", g.partition, n))
	}
	if r.limit > 0 && r.global > r.limit {
		r.problems = append(r.problems, fmt.Sprintf("%d batches in flight, limit %d", r.global, r.limit))
	}
	r.mu.Unlock()
	var err error
	if r.before != nil {
		err = r.before(ctx, g)
	}
	r.mu.Lock()
	r.inflight[g.partition]--
	r.global--
	if err == nil {
		r.batches = append(r.batches, g)
	}
	r.mu.Unlock()
	return err
}

func (r *recorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// done returns the batches handled successfully so far, in the order they
// finished.
func (r *recorder) done() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.batches...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

// records counts the records of the batches handled so far.
func (r *recorder) records() int {
	n := 0
	for _, g := range r.done() {
		n += len(g.offsets)
	}
	return n
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Error(p)
	}
}

// offsetsOf returns the offsets handled for one partition, in the order the
// batches finished.
func offsetsOf(gs []got, partition int32) []int64 {
	var out []int64
	for _, g := range gs {
		if g.partition == partition {
			out = append(out, g.offsets...)
		}
	}
	return out
}

// checkContiguous fails unless offs is exactly 0, 1, ..., n-1.
func checkContiguous(t *testing.T, what string, offs []int64, n int) {
	t.Helper()
	if len(offs) != n {
		t.Errorf("%s: got %d offsets, want %d", what, len(offs), n)
	}
	for i, o := range offs {
		if o != int64(i) {
			t.Errorf("%s: offset #%d is %d, want %d (gap, duplicate or out of order)", what, i, o, i)
			return
		}
	}
}

// hold waits d: it gives a behaviour that must not happen the time to
// happen. It is never used to wait for something that must happen.
func hold(d time.Duration) { time.Sleep(d) }

// block waits until ch is closed, ctx is done or the test lets go.
func (b *bed) block(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return context.Canceled
	}
}
