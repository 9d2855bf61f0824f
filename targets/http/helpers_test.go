package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// pipesYAML wraps the lines of an http target block (written without
// indentation) into a pipes.yaml.
func pipesYAML(block string) string {
	var y strings.Builder
	y.WriteString("pipes:\n  - name: orders-api\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      http:\n")
	for _, line := range strings.Split(strings.Trim(block, "\n"), "\n") {
		y.WriteString("        " + line + "\n")
	}
	return y.String()
}

// build makes a target from an http block, through the config loader so
// defaults and checks apply.
func build(t testing.TB, block string) pipeline.Target {
	t.Helper()
	return buildLogged(t, block, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func buildLogged(t testing.TB, block string, logger *slog.Logger) pipeline.Target {
	t.Helper()
	y := pipesYAML(block)
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y, err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "orders-api", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// loadErr returns the problems the loader finds in an http block.
func loadErr(t *testing.T, block string) string {
	t.Helper()
	_, err := pipeline.Parse("pipes.yaml", []byte(pipesYAML(block)))
	if err == nil {
		t.Fatalf("no problem found in:\n%s", block)
	}
	return err.Error()
}

// jrec is a record of the orders topic with a key and a value.
func jrec(part int32, off int64, key, value string) pipeline.Record {
	return pipeline.Record{
		Topic: "orders", Partition: part, Offset: off,
		Timestamp: time.UnixMilli(1_700_000_000_000 + off),
		Key:       []byte(key), Value: []byte(value),
		Headers: []pipeline.Header{{Key: "trace", Value: []byte("t-1")}},
	}
}

func batchOf(recs ...pipeline.Record) *pipeline.Batch {
	return &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b-1:9092", Records: recs}
}

// seen is what a test server saw of one request.
type seen struct {
	method   string
	rawPath  string // as sent, percent-encoding kept
	rawQuery string
	query    url.Values
	header   http.Header
	body     []byte
}

// recorder is an endpoint that records every request and answers with
// what answer says (200 when answer is nil).
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []seen
	answer func(s seen, w http.ResponseWriter) int
}

func newRecorder(t testing.TB, answer func(s seen, w http.ResponseWriter) int) *recorder {
	rc := &recorder{answer: answer}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{
		method: r.Method, rawPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, query: r.URL.Query(),
		header: r.Header.Clone(), body: body,
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(s, w)
	}
	w.WriteHeader(status)
	if status >= 300 {
		io.WriteString(w, "refused: "+http.StatusText(status))
	}
}

func (rc *recorder) seen() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

// noSecrets fails the test when err's text shows any of the secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q shows the secret %q", err, s)
		}
	}
}

// deliver calls Deliver with a deadline, so a hang fails the test.
func deliver(t testing.TB, tg pipeline.Target, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Deliver(ctx, b)
}

// fakeClock is a clock whose sleeps advance it at once.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
