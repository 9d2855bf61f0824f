package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// logBuf collects the JSON log lines of a run.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines decodes the log lines; a line that is not JSON fails the test.
func (l *logBuf) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// with returns the log lines whose msg starts with prefix.
func (l *logBuf) with(t *testing.T, prefix string) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// sink is an HTTP endpoint in batch mode: it reads each envelope and
// remembers every record by its coordinates. While held, requests wait.
type sink struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    map[string]int // "topic/partition/offset" -> deliveries
	values map[string]string
	calls  int
	hold   chan struct{}
	// want are headers every request must carry; badAuth counts those
	// that did not (and were answered 401).
	want    map[string]string
	badAuth int
}

func newSink(t *testing.T) *sink {
	s := &sink{got: map[string]int{}, values: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hold := s.hold
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		for k, v := range s.want {
			if r.Header.Get(k) != v {
				s.badAuth++
				s.mu.Unlock()
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		s.mu.Unlock()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		b, err := pipeline.ParseEnvelope(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.calls++
		for _, rec := range b.Records {
			k := fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
			s.got[k]++
			s.values[k] = string(rec.Value)
		}
		s.mu.Unlock()
	}))
	t.Cleanup(func() {
		s.release()
		s.srv.Close()
	})
	return s
}

func (s *sink) holdRequests() {
	s.mu.Lock()
	s.hold = make(chan struct{})
	s.mu.Unlock()
}

func (s *sink) release() {
	s.mu.Lock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
	s.mu.Unlock()
}

// count returns the records received (each once) and the deliveries.
func (s *sink) count() (unique, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		total += n
	}
	return len(s.got), total
}

func (s *sink) has(topic string, partition int32, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[fmt.Sprintf("%s/%d/%d", topic, partition, offset)] > 0
}

// opsRun is `pipe run` in this process, with the admin server on a free
// loopback port and a JSON log.
type opsRun struct {
	t      *testing.T
	file   string
	logs   *logBuf
	base   string // http://host:port of the admin server
	cancel context.CancelFunc
	done   chan error
}

func startOps(t *testing.T, file string, watch time.Duration) *opsRun {
	t.Helper()
	cfg, err := pipeline.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := &opsRun{t: t, file: file, logs: &logBuf{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- runWatched(ctx, cfg, r.logs, watch) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			t.Error("pipe run did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("log:\n%s", r.logs.String())
		}
	})
	eventually(t, 10*time.Second, "the admin server to listen", func() (bool, string) {
		for _, m := range r.logs.with(t, "admin server listening") {
			r.base = "http://" + m["address"].(string)
			return true, ""
		}
		return false, r.logs.String()
	})
	return r
}

// stop cancels the run and waits for it to return nil.
func (r *opsRun) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("pipe run returned %v", err)
		}
		r.done <- nil
	case <-time.After(60 * time.Second):
		r.t.Fatal("pipe run did not stop within 60s")
	}
}

func (r *opsRun) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metrics scrapes /metrics: series (name and sorted labels, as Prometheus
// writes them) -> value.
func (r *opsRun) metrics() map[string]float64 {
	r.t.Helper()
	code, body := r.get("/metrics")
	if code != http.StatusOK {
		r.t.Fatalf("/metrics answered %d", code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			r.t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// series names a series as /metrics writes it: labels sorted by name.
func series(name string, labels ...string) string {
	var kv []string
	for i := 0; i+1 < len(labels); i += 2 {
		kv = append(kv, labels[i]+`="`+labels[i+1]+`"`)
	}
	sort.Strings(kv)
	if len(kv) == 0 {
		return name
	}
	return name + "{" + strings.Join(kv, ",") + "}"
}

func (r *opsRun) pipes() map[string]pipeline.PipeReport {
	r.t.Helper()
	code, body := r.get("/pipes")
	if code != http.StatusOK {
		r.t.Fatalf("/pipes answered %d: %s", code, body)
	}
	var doc struct {
		Pipes []pipeline.PipeReport `json:"pipes"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		r.t.Fatalf("/pipes: %v\n%s", err, body)
	}
	out := map[string]pipeline.PipeReport{}
	for _, p := range doc.Pipes {
		out[p.Name] = p
	}
	return out
}

// eventually polls cond until it holds, failing after d with the status
// cond returned last.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not done after %v; %s", what, d, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// opsConfig writes a config whose pipes are given as YAML list items.
func opsConfig(t *testing.T, dir, top string, pipes ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("logFormat: json\nshutdownTimeout: 5s\nadmin: {address: \"127.0.0.1:0\", unreadyOnStall: true}\n")
	b.WriteString(top)
	b.WriteString("pipes:\n")
	for _, p := range pipes {
		b.WriteString(p)
	}
	path := filepath.Join(dir, "pipes.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// kafkaPipe is a pipe list item reading topic with quick commits; extra
// lines go into the pipe (indented by 4) or, prefixed "kafka.", into its
// kafka block.
func kafkaPipe(name, brokers, topic, group, target string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  - name: %s
    source:
      kafka:
        bootstrapServers: %s
        topics: [%s]
        consumerGroupId: %s
        batchSize: 50
        maximumBatchingWindow: 20ms
        commitInterval: 100ms
        sessionTimeout: 6s
`, name, brokers, topic, group)
	for _, e := range extra {
		if k, ok := strings.CutPrefix(e, "kafka."); ok {
			fmt.Fprintf(&b, "        %s\n", k)
		}
	}
	fmt.Fprintf(&b, "    target: %s\n", target)
	for _, e := range extra {
		if !strings.HasPrefix(e, "kafka.") {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	return b.String()
}

func httpTo(s *sink, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{http: {url: "%s"%s}}`, s.srv.URL, extra)
}

// keepRecords produces n records over the partitions of topic, round
// robin; records whose index is a multiple of 4 have keep=false, and those
// whose index is 1 modulo 20 a string n.
func keepRecords(t *testing.T, kc *testenv.Cluster, topic string, partitions int32, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := fmt.Sprintf(`{"n":%d,"keep":%t}`, i, i%4 != 0)
		if i%20 == 1 {
			v = `{"n":"one","keep":true}`
		}
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)}
	}
	kc.Produce(t, recs...)
}

// TestMetricsEndToEnd scrapes /metrics while a pipe consumes: the counts
// match what was produced, filtered (by the pattern, and by the expression
// that fails on some records) and delivered, lag shows while the target
// holds the batches and falls to 0 once they are delivered and committed;
// /pipes, /healthz and /readyz agree.
func TestMetricsEndToEnd(t *testing.T) {
	const parts, n = 4, 400
	const kept = n*3/4 - n/20 // keep=false, and n not a number
	kc := testenv.Kafka(t, parts, "orders")
	s := newSink(t)
	s.holdRequests()
	file := opsConfig(t, t.TempDir(), "", kafkaPipe("orders", kc.Addr, "orders", "ops-metrics", httpTo(s, ""),
		`filter: {patterns: ['{"value": {"keep": [true]}}'], expression: 'value.n + 1 > 0'}`))
	r := startOps(t, file, 0)
	keepRecords(t, kc, "orders", parts, n)

	lag := func(m map[string]float64, p int) (float64, bool) {
		v, ok := m[series("pipe_offset_lag", "pipe", "orders", "topic", "orders", "partition", strconv.Itoa(p))]
		return v, ok
	}
	eventually(t, 20*time.Second, "lag to show while the target holds the batches", func() (bool, string) {
		m := r.metrics()
		total := 0.0
		for p := range parts {
			v, _ := lag(m, p)
			total += v
		}
		return total > 0, fmt.Sprintf("lag %v", total)
	})
	if code, body := r.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answered %d while running (nothing stalled yet): %s", code, body)
	}
	s.release()
	eventually(t, 30*time.Second, "every kept record delivered and lag 0", func() (bool, string) {
		m := r.metrics()
		unique, _ := s.count()
		var lags []float64
		for p := range parts {
			v, ok := lag(m, p)
			if !ok {
				return false, fmt.Sprintf("no lag for partition %d", p)
			}
			lags = append(lags, v)
		}
		for _, v := range lags {
			if v != 0 {
				return false, fmt.Sprintf("delivered %d, lags %v", unique, lags)
			}
		}
		return unique == kept, fmt.Sprintf("delivered %d, lags %v", unique, lags)
	})

	m := r.metrics()
	_, deliveries := s.count()
	want := map[string]float64{
		series("pipe_records_polled_total", "pipe", "orders"):                                            n,
		series("pipe_records_filtered_total", "pipe", "orders"):                                          n - kept,
		series("pipe_filter_expression_errors_total", "pipe", "orders"):                                  n / 20,
		series("pipe_records_delivered_total", "pipe", "orders"):                                         float64(deliveries),
		series("pipe_batch_records_sum", "pipe", "orders"):                                               n,
		series("pipe_record_latency_seconds_count", "pipe", "orders"):                                    n,
		series("pipe_inflight_batches", "pipe", "orders"):                                                0,
		series("pipe_inflight_bytes", "pipe", "orders"):                                                  0,
		series("pipe_state", "pipe", "orders", "state", "running"):                                       1,
		series("pipe_state", "pipe", "orders", "state", "failed"):                                        0,
		series("pipe_retries_total", "pipe", "orders"):                                                   0,
		series("pipe_stage_duration_seconds_count", "pipe", "orders", "stage", "target"):                 float64(s.calls),
		series("pipe_partition_committed_offset", "pipe", "orders", "topic", "orders", "partition", "0"): n / parts,
		series("pipe_partition_high_watermark", "pipe", "orders", "topic", "orders", "partition", "3"):   n / parts,
	}
	if deliveries != kept {
		t.Errorf("%d deliveries of %d records: duplicates in a run without failures", deliveries, kept)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	batches := m[series("pipe_batches_total", "pipe", "orders")]
	if batches < n/50 || m[series("pipe_batch_records_count", "pipe", "orders")] != batches ||
		m[series("pipe_stage_duration_seconds_count", "pipe", "orders", "stage", "filter")] != batches {
		t.Errorf("batches %v, batch size histogram count %v, filter calls %v: want the same, at least %d", batches,
			m[series("pipe_batch_records_count", "pipe", "orders")], m[series("pipe_stage_duration_seconds_count", "pipe", "orders", "stage", "filter")], n/50)
	}
	if m[series("pipe_records_polled_bytes_total", "pipe", "orders")] < float64(n*len(`{"n":0,"keep":true}`)) {
		t.Errorf("polled bytes %v", m[series("pipe_records_polled_bytes_total", "pipe", "orders")])
	}

	ps := r.pipes()["orders"]
	if ps.State != pipeline.StateRunning || ps.Group == nil || ps.Group.ID != "ops-metrics" || ps.Group.Generation < 1 || len(ps.Parts) != parts {
		t.Fatalf("/pipes: %+v", ps)
	}
	for _, p := range ps.Parts {
		if p.CommittedOffset == nil || *p.CommittedOffset != n/parts || p.HighWatermark == nil || *p.HighWatermark != n/parts ||
			p.Lag == nil || *p.Lag != 0 || p.Stalled || p.Blocked != nil || p.LastProgress.IsZero() {
			t.Errorf("/pipes partition %+v", p)
		}
	}
	if code, body := r.get("/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := r.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready": true`) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	r.stop()
}

// TestStall: a target that hangs (each call times out) stalls its
// partition; the stall is reported within stallTimeout (a WARN line once,
// the gauge, /pipes with the failing offset and reason, /readyz 503), and
// it ends when the target answers again (an INFO line once, /readyz 200,
// everything delivered).
func TestStall(t *testing.T) {
	kc := testenv.Kafka(t, 2, "slow")
	s := newSink(t)
	s.holdRequests()
	const stall = 1500 * time.Millisecond
	file := opsConfig(t, t.TempDir(), "", kafkaPipe("slow", kc.Addr, "slow", "ops-stall", httpTo(s, "timeout: 300ms"),
		"stallTimeout: "+stall.String(), "retryBackoff: {initial: 50ms, maximum: 200ms}"))
	r := startOps(t, file, 0)
	eventually(t, 20*time.Second, "the pipe to run", func() (bool, string) {
		p := r.pipes()["slow"]
		return p.State == pipeline.StateRunning, string(p.State)
	})
	// Partition 0 gets records; partition 1 stays empty and must not stall.
	// Taken before producing: the pipe may see the lag before Produce returns.
	produced := time.Now()
	kc.Produce(t, testenv.Records("slow", 0, 10, 10, "s")...)

	var stalledAt time.Time
	eventually(t, stall+10*time.Second, "the stall to be reported", func() (bool, string) {
		p := r.pipes()["slow"]
		for _, pt := range p.Parts {
			if pt.Partition == 0 && pt.Stalled {
				stalledAt = time.Now()
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Parts)
	})
	// Reported once stallTimeout passed without progress, and not much
	// later: the check runs every stallTimeout/4, and the first fetch and
	// failing call take a moment.
	if took := stalledAt.Sub(produced); took < stall || took > stall+3*time.Second {
		t.Errorf("stall reported %v after the records were produced, stallTimeout %v", took, stall)
	}
	p := r.pipes()["slow"]
	var p0 pipeline.PartitionReport
	for _, pt := range p.Parts {
		if pt.Partition == 0 {
			p0 = pt
		} else if pt.Stalled {
			t.Errorf("partition %d without records is stalled", pt.Partition)
		}
	}
	if p0.Blocked == nil || p0.Blocked.Offset != 0 || p0.Blocked.Stage != "target" || p0.Blocked.Attempts < 1 ||
		!strings.Contains(p0.Blocked.Reason, "Timeout") && !strings.Contains(p0.Blocked.Reason, "deadline") {
		t.Errorf("partition 0 should be blocked on retry at offset 0 by target timeouts: %+v", p0.Blocked)
	}
	if p0.Lag == nil || *p0.Lag != 10 || p.Stalled != 1 || p.LastError == nil {
		t.Errorf("/pipes: lag %v, stalled partitions %d, last error %v", p0.Lag, p.Stalled, p.LastError)
	}
	code, body := r.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "partition slow-0 stalled") {
		t.Errorf("/readyz while stalled: %d %s", code, body)
	}
	m := r.metrics()
	if m[series("pipe_partition_stalled", "pipe", "slow", "topic", "slow", "partition", "0")] != 1 ||
		m[series("pipe_partition_blocked", "pipe", "slow", "topic", "slow", "partition", "0")] != 1 ||
		m[series("pipe_stage_errors_total", "pipe", "slow", "stage", "target", "kind", "timeout")] < 1 {
		t.Errorf("metrics while stalled: stalled %v blocked %v timeouts %v",
			m[series("pipe_partition_stalled", "pipe", "slow", "topic", "slow", "partition", "0")],
			m[series("pipe_partition_blocked", "pipe", "slow", "topic", "slow", "partition", "0")],
			m[series("pipe_stage_errors_total", "pipe", "slow", "stage", "target", "kind", "timeout")])
	}
	// Still stalled a while later: logged once only.
	time.Sleep(stall / 2)
	warns := r.logs.with(t, "partition stalled")
	if len(warns) != 1 || warns[0]["level"] != "WARN" || warns[0]["failingOffset"] != 0.0 || warns[0]["stage"] != "target" {
		t.Errorf("stall WARN lines: %v", warns)
	}

	s.release()
	eventually(t, 20*time.Second, "the partition to recover", func() (bool, string) {
		p := r.pipes()["slow"]
		code, _ := r.get("/readyz")
		unique, _ := s.count()
		return p.Stalled == 0 && code == http.StatusOK && unique == 10, fmt.Sprintf("stalled %d, readyz %d, delivered %d", p.Stalled, code, unique)
	})
	if got := len(r.logs.with(t, "partition progressing again")); got != 1 {
		t.Errorf("%d recovery lines, want 1", got)
	}
	if v := r.metrics()[series("pipe_partition_stalled", "pipe", "slow", "topic", "slow", "partition", "0")]; v != 0 {
		t.Errorf("stalled gauge %v after recovery", v)
	}
	r.stop()
}

// producer writes numbered records to topics until stopped, and keeps
// what it wrote: topic -> records with their offsets.
type producer struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	recs  map[string][]*kgo.Record
}

func startProducer(t *testing.T, kc *testenv.Cluster, partitions int32, topics ...string) *producer {
	p := &producer{stopc: make(chan struct{}), done: make(chan struct{}), recs: map[string][]*kgo.Record{}}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stopc:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var batch []*kgo.Record
			for _, topic := range topics {
				v := fmt.Sprintf(`{"n":%d,"keep":%t}`, i, i%4 != 0)
				batch = append(batch, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := kc.Client.ProduceSync(ctx, batch...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			p.mu.Lock()
			for _, r := range batch {
				p.recs[r.Topic] = append(p.recs[r.Topic], r)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *producer) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

func (p *producer) produced(topic string) []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*kgo.Record(nil), p.recs[topic]...)
}

// missing counts the records of topic that s did not receive, among those
// keep accepts.
func missing(s *sink, recs []*kgo.Record, keep func(*kgo.Record) bool) int {
	n := 0
	for _, r := range recs {
		if keep(r) && !s.has(r.Topic, r.Partition, r.Offset) {
			n++
		}
	}
	return n
}

func all(*kgo.Record) bool { return true }

func kept(r *kgo.Record) bool { return bytes.Contains(r.Value, []byte(`"keep":true`)) }

// TestReload changes one pipe's filter and adds a pipe while records flow,
// through --watch: the changed pipe restarts, the new one starts, and the
// unchanged one runs on without leaving its group (same member, same
// generation, every record delivered exactly once); nothing is lost. A
// file with a problem is then rejected and the pipes run on.
func TestReload(t *testing.T) {
	const parts = 2
	kc := testenv.Kafka(t, parts, "orders", "audit")
	sa, sb, sc := newSink(t), newSink(t), newSink(t)
	dir := t.TempDir()
	orders := func(filter string) string {
		return kafkaPipe("orders", kc.Addr, "orders", "ops-reload-a", httpTo(sa, ""), "filter: {patterns: ['"+filter+"']}")
	}
	audit := kafkaPipe("audit", kc.Addr, "audit", "ops-reload-b", httpTo(sb, ""))
	file := opsConfig(t, dir, "", orders(`{"value": {"keep": [true]}}`), audit)
	r := startOps(t, file, 100*time.Millisecond)
	prod := startProducer(t, kc, parts, "orders", "audit")

	eventually(t, 20*time.Second, "both pipes to run and deliver", func() (bool, string) {
		ps := r.pipes()
		a, _ := sa.count()
		b, _ := sb.count()
		return ps["orders"].State == pipeline.StateRunning && ps["audit"].State == pipeline.StateRunning && a > 0 && b > 0,
			fmt.Sprintf("orders %s (%d delivered), audit %s (%d)", ps["orders"].State, a, ps["audit"].State, b)
	})
	before := r.pipes()
	members := func(group string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dg, err := kc.Admin.DescribeGroups(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range dg[group].Members {
			ids = append(ids, m.MemberID)
		}
		return ids
	}
	auditMembers := members("ops-reload-b")
	if len(auditMembers) != 1 || before["audit"].Group == nil || auditMembers[0] != before["audit"].Group.MemberID {
		t.Fatalf("group ops-reload-b members %v, /pipes %+v", auditMembers, before["audit"].Group)
	}

	// Watch the unchanged pipe through the reload.
	watchDone := make(chan struct{})
	var watchErr []string
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-prod.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p := r.pipes()["audit"]
			if p.State != pipeline.StateRunning || p.Group == nil || *p.Group != *before["audit"].Group {
				watchErr = append(watchErr, fmt.Sprintf("%s %+v", p.State, p.Group))
			}
		}
	}()

	// The audit pipe is written differently (flow style, other key order)
	// but means the same: it stays.
	auditAgain := fmt.Sprintf(`  - target: %s
    name: audit
    source: {kafka: {topics: [audit], consumerGroupId: ops-reload-b, bootstrapServers: %s, batchSize: 50,
      maximumBatchingWindow: 20ms, sessionTimeout: 6s, commitInterval: 100ms}}
`, httpTo(sb, ""), kc.Addr)
	opsConfig(t, dir, "", orders(`{"value": {"keep": [true]}, "topic": ["orders"]}`), auditAgain,
		kafkaPipe("audit-copy", kc.Addr, "audit", "ops-reload-c", httpTo(sc, "")))
	eventually(t, 20*time.Second, "the reload", func() (bool, string) {
		return len(r.logs.with(t, "config reloaded")) == 1, ""
	})
	if got := r.logs.with(t, "config reloaded")[0]["changes"]; got != "added=audit-copy restarted=orders unchanged=audit" {
		t.Errorf("changes: %v", got)
	}
	eventually(t, 20*time.Second, "the new and the restarted pipe to deliver", func() (bool, string) {
		ps := r.pipes()
		c, _ := sc.count()
		return ps["audit-copy"].State == pipeline.StateRunning && ps["orders"].State == pipeline.StateRunning && c > 0,
			fmt.Sprintf("orders %s, audit-copy %s (%d)", ps["orders"].State, ps["audit-copy"].State, c)
	})
	time.Sleep(500 * time.Millisecond) // records keep flowing after the reload

	// A file with a problem is rejected; everything runs on.
	bad := opsConfig(t, dir, "", orders(`{"value": {"keep": [true]}, "topic": ["orders"]}`), auditAgain,
		kafkaPipe("audit-copy", kc.Addr, "audit", "ops-reload-c", httpTo(sc, ""), "batchSzie: 3"))
	eventually(t, 20*time.Second, "the bad file to be rejected", func() (bool, string) {
		return len(r.logs.with(t, "reload rejected")) == 1, ""
	})
	problems := r.logs.with(t, "config problem")
	if len(problems) != 1 || !strings.Contains(problems[0]["problem"].(string), bad+`:`) || !strings.Contains(problems[0]["problem"].(string), `unknown key "batchSzie"`) {
		t.Errorf("problems logged: %v", problems)
	}
	prod.stop()
	<-watchDone

	ordersRecs, auditRecs := prod.produced("orders"), prod.produced("audit")
	eventually(t, 30*time.Second, "every record delivered", func() (bool, string) {
		ma, mb, mc := missing(sa, ordersRecs, kept), missing(sb, auditRecs, all), missing(sc, auditRecs, all)
		return ma+mb+mc == 0, fmt.Sprintf("missing: orders %d of %d, audit %d and audit-copy %d of %d", ma, len(ordersRecs), mb, mc, len(auditRecs))
	})
	if len(watchErr) > 0 {
		t.Errorf("the unchanged pipe was seen %d times not running or in another group session: %v", len(watchErr), watchErr[0])
	}
	after := r.pipes()
	if *after["audit"].Group != *before["audit"].Group || !after["audit"].Since.Equal(before["audit"].Since) {
		t.Errorf("audit pipe: group %+v since %v before the reload, %+v since %v after", before["audit"].Group, before["audit"].Since, after["audit"].Group, after["audit"].Since)
	}
	if m := members("ops-reload-b"); len(m) != 1 || m[0] != auditMembers[0] {
		t.Errorf("group ops-reload-b members %v, before the reload %v", m, auditMembers)
	}
	if after["orders"].Group.MemberID == before["orders"].Group.MemberID {
		t.Errorf("orders pipe kept its member id %s through a change", after["orders"].Group.MemberID)
	}
	if unique, total := sb.count(); unique != total || unique != len(auditRecs) {
		t.Errorf("audit sink: %d records, %d deliveries, %d produced: the unchanged pipe delivered some twice", unique, total, len(auditRecs))
	}
	var starts []string
	for _, m := range r.logs.with(t, "pipe starting") {
		starts = append(starts, m["pipe"].(string))
	}
	sort.Strings(starts)
	if strings.Join(starts, ",") != "audit,audit-copy,orders,orders" {
		t.Errorf("pipes started: %v", starts)
	}
	r.stop()
}

// securePipe is a pipe list item reading topic from a SASL PLAIN broker as
// user, with password (a ${...} reference).
func securePipe(name, brokers, topic, user, password, target string, extra ...string) string {
	return kafkaPipe(name, brokers, topic, "ops-"+name, target,
		append([]string{fmt.Sprintf(`kafka.sasl: {mechanism: PLAIN, username: %s, password: "%s"}`, user, password)}, extra...)...)
}

func hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestFailedState: a pipe with a wrong SASL password is failed with the
// reason, its retries logged once, while another pipe on the same broker
// runs; /readyz and the metrics say so. Once the password file holds the
// right password, SIGHUP restarts only that pipe, it runs and delivers
// every record.
func TestFailedState(t *testing.T) {
	const alicePass, wrongPass, bobPass = "alice-r1ght-S3CRET-9f2", "alice-wr0ng-S3CRET-77a", "bob-S3CRET-51c"
	kc := testenv.KafkaSecure(t, testenv.SecureKafka{Partitions: 2, Topics: []string{"good", "bad"},
		Users: []testenv.SASLUser{{Mechanism: "PLAIN", User: "alice", Pass: alicePass}, {Mechanism: "PLAIN", User: "bob", Pass: bobPass}}})
	dir := t.TempDir()
	passFile := filepath.Join(dir, "alice.pass")
	if err := os.WriteFile(passFile, []byte(wrongPass), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPS_BOB_PASS", bobPass)
	sg, sbad := newSink(t), newSink(t)
	file := opsConfig(t, dir, "",
		securePipe("good", kc.Addr, "good", "bob", "${OPS_BOB_PASS}", httpTo(sg, "")),
		securePipe("bad", kc.Addr, "bad", "alice", "${file:"+passFile+"}", httpTo(sbad, "")))
	r := startOps(t, file, 0)
	var recs []*kgo.Record
	for _, topic := range []string{"good", "bad"} {
		rs := testenv.Records(topic, 0, 10, 10, topic)
		rs = append(rs, testenv.Records(topic, 1, 10, 10, topic)...)
		kc.Produce(t, rs...)
		recs = append(recs, rs...)
	}

	eventually(t, 30*time.Second, "bad to fail and good to deliver", func() (bool, string) {
		ps := r.pipes()
		n, _ := sg.count()
		return ps["bad"].State == pipeline.StateFailed && ps["good"].State == pipeline.StateRunning && n == 20,
			fmt.Sprintf("bad %s %q, good %s (%d delivered)", ps["bad"].State, ps["bad"].Reason, ps["good"].State, n)
	})
	ps := r.pipes()
	t.Logf("bad: %s", ps["bad"].Reason)
	if reason := ps["bad"].Reason; !strings.HasPrefix(reason, "authentication failed (SASL PLAIN, user alice)") {
		t.Errorf("reason %q", reason)
	}
	code, body := r.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "pipe bad: failed: authentication failed") || strings.Contains(body, "pipe good") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	m := r.metrics()
	if m[series("pipe_state", "pipe", "bad", "state", "failed")] != 1 || m[series("pipe_state", "pipe", "good", "state", "running")] != 1 ||
		m[series("pipe_connection_failures_total", "pipe", "bad", "kind", "authentication")] < 1 {
		t.Errorf("metrics: bad failed %v, good running %v, bad auth failures %v", m[series("pipe_state", "pipe", "bad", "state", "failed")],
			m[series("pipe_state", "pipe", "good", "state", "running")], m[series("pipe_connection_failures_total", "pipe", "bad", "kind", "authentication")])
	}
	// franz-go retries the connection with backoff; the failure is logged once.
	eventually(t, 30*time.Second, "a second failed connection", func() (bool, string) {
		v := r.metrics()[series("pipe_connection_failures_total", "pipe", "bad", "kind", "authentication")]
		return v >= 2, fmt.Sprint(v)
	})
	if failed := r.logs.with(t, "pipe failed"); len(failed) != 1 || failed[0]["pipe"] != "bad" || failed[0]["level"] != "ERROR" {
		t.Errorf("failure lines: %v", failed)
	}
	goodMember := ps["good"].Group.MemberID

	if err := os.WriteFile(passFile, []byte(alicePass), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(t)
	eventually(t, 30*time.Second, "bad to run and deliver everything", func() (bool, string) {
		ps := r.pipes()
		n := missing(sbad, recs, func(r *kgo.Record) bool { return r.Topic == "bad" })
		return ps["bad"].State == pipeline.StateRunning && n == 0, fmt.Sprintf("bad %s, %d missing", ps["bad"].State, n)
	})
	if got := r.logs.with(t, "config reloaded")[0]["changes"]; got != "restarted=bad unchanged=good" {
		t.Errorf("changes: %v", got)
	}
	if ps := r.pipes(); ps["good"].Group.MemberID != goodMember {
		t.Errorf("the good pipe changed member: %s, was %s", ps["good"].Group.MemberID, goodMember)
	}
	if code, body := r.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the fix: %d %s", code, body)
	}
	for _, secret := range []string{alicePass, wrongPass, bobPass} {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("a password is in the log")
		}
	}
	r.stop()
}

// TestLogsAndSecrets: at INFO a run of 1000 records logs nothing per
// record or batch; at TRACE with includeExecutionData (set by a reload,
// which applies it without restarting the pipe) it logs each batch with
// its payload. Across both, and a pipe failing on a wrong password, no
// secret of the config (SASL passwords, the target's Basic password and
// header value, raw or base64) is in any log line or admin response.
func TestLogsAndSecrets(t *testing.T) {
	const (
		saslPass  = "sasl-S3CRET-4d1e"
		wrongPass = "wrong-S3CRET-8b0c"
		basicPass = "basic-S3CRET-c77a"
		token     = "token-S3CRET-19fe"
	)
	secrets := []string{saslPass, wrongPass, basicPass, token}
	for _, s := range append([]string(nil), secrets...) {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte("ops:"+basicPass)))
	t.Setenv("OPS_SASL_PASS", saslPass)
	t.Setenv("OPS_WRONG_PASS", wrongPass)
	t.Setenv("OPS_BASIC_PASS", basicPass)
	t.Setenv("OPS_TOKEN", token)

	kc := testenv.KafkaSecure(t, testenv.SecureKafka{Partitions: 2, Topics: []string{"quiet"},
		Users: []testenv.SASLUser{{Mechanism: "PLAIN", User: "carol", Pass: saslPass}}})
	s := newSink(t)
	s.want = map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+basicPass)), "X-Api-Token": token}
	dir := t.TempDir()
	target := httpTo(s, `auth: {basic: {username: ops, password: "${OPS_BASIC_PASS}"}}, headers: {X-Api-Token: "${OPS_TOKEN}"}`)
	denied := securePipe("denied", kc.Addr, "quiet", "carol", "${OPS_WRONG_PASS}", httpTo(s, ""))
	write := func(extra ...string) string {
		return opsConfig(t, dir, "logLevel: INFO\n", securePipe("quiet", kc.Addr, "quiet", "carol", "${OPS_SASL_PASS}", target, extra...), denied)
	}
	file := write()
	r := startOps(t, file, 0)
	produce := func(from, n int) {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "quiet", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("rec7f3-%d", from+i))}
		}
		kc.Produce(t, recs...)
	}
	produce(0, 1000)
	eventually(t, 30*time.Second, "1000 records delivered and the denied pipe failed", func() (bool, string) {
		n, _ := s.count()
		st := r.pipes()["denied"].State
		return n == 1000 && st == pipeline.StateFailed, fmt.Sprintf("%d delivered, denied %s", n, st)
	})
	if s.badAuth > 0 {
		t.Fatalf("%d requests without the configured auth", s.badAuth)
	}
	var quiet []string
	for _, m := range r.logs.lines(t) {
		if m["pipe"] == "quiet" {
			quiet = append(quiet, m["msg"].(string))
		}
		if m["level"] == "TRACE" || m["level"] == "DEBUG" {
			t.Errorf("a %s line at INFO: %v", m["level"], m)
		}
	}
	if len(quiet) > 5 {
		t.Errorf("%d lines about the quiet pipe for 1000 records at INFO: %v", len(quiet), quiet)
	}
	if strings.Contains(r.logs.String(), "rec7f3-") {
		t.Errorf("a record's value is in the log at INFO")
	}

	// TRACE with execution data, applied in place.
	write("logLevel: TRACE", "includeExecutionData: true")
	hup(t)
	eventually(t, 20*time.Second, "the reload", func() (bool, string) {
		return len(r.logs.with(t, "config reloaded")) == 1, ""
	})
	// The failed pipe restarts on a reload; the other does not.
	if got := r.logs.with(t, "config reloaded")[0]["changes"]; got != "restarted=denied unchanged=quiet" {
		t.Errorf("changes %v: logLevel and includeExecutionData should apply in place", got)
	}
	produce(1000, 100)
	eventually(t, 30*time.Second, "100 more records delivered", func() (bool, string) {
		n, _ := s.count()
		return n == 1100, fmt.Sprint(n)
	})
	requests := r.logs.with(t, "target request")
	if len(requests) == 0 || !strings.Contains(requests[0]["payload"].(string), base64.StdEncoding.EncodeToString([]byte("rec7f3-10"))[:8]) ||
		len(r.logs.with(t, "batch received")) == 0 || len(r.logs.with(t, "target response")) == 0 {
		t.Errorf("TRACE lines: %d requests (first %v), %d batches received", len(requests), requests, len(r.logs.with(t, "batch received")))
	}
	starts := 0
	for _, m := range r.logs.with(t, "pipe starting") {
		if m["pipe"] == "quiet" {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("the quiet pipe started %d times: a log level change must not restart a pipe", starts)
	}

	var responses []string
	for _, path := range []string{"/metrics", "/pipes", "/readyz", "/healthz", "/"} {
		_, body := r.get(path)
		responses = append(responses, body)
	}
	r.stop()
	for _, secret := range secrets {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("secret %d is in the log", slices.Index(secrets, secret))
		}
		for i, body := range responses {
			if strings.Contains(body, secret) {
				t.Errorf("secret %d is in admin response %d", slices.Index(secrets, secret), i)
			}
		}
	}
}

// TestFailedStateTLS: a pipe that does not trust the broker's certificate
// is failed with the certificate's subject in the reason. Fixing the CA
// file changes nothing in pipes.yaml, yet a SIGHUP restarts the pipe since
// it is failed; it runs and delivers every record.
func TestFailedStateTLS(t *testing.T) {
	ca, other := testenv.NewPKI(t, "Broker CA"), testenv.NewPKI(t, "Other CA")
	kc := testenv.KafkaSecure(t, testenv.SecureKafka{Partitions: 1, Topics: []string{"tls"}, TLS: &testenv.BrokerTLS{CA: ca}})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	copyFile := func(from string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(other.CAFile)
	s := newSink(t)
	file := opsConfig(t, dir, "", kafkaPipe("tls", kc.Addr, "tls", "ops-tls", httpTo(s, ""), "kafka.tls: {caFile: "+caFile+"}"))
	r := startOps(t, file, 0)
	kc.Produce(t, testenv.Records("tls", 0, 10, 10, "t")...)
	eventually(t, 30*time.Second, "the pipe to fail", func() (bool, string) {
		p := r.pipes()["tls"]
		return p.State == pipeline.StateFailed, string(p.State)
	})
	if reason := r.pipes()["tls"].Reason; !strings.HasPrefix(reason, "TLS verification failed: certificate signed by unknown authority (subject CN=broker") {
		t.Errorf("reason %q", reason)
	}
	copyFile(ca.CAFile)
	hup(t)
	eventually(t, 30*time.Second, "the pipe to run and deliver", func() (bool, string) {
		p := r.pipes()["tls"]
		n, _ := s.count()
		return p.State == pipeline.StateRunning && n == 10, fmt.Sprintf("%s, %d delivered", p.State, n)
	})
	if got := r.logs.with(t, "config reloaded")[0]["changes"]; got != "restarted=tls" {
		t.Errorf("changes %v", got)
	}
	r.stop()
}

// TestAdminAddress: an address that cannot be bound stops `pipe run` at
// start; the default one, when taken, is only noted (at INFO: several pipe
// processes on a machine all default to it) and the pipes run.
func TestAdminAddress(t *testing.T) {
	kc := testenv.Kafka(t, 1, "a")
	s := newSink(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "pipes.yaml")
	write := func(admin string) *pipeline.Config {
		cfg := "logFormat: json\n" + admin + "pipes:\n" + kafkaPipe("a", kc.Addr, "a", "ops-admin", httpTo(s, ""))
		if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := pipeline.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var logs logBuf
	err = runWatched(context.Background(), write("admin: {address: \""+ln.Addr().String()+"\"}\n"), &logs, 0)
	if err == nil || !strings.Contains(err.Error(), "admin server") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("runWatched with a taken address returned %v", err)
	}

	// Hold the default address (unless another process does already).
	if l, err := net.Listen("tcp", pipeline.DefaultAdminAddress); err == nil {
		defer l.Close()
	}
	cfg := write("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs2 logBuf
	go func() { done <- runWatched(ctx, cfg, &logs2, 0) }()
	kc.Produce(t, testenv.Records("a", 0, 5, 5, "a")...)
	eventually(t, 20*time.Second, "the pipe to deliver", func() (bool, string) {
		n, _ := s.count()
		return n == 5, fmt.Sprint(n)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w := logs2.with(t, "admin server not started"); len(w) != 1 || w[0]["level"] != "INFO" {
		t.Errorf("warning lines %v\n%s", w, logs2.String())
	}
}
