package sns

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
)

func parse(t testing.TB, settings ...string) (*Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      sns:\n")
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pipes[0].Target.(*Config), nil
}

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

// testBatch holds n records, spread over partitions in order (all of
// partition 0 first), with values {"id":<i>,"group":"g<i%3>"}.
func testBatch(n int, partitions int32) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for p := range partitions {
		for i := range n {
			if int32(i)%partitions != p {
				continue
			}
			b.Records = append(b.Records, pipeline.Record{
				Topic: "orders", Partition: p, Offset: int64(i),
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
				Key:       []byte(fmt.Sprintf("k%d", i)),
				Value:     []byte(fmt.Sprintf(`{"id":%d,"group":"g%d"}`, i, i%3)),
				Headers:   []pipeline.Header{{Key: "trace", Value: []byte{0xdc, 'x'}}},
			})
		}
	}
	return b
}

var entryIDRE = regexp.MustCompile(`^PublishBatchRequestEntries\.member\.\d+\.Id$`)

// proxy stands between the target and fauxqs, counts the entries of each
// PublishBatch call, and can answer call n itself.
type proxy struct {
	*httptest.Server
	mu     sync.Mutex
	sizes  []int
	answer func(n int) (status int, body string)
}

func newProxy(t testing.TB, upstream string) *proxy {
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") == "PublishBatch" {
			n := 0
			for k := range form {
				if entryIDRE.MatchString(k) {
					n++
				}
			}
			p.mu.Lock()
			p.sizes = append(p.sizes, n)
			calls, answer := len(p.sizes), p.answer
			p.mu.Unlock()
			if answer != nil {
				if status, body := answer(calls); status != 0 {
					w.Header().Set("Content-Type", "text/xml")
					w.WriteHeader(status)
					io.WriteString(w, body)
					return
				}
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

func (p *proxy) reset(answer func(n int) (int, string)) {
	p.mu.Lock()
	p.sizes, p.answer = nil, answer
	p.mu.Unlock()
}

func (p *proxy) calls() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.sizes...)
}

func start(t *testing.T) (*testenv.Fauxqs, *proxy) {
	f := testenv.StartFauxqs(t)
	f.SetEnv(t)
	return f, newProxy(t, f.URL)
}
