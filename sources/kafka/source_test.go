package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// checkValues fails unless each value of g is "<prefix>-<offset>" padded with
// 'x', as testenv.Records makes them.
func checkValues(t *testing.T, g got, prefix string) {
	t.Helper()
	for i, v := range g.values {
		if want := fmt.Sprintf("%s-%d", prefix, g.offsets[i]); strings.TrimRight(v, "x") != want {
			t.Errorf("offset %d carries value %q, want %q", g.offsets[i], v, want)
		}
	}
}

func TestBatchBySize(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	rec := newRecorder("a")
	s := b.source("size", 10*time.Second, "batchSize: 10", "maximumBatchingWindow: 300s", "commitInterval: 100ms")
	r := b.run(s, rec)
	b.kc.ProduceN(t, b.topic, 0, 35, 20, "r")

	testenv.WaitFor(t, 20*time.Second, func() bool { return rec.count() >= 3 }, "3 full batches, got %d", testenv.Now(rec.count))
	// The 5 left are fetched and wait for a window 300s long.
	testenv.WaitFor(t, 10*time.Second, func() bool {
		p := s.part(b.topic, 0)
		if p == nil {
			return false
		}
		n, _ := p.buffered()
		return n == 5
	}, "the last 5 records buffered")
	hold(500 * time.Millisecond)

	gs := rec.done()
	if len(gs) != 3 {
		t.Fatalf("got %d batches, want 3 of 10 (the last 5 must wait for the window)", len(gs))
	}
	for i, g := range gs {
		if len(g.offsets) != 10 || g.first() != int64(10*i) {
			t.Errorf("batch %d holds offsets %v, want %d..%d", i, g.offsets, 10*i, 10*i+9)
		}
		checkValues(t, g, "r")
	}
	checkContiguous(t, "partition 0", offsetsOf(gs, 0), 30)
	testenv.WaitFor(t, 10*time.Second, func() bool { return b.kc.CommittedAt(t, "size", b.topic, 0) == 30 },
		"committed offset 30, got %d", testenv.Now(func() int64 { return b.kc.CommittedAt(t, "size", b.topic, 0) }))
	r.stop(t)
	if c := b.kc.CommittedAt(t, "size", b.topic, 0); c != 30 {
		t.Errorf("after shutdown the committed offset is %d, want 30: the 5 undelivered records must stay uncommitted", c)
	}
	rec.check(t)
}

func TestBatchByWindow(t *testing.T) {
	t.Parallel()
	t.Run("100ms", func(t *testing.T) {
		t.Parallel()
		b := newBed(t, 1)
		rec := newRecorder("a")
		b.run(b.source("window", 10*time.Second, "batchSize: 10000", "maximumBatchingWindow: 100ms"), rec)
		b.kc.ProduceN(t, b.topic, 0, 7, 10, "w")
		testenv.WaitFor(t, 20*time.Second, func() bool { return rec.count() >= 1 }, "a batch once the 100ms window passed")
		hold(300 * time.Millisecond)
		gs := rec.done()
		if len(gs) != 1 || len(gs[0].offsets) != 7 {
			t.Fatalf("got batches %v, want one batch of the 7 records", gs)
		}
		checkContiguous(t, "partition 0", gs[0].offsets, 7)
		checkValues(t, gs[0], "w")
		rec.check(t)
	})
	t.Run("0s", func(t *testing.T) {
		t.Parallel()
		b := newBed(t, 1)
		rec := newRecorder("a")
		s := b.source("window0", 10*time.Second, "batchSize: 10000", "maximumBatchingWindow: 0s")
		if s.cfg.MaximumBatchingWindow != 0 {
			t.Fatalf("maximumBatchingWindow: 0s decoded as %v", s.cfg.MaximumBatchingWindow)
		}
		b.run(s, rec)
		b.kc.ProduceN(t, b.topic, 0, 7, 10, "w")
		testenv.WaitFor(t, 20*time.Second, func() bool { return rec.records() >= 7 }, "the 7 records, got %d", testenv.Now(rec.records))
		checkContiguous(t, "partition 0", offsetsOf(rec.done(), 0), 7)
		rec.check(t)
	})
}

// mb is the value size of the payload cap tests: a record of it takes
// 1,333,336 bytes of base64 in the envelope, so 4 fit in 6 MB and 5 do not.
const mb = 1_000_000

// checkAsLargeAsFit fails unless every batch is within the cap and the
// first record of the next batch of the same partition would not have fit.
func checkAsLargeAsFit(t *testing.T, gs []got) {
	t.Helper()
	for i, g := range gs {
		if g.envSize > pipeline.MaxPayloadSize && len(g.offsets) > 1 {
			t.Errorf("batch %v: envelope of %d bytes passes the %d cap", g.offsets, g.envSize, pipeline.MaxPayloadSize)
		}
		if i+1 < len(gs) && g.envSize+1+gs[i+1].firstSize <= pipeline.MaxPayloadSize {
			t.Errorf("batch %v (%d bytes) closed although offset %d (%d bytes) would have fit",
				g.offsets, g.envSize, gs[i+1].first(), gs[i+1].firstSize)
		}
	}
}

func TestPayloadCap(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	b.kc.ProduceN(t, b.topic, 0, 9, mb, "big")
	rec := newRecorder("a")
	// The window is long: batches that reach the cap must close without it.
	s := b.source("cap", 10*time.Second, "batchSize: 100", "maximumBatchingWindow: 300s")
	b.run(s, rec)
	testenv.WaitFor(t, 30*time.Second, func() bool { return rec.count() >= 2 },
		"two batches closed by the 6 MB cap, got %d", testenv.Now(rec.count))
	testenv.WaitFor(t, 10*time.Second, func() bool {
		n, _ := s.part(b.topic, 0).buffered()
		return n == 1
	}, "the 9th record buffered")
	hold(300 * time.Millisecond)
	gs := rec.done()
	if len(gs) != 2 {
		t.Fatalf("got %d batches, want 2 (the 9th record waits for the window)", len(gs))
	}
	for i, g := range gs {
		if len(g.offsets) != 4 || g.first() != int64(4*i) || g.valueBytes != 4*mb {
			t.Errorf("batch %d: offsets %v, %d value bytes; want 4 records from offset %d", i, g.offsets, g.valueBytes, 4*i)
		}
	}
	// The 9th record has the size of the first of the second batch.
	checkAsLargeAsFit(t, append(gs, got{offsets: []int64{8}, firstSize: gs[1].firstSize}))
	checkContiguous(t, "partition 0", offsetsOf(gs, 0), 8)
	rec.check(t)
}

func TestRecordOverCapAlone(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	recs := testenv.Records(b.topic, 0, 2, mb, "a")
	recs = append(recs, testenv.Records(b.topic, 0, 1, 7*mb, "giant")...)
	recs = append(recs, testenv.Records(b.topic, 0, 2, mb, "b")...)
	b.kc.Produce(t, recs...)
	rec := newRecorder("a")
	b.run(b.source("giant", 10*time.Second, "batchSize: 100", "maximumBatchingWindow: 1s"), rec)
	testenv.WaitFor(t, 30*time.Second, func() bool { return rec.records() >= 5 }, "all 5 records, got %d", testenv.Now(rec.records))
	gs := rec.done()
	want := [][]int64{{0, 1}, {2}, {3, 4}}
	if len(gs) != len(want) {
		t.Fatalf("got %d batches, want %v", len(gs), want)
	}
	for i, g := range gs {
		if fmt.Sprint(g.offsets) != fmt.Sprint(want[i]) {
			t.Errorf("batch %d holds %v, want %v", i, g.offsets, want[i])
		}
	}
	if g := gs[1]; g.valueBytes != 7*mb || g.envSize <= pipeline.MaxPayloadSize {
		t.Errorf("the 7 MB record came with %d value bytes in an envelope of %d", g.valueBytes, g.envSize)
	}
	checkAsLargeAsFit(t, gs)
	rec.check(t)
}

// A full partition buffer pauses fetching, so the batch cannot grow: it
// closes without waiting for the window.
func TestFullBufferClosesBatch(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	rec := newRecorder("a")
	s := b.source("fullbuf", 10*time.Second, "partitionBuffer: 64KB", "batchSize: 10000", "maximumBatchingWindow: 300s")
	b.run(s, rec)
	producer := b.kc.NewClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 40 // 400 KB, six times the buffer
	if err := producer.ProduceSync(ctx, testenv.Records(b.topic, 0, n, 10_000, "f")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Whatever does not fill the buffer at the end waits for the window;
	// everything before it is delivered.
	testenv.WaitFor(t, 20*time.Second, func() bool {
		p := s.part(b.topic, 0)
		if p == nil {
			return false
		}
		left, bytes := p.buffered()
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		return rec.records()+left == n && !paused && bytes < int(s.cfg.PartitionBuffer)
	}, "records delivered as the 64KB buffer fills, with a 300s window; delivered %d of %d", testenv.Now(rec.records), n)
	done := rec.records()
	if done < n/2 {
		t.Errorf("only %d of %d records delivered", done, n)
	}
	checkContiguous(t, "partition 0", offsetsOf(rec.done(), 0), done)
	rec.check(t)
}

func TestOrderAndConcurrency(t *testing.T) {
	t.Parallel()
	const parts, perPart = 4, 150
	b := newBed(t, parts)
	rec := newRecorder("a")
	rec.limit = 2
	both := make(chan struct{})
	var bothOnce sync.Once
	rec.before = func(ctx context.Context, g got) error {
		// The first batch waits until another partition's batch is in
		// flight too: it never would be if partitions ran one by one.
		rec.mu.Lock()
		n := rec.global
		rec.mu.Unlock()
		if n >= 2 {
			bothOnce.Do(func() { close(both) })
		}
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			rec.problem("two partitions were never in flight at once")
			bothOnce.Do(func() { close(both) })
		case <-ctx.Done():
			return ctx.Err()
		}
		time.Sleep(time.Duration(g.first()%3) * time.Millisecond) // some work
		return nil
	}
	b.run(b.source("order", 10*time.Second, "batchSize: 7", "maximumBatchingWindow: 5ms", "maximumConcurrency: 2"), rec)
	for round := range 5 {
		var recs []*kgo.Record
		for p := range int32(parts) {
			for i := range perPart / 5 {
				recs = append(recs, &kgo.Record{Topic: b.topic, Partition: p, Value: fmt.Appendf(nil, "o-%d", round*perPart/5+i)})
			}
		}
		b.kc.Produce(t, recs...)
	}
	testenv.WaitFor(t, 60*time.Second, func() bool { return rec.records() >= parts*perPart },
		"all %d records, got %d", parts*perPart, testenv.Now(rec.records))
	gs := rec.done()
	for p := range int32(parts) {
		checkContiguous(t, fmt.Sprintf("partition %d", p), offsetsOf(gs, p), perPart)
	}
	for _, g := range gs {
		checkValues(t, g, "o")
	}
	rec.mu.Lock()
	maxGlobal := rec.maxGlobal
	rec.mu.Unlock()
	if maxGlobal != 2 {
		t.Errorf("at most %d batches were in flight at once; want the limit, 2", maxGlobal)
	}
	rec.check(t)
}

func TestCommitAfterAck(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	release := make(chan struct{})
	entered := make(chan struct{})
	rec := newRecorder("a")
	rec.before = func(ctx context.Context, g got) error {
		if g.first() == 5 {
			close(entered)
			return b.block(ctx, release)
		}
		return nil
	}
	r := b.run(b.source("ack", 10*time.Second, "batchSize: 5", "maximumBatchingWindow: 300s", "commitInterval: 100ms"), rec)
	b.kc.ProduceN(t, b.topic, 0, 10, 10, "r")
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the second batch never came")
	}
	testenv.WaitFor(t, 10*time.Second, func() bool { return b.kc.CommittedAt(t, "ack", b.topic, 0) == 5 },
		"the first batch committed (offset 5)")
	// Ten commit intervals pass while offsets 5..9 are in flight.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); hold(50 * time.Millisecond) {
		if c := b.kc.CommittedAt(t, "ack", b.topic, 0); c != 5 {
			t.Fatalf("committed offset %d while the batch from offset 5 is unfinished", c)
		}
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, func() bool { return b.kc.CommittedAt(t, "ack", b.topic, 0) == 10 },
		"offset 10 committed after the batch finished, got %d", testenv.Now(func() int64 { return b.kc.CommittedAt(t, "ack", b.topic, 0) }))
	r.stop(t)
	checkContiguous(t, "partition 0", offsetsOf(rec.done(), 0), 10)
	rec.check(t)
}

func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	release := make(chan struct{})
	entered := make(chan struct{})
	var cancelled atomic.Bool
	rec := newRecorder("a")
	rec.before = func(ctx context.Context, g got) error {
		close(entered)
		err := b.block(ctx, release)
		cancelled.Store(ctx.Err() != nil)
		return err
	}
	r := b.run(b.source("drain", 30*time.Second, "batchSize: 5", "maximumBatchingWindow: 300s", "commitInterval: 1h"), rec)
	b.kc.ProduceN(t, b.topic, 0, 5, 10, "r")
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the batch never came")
	}
	r.cancel()
	select {
	case <-r.done:
		t.Fatal("Run returned while a batch was in flight")
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	r.wait(t, 20*time.Second)
	if cancelled.Load() {
		t.Error("the in-flight batch's context was cancelled during a drain within the timeout")
	}
	// The commit interval is an hour: only the shutdown commit can have
	// committed the drained batch.
	if c := b.kc.CommittedAt(t, "drain", b.topic, 0); c != 5 {
		t.Errorf("committed offset after shutdown is %d, want 5", c)
	}
	rec.check(t)
}

func TestShutdownDrainTimeout(t *testing.T) {
	t.Parallel()
	b := newBed(t, 1)
	entered := make(chan struct{})
	var cancelled atomic.Bool
	first := newRecorder("first")
	first.before = func(ctx context.Context, g got) error {
		if g.first() < 5 {
			return nil
		}
		close(entered)
		select {
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		case <-b.quit:
			return context.Canceled
		}
	}
	settings := []string{"batchSize: 5", "maximumBatchingWindow: 300s", "commitInterval: 100ms"}
	r := b.run(b.source("drain", 300*time.Millisecond, settings...), first)
	b.kc.ProduceN(t, b.topic, 0, 10, 10, "r")
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the second batch never came")
	}
	r.stop(t)
	if !cancelled.Load() {
		t.Fatal("the batch still running after the drain timeout was not cancelled")
	}
	if c := b.kc.CommittedAt(t, "drain", b.topic, 0); c != 5 {
		t.Fatalf("committed offset %d after a cancelled batch from offset 5, want 5", c)
	}

	// The next member of the group gets the cancelled batch again.
	second := newRecorder("second")
	r2 := b.run(b.source("drain", 10*time.Second, settings...), second)
	testenv.WaitFor(t, 20*time.Second, func() bool { return second.count() >= 1 }, "the cancelled batch delivered again")
	gs := second.done()
	if fmt.Sprint(gs[0].offsets) != "[5 6 7 8 9]" {
		t.Errorf("the next member got %v first, want [5 6 7 8 9]", gs[0].offsets)
	}
	checkValues(t, gs[0], "r")
	r2.stop(t)
	if c := b.kc.CommittedAt(t, "drain", b.topic, 0); c != 10 {
		t.Errorf("committed offset %d, want 10", c)
	}
	first.check(t)
	second.check(t)
}

func TestRebalance(t *testing.T) {
	t.Parallel()
	const parts, group = 4, "rebalance"
	b := newBed(t, parts)

	var mu sync.Mutex
	finished := map[int32]map[int64]bool{} // offsets handled, noted before the handler returns
	for p := range int32(parts) {
		finished[p] = map[int64]bool{}
	}
	// One recorder for both members: a partition must never have a batch in
	// flight in both, even while it moves.
	rec := newRecorder("")
	// While b joins, a's batches take long, so that the revocation meets
	// batches in flight.
	var slow atomic.Bool
	rec.before = func(ctx context.Context, g got) error {
		work := 20 * time.Millisecond
		if g.by == "a" && slow.Load() {
			work = 300 * time.Millisecond
		}
		select {
		case <-time.After(work):
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		for _, o := range g.offsets {
			finished[g.partition][o] = true
		}
		mu.Unlock()
		return nil
	}
	settings := []string{"batchSize: 10", "maximumBatchingWindow: 10ms", "commitInterval: 100ms"}

	// The watcher checks, all along, that no committed offset passes a
	// record that was not finished.
	watchDone := make(chan struct{})
	var watchWG sync.WaitGroup
	var watchProblems []string
	var checks atomic.Int64
	defer func() {
		close(watchDone)
		watchWG.Wait()
		if checks.Load() == 0 {
			t.Error("the commit watcher never read the group's offsets")
		}
		for _, p := range watchProblems {
			t.Error(p)
		}
	}()
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		for {
			select {
			case <-watchDone:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resps, err := b.kc.Admin.FetchOffsets(ctx, group)
			cancel()
			if err != nil {
				continue
			}
			checks.Add(1)
			mu.Lock()
			for _, o := range resps.Sorted() {
				for off := int64(0); off < o.At; off++ {
					if !finished[o.Partition][off] {
						watchProblems = append(watchProblems, fmt.Sprintf("partition %d committed at %d but offset %d was never finished", o.Partition, o.At, off))
						break
					}
				}
			}
			mu.Unlock()
		}
	}()

	produce := func(n int, prefix string) {
		var recs []*kgo.Record
		for p := range int32(parts) {
			recs = append(recs, testenv.Records(b.topic, p, n, 10, prefix)...)
		}
		b.kc.Produce(t, recs...)
	}
	byMember := func(name string) int {
		n := 0
		for _, g := range rec.done() {
			if g.by == name {
				n += len(g.offsets)
			}
		}
		return n
	}

	produce(100, "one")
	ra := b.run(b.source(group, 10*time.Second, settings...), rec.as("a"))
	testenv.WaitFor(t, 20*time.Second, func() bool { return byMember("a") >= 50 }, "member a consuming")

	slow.Store(true)
	rb := b.run(b.source(group, 10*time.Second, settings...), rec.as("b"))
	for range 10 {
		produce(10, "two")
		hold(50 * time.Millisecond)
	}
	testenv.WaitFor(t, 30*time.Second, func() bool { return byMember("b") > 0 }, "partitions moved to member b")
	slow.Store(false)
	produce(50, "three")

	allFinished := func(n int64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for p := range int32(parts) {
				for o := range n {
					if !finished[p][o] {
						return false
					}
				}
			}
			return true
		}
	}
	testenv.WaitFor(t, 30*time.Second, allFinished(250), "every record finished at least once")

	// a leaves: its partitions move to b.
	ra.stop(t)
	produce(20, "four")
	testenv.WaitFor(t, 30*time.Second, allFinished(270), "every record finished after a left")
	rb.stop(t)

	hw := b.kc.HighWatermarks(t, b.topic)[b.topic]
	committed := b.kc.Committed(t, group)[b.topic]
	for p := range int32(parts) {
		if hw[p] != 270 || committed[p] != hw[p] {
			t.Errorf("partition %d: committed %d, high watermark %d, want both 270", p, committed[p], hw[p])
		}
	}
	rec.check(t)
}

func TestStartingPosition(t *testing.T) {
	t.Parallel()
	t.Run("TRIM_HORIZON", func(t *testing.T) {
		t.Parallel()
		b := newBed(t, 1)
		b.kc.ProduceN(t, b.topic, 0, 5, 10, "old")
		rec := newRecorder("a")
		b.run(b.source("trim", 10*time.Second, "startingPosition: TRIM_HORIZON", "maximumBatchingWindow: 10ms"), rec)
		testenv.WaitFor(t, 20*time.Second, func() bool { return rec.records() >= 5 }, "the 5 old records")
		checkContiguous(t, "partition 0", offsetsOf(rec.done(), 0), 5)
	})
	t.Run("LATEST", func(t *testing.T) {
		t.Parallel()
		b := newBed(t, 1)
		b.kc.ProduceN(t, b.topic, 0, 5, 10, "old")
		rec := newRecorder("a")
		b.run(b.source("latest", 10*time.Second, "startingPosition: LATEST", "maximumBatchingWindow: 10ms"), rec)
		// When the group joined is not visible from here: produce new
		// records until one arrives.
		n := 0
		testenv.WaitFor(t, 20*time.Second, func() bool {
			if rec.count() > 0 {
				return true
			}
			b.kc.Produce(t, &kgo.Record{Topic: b.topic, Value: fmt.Appendf(nil, "new-%d", n)})
			n++
			hold(200 * time.Millisecond)
			return rec.count() > 0
		}, "a record produced after the group joined")
		for _, g := range rec.done() {
			for i, v := range g.values {
				if !strings.HasPrefix(v, "new-") || g.offsets[i] < 5 {
					t.Errorf("LATEST delivered offset %d (%q), produced before the group joined", g.offsets[i], v)
				}
			}
		}
	})
	t.Run("AT_TIMESTAMP", func(t *testing.T) {
		t.Parallel()
		base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
		for _, tc := range []struct {
			name  string
			at    time.Time
			first int64
		}{
			{"exact", base.Add(2 * time.Minute), 2},
			{"between", base.Add(2*time.Minute + 30*time.Second), 3},
			{"before all", base.Add(-time.Minute), 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := newBed(t, 1)
				recs := testenv.Records(b.topic, 0, 5, 10, "ts")
				for i, r := range recs {
					r.Timestamp = base.Add(time.Duration(i) * time.Minute)
				}
				b.kc.Produce(t, recs...)
				rec := newRecorder("a")
				b.run(b.source("ts", 10*time.Second, "startingPosition: AT_TIMESTAMP",
					"startingPositionTimestamp: "+tc.at.Format(time.RFC3339), "maximumBatchingWindow: 10ms"), rec)
				want := 5 - int(tc.first)
				testenv.WaitFor(t, 20*time.Second, func() bool { return rec.records() >= want }, "%d records", want)
				offs := offsetsOf(rec.done(), 0)
				if len(offs) != want || offs[0] != tc.first {
					t.Fatalf("from %v got offsets %v, want %d..4", tc.at, offs, tc.first)
				}
				for _, g := range rec.done() {
					for i, ts := range g.timestamps {
						if ts.Before(tc.at) {
							t.Errorf("offset %d has timestamp %v, before %v", g.offsets[i], ts, tc.at)
						}
					}
				}
			})
		}
	})
	t.Run("committed offset wins", func(t *testing.T) {
		t.Parallel()
		for _, pos := range []string{"TRIM_HORIZON", "LATEST"} {
			t.Run(pos, func(t *testing.T) {
				t.Parallel()
				b := newBed(t, 1)
				b.kc.ProduceN(t, b.topic, 0, 5, 10, "old")
				b.kc.Commit(t, "resume", b.topic, 0, 3)
				rec := newRecorder("a")
				b.run(b.source("resume", 10*time.Second, "startingPosition: "+pos, "maximumBatchingWindow: 10ms"), rec)
				testenv.WaitFor(t, 20*time.Second, func() bool { return rec.records() >= 2 }, "offsets 3 and 4")
				if offs := offsetsOf(rec.done(), 0); fmt.Sprint(offs) != "[3 4]" {
					t.Errorf("with offset 3 committed and %s got %v, want [3 4]", pos, offs)
				}
			})
		}
	})
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	const n, size = 500, 100_000 // 50 MB
	b := newBed(t, 1)
	release := make(chan struct{})
	rec := newRecorder("a")
	rec.before = func(ctx context.Context, g got) error {
		if g.first() == 0 {
			return b.block(ctx, release)
		}
		return nil
	}
	s := b.source("bp", 10*time.Second, "partitionBuffer: 1MB")
	b.run(s, rec)

	// Sample the partition's buffer all along.
	var maxBytes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if p := s.part(b.topic, 0); p != nil {
				_, bytes := p.buffered()
				if int64(bytes) > maxBytes.Load() {
					maxBytes.Store(int64(bytes))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Uncompressed record batches of one record each, so a fetch returns at
	// most kgo's 1 MiB per partition. (A fetch is limited in compressed
	// bytes: with compressed batches one fetch may hold many times that.)
	producer := b.kc.NewClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(128<<10), kgo.MaxBufferedBytes(128<<20))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := producer.ProduceSync(ctx, testenv.Records(b.topic, 0, n, size, "bp")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var p *partition
	testenv.WaitFor(t, 20*time.Second, func() bool {
		if p = s.part(b.topic, 0); p == nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.paused
	}, "fetching paused")
	if paused := p.cl.PauseFetchPartitions(nil); fmt.Sprint(paused[b.topic]) != "[0]" {
		t.Errorf("the client's paused partitions are %v, want %s-0", paused, b.topic)
	}
	hold(500 * time.Millisecond) // fetches that would still come in
	// Pausing happens at the fetch that fills the buffer, which holds at
	// most kgo's 1 MiB per partition.
	limit := int64(s.cfg.PartitionBuffer) + 1<<20 + 64<<10
	if m := maxBytes.Load(); m > limit || m < int64(s.cfg.PartitionBuffer) {
		t.Errorf("buffered up to %d bytes while blocked; want between %d and %d", m, s.cfg.PartitionBuffer, limit)
	}
	if got := rec.records(); got != 0 {
		t.Fatalf("%d records delivered while the first batch is blocked", got)
	}

	close(release)
	testenv.WaitFor(t, 60*time.Second, func() bool { return rec.records() >= n }, "all %d records, got %d", n, testenv.Now(rec.records))
	close(stop)
	wg.Wait()
	checkContiguous(t, "partition 0", offsetsOf(rec.done(), 0), n)
	if m := maxBytes.Load(); m > limit {
		t.Errorf("buffered up to %d bytes; want at most %d", m, limit)
	}
	for _, g := range rec.done() {
		if g.envSize > pipeline.MaxPayloadSize {
			t.Errorf("batch %d..%d of %d bytes passes the cap", g.first(), g.last(), g.envSize)
		}
	}
	t.Logf("50 MB through a 1 MB partition buffer: at most %d bytes buffered, %d batches", maxBytes.Load(), rec.count())
	rec.check(t)
}
