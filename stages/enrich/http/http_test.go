package http_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
	"github.com/pipe-run/pipe/stages/enrich"
	_ "github.com/pipe-run/pipe/stages/enrich/http"
	_ "github.com/pipe-run/pipe/targets/stdout" // a target kind for the test configs
)

func config(url string, lines ...string) string {
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	fmt.Fprintf(&y, "    enrichment:\n      http:\n        url: %q\n", url)
	for _, l := range lines {
		fmt.Fprintf(&y, "        %s\n", l)
	}
	y.WriteString("    target:\n      stdout: {}\n")
	return y.String()
}

// newStage builds the enrichment of a pipes.yaml through pipeline.Build.
func newStage(t *testing.T, url string, lines ...string) pipeline.Stage {
	t.Helper()
	cfg, err := pipeline.Parse("pipes.yaml", []byte(config(url, lines...)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	pipes, err := pipeline.Build(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pipes) != 1 || len(pipes[0].Stages) != 1 {
		t.Fatalf("Build made %d pipes, the first with %d stages; want one enrichment stage", len(pipes), len(pipes[0].Stages))
	}
	return pipes[0].Stages[0]
}

type request struct {
	method, path, contentType string
	header                    http.Header
	body                      []byte
}

// endpoint answers every request with answer() after recording it.
func endpoint(t *testing.T, answer func(w http.ResponseWriter, body []byte)) (*httptest.Server, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var reqs []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, request{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Clone(), body})
		mu.Unlock()
		answer(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), reqs...)
	}
}

func reply(status int, body string, header ...string) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, _ []byte) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func testBatch() *pipeline.Batch {
	ts := time.UnixMilli(1_700_000_000_000)
	return &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b:9092", Records: []pipeline.Record{
		{Topic: "orders", Partition: 0, Offset: 5, Timestamp: ts, Key: []byte("k5"), Value: []byte(`{"id":5,"name":"ann"}`)},
		{Topic: "orders", Partition: 0, Offset: 6, Timestamp: ts, Key: []byte("k6"), Value: []byte(`{"id":6,"name":"bob"}`)},
		{Topic: "orders", Partition: 1, Offset: 2, Timestamp: ts, Key: []byte("k2"), Value: []byte(`{"id":2,"name":"cy"}`)},
	}}
}

func values(b *pipeline.Batch) []string {
	if b == nil {
		return nil
	}
	var out []string
	for _, r := range b.Records {
		out = append(out, fmt.Sprintf("%s-%d/%d=%s", r.Topic, r.Partition, r.Offset, r.Value))
	}
	return out
}

func TestEnvelopeRequest(t *testing.T) {
	t.Setenv("PIPE_TEST_ENRICH_KEY", "key-123")
	srv, seen := endpoint(t, func(w http.ResponseWriter, body []byte) { w.Write(body) })
	st := newStage(t, srv.URL+"/enrich?v=1", "headers:", "  X-Api-Key: ${PIPE_TEST_ENRICH_KEY}")
	b := testBatch()
	out, err := st.Process(context.Background(), b)
	reqs := seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/enrich" || r.contentType != "application/json" || r.header.Get("X-Api-Key") != "key-123" {
		t.Errorf("request %s %s, Content-Type %q, X-Api-Key %q", r.method, r.path, r.contentType, r.header.Get("X-Api-Key"))
	}
	if !bytes.Equal(r.body, pipeline.AppendEnvelope(nil, b)) {
		t.Errorf("body is not the envelope: %s", r.body)
	}
	// The envelope echoed back is the batch unchanged.
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(values(out)) != fmt.Sprint(values(b)) {
		t.Errorf("echoing the envelope gave %v, want %v", values(out), values(b))
	}
}

func TestAnswerShapes(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		want         []string // nil: nothing to deliver
	}{
		{"empty body", "", nil},
		{"empty object", "{}", nil},
		{"empty array", "[]", nil},
		{"envelope", `{"records":{"orders-1":[{"topic":"orders","partition":1,"offset":2,"value":"eyJpZCI6Mn0="}],"orders-0":[{"topic":"orders","partition":0,"offset":5}]}}`,
			[]string{`orders-0/5={"id":5,"name":"ann"}`, `orders-1/2={"id":2}`}},
		{"per record", `[{"tier":"a"},null,"c"]`, []string{`orders-0/5={"tier":"a"}`, `orders-1/2=c`}},
		{"new events", `[{"sum":3},{"count":2}]`, []string{`orders-0/5={"sum":3}`, `orders-0/5={"count":2}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := endpoint(t, reply(200, tc.answer))
			out, err := newStage(t, srv.URL).Process(context.Background(), testBatch())
			if err != nil {
				t.Fatal(err)
			}
			if got := values(out); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	srv, seen := endpoint(t, reply(200, `["A","B","C"]`))
	st := newStage(t, srv.URL, `inputTemplate: '{"id": <$.value.id>, "who": "<$.value.name>"}'`)
	out, err := st.Process(context.Background(), testBatch())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(seen()[0].body), `[{"id": 5, "who": "ann"},{"id": 6, "who": "bob"},{"id": 2, "who": "cy"}]`; got != want {
		t.Errorf("request\n got %s\nwant %s", got, want)
	}
	if got := values(out); fmt.Sprint(got) != "[orders-0/5=A orders-0/6=B orders-1/2=C]" {
		t.Errorf("got %v", got)
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		status     int
		header     []string
		permanent  bool
		retryAfter time.Duration
	}{
		{status: 500},
		{status: 502},
		{status: 503, header: []string{"Retry-After", "4"}, retryAfter: 4 * time.Second},
		{status: 429},
		{status: 429, header: []string{"Retry-After", "2"}, retryAfter: 2 * time.Second},
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 404, permanent: true},
		{status: 413, permanent: true},
		{status: 302, header: []string{"Location", "/elsewhere"}, permanent: true},
	} {
		t.Run(fmt.Sprint(tc.status, tc.header), func(t *testing.T) {
			srv, seen := endpoint(t, reply(tc.status, "went wrong", tc.header...))
			out, err := newStage(t, srv.URL).Process(context.Background(), testBatch())
			if err == nil {
				t.Fatalf("status %d gave %v, want an error", tc.status, values(out))
			}
			if n := len(seen()); n != 1 {
				t.Errorf("%d requests, want 1: the stage never retries on its own", n)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", got, tc.permanent, err)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("retry after %v, want %v", got, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			var sc pipeline.StatusCoder
			if !errors.As(err, &sc) || sc.StatusCode() != tc.status {
				t.Errorf("the error does not carry the status %d", tc.status)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	t.Setenv("PIPE_TEST_ENRICH_KEY", "secret-key")
	other, otherSeen := endpoint(t, reply(200, `[1,2,3]`))
	srv, _ := endpoint(t, func(w http.ResponseWriter, body []byte) {
		http.Redirect(w, &http.Request{}, other.URL+"/moved", http.StatusTemporaryRedirect)
	})
	out, err := newStage(t, srv.URL, "headers:", "  X-Api-Key: ${PIPE_TEST_ENRICH_KEY}").Process(context.Background(), testBatch())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 3 {
		t.Fatalf("got %v", values(out))
	}
	r := otherSeen()[0]
	if !bytes.Equal(r.body, pipeline.AppendEnvelope(nil, testBatch())) {
		t.Errorf("the redirected request lost its body: %s", r.body)
	}
	if r.header.Get("X-Api-Key") != "" {
		t.Errorf("the API key went to another host")
	}

	// A redirect loop ends with an error, without hanging.
	var loop *httptest.Server
	loop, _ = endpoint(t, func(w http.ResponseWriter, body []byte) {
		http.Redirect(w, &http.Request{}, loop.URL+"/again", http.StatusPermanentRedirect)
	})
	done := make(chan error, 1)
	go func() {
		_, err := newStage(t, loop.URL).Process(context.Background(), testBatch())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "redirects") {
			t.Errorf("a redirect loop gave %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a redirect loop hangs the stage")
	}
}

func TestAnswerCap(t *testing.T) {
	big := `["` + strings.Repeat("x", enrich.MaxResponseSize) + `"]`
	srv, _ := endpoint(t, reply(200, big))
	out, err := newStage(t, srv.URL).Process(context.Background(), testBatch())
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a %d-byte answer gave %v, %v; want a retryable failure", len(big), values(out), err)
	}

	// Exactly 6 MB is fine.
	exact := `["` + strings.Repeat("x", enrich.MaxResponseSize-len(`["",null,null]`)) + `",null,null]`
	srv, _ = endpoint(t, reply(200, exact))
	out, err = newStage(t, srv.URL).Process(context.Background(), testBatch())
	if err != nil || len(out.Records) != 1 {
		t.Fatalf("a 6 MB answer gave %d records, %v", len(values(out)), err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := endpoint(t, func(w http.ResponseWriter, _ []byte) { <-release })
	defer close(release)
	_, err := newStage(t, srv.URL, "timeout: 200ms").Process(context.Background(), testBatch())
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("a timeout gave %v, want a retryable error", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv, _ := endpoint(t, reply(200, ""))
	url := srv.URL + "/x?token=SECRET"
	srv.Close()
	_, err := newStage(t, url).Process(context.Background(), testBatch())
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("a refused connection gave %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q shows the URL's query", err)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		url   string
		lines []string
		want  string
	}{
		{"localhost:80", nil, "url: must be an absolute"},
		{"ftp://h/x", nil, "url: must be an absolute"},
		{"http://h/x", []string{"headers:", "  'bad name': v"}, "is not a valid header name"},
		{"http://h/x", []string{`inputTemplate: '{"id": <$.value.>}'`}, "inputTemplate: at offset"},
		{"http://h/x", []string{"timeout: 0s"}, "timeout"},
		{"http://h/x", []string{"method: PUT"}, `unknown key "method"`},
	} {
		_, err := pipeline.Parse("pipes.yaml", []byte(config(tc.url, tc.lines...)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want %q", tc.url, tc.lines, err, tc.want)
		}
	}
}
