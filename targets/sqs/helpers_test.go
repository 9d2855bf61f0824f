package sqs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/pipe-run/pipe/destinations/file" // the example's on-failure destination
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
)

// parse decodes a pipes.yaml whose target is an sqs block with the given
// settings (lines of YAML under `sqs:`).
func parse(t testing.TB, settings ...string) (*Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      sqs:\n")
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pipes[0].Target.(*Config), nil
}

// build makes a target from settings; the AWS settings come from the
// environment (Fauxqs.SetEnv).
func build(t testing.TB, settings ...string) *target {
	t.Helper()
	c, err := parse(t, settings...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	tg, err := c.NewTarget(pipeline.Env{Pipe: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg.(*target)
}

// rec is a record of topic orders with a JSON value.
func rec(partition int32, offset int64, key, value string) pipeline.Record {
	r := pipeline.Record{
		Topic: "orders", Partition: partition, Offset: offset,
		Timestamp: time.UnixMilli(1_700_000_000_000 + offset),
		Value:     []byte(value),
		Headers:   []pipeline.Header{{Key: "trace", Value: []byte{0xdc, 'x'}}},
	}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

// testBatch holds n records, spread over partitions in order (all of partition
// 0 first), with values {"id":<i>,"group":"g<i%3>"}.
func testBatch(n int, partitions int32) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for p := range partitions {
		for i := range n {
			if int32(i)%partitions != p {
				continue
			}
			b.Records = append(b.Records, rec(p, int64(i), fmt.Sprintf("k%d", i), fmt.Sprintf(`{"id":%d,"group":"g%d"}`, i, i%3)))
		}
	}
	return b
}

// call is one SendMessageBatch call seen by the proxy.
type call struct {
	entries []map[string]any
}

// proxy stands between the target and fauxqs and records the calls that
// pass. A hook may change a SendMessageBatch call: answer it itself
// (status and body), or drop some entries before they reach fauxqs and
// report them failed.
type proxy struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
	hook  func(n int, entries []map[string]any) (status int, body string, fail map[string]failure)
}

// failure is how the proxy reports a dropped entry.
type failure struct {
	code        string
	senderFault bool
}

func newProxy(t testing.TB, upstream string) *proxy {
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var fail map[string]failure
		if r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessageBatch" {
			var in map[string]any
			if err := json.Unmarshal(body, &in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var entries []map[string]any
			for _, e := range in["Entries"].([]any) {
				entries = append(entries, e.(map[string]any))
			}
			p.mu.Lock()
			p.calls = append(p.calls, call{entries})
			n := len(p.calls)
			hook := p.hook
			p.mu.Unlock()
			if hook != nil {
				status, answer, f := hook(n, entries)
				if status != 0 {
					w.Header().Set("Content-Type", "application/x-amz-json-1.0")
					w.WriteHeader(status)
					io.WriteString(w, answer)
					return
				}
				fail = f
			}
			if len(fail) > 0 {
				var kept []any
				for _, e := range entries {
					if _, drop := fail[e["Id"].(string)]; !drop {
						kept = append(kept, e)
					}
				}
				in["Entries"] = kept
				body, _ = json.Marshal(in)
			}
		}
		req, _ := http.NewRequest(r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if len(fail) > 0 && resp.StatusCode == http.StatusOK {
			var out map[string]any
			json.Unmarshal(answer, &out)
			failed, _ := out["Failed"].([]any)
			for id, f := range fail {
				failed = append(failed, map[string]any{"Id": id, "Code": f.code, "Message": "injected", "SenderFault": f.senderFault})
			}
			out["Failed"] = failed
			answer, _ = json.Marshal(out)
		}
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) setHook(h func(n int, entries []map[string]any) (int, string, map[string]failure)) {
	p.mu.Lock()
	p.hook = h
	p.calls = nil
	p.mu.Unlock()
}

// sizes returns the number of entries of each call so far.
func (p *proxy) sizes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n []int
	for _, c := range p.calls {
		n = append(n, len(c.entries))
	}
	return n
}

// start starts fauxqs with the environment pointed at it, and a proxy in
// front of it.
func start(t *testing.T) (*testenv.Fauxqs, *proxy) {
	f := testenv.StartFauxqs(t)
	f.SetEnv(t)
	return f, newProxy(t, f.URL)
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
