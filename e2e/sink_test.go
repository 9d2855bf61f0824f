package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// envelope mirrors the Lambda Kafka batch event (REFERENCE.md section 1).
type envelope struct {
	EventSource      string          `json:"eventSource"`
	BootstrapServers string          `json:"bootstrapServers"`
	Records          json.RawMessage `json:"records"`
}

// envRecord is one record of an envelope. Key and Value are nil when the
// field is absent; a present null is rejected when decoding.
type envRecord struct {
	Topic         string              `json:"topic"`
	Partition     int32               `json:"partition"`
	Offset        int64               `json:"offset"`
	Timestamp     int64               `json:"timestamp"`
	TimestampType string              `json:"timestampType"`
	Key           *string             `json:"key"`
	Value         *string             `json:"value"`
	Headers       []map[string][]int8 `json:"headers"`
}

// delivery is one record as the sink received it.
type delivery struct {
	run              string // the X-Run header of the request
	req              int    // request number, in arrival order
	acked            bool   // the sink answered 200 (set just before it did)
	eventSource      string
	bootstrapServers string
	listKey          string // the "records" key the record was listed under
	rec              envRecord
}

// sink is an HTTP endpoint that decodes each POSTed envelope, records every
// record with the request's X-Run header and answers 200.
type sink struct {
	srv   *httptest.Server
	delay atomic.Int64 // time.Duration spent per request before answering
	// hold, when set, keeps requests unanswered until it is closed or the
	// client goes away.
	hold atomic.Pointer[chan struct{}]

	mu       sync.Mutex
	got      []delivery
	seen     map[po]int
	requests int
	sizes    []int // records per request
	problems []string
}

func newSink(t *testing.T) *sink {
	s := &sink{seen: map[po]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, p := range s.problems {
			if i == 20 {
				t.Errorf("sink: %d more problems", len(s.problems)-i)
				break
			}
			t.Errorf("sink: %s", p)
		}
	})
	return s
}

func (s *sink) url() string { return s.srv.URL + "/deliver" }

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	run := r.Header.Get("X-Run")
	var ds []delivery
	switch {
	case err != nil:
	case r.Method != http.MethodPost || r.URL.Path != "/deliver":
		err = fmt.Errorf("%s %s, want POST /deliver", r.Method, r.URL.Path)
	case r.Header.Get("Content-Type") != "application/json":
		err = fmt.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	case run == "":
		err = fmt.Errorf("no X-Run header")
	default:
		ds, err = decodeEnvelope(body)
	}
	s.mu.Lock()
	s.requests++
	if err != nil {
		s.problems = append(s.problems, fmt.Sprintf("request %d from run %q: %v; body: %.300s", s.requests, run, err, body))
	}
	for i := range ds {
		ds[i].run, ds[i].req = run, s.requests
		s.seen[po{ds[i].rec.Partition, ds[i].rec.Offset}]++
	}
	start := len(s.got)
	s.got = append(s.got, ds...)
	s.sizes = append(s.sizes, len(ds))
	s.mu.Unlock()
	if d := time.Duration(s.delay.Load()); d > 0 {
		time.Sleep(d) // test load: a slowish endpoint
	}
	if hold := s.hold.Load(); hold != nil {
		select {
		case <-*hold:
		case <-r.Context().Done():
			return // the client is gone: not acknowledged
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for i := range ds {
		s.got[start+i].acked = true
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// decodeEnvelope decodes a POSTed envelope strictly: no unknown or null
// fields, no key listed twice under "records", every list in offset order
// under its "<topic>-<partition>" key. It also checks that aws-lambda-go's
// events.KafkaEvent decodes it.
func decodeEnvelope(body []byte) ([]delivery, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("events.KafkaEvent: %w", err)
	}
	var env envelope
	if err := strictDecode(body, &env, "eventSource", "bootstrapServers", "records"); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(env.Records))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("records is not an object: %s", env.Records)
	}
	var ds []delivery
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if keys[key] {
			return nil, fmt.Errorf("records key %q appears twice", key)
		}
		keys[key] = true
		var list []json.RawMessage
		if err := dec.Decode(&list); err != nil {
			return nil, fmt.Errorf("records[%q]: %w", key, err)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("records[%q] is empty", key)
		}
		for i, raw := range list {
			var r envRecord
			if err := strictDecode(raw, &r, "topic", "partition", "offset", "timestamp", "timestampType", "headers"); err != nil {
				return nil, fmt.Errorf("records[%q][%d]: %w", key, i, err)
			}
			if want := fmt.Sprintf("%s-%d", r.Topic, r.Partition); key != want {
				return nil, fmt.Errorf("records[%q][%d] is of %s", key, i, want)
			}
			if i > 0 && r.Offset <= ds[len(ds)-1].rec.Offset {
				return nil, fmt.Errorf("records[%q]: offset %d after %d", key, r.Offset, ds[len(ds)-1].rec.Offset)
			}
			ds = append(ds, delivery{eventSource: env.EventSource, bootstrapServers: env.BootstrapServers, listKey: key, rec: r})
		}
	}
	return ds, nil
}

// strictDecode decodes a JSON object into v, rejecting unknown fields, null
// values and missing required fields.
func strictDecode(data []byte, v any, required ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	for k, raw := range fields {
		if string(raw) == "null" {
			return fmt.Errorf("field %q is null", k)
		}
	}
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			return fmt.Errorf("field %q is missing", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// pause stops answering requests until resume.
func (s *sink) pause() {
	ch := make(chan struct{})
	s.hold.Store(&ch)
}

func (s *sink) resume() {
	if ch := s.hold.Swap(nil); ch != nil {
		close(*ch)
	}
}

// acked returns the highest acknowledged offset of each partition.
func (s *sink) acked() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int32]int64{}
	for _, d := range s.got {
		if o, ok := m[d.rec.Partition]; d.acked && (!ok || d.rec.Offset > o) {
			m[d.rec.Partition] = d.rec.Offset
		}
	}
	return m
}

// distinct returns how many different records were delivered.
func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// missing returns how many records of want were not delivered yet, and
// the first few of them.
func (s *sink) missing(want map[po]*rec) (int, []po) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var some []po
	for k := range want {
		if s.seen[k] == 0 {
			n++
			if len(some) < 5 {
				some = append(some, k)
			}
		}
	}
	return n, some
}

// waitAll waits until every record of want was delivered.
func (s *sink) waitAll(t *testing.T, d time.Duration, want map[po]*rec, alive ...*proc) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d records to be delivered", len(want)), func() (bool, string) {
		s.checkProblems(t)
		n, some := s.missing(want)
		return n == 0, fmt.Sprintf("%d missing, e.g. %v", n, some)
	}, alive...)
}

// deliveries returns what arrived so far, in arrival order.
func (s *sink) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// checkProblems fails the test if a request was malformed.
func (s *sink) checkProblems(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) > 0 {
		t.Fatalf("sink received %d malformed requests; first: %s", len(s.problems), s.problems[0])
	}
}

// maxBatch returns the most records one request held.
func (s *sink) maxBatch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Max(append([]int{0}, s.sizes...))
}

// byRun splits deliveries per run, keeping arrival order.
func byRun(ds []delivery) map[string][]delivery {
	m := map[string][]delivery{}
	for _, d := range ds {
		m[d.run] = append(m[d.run], d)
	}
	return m
}

// checkOrder checks that within each run every partition's offsets strictly
// increase in arrival order.
func checkOrder(t *testing.T, ds []delivery) {
	t.Helper()
	last := map[string]map[int32]int64{}
	for _, d := range ds {
		m := last[d.run]
		if m == nil {
			m = map[int32]int64{}
			last[d.run] = m
		}
		if prev, ok := m[d.rec.Partition]; ok && d.rec.Offset <= prev {
			t.Fatalf("run %s delivered partition %d offset %d after offset %d", d.run, d.rec.Partition, d.rec.Offset, prev)
		}
		m[d.rec.Partition] = d.rec.Offset
	}
}

// checkFields compares every field of each delivered record with the
// record read back from the broker.
func checkFields(t *testing.T, ds []delivery, truth map[po]*rec, topic, bootstrap string) {
	t.Helper()
	bad := 0
	fail := func(d delivery, format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf("run %s, record %d@%d: %s", d.run, d.rec.Partition, d.rec.Offset, fmt.Sprintf(format, args...))
		}
	}
	for _, d := range ds {
		r := d.rec
		want := truth[po{r.Partition, r.Offset}]
		switch {
		case want == nil:
			fail(d, "no such record")
			continue
		case d.eventSource != "SelfManagedKafka":
			fail(d, "eventSource %q", d.eventSource)
		case d.bootstrapServers != bootstrap:
			fail(d, "bootstrapServers %q, want %q", d.bootstrapServers, bootstrap)
		case r.Topic != topic:
			fail(d, "topic %q", r.Topic)
		case r.Timestamp != want.ts:
			fail(d, "timestamp %d, want %d", r.Timestamp, want.ts)
		case r.TimestampType != want.tsType:
			fail(d, "timestampType %q, want %q", r.TimestampType, want.tsType)
		}
		if msg := checkB64("key", r.Key, want.key); msg != "" {
			fail(d, "%s", msg)
		}
		if msg := checkB64("value", r.Value, want.value); msg != "" {
			fail(d, "%s", msg)
		}
		if r.Headers == nil {
			fail(d, "headers missing, want a list (empty for none)")
		}
		if len(r.Headers) != len(want.headers) {
			fail(d, "%d headers, want %d", len(r.Headers), len(want.headers))
			continue
		}
		for i, h := range r.Headers {
			wh := want.headers[i]
			signed := make([]int8, len(wh.Value))
			for j, c := range wh.Value {
				signed[j] = int8(c)
			}
			v, ok := h[wh.Key]
			if len(h) != 1 || !ok || !slices.Equal(v, signed) {
				fail(d, "header %d is %v, want {%q: %v}", i, h, wh.Key, signed)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d delivered records differ from the broker's", bad, len(ds))
	}
}

// checkB64 compares a key or value field with the bytes it stands for: absent
// for null, standard padded base64 otherwise.
func checkB64(field string, got *string, want []byte) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil:
		return fmt.Sprintf("%s %q present, want it absent (null)", field, *got)
	case got == nil:
		return fmt.Sprintf("%s absent, want %q", field, want)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(*got)
	if err != nil {
		return fmt.Sprintf("%s %q: %v", field, *got, err)
	}
	if !bytes.Equal(b, want) || base64.StdEncoding.EncodeToString(want) != *got {
		return fmt.Sprintf("%s %q decodes to %q, want %q", field, *got, b, want)
	}
	return ""
}

// pipeConfig is a config file for `pipe run` reading topic into the sink.
type pipeConfig struct {
	brokers        []string
	topic, group   string
	url            string
	commitInterval string
}

// write writes the config to a temp file and returns its path.
func (c pipeConfig) write(t *testing.T) string {
	t.Helper()
	commit := c.commitInterval
	if commit == "" {
		commit = "1s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `logLevel: INFO
shutdownTimeout: 30s
pipes:
  - name: e2e
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        clientId: "${RUN_ID}"
        startingPosition: TRIM_HORIZON
        batchSize: 100
        maximumBatchingWindow: 50ms
        commitInterval: %s
    target:
      http:
        url: %s
        headers: {X-Run: "${RUN_ID}"}
`, strings.Join(c.brokers, ", "), c.topic, c.group, commit, c.url)
	path := t.TempDir() + "/pipes.yaml"
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPipe runs `pipe run -f cfg` with RUN_ID=run.
func startPipe(t *testing.T, cfg, run string) *proc {
	t.Helper()
	return startProc(t, "pipe "+run, []string{"RUN_ID=" + run}, nil, pipeBin, "run", "-f", cfg)
}
