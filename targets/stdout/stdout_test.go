package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/targets/stdout"
)

func batch(n int, tag string) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "localhost:9092"}
	for i := range n {
		b.Records = append(b.Records, pipeline.Record{
			Topic: "orders", Partition: 1, Offset: int64(i),
			Timestamp: time.UnixMilli(1_700_000_000_000),
			Value:     fmt.Appendf(nil, `{"tag":%q,"n":%d,"text":"line\nbreak"}`, tag, i),
			Headers:   []pipeline.Header{{Key: "k", Value: []byte{0xff}}},
		})
	}
	return b
}

// lockedBuffer is a bytes.Buffer safe for the race detector; the target
// serialises writes itself, this only guards the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestOneLinePerBatch(t *testing.T) {
	var out lockedBuffer
	tg := stdout.New(&out)
	defer tg.Close()
	bs := []*pipeline.Batch{batch(3, "a"), batch(1, "b"), batch(0, "empty"), batch(200, "c")}
	var want []byte
	for _, b := range bs {
		if err := tg.Deliver(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		want = append(pipeline.AppendEnvelope(want, b), '\n')
	}
	if got := out.b.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("output differs from one envelope per line:\n got %.300q\nwant %.300q", got, want)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.b.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != len(bs) {
		t.Fatalf("%d lines for %d batches", len(lines), len(bs))
	}
	for i, l := range lines {
		if !json.Valid(l) {
			t.Errorf("line %d is not JSON: %.200s", i, l)
		}
	}
}

// Lines of batches delivered at once never interleave.
func TestConcurrentLines(t *testing.T) {
	var out lockedBuffer
	tg := stdout.New(&out)
	want := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		b := batch(50+g, fmt.Sprint("g", g))
		want[string(pipeline.AppendEnvelope(nil, b))] += 20
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := tg.Deliver(context.Background(), b); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := map[string]int{}
	for _, l := range bytes.Split(bytes.TrimSuffix(out.b.Bytes(), []byte("\n")), []byte("\n")) {
		got[string(l)]++
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct lines, want %d: lines interleaved", len(got), len(want))
	}
	for l, n := range want {
		if got[l] != n {
			t.Errorf("an envelope appears %d times, want %d", got[l], n)
		}
	}
}

// A Deliver whose context is cancelled returns its error at once and
// writes nothing.
func TestCancelledDeliverWritesNothing(t *testing.T) {
	var out lockedBuffer
	tg := stdout.New(&out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Deliver(ctx, batch(3, "a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver with a cancelled context: %v, want context.Canceled", err)
	}
	if out.b.Len() != 0 {
		t.Fatalf("a cancelled Deliver wrote %q", out.b.Bytes())
	}
}

// bigBatch is a batch whose line is larger than a pipe's buffer.
func bigBatch(tag string) *pipeline.Batch {
	b := batch(4, tag)
	for i := range b.Records {
		b.Records[i].Value = bytes.Repeat([]byte{'a' + byte(i)}, 64<<10)
	}
	return b
}

// deliverAsync runs Deliver in a goroutine.
func deliverAsync(tg pipeline.Target, ctx context.Context, b *pipeline.Batch) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- tg.Deliver(ctx, b) }()
	return errc
}

// returns waits for a Deliver's error.
func returns(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Deliver did not return within 10s of its context's cancellation", what)
		return nil
	}
}

// A Deliver blocked writing to a pipe whose reader stopped returns when its
// context is cancelled, and so does one waiting for that write. The line
// under way is finished once the reader reads again, whole and as the
// batch was when Deliver was called, before the next line.
func TestBlockedWriteHonoursContext(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tg := stdout.New(w)

	first := bigBatch("first")
	want := append(pipeline.AppendEnvelope(nil, first), '\n')
	ctx, cancel := context.WithCancel(context.Background())
	errc := deliverAsync(tg, ctx, first)
	// The reader takes one byte and stops: the write blocks on the full
	// pipe.
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil {
		t.Fatal(err)
	}
	// A second line waits for the first.
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := deliverAsync(tg, ctx2, batch(1, "second"))
	cancel()
	if err := returns(t, errc, "blocked write"); !errors.Is(err, context.Canceled) {
		t.Errorf("blocked write: %v, want context.Canceled", err)
	}
	cancel2()
	if err := returns(t, errc2, "waiting write"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting write: %v, want context.Canceled", err)
	}
	// The batch is the caller's again: the race detector reports a read
	// of it after Deliver returned.
	for i := range first.Records {
		first.Records[i].Value[0] = 'Z'
	}

	read := make(chan []byte)
	go func() {
		rest, _ := io.ReadAll(r)
		read <- append(one[:], rest...)
	}()
	third := batch(2, "third")
	if err := tg.Deliver(context.Background(), third); err != nil {
		t.Fatalf("Deliver once the reader reads again: %v", err)
	}
	w.Close()
	got := <-read
	want = append(pipeline.AppendEnvelope(want, third), '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("output is not the first line whole, then the third (the second was cancelled before its turn):\n got %.300q\nwant %.300q", got, want)
	}
}

// A write that fails fails the batch, and the next Deliver writes again.
func TestWriteError(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	if err := stdout.New(w).Deliver(context.Background(), batch(1, "x")); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("writing to a pipe without reader: %v, want a retryable error", err)
	}
	var out lockedBuffer
	b := batch(1, "y")
	if err := stdout.New(&out).Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if want := append(pipeline.AppendEnvelope(nil, b), '\n'); !bytes.Equal(out.b.Bytes(), want) {
		t.Fatalf("after a failed write: %q, want %q", out.b.Bytes(), want)
	}
}
