package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
