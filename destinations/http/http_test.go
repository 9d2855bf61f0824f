package http_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	desthttp "github.com/pipe-run/pipe/destinations/http"
	"github.com/pipe-run/pipe/pipeline"
)

func failure() *pipeline.Failure {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "k:9092",
		Records: []pipeline.Record{{Topic: "orders", Partition: 0, Offset: 7, Timestamp: time.UnixMilli(5), Value: []byte("v")}}}
	return &pipeline.Failure{Pipe: "p", RequestID: "r", Condition: pipeline.RetryAttemptsExhausted, Attempts: 1,
		Stage: "target", Err: errors.New("boom"), Batch: b, Time: time.Unix(0, 0)}
}

func newDest(t *testing.T, c *desthttp.Config) pipeline.Destination {
	t.Helper()
	if ps := c.Validate(); ps != nil {
		t.Fatal(ps)
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	d, err := c.NewDestination(pipeline.Env{Pipe: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestPostsTheFailureRecord: the body is the on-failure record with its
// payload, the headers are sent, and a 2xx stores it.
func TestPostsTheFailureRecord(t *testing.T) {
	var body, auth, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body, auth, ctype = string(b), r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	d := newDest(t, &desthttp.Config{URL: srv.URL + "/dlq", Headers: map[string]pipeline.Secret{"Authorization": "Bearer t0k"}, Payload: true})
	f := failure()
	if err := d.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if body != string(pipeline.AppendFailureRecord(nil, f, true)) || auth != "Bearer t0k" || ctype != "application/json" {
		t.Fatalf("got body %s auth %q type %q", body, auth, ctype)
	}
	if b, err := pipeline.ParseFailureRecord([]byte(body)); err != nil || b.Records[0].Offset != 7 {
		t.Fatalf("payload: %v %v", b, err)
	}
}

// TestNon2xxFails: 500, 404 and a redirect fail the send with the status
// and without the URL's query or the headers.
func TestNon2xxFails(t *testing.T) {
	var code atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code.Load() == 302 {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		http.Error(w, "nope", int(code.Load()))
	}))
	defer srv.Close()
	d := newDest(t, &desthttp.Config{URL: srv.URL + "/dlq?key=s3cret", Headers: map[string]pipeline.Secret{"X-Key": "hidden"}})
	for _, c := range []int32{500, 404, 302} {
		code.Store(c)
		err := d.Send(context.Background(), failure())
		if err == nil {
			t.Fatalf("status %d: no error", c)
		}
		if msg := err.Error(); !strings.Contains(msg, "status "+itoa(c)) || strings.Contains(msg, "s3cret") || strings.Contains(msg, "hidden") {
			t.Errorf("status %d: error %q", c, msg)
		}
	}
	srv.Close()
	if err := d.Send(context.Background(), failure()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("server down: %v", err)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestValidate(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "/relative", "http://"} {
		if ps := (&desthttp.Config{URL: u}).Validate(); len(ps) != 1 {
			t.Errorf("%q: %v", u, ps)
		}
	}
}
