package sqs_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	destsqs "github.com/pipe-run/pipe/destinations/sqs"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // the source of the test configs
	_ "github.com/pipe-run/pipe/targets/http"  // the target of the pipe test
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// parse decodes a pipes.yaml whose onFailure is an sqs block with the
// given settings (lines of YAML under `sqs:`).
func parse(t testing.TB, settings ...string) (*destsqs.Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: p\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      stdout: {}\n    onFailure:\n      sqs:\n")
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pipes[0].OnFailure.(*destsqs.Config), nil
}

// build makes a destination from settings; the AWS settings come from the
// environment (Fauxqs.SetEnv) unless the settings name them.
func build(t testing.TB, settings ...string) pipeline.Destination {
	t.Helper()
	c, err := parse(t, settings...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	d, err := c.NewDestination(pipeline.Env{Pipe: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// statusErr is a target's error with the status of its answer.
type statusErr struct {
	code int
	msg  string
}

func (e *statusErr) Error() string   { return e.msg }
func (e *statusErr) StatusCode() int { return e.code }

// failure is a failure of pipe p: records of orders/<partition> at the
// given offsets, values of size bytes (at least a small JSON object).
func failure(requestID string, partition int32, size int, offsets ...int64) *pipeline.Failure {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for _, o := range offsets {
		v := fmt.Appendf(nil, `{"n":%d}`, o)
		if pad := size - len(v); pad > 0 {
			v = fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, o, strings.Repeat("x", pad))
		}
		b.Records = append(b.Records, pipeline.Record{Topic: "orders", Partition: partition, Offset: o,
			Timestamp: time.UnixMilli(1_700_000_000_000 + o), Key: []byte("k"), Value: v,
			Headers: []pipeline.Header{{Key: "trace", Value: []byte("t1")}}})
	}
	return &pipeline.Failure{Pipe: "p", RequestID: requestID, Condition: pipeline.RetryAttemptsExhausted, Attempts: 3,
		Stage: "target", Target: "http://127.0.0.1:1/orders", Err: &statusErr{400, "POST http://127.0.0.1:1/orders: status 400: no"},
		Batch: b, Time: time.UnixMilli(1_700_000_100_000)}
}

// attrs returns a message's String attributes.
func attrs(m types.Message) map[string]string {
	out := map[string]string{}
	for k, v := range m.MessageAttributes {
		if aws.ToString(v.DataType) != "String" {
			out[k] = "type " + aws.ToString(v.DataType)
			continue
		}
		out[k] = aws.ToString(v.StringValue)
	}
	return out
}

// diff describes how two attribute maps differ, "" when they are equal.
func diff(got, want map[string]string) string {
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if g != w || gok != wok {
			out = append(out, fmt.Sprintf("%s: got %q (%v), want %q (%v)", k, g, gok, w, wok))
		}
	}
	return strings.Join(out, "; ")
}

// proxy stands between a destination and fauxqs: it counts the calls by
// their X-Amz-Target, and answers a call itself while throttle is set.
type proxy struct {
	*httptest.Server
	mu       sync.Mutex
	calls    map[string]int
	throttle bool
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{calls: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.calls[r.Header.Get("X-Amz-Target")]++
		throttle := p.throttle
		p.mu.Unlock()
		if throttle {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-Query-Error", "RequestThrottled;Sender")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Rate exceeded"}`)
			return
		}
		req, _ := http.NewRequest(r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) count(target string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[target]
}

func (p *proxy) setThrottle(on bool) {
	p.mu.Lock()
	p.throttle = on
	p.mu.Unlock()
}

// one returns the only message of msgs.
func one(t *testing.T, msgs []types.Message) types.Message {
	t.Helper()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// newHangingServer returns the URL of a server that answers nothing until
// release is closed or the client goes away.
func newHangingServer(t *testing.T, release <-chan struct{}) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
