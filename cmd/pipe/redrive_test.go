package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// picky is an HTTP endpoint that rejects (400) every batch holding a record
// keyed "bad" until fixed, and notes the values it accepted.
type picky struct {
	fixed atomic.Bool
	mu    sync.Mutex
	got   []string
}

func (p *picky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b, err := pipeline.ParseEnvelope(body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	for _, rec := range b.Records {
		if string(rec.Key) == "bad" && !p.fixed.Load() {
			http.Error(w, "bad record", http.StatusBadRequest)
			return
		}
	}
	p.mu.Lock()
	for _, rec := range b.Records {
		p.got = append(p.got, string(rec.Value))
	}
	p.mu.Unlock()
}

func (p *picky) values() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.got)
	slices.Sort(out)
	return out
}

func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedriveRoundTrip: a pipe with bisect and no retries dead-letters the
// two records its target rejects into a file and delivers the eight others;
// once the target is fixed, `pipe redrive` sends exactly those two through
// the pipe; `--to source` puts them back on their topic; --dry-run sends
// nothing.
func TestRedriveRoundTrip(t *testing.T) {
	kc := testenv.Kafka(t, 1, "orders")
	srv := &picky{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := t.TempDir()
	failedFile := filepath.Join(dir, "failed.jsonl")
	cfgFile := filepath.Join(dir, "pipes.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: %s
        topics: [orders]
        maximumBatchingWindow: 20ms
    target:
      http: {url: %q}
    bisectBatchOnError: true
    maximumRetryAttempts: 0
    retryBackoff: {initial: 1ms, maximum: 5ms}
    onFailure:
      file: {path: %q}
`, kc.Addr, hs.URL, failedFile))
	var recs []*kgo.Record
	for i := range 10 {
		key := "good"
		if i == 3 || i == 7 {
			key = "bad"
		}
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(key), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	kc.Produce(t, recs...)

	cfg, err := pipeline.LoadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runPipes(ctx, cfg, io.Discard) }()
	waitFor(t, "8 deliveries and 2 dead-lettered records", func() bool {
		return len(srv.values()) == 8 && countLines(failedFile) == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := srv.values(); strings.Join(got, ",") != "v0,v1,v2,v4,v5,v6,v8,v9" {
		t.Fatalf("delivered %v", got)
	}
	if off := kc.Committed(t, "pipe-orders")["orders"][0]; off != 10 {
		t.Fatalf("committed offset %d, want 10 (every record delivered or dead-lettered)", off)
	}

	// Dry run: lists, sends nothing.
	code, stdout, stderr := runPipe(t, "redrive", "-f", cfgFile, "--from-file", failedFile, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		failedFile + ":1: would send orders-0 offsets 3-3 (1 record(s)) to pipe (RetryAttemptsExhausted at target: POST ",
		failedFile + ":2: would send orders-0 offsets 7-7 (1 record(s)) to pipe",
		"2 of 2 on-failure record(s) are pipe \"orders\"'s; nothing sent (dry run)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if len(srv.values()) != 8 {
		t.Fatal("dry run sent something")
	}

	// Still broken: redrive stops at the first record and says so.
	code, _, stderr = runPipe(t, "redrive", "-f", cfgFile, "--from-file", failedFile, "--attempts", "1")
	if code != 1 || !strings.Contains(stderr, "redrive stopped at "+failedFile+":1 after 0 of 2") {
		t.Fatalf("redrive into a broken target: exit %d, %s", code, stderr)
	}

	srv.fixed.Store(true)
	code, stdout, stderr = runPipe(t, "redrive", "-f", cfgFile, "--from-file", failedFile)
	if code != 0 {
		t.Fatalf("redrive exit %d: %s\n%s", code, stderr, stdout)
	}
	if got := srv.values(); strings.Join(got, ",") != "v0,v1,v2,v3,v4,v5,v6,v7,v8,v9" {
		t.Fatalf("after redrive the target has %v", got)
	}

	// Back to the source topic: the two records are produced again, with
	// their keys.
	code, _, stderr = runPipe(t, "redrive", "-f", cfgFile, "--from-file", failedFile, "--to", "source")
	if code != 0 {
		t.Fatalf("redrive --to source exit %d: %s", code, stderr)
	}
	cl := kc.NewClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {0: kgo.NewOffset().At(10)}}))
	var again []string
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	for len(again) < 2 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { again = append(again, string(r.Key)+"="+string(r.Value)) })
	}
	if strings.Join(again, ",") != "bad=v3,bad=v7" {
		t.Fatalf("records produced back: %v", again)
	}
}

func TestRedriveFlags(t *testing.T) {
	cfgFile := tempFile(t, "pipes.yaml", testPipes)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"redrive", "-f", cfgFile, "-p", "orders"}, "give one of --from-file and --from-topic"},
		{[]string{"redrive", "-f", cfgFile, "-p", "orders", "--from-file", "x", "--to", "elsewhere"}, `--to must be pipe or source, not "elsewhere"`},
		{[]string{"redrive", "-f", cfgFile, "-p", "orders", "--from-file", tempFile(t, "bad.jsonl", "{}\n")}, "bad.jsonl:1: the on-failure record has no payload"},
	} {
		code, _, stderr := runPipe(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args[1:], code, stderr, tc.want)
		}
	}
}

// TestRedriveFromTopic: a Kafka on-failure destination on the source's
// cluster gets one message per failed record, keyed by its key, with the
// failure context in headers; `pipe redrive --from-topic` reads them back
// and delivers them once the target is fixed.
func TestRedriveFromTopic(t *testing.T) {
	kc := testenv.Kafka(t, 1, "orders", "orders-failed")
	srv := &picky{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	cfgFile := filepath.Join(t.TempDir(), "pipes.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: %s
        topics: [orders]
        maximumBatchingWindow: 20ms
    target:
      http: {url: %q}
    bisectBatchOnError: true
    maximumRetryAttempts: 1
    retryBackoff: {initial: 1ms, maximum: 5ms}
    onFailure:
      kafka: {topic: orders-failed}
`, kc.Addr, hs.URL))
	var recs []*kgo.Record
	for i := range 6 {
		key := "good"
		if i == 1 || i == 4 {
			key = "bad"
		}
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(key), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	kc.Produce(t, recs...)
	cfg, err := pipeline.LoadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runPipes(ctx, cfg, io.Discard) }()

	cl := kc.NewClient(t, kgo.ConsumeTopics("orders-failed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var dead []*kgo.Record
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	for len(dead) < 2 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { dead = append(dead, r) })
	}
	waitFor(t, "4 deliveries", func() bool { return len(srv.values()) == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("%d on-failure messages, want 2", len(dead))
	}
	for i, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		wantOff := []string{"1", "4"}[i]
		if string(r.Key) != "bad" || h["pipe-pipe"] != "orders" || h["pipe-condition"] != "RetryAttemptsExhausted" ||
			h["pipe-stage"] != "target" || h["pipe-attempts"] != "1" || h["pipe-topic"] != "orders" ||
			h["pipe-partition"] != "0" || h["pipe-offset"] != wantOff || !strings.Contains(h["pipe-error"], "status 400") {
			t.Errorf("message %d: key %q headers %v", i, r.Key, h)
		}
		b, err := pipeline.ParseFailureRecord(r.Value)
		if err != nil || len(b.Records) != 1 || fmt.Sprint(b.Records[0].Offset) != wantOff {
			t.Errorf("message %d: payload %v %v", i, b, err)
		}
	}
	srv.fixed.Store(true)
	code, stdout, stderr := runPipe(t, "redrive", "-f", cfgFile, "--from-topic", "orders-failed")
	if code != 0 {
		t.Fatalf("redrive exit %d: %s\n%s", code, stderr, stdout)
	}
	if got := srv.values(); strings.Join(got, ",") != "v0,v1,v2,v3,v4,v5" {
		t.Fatalf("after redrive the target has %v", got)
	}
	if !strings.Contains(stdout, "orders-failed-0@0: sent orders-0 offsets 1-1 (1 record(s)) to pipe") {
		t.Errorf("redrive output:\n%s", stdout)
	}
}
