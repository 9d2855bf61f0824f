package http_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
	_ "github.com/pipe-run/pipe/targets/http"
)

// newTarget builds an http target from a pipes.yaml, so defaults and checks
// apply. settings are extra lines of the http block.
func newTarget(t *testing.T, url string, settings ...string) pipeline.Target {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	fmt.Fprintf(&y, "    target:\n      http:\n        url: %q\n", url)
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y.String(), err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func sampleBatch(n, valueSize int) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b-1:9092,b-2:9092"}
	for i := range n {
		b.Records = append(b.Records, pipeline.Record{
			Topic: "orders", Partition: int32(i % 2), Offset: int64(100 + i),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
			Headers:   []pipeline.Header{{Key: "h", Value: []byte{0xdc, 1}}},
		})
	}
	// Records are grouped by partition in a batch.
	var even, odd []pipeline.Record
	for _, r := range b.Records {
		if r.Partition == 0 {
			even = append(even, r)
		} else {
			odd = append(odd, r)
		}
	}
	b.Records = append(even, odd...)
	return b
}

// request is what a test server saw of one request.
type request struct {
	method, path, query, contentType string
	user, pass                       string
	header                           http.Header
	body                             []byte
}

// server answers every request with status (and headers) after recording it.
func server(t *testing.T, status int, header map[string]string) (*httptest.Server, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var reqs []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		reqs = append(reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), user, pass, r.Header.Clone(), body})
		mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), reqs...)
	}
}

func TestDeliverBody(t *testing.T) {
	t.Setenv("PIPE_TEST_TOKEN", "tok-123")
	srv, seen := server(t, http.StatusOK, nil)
	tg := newTarget(t, srv.URL+"/ingest?x=1",
		"headers:",
		"  X-Api-Key: ${PIPE_TEST_TOKEN}",
		"  x-tenant: acme")
	for _, b := range []*pipeline.Batch{sampleBatch(5, 10), sampleBatch(1, 0), sampleBatch(40, 4000)} {
		if err := tg.Deliver(context.Background(), b); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	reqs := seen()
	if len(reqs) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(reqs))
	}
	for i, b := range []*pipeline.Batch{sampleBatch(5, 10), sampleBatch(1, 0), sampleBatch(40, 4000)} {
		r := reqs[i]
		if want := pipeline.AppendEnvelope(nil, b); !bytes.Equal(r.body, want) {
			t.Errorf("request %d body differs from the envelope:\n got %.200s\nwant %.200s", i, r.body, want)
		}
		if r.method != http.MethodPost || r.path != "/ingest" || r.query != "x=1" {
			t.Errorf("request %d: %s %s?%s, want POST /ingest?x=1", i, r.method, r.path, r.query)
		}
		if r.contentType != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, r.contentType)
		}
		if got := r.header.Get("X-Api-Key"); got != "tok-123" {
			t.Errorf("request %d: X-Api-Key %q, want the expanded tok-123", i, got)
		}
		if got := r.header.Get("X-Tenant"); got != "acme" {
			t.Errorf("request %d: X-Tenant %q, want acme", i, got)
		}
	}
}

func TestDeliverStatus(t *testing.T) {
	for _, tc := range []struct {
		status     int
		header     map[string]string
		ok         bool
		permanent  bool
		retryAfter time.Duration
	}{
		{status: 200, ok: true},
		{status: 202, ok: true},
		{status: 204, ok: true},
		{status: 500},
		{status: 502},
		{status: 503},
		{status: 503, header: map[string]string{"Retry-After": "3"}, retryAfter: 3 * time.Second},
		{status: 429},
		{status: 429, header: map[string]string{"Retry-After": "2"}, retryAfter: 2 * time.Second},
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 404, permanent: true},
		{status: 413, permanent: true},
	} {
		t.Run(fmt.Sprintf("%d%v", tc.status, tc.header), func(t *testing.T) {
			srv, seen := server(t, tc.status, tc.header)
			tg := newTarget(t, srv.URL)
			err := tg.Deliver(context.Background(), sampleBatch(3, 10))
			if len(seen()) != 1 {
				t.Fatalf("server saw %d requests, want 1: the target never retries on its own", len(seen()))
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("status %d: %v, want success", tc.status, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("status %d: no error", tc.status)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("status %d: permanent %v, want %v (%v)", tc.status, got, tc.permanent, err)
			}
			if got := pipeline.IsTooLarge(err); got != (tc.status == 413) {
				t.Errorf("status %d: too large %v", tc.status, got)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("status %d: retry after %v, want %v", tc.status, got, tc.retryAfter)
			}
			if want := fmt.Sprint(tc.status); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the status", err)
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv, _ := server(t, http.StatusServiceUnavailable, map[string]string{"Retry-After": at})
	err := newTarget(t, srv.URL).Deliver(context.Background(), sampleBatch(1, 1))
	if d := pipeline.RetryAfterOf(err); d < 80*time.Second || d > 91*time.Second {
		t.Errorf("Retry-After %s gave %v, want about 90s", at, d)
	}
	if pipeline.IsPermanent(err) {
		t.Error("503 is permanent")
	}
}

func TestDeliverTimeout(t *testing.T) {
	tg := newTarget(t, hanging(t).URL, "timeout: 200ms")
	done := make(chan error, 1)
	go func() { done <- tg.Deliver(context.Background(), sampleBatch(2, 10)) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a server that never answers gave no error")
		}
		if pipeline.IsPermanent(err) {
			t.Errorf("a timeout is permanent: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Deliver did not give up after its 200ms timeout")
	}
}

func TestDeliverCancelled(t *testing.T) {
	tg := newTarget(t, hanging(t).URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Deliver(ctx, sampleBatch(2, 10)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Deliver with a cancelled context: %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Deliver ignored its context")
	}
}

// hanging returns a server that reads each request and never answers until
// the client gives up or the test ends.
func hanging(t *testing.T) *httptest.Server {
	t.Helper()
	end := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-end:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(end) }) // runs before srv.Close
	return srv
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestConnectionRefused(t *testing.T) {
	tg := newTarget(t, "http://"+closedAddr(t)+"/x")
	err := tg.Deliver(context.Background(), sampleBatch(1, 1))
	if err == nil {
		t.Fatal("no error with nothing listening")
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("connection refused is permanent: %v", err)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	const user, pass, token = "svc-user", "s3cr3t-pass", "tok-hunter2"
	secretURL := func(host string) string {
		return "http://" + user + ":" + pass + "@" + host + "/hook?token=" + token
	}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		for _, s := range []string{user, pass, token} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q shows %q", err, s)
			}
		}
		if !strings.Contains(err.Error(), "/hook") {
			t.Errorf("error %q does not name the endpoint", err)
		}
	}
	t.Run("status", func(t *testing.T) {
		srv, seen := server(t, http.StatusInternalServerError, nil)
		check(t, newTarget(t, secretURL(srv.Listener.Addr().String())).Deliver(context.Background(), sampleBatch(1, 1)))
		// The credentials and query still reach the endpoint.
		if r := seen(); len(r) != 1 || r[0].user != user || r[0].pass != pass || r[0].query != "token="+token {
			t.Errorf("server saw %+v, want basic auth and the query", r)
		}
	})
	t.Run("refused", func(t *testing.T) {
		check(t, newTarget(t, secretURL(closedAddr(t))).Deliver(context.Background(), sampleBatch(1, 1)))
	})
	t.Run("timeout", func(t *testing.T) {
		check(t, newTarget(t, secretURL(hanging(t).Listener.Addr().String()), "timeout: 100ms").Deliver(context.Background(), sampleBatch(1, 1)))
	})
	t.Run("redirect loop", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		check(t, newTarget(t, secretURL(srv.Listener.Addr().String())).Deliver(context.Background(), sampleBatch(1, 1)))
	})
}

// A redirect that turns the POST into a GET must not count as delivered:
// the records would never reach the endpoint.
func TestRedirectDropsNoBody(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			final, seen := server(t, http.StatusOK, nil)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, final.URL+"/final", status)
			}))
			t.Cleanup(srv.Close)
			err := newTarget(t, srv.URL).Deliver(context.Background(), sampleBatch(2, 10))
			if err == nil {
				t.Fatalf("a %d redirect counted as delivered; the endpoint saw %d requests", status, len(seen()))
			}
			if !pipeline.IsPermanent(err) {
				t.Errorf("a %d answer is not permanent: %v", status, err)
			}
		})
	}
	t.Run("307 keeps the body", func(t *testing.T) {
		final, seen := server(t, http.StatusOK, nil)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, final.URL+"/final", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		b := sampleBatch(2, 10)
		if err := newTarget(t, srv.URL).Deliver(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if r := seen(); len(r) != 1 || r[0].method != http.MethodPost || !bytes.Equal(r[0].body, pipeline.AppendEnvelope(nil, b)) {
			t.Errorf("after a 307 the endpoint saw %d requests, want the POST with the envelope", len(r))
		}
	})
}

// An endpoint that answers before reading a large body: the request body's
// buffer must not be reused while the client may still be sending it. Run
// with -race.
func TestEarlyAnswerLargeBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	tg := newTarget(t, srv.URL)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				err := tg.Deliver(context.Background(), sampleBatch(8, 200_000+g*1000+i))
				if err == nil || !pipeline.IsPermanent(err) {
					t.Errorf("400 gave %v, want a permanent error", err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentDeliveries(t *testing.T) {
	srv, seen := server(t, http.StatusOK, nil)
	tg := newTarget(t, srv.URL)
	var wg sync.WaitGroup
	want := map[string]bool{}
	for g := range 8 {
		b := sampleBatch(g+1, 100*g)
		want[string(pipeline.AppendEnvelope(nil, b))] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if err := tg.Deliver(context.Background(), b); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	reqs := seen()
	if len(reqs) != 40 {
		t.Fatalf("server saw %d requests, want 40", len(reqs))
	}
	for _, r := range reqs {
		if !want[string(r.body)] {
			t.Errorf("a request body (%d bytes) is none of the envelopes sent", len(r.body))
		}
	}
}
