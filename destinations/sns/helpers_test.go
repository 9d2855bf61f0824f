package sns_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	destsns "github.com/pipe-run/pipe/destinations/sns"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // the source of the test configs
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// parse decodes a pipes.yaml whose onFailure is an sns block with the
// given settings (lines of YAML under `sns:`).
func parse(t testing.TB, settings ...string) (*destsns.Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: p\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      stdout: {}\n    onFailure:\n      sns:\n")
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pipes[0].OnFailure.(*destsns.Config), nil
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

// topicWithQueue creates a topic and a queue subscribed to it with raw
// message delivery (FIFO both when name ends in .fifo); it returns the
// topic ARN and the queue URL.
func topicWithQueue(t *testing.T, fq *testenv.Fauxqs, name string) (string, string) {
	arn := fq.CreateTopic(t, name, nil)
	queue := fq.CreateQueue(t, name, nil)
	fq.Subscribe(t, arn, queue, true)
	return arn, queue
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

// one returns the only message of msgs.
func one(t *testing.T, msgs []types.Message) types.Message {
	t.Helper()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// proxy stands between a destination and fauxqs: it counts the SNS calls
// by their Action, and a hook may answer the n-th call of an action itself
// (an error of the query protocol: status, code, message).
type proxy struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
	hook  func(action string, n int) (status int, code, msg string)
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{calls: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		p.mu.Lock()
		p.calls[action]++
		n, hook := p.calls[action], p.hook
		p.mu.Unlock()
		if hook != nil {
			if status, code, msg := hook(action, n); status != 0 {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(status)
				fmt.Fprintf(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, code, msg)
				return
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
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[action]
}

func (p *proxy) setHook(h func(action string, n int) (int, string, string)) {
	p.mu.Lock()
	p.hook = h
	p.calls = map[string]int{}
	p.mu.Unlock()
}
