package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/pipeline"
)

// flaky is a target that fails its first failures calls with err, then
// succeeds. It notes what it was given and when.
type flaky struct {
	failures int
	err      error
	// onCall, when set, runs at the start of every call.
	onCall func(n int)

	mu    sync.Mutex
	calls int
	at    []time.Time
	seen  [][]int64 // offsets of each call's batch
}

func (f *flaky) Deliver(ctx context.Context, b *pipeline.Batch) error {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.at = append(f.at, time.Now())
	var offs []int64
	for _, r := range b.Records {
		offs = append(offs, r.Offset)
	}
	f.seen = append(f.seen, offs)
	f.mu.Unlock()
	if f.onCall != nil {
		f.onCall(n)
	}
	if n <= f.failures {
		return f.err
	}
	return nil
}

func (f *flaky) Close() error { return nil }

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var tiny = backoff.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}

func newPipe(tg pipeline.Target, stages ...pipeline.Stage) *pipeline.Pipe {
	return &pipeline.Pipe{Name: "test", Target: tg, Stages: stages, Backoff: tiny,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func testBatch(n int) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "k:9092"}
	for i := range n {
		b.Records = append(b.Records, pipeline.Record{Topic: "t", Partition: 0, Offset: int64(i), Value: []byte("v")})
	}
	return b
}

func TestHandleRetriesUntilSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"transient", errors.New("503")},
		// With no on-failure destination, a permanent failure is retried
		// too: the partition waits rather than losing records.
		{"permanent", pipeline.Permanent(errors.New("400"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 4
			tg := &flaky{failures: n, err: tc.err}
			if err := newPipe(tg).Handle(context.Background(), testBatch(3)); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := tg.count(); got != n+1 {
				t.Errorf("target called %d times, want %d (success on call %d)", got, n+1, n+1)
			}
			for i, offs := range tg.seen {
				if fmt.Sprint(offs) != "[0 1 2]" {
					t.Errorf("call %d got offsets %v, want the whole batch [0 1 2]", i+1, offs)
				}
			}
		})
	}
}

func TestHandleBackoffAndRetryAfter(t *testing.T) {
	t.Run("backoff", func(t *testing.T) {
		tg := &flaky{failures: 3, err: errors.New("down")}
		p := newPipe(tg)
		p.Backoff = backoff.Policy{Initial: 20 * time.Millisecond, Max: 40 * time.Millisecond}
		if err := p.Handle(context.Background(), testBatch(1)); err != nil {
			t.Fatal(err)
		}
		// Equal jitter: retry n waits at least half of min(Max, Initial*2^n).
		for i, min := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond} {
			if gap := tg.at[i+1].Sub(tg.at[i]); gap < min {
				t.Errorf("retry %d came after %v, want at least %v", i+1, gap, min)
			}
		}
	})
	t.Run("Retry-After above the backoff", func(t *testing.T) {
		tg := &flaky{failures: 1, err: pipeline.RetryAfter(errors.New("429"), 150*time.Millisecond)}
		if err := newPipe(tg).Handle(context.Background(), testBatch(1)); err != nil {
			t.Fatal(err)
		}
		if gap := tg.at[1].Sub(tg.at[0]); gap < 150*time.Millisecond {
			t.Errorf("retried after %v although the target asked for 150ms", gap)
		}
	})
}

func TestHandleCancelled(t *testing.T) {
	t.Run("during the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tg := &flaky{failures: 1 << 30, err: errors.New("down")}
		tg.onCall = func(n int) {
			if n == 3 {
				cancel()
			}
		}
		err := newPipe(tg).Handle(ctx, testBatch(1))
		if !errors.Is(err, context.Canceled) || err != ctx.Err() {
			t.Fatalf("Handle returned %v, want ctx.Err() (%v)", err, ctx.Err())
		}
		if got := tg.count(); got != 3 {
			t.Errorf("target called %d times after the context was cancelled on call 3", got)
		}
	})
	t.Run("during the backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tg := &flaky{failures: 1 << 30, err: errors.New("down")}
		tg.onCall = func(int) { time.AfterFunc(20*time.Millisecond, cancel) }
		p := newPipe(tg)
		p.Backoff = backoff.Policy{Initial: time.Hour, Max: time.Hour}
		done := make(chan error, 1)
		go func() { done <- p.Handle(ctx, testBatch(1)) }()
		select {
		case err := <-done:
			if err != ctx.Err() || err == nil {
				t.Fatalf("Handle returned %v, want %v", err, ctx.Err())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Handle kept sleeping after its context was cancelled")
		}
		if got := tg.count(); got != 1 {
			t.Errorf("target called %d times, want 1", got)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := newPipe(&flaky{failures: 1 << 30, err: errors.New("down")}).Handle(ctx, testBatch(1))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Handle returned %v, want context.DeadlineExceeded", err)
		}
	})
}

// stageFunc adapts a function to pipeline.Stage.
type stageFunc func(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error)

func (f stageFunc) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	return f(ctx, b)
}

func TestHandleStages(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	// The first stage keeps even offsets; the second sees its result.
	evens := stageFunc(func(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		note("evens")
		out := &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
		for _, r := range b.Records {
			if r.Offset%2 == 0 {
				out.Records = append(out.Records, r)
			}
		}
		return out, nil
	})
	var secondSaw []int64
	second := stageFunc(func(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		note("second")
		secondSaw = secondSaw[:0]
		for _, r := range b.Records {
			secondSaw = append(secondSaw, r.Offset)
		}
		return b, nil
	})
	tg := &flaky{onCall: func(int) { note("target") }}
	if err := newPipe(tg, evens, second).Handle(context.Background(), testBatch(6)); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[evens second target]" {
		t.Errorf("ran %v, want stages in order then the target", order)
	}
	if fmt.Sprint(secondSaw) != "[0 2 4]" || fmt.Sprint(tg.seen) != "[[0 2 4]]" {
		t.Errorf("second stage saw %v, target saw %v; want [0 2 4] for both", secondSaw, tg.seen)
	}
}

func TestHandleEmptyStageResult(t *testing.T) {
	for name, result := range map[string]*pipeline.Batch{
		"nil":   nil,
		"empty": {EventSource: pipeline.EventSourceSelfManagedKafka},
	} {
		t.Run(name, func(t *testing.T) {
			laterRan := false
			drop := stageFunc(func(context.Context, *pipeline.Batch) (*pipeline.Batch, error) { return result, nil })
			later := stageFunc(func(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
				laterRan = true
				return b, nil
			})
			tg := &flaky{}
			if err := newPipe(tg, drop, later).Handle(context.Background(), testBatch(3)); err != nil {
				t.Fatalf("a batch with nothing left to deliver: %v", err)
			}
			if tg.count() != 0 || laterRan {
				t.Errorf("after an empty stage result the target ran %d times, the next stage ran: %v", tg.count(), laterRan)
			}
		})
	}
}

func TestHandleStageErrorRetried(t *testing.T) {
	calls := 0
	failing := stageFunc(func(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		calls++
		if calls <= 2 {
			return nil, errors.New("enrichment down")
		}
		return b, nil
	})
	tg := &flaky{}
	if err := newPipe(tg, failing).Handle(context.Background(), testBatch(2)); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || tg.count() != 1 {
		t.Errorf("stage called %d times, target %d; want 3 and 1 (the target only once the stage succeeded)", calls, tg.count())
	}
}

// TestHandleRetryOnly: a target that reports some records failed gets only
// those records again, and the stages do not run again.
func TestHandleRetryOnly(t *testing.T) {
	var stageRuns int
	count := stageFunc(func(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
		stageRuns++
		return b, nil
	})
	tg := &flaky{}
	partial := &partialTarget{flaky: tg, failOnce: map[int64]bool{3: true, 4: true}}
	p := newPipe(partial, count)
	if err := p.Handle(context.Background(), testBatch(5)); err != nil {
		t.Fatal(err)
	}
	want := [][]int64{{0, 1, 2, 3, 4}, {3, 4}}
	if fmt.Sprint(tg.seen) != fmt.Sprint(want) {
		t.Fatalf("target saw %v, want %v", tg.seen, want)
	}
	if stageRuns != 1 {
		t.Fatalf("stage ran %d times, want 1", stageRuns)
	}
}

// partialTarget fails the records with the given offsets once, reporting
// them with RetryOnly.
type partialTarget struct {
	*flaky
	failOnce map[int64]bool
}

func (p *partialTarget) Deliver(ctx context.Context, b *pipeline.Batch) error {
	p.flaky.Deliver(ctx, b)
	var failed []int
	for i, r := range b.Records {
		if p.failOnce[r.Offset] {
			delete(p.failOnce, r.Offset)
			failed = append(failed, i)
		}
	}
	if failed == nil {
		return nil
	}
	return pipeline.RetryOnly(errors.New("some failed"), failed)
}
