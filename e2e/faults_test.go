package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// faultPipe is a config file for `pipe run` with one pipe, "faults", whose
// retry policy, target and on-failure destination a test chooses. The log
// is JSON so that tests can read what the process reported.
type faultPipe struct {
	brokers      string
	topic, group string
	batchSize    int // default 100
	// target and onFailure are YAML flow mappings: {http: {...}}.
	target    string
	onFailure string
	// transform is an expression, or "".
	transform string
	// policy holds pipe-level settings, one "key: value" each.
	policy []string
	// logLevel defaults to INFO.
	logLevel string
}

func (c faultPipe) write(t *testing.T) string {
	t.Helper()
	batch := c.batchSize
	if batch == 0 {
		batch = 100
	}
	level := c.logLevel
	if level == "" {
		level = "INFO"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `logLevel: %s
logFormat: json
shutdownTimeout: 5s
admin: {address: "127.0.0.1:0"}
pipes:
  - name: faults
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        clientId: "${RUN_ID}"
        startingPosition: TRIM_HORIZON
        batchSize: %d
        maximumBatchingWindow: 20ms
        commitInterval: 100ms
        sessionTimeout: 6s
    target: %s
`, level, c.brokers, c.topic, c.group, batch, c.target)
	if c.transform != "" {
		fmt.Fprintf(&b, "    transform: {expression: '%s'}\n", strings.ReplaceAll(c.transform, "'", "''"))
	}
	if c.onFailure != "" {
		fmt.Fprintf(&b, "    onFailure: %s\n", c.onFailure)
	}
	for _, l := range c.policy {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	path := t.TempDir() + "/pipes.yaml"
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpTarget is the target block for an HTTP endpoint in batch mode, with
// the run's X-Run header; extra adds settings ("timeout: 200ms").
func httpTarget(url, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{http: {url: "%s", headers: {X-Run: "${RUN_ID}"}%s}}`, url, extra)
}

// produceRecs writes records to topic, each to the partition it names, in
// order, and returns them read back as the ground truth.
func produceRecs(t *testing.T, b *broker, topic string, rs []*kgo.Record) map[po]*rec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(len(rs)+1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range rs {
		r.Topic = topic
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing %d records: %v", len(rs), err)
	}
	truth := readAll(t, b, topic)
	if len(truth) != len(rs) {
		t.Fatalf("produced %d records, read back %d", len(rs), len(truth))
	}
	return truth
}

// keyedRecords makes n records spread round-robin over the partitions, record i
// keyed key(i), with a JSON value and two headers.
func keyedRecords(n int, key func(i int) string) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{
			Partition: int32(i % partitions),
			Key:       []byte(key(i)),
			Value:     []byte(fmt.Sprintf(`{"n":%d,"item":"caf\u00e9"}`, i)),
			Headers:   []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}, {Key: "bin", Value: []byte{0xdc, 0x00, 0x7f}}},
		}
	}
	return rs
}

// pickByKey returns the records of truth whose key matches.
func pickByKey(truth map[po]*rec, match func(key string) bool) map[po]*rec {
	m := map[po]*rec{}
	for k, r := range truth {
		if match(string(r.key)) {
			m[k] = r
		}
	}
	return m
}

// except returns truth minus the records of out.
func except(truth, out map[po]*rec) map[po]*rec {
	m := map[po]*rec{}
	for k, r := range truth {
		if out[k] == nil {
			m[k] = r
		}
	}
	return m
}

// sortedPOs lists the keys of m in partition, offset order.
func sortedPOs[V any](m map[po]V) []po {
	out := make([]po, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b po) int {
		if a.p != b.p {
			return int(a.p - b.p)
		}
		return int(a.o - b.o)
	})
	return out
}

// faultCall is one request the fault target received.
type faultCall struct {
	n      int // arrival order, from 1
	at     time.Time
	run    string
	ds     []delivery
	status int // what was answered; 0 while unanswered or when the client left
}

// pos lists the records of the call.
func (c *faultCall) pos() []po {
	out := make([]po, len(c.ds))
	for i, d := range c.ds {
		out[i] = po{d.rec.Partition, d.rec.Offset}
	}
	return out
}

// faultReply is how the fault target answers a call.
type faultReply struct {
	status     int
	retryAfter string
	// hang keeps the request unanswered until the client gives up (or
	// 10s pass, answering 200 then).
	hang bool
}

// faultTarget is an HTTP target endpoint that decodes each envelope, keeps
// every call, and answers as decide says. A call counts as delivered when
// it was answered 2xx.
type faultTarget struct {
	srv    *httptest.Server
	decide func(c *faultCall) faultReply

	mu       sync.Mutex
	calls    []*faultCall
	problems []string
}

func newFaultTarget(t *testing.T, decide func(c *faultCall) faultReply) *faultTarget {
	ft := &faultTarget{decide: decide}
	ft.srv = httptest.NewServer(http.HandlerFunc(ft.serve))
	t.Cleanup(ft.srv.Close)
	t.Cleanup(func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		for i, p := range ft.problems {
			if i == 10 {
				t.Errorf("target: %d more problems", len(ft.problems)-i)
				break
			}
			t.Errorf("target: %s", p)
		}
	})
	return ft
}

func (ft *faultTarget) url() string { return ft.srv.URL + "/deliver" }

func (ft *faultTarget) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	c := &faultCall{at: time.Now(), run: r.Header.Get("X-Run")}
	if err == nil {
		c.ds, err = decodeEnvelope(body)
	}
	if err == nil && len(c.ds) == 0 {
		err = fmt.Errorf("an envelope without records")
	}
	for i := range c.ds {
		c.ds[i].run = c.run
	}
	ft.mu.Lock()
	c.n = len(ft.calls) + 1
	for i := range c.ds {
		c.ds[i].req = c.n
	}
	ft.calls = append(ft.calls, c)
	if err != nil {
		ft.problems = append(ft.problems, fmt.Sprintf("call %d: %v; body: %.300s", c.n, err, body))
	}
	ft.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rp := ft.decide(c)
	if rp.hang {
		select {
		case <-r.Context().Done():
			return // the client gave up: not delivered
		case <-time.After(10 * time.Second):
			rp.status = http.StatusOK
		}
	}
	ft.mu.Lock()
	c.status = rp.status
	ft.mu.Unlock()
	if rp.retryAfter != "" {
		w.Header().Set("Retry-After", rp.retryAfter)
	}
	w.WriteHeader(rp.status)
	if rp.status >= 300 {
		fmt.Fprintf(w, "fault target says %d", rp.status)
	}
}

// snapshot returns copies of the calls so far.
func (ft *faultTarget) snapshot() []faultCall {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := make([]faultCall, len(ft.calls))
	for i, c := range ft.calls {
		out[i] = *c
	}
	return out
}

// delivered returns the records of the calls answered 2xx, in arrival
// order.
func (ft *faultTarget) delivered() []delivery {
	var ds []delivery
	for _, c := range ft.snapshot() {
		if c.status >= 200 && c.status <= 299 {
			ds = append(ds, c.ds...)
		}
	}
	return ds
}

// deliveredSet counts how many times each record was delivered.
func (ft *faultTarget) deliveredSet() map[po]int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	m := map[po]int{}
	for _, c := range ft.calls {
		if c.status >= 200 && c.status <= 299 {
			for _, d := range c.ds {
				m[po{d.rec.Partition, d.rec.Offset}]++
			}
		}
	}
	return m
}

// solo returns the calls that held record k alone.
func (ft *faultTarget) solo(k po) []faultCall {
	var out []faultCall
	for _, c := range ft.snapshot() {
		if len(c.ds) == 1 && c.ds[0].rec.Partition == k.p && c.ds[0].rec.Offset == k.o {
			out = append(out, c)
		}
	}
	return out
}

// keyOf decodes a delivered record's key ("" when it has none).
func keyOf(d delivery) string {
	if d.rec.Key == nil {
		return ""
	}
	b, _ := base64.StdEncoding.DecodeString(*d.rec.Key)
	return string(b)
}

// anyKey reports whether a record of c has a key that matches.
func anyKey(c *faultCall, match func(string) bool) bool {
	for _, d := range c.ds {
		if match(keyOf(d)) {
			return true
		}
	}
	return false
}

// checkDelivered checks that the delivered records are exactly want, each
// once, every partition's records in offset order.
func checkDelivered(t *testing.T, ds []delivery, want map[po]*rec, topic, bootstrap string) {
	t.Helper()
	got := map[po]int{}
	for _, d := range ds {
		got[po{d.rec.Partition, d.rec.Offset}]++
	}
	var missing, extra, twice []po
	for k := range want {
		if got[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range got {
		if want[k] == nil {
			extra = append(extra, k)
		} else if n > 1 {
			twice = append(twice, k)
		}
	}
	if len(missing)+len(extra)+len(twice) > 0 {
		t.Fatalf("delivered %d records: %d of the %d wanted are missing (%v), %d were not to be delivered (%v), %d arrived more than once (%v)",
			len(ds), len(missing), len(want), firstFew(missing), len(extra), firstFew(extra), len(twice), firstFew(twice))
	}
	checkOrder(t, ds)
	checkFields(t, ds, want, topic, bootstrap)
}

func firstFew(ps []po) []po {
	slices.SortFunc(ps, func(a, b po) int {
		if a.p != b.p {
			return int(a.p - b.p)
		}
		return int(a.o - b.o)
	})
	if len(ps) > 8 {
		return ps[:8]
	}
	return ps
}

// failureRec is an on-failure record (REFERENCE.md section 4) as pipe
// writes it, with pipe, stage, errorMessage and payload added.
type failureRec struct {
	RequestContext struct {
		RequestID              string  `json:"requestId"`
		FunctionArn            *string `json:"functionArn"`
		Condition              string  `json:"condition"`
		ApproximateInvokeCount int     `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext *struct {
		StatusCode      *int    `json:"statusCode"`
		ExecutedVersion *string `json:"executedVersion"`
		FunctionError   *string `json:"functionError"`
	} `json:"responseContext"`
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	KafkaBatchInfo struct {
		BatchSize        int    `json:"batchSize"`
		BootstrapServers string `json:"bootstrapServers"`
		PayloadSize      int    `json:"payloadSize"`
		RecordsInfo      map[string]struct {
			FirstRecordOffset    string `json:"firstRecordOffset"`
			LastRecordOffset     string `json:"lastRecordOffset"`
			FirstRecordTimestamp string `json:"firstRecordTimestamp"`
			LastRecordTimestamp  string `json:"lastRecordTimestamp"`
		} `json:"recordsInfo"`
	} `json:"KafkaBatchInfo"`
	Pipe         string          `json:"pipe"`
	Stage        string          `json:"stage"`
	ErrorMessage string          `json:"errorMessage"`
	Payload      json.RawMessage `json:"payload"`

	raw []byte
	rec po // the single record of the payload
}

// parseFailure decodes an on-failure record holding one record: strict
// (no unknown fields), with its payload decoded as an envelope.
func parseFailure(raw []byte) (*failureRec, error) {
	var f failureRec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("on-failure record: %w: %.300s", err, raw)
	}
	f.raw = raw
	if len(f.Payload) == 0 {
		return nil, fmt.Errorf("on-failure record without payload: %.300s", raw)
	}
	ds, err := decodeEnvelope(f.Payload)
	if err != nil {
		return nil, fmt.Errorf("on-failure record's payload: %w", err)
	}
	if len(ds) != 1 {
		return nil, fmt.Errorf("on-failure record's payload holds %d records, want 1", len(ds))
	}
	f.rec = po{ds[0].rec.Partition, ds[0].rec.Offset}
	return &f, nil
}

// readFailureFile reads the complete lines of a file destination; a
// missing file has none.
func readFailureFile(path string) ([]*failureRec, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*failureRec
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // being written
		}
		f, err := parseFailure(data[:i])
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		data = data[i+1:]
	}
	return out, nil
}

// failureSet counts the records of on-failure records.
func failureSet(fs []*failureRec) map[po]int {
	m := map[po]int{}
	for _, f := range fs {
		m[f.rec]++
	}
	return m
}

// failureWant is what an on-failure record must say.
type failureWant struct {
	target    string // requestContext.functionArn: the target's url without query
	condition string
	attempts  int
	status    int // responseContext.statusCode; 0: none
	stage     string
	errHas    []string // substrings of errorMessage
	topic     string
	bootstrap string
	since     time.Time // the record was written after this
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	isoMillisRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

// isoMillis formats an epoch-ms timestamp as on-failure records do.
func isoMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// checkFailures checks on-failure records field by field against want
// and the records as the broker has them. Every difference is reported
// (with t.Errorf), the first few of each kind in full.
func checkFailures(t *testing.T, fs []*failureRec, want func(f *failureRec) failureWant, truth map[po]*rec) {
	t.Helper()
	seen := map[string]int{}
	for _, f := range fs {
		for _, p := range failureProblems(f, want(f), truth) {
			if seen[p.kind]++; seen[p.kind] <= 3 {
				t.Errorf("on-failure record of %v: %s", f.rec, p.msg)
			}
		}
	}
	for kind, n := range seen {
		if n > 3 {
			t.Errorf("%d on-failure records in all: %s", n, kind)
		}
	}
}

type failureProblem struct{ kind, msg string }

// failureProblems lists what differs between an on-failure record and
// want.
func failureProblems(f *failureRec, want failureWant, truth map[po]*rec) []failureProblem {
	var ps []failureProblem
	add := func(kind, format string, args ...any) {
		ps = append(ps, failureProblem{kind, fmt.Sprintf(format, args...)})
	}
	r := truth[f.rec]
	if r == nil {
		add("no such record", "no such record")
		return ps
	}
	rc := f.RequestContext
	if !uuidRE.MatchString(rc.RequestID) {
		add("requestId", "requestContext.requestId %q is not a random UUID", rc.RequestID)
	}
	if rc.FunctionArn == nil || *rc.FunctionArn != want.target {
		add("functionArn", "requestContext.functionArn is %v, want the target %q", quoteOr(rc.FunctionArn, "absent"), want.target)
	}
	if rc.Condition != want.condition {
		add("condition", "requestContext.condition %q, want %q", rc.Condition, want.condition)
	}
	if rc.ApproximateInvokeCount != want.attempts {
		add("approximateInvokeCount", "requestContext.approximateInvokeCount %d, want %d", rc.ApproximateInvokeCount, want.attempts)
	}
	switch rsp := f.ResponseContext; {
	case want.condition != "RetryAttemptsExhausted" && rsp != nil:
		add("responseContext", "responseContext is %+v, want null for %s", *rsp, want.condition)
	case want.condition != "RetryAttemptsExhausted":
	case rsp == nil:
		add("responseContext", "responseContext is null, want an object for %s", want.condition)
	case want.status == 0 && rsp.StatusCode != nil:
		add("statusCode", "responseContext.statusCode %d, want none", *rsp.StatusCode)
	case want.status != 0 && rsp.StatusCode == nil:
		add("statusCode", "responseContext has no statusCode, want %d (the status of the target's last answer)", want.status)
	case want.status != 0 && *rsp.StatusCode != want.status:
		add("statusCode", "responseContext.statusCode %d, want %d", *rsp.StatusCode, want.status)
	}
	if rsp := f.ResponseContext; rsp != nil && (rsp.ExecutedVersion != nil || rsp.FunctionError != nil) {
		add("functionError", "responseContext names a function error (%v, %v) for an HTTP target", rsp.ExecutedVersion, rsp.FunctionError)
	}
	if f.Version != "1.0" {
		add("version", "version %q, want 1.0", f.Version)
	}
	if !isoMillisRE.MatchString(f.Timestamp) {
		add("timestamp", "timestamp %q is not yyyy-mm-ddThh:mm:ss.mmmZ", f.Timestamp)
	} else if ts, err := time.Parse(time.RFC3339Nano, f.Timestamp); err != nil ||
		ts.Before(want.since.Truncate(time.Millisecond)) || ts.After(time.Now()) {
		add("timestamp", "timestamp %s is not between %s and now (%v)", f.Timestamp, want.since.UTC().Format(time.RFC3339Nano), err)
	}
	bi := f.KafkaBatchInfo
	if bi.BatchSize != 1 {
		add("batchSize", "KafkaBatchInfo.batchSize %d, want 1", bi.BatchSize)
	}
	if bi.BootstrapServers != want.bootstrap {
		add("bootstrapServers", "KafkaBatchInfo.bootstrapServers %q, want %q", bi.BootstrapServers, want.bootstrap)
	}
	if bi.PayloadSize != len(f.Payload) {
		add("payloadSize", "KafkaBatchInfo.payloadSize %d, but the payload envelope is %d bytes", bi.PayloadSize, len(f.Payload))
	}
	listKey := fmt.Sprintf("%s-%d", want.topic, f.rec.p)
	ri, ok := bi.RecordsInfo[listKey]
	if len(bi.RecordsInfo) != 1 || !ok {
		add("recordsInfo", "KafkaBatchInfo.recordsInfo has keys %v, want only %s", sortedKeys(bi.RecordsInfo), listKey)
	}
	off := strconv.FormatInt(f.rec.o, 10)
	if ri.FirstRecordOffset != off || ri.LastRecordOffset != off {
		add("recordsInfo offsets", "recordsInfo offsets %q..%q, want %q..%q (strings)", ri.FirstRecordOffset, ri.LastRecordOffset, off, off)
	}
	if ts := isoMillis(r.ts); ri.FirstRecordTimestamp != ts || ri.LastRecordTimestamp != ts {
		add("recordsInfo timestamps", "recordsInfo timestamps %q..%q, want %q", ri.FirstRecordTimestamp, ri.LastRecordTimestamp, ts)
	}
	if f.Pipe != "faults" {
		add("pipe", "pipe %q, want faults", f.Pipe)
	}
	if f.Stage != want.stage {
		add("stage", "stage %q, want %q", f.Stage, want.stage)
	}
	if len(want.errHas) == 0 && f.ErrorMessage != "" {
		add("errorMessage", "errorMessage %q, want none", f.ErrorMessage)
	}
	for _, s := range want.errHas {
		if !strings.Contains(f.ErrorMessage, s) {
			add("errorMessage", "errorMessage %q does not say %q", f.ErrorMessage, s)
		}
	}
	ds, _ := decodeEnvelope(f.Payload)
	if msg := payloadProblem(ds[0], r, want.topic, want.bootstrap); msg != "" {
		add("payload", "payload: %s", msg)
	}
	return ps
}

// payloadProblem compares the record of an on-failure payload with the
// record as the broker has it.
func payloadProblem(d delivery, want *rec, topic, bootstrap string) string {
	r := d.rec
	switch {
	case d.eventSource != "SelfManagedKafka":
		return fmt.Sprintf("eventSource %q", d.eventSource)
	case d.bootstrapServers != bootstrap:
		return fmt.Sprintf("bootstrapServers %q, want %q", d.bootstrapServers, bootstrap)
	case r.Topic != topic:
		return fmt.Sprintf("topic %q", r.Topic)
	case r.Timestamp != want.ts || r.TimestampType != want.tsType:
		return fmt.Sprintf("timestamp %d %s, want %d %s", r.Timestamp, r.TimestampType, want.ts, want.tsType)
	}
	if msg := checkB64("key", r.Key, want.key); msg != "" {
		return msg
	}
	if msg := checkB64("value", r.Value, want.value); msg != "" {
		return msg
	}
	if len(r.Headers) != len(want.headers) {
		return fmt.Sprintf("%d headers, want %d", len(r.Headers), len(want.headers))
	}
	for i, h := range r.Headers {
		wh := want.headers[i]
		signed := make([]int8, len(wh.Value))
		for j, c := range wh.Value {
			signed[j] = int8(c)
		}
		if v, ok := h[wh.Key]; len(h) != 1 || !ok || !slices.Equal(v, signed) {
			return fmt.Sprintf("header %d is %v, want {%q: %v}", i, h, wh.Key, signed)
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// logLines decodes the JSON log lines a process wrote to stderr. A line
// that is not JSON (a panic, a race report) fails the test, and the
// process's output is shown.
func logLines(t *testing.T, p *proc) []map[string]any {
	t.Helper()
	var out []map[string]any
	bad := 0
	sc := bufio.NewScanner(strings.NewReader(p.errors()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			if bad++; bad == 1 {
				t.Errorf("%s wrote a line that is not JSON to stderr: %q", p.name, sc.Text())
			}
			continue
		}
		out = append(out, m)
	}
	return out
}

// Messages of the runner's log that tests count.
const (
	msgDeadLettered = "records sent to the on-failure destination"
	msgRetrying     = "batch failed; retrying, the partition waits"
	msgDestFailed   = "on-failure destination failed; retrying, the partition waits"
	msgBisect       = "batch failed; splitting it in halves"
)

// logsWith returns the lines with message msg.
func logsWith(lines []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// checkDeadLetterLogs checks that the process logged each on-failure
// record of fs once, at WARN, naming its topic, partition, offsets and
// reason (condition, attempts, stage and the error of the record), and
// logged no other dead-lettering.
func checkDeadLetterLogs(t *testing.T, p *proc, fs []*failureRec, topic string) {
	t.Helper()
	lines := logsWith(logLines(t, p), msgDeadLettered)
	type entry struct {
		partition int32
		offsets   string
	}
	byRec := map[entry][]map[string]any{}
	for _, l := range lines {
		part, _ := l["partition"].(float64)
		offs, _ := l["offsets"].(string)
		e := entry{int32(part), offs}
		byRec[e] = append(byRec[e], l)
	}
	for _, f := range fs {
		e := entry{f.rec.p, fmt.Sprintf("%d-%d", f.rec.o, f.rec.o)}
		ls := byRec[e]
		if len(ls) != 1 {
			t.Errorf("%s logged the dead-lettering of %v %d times, want once: %v", p.name, f.rec, len(ls), ls)
			continue
		}
		delete(byRec, e)
		l := ls[0]
		want := map[string]any{"level": "WARN", "pipe": "faults", "topic": topic, "records": float64(1),
			"condition": f.RequestContext.Condition, "attempts": float64(f.RequestContext.ApproximateInvokeCount),
			"stage": f.Stage, "error": f.ErrorMessage}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s's dead-letter log line of %v: %s is %v, want %v (line %v)", p.name, f.rec, k, l[k], v, l)
			}
		}
	}
	for e, ls := range byRec {
		t.Errorf("%s logged %d dead-letterings of partition %d offsets %s that are not in the destination: %v", p.name, len(ls), e.partition, e.offsets, ls)
	}
}

// commitWatch samples a group's committed offsets while a pipe runs and
// checks each sample: every record below a committed offset must have been
// delivered or dead-lettered by then. done is read after each fetch of the
// offsets, so it holds at least what was done when they were committed.
type commitWatch struct {
	b            *broker
	group, topic string
	done         func() map[po]bool

	mu         sync.Mutex
	samples    int
	last       map[int32]int64
	checked    map[int32]int64
	violations []string
	stop       chan struct{}
	stopped    chan struct{}
}

func watchCommits(t *testing.T, b *broker, group, topic string, done func() map[po]bool) *commitWatch {
	w := &commitWatch{b: b, group: group, topic: topic, done: done, checked: map[int32]int64{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	t.Cleanup(w.halt)
	return w
}

func (w *commitWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.stopped
}

func (w *commitWatch) run() {
	defer close(w.stopped)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		w.sample()
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

func (w *commitWatch) sample() {
	c, err := w.b.tryCommitted(w.group, w.topic)
	if err != nil {
		return // the group may not exist yet
	}
	done := w.done()
	if done == nil {
		return // what was done is not known: no sample
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	w.last = c
	for p, off := range c {
		from := w.checked[p]
		if off < from {
			w.violations = append(w.violations, fmt.Sprintf("partition %d: the committed offset went back from %d to %d", p, from, off))
			continue
		}
		for o := from; o < off; o++ {
			if !done[po{p, o}] {
				w.violations = append(w.violations, fmt.Sprintf("partition %d: offset %d was committed, but record %d@%d was neither delivered nor dead-lettered", p, off, p, o))
				break
			}
		}
		w.checked[p] = off
	}
}

// current returns the offsets of the last sample.
func (w *commitWatch) current() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// check stops the sampling (after a last sample) and fails the test if a
// sample committed past a record that was not done.
func (w *commitWatch) check(t *testing.T) {
	t.Helper()
	w.halt()
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples < 3 {
		t.Errorf("the committed offsets were sampled only %d times", w.samples)
	}
	for i, v := range w.violations {
		if i == 10 {
			t.Errorf("%d more violations", len(w.violations)-i)
			break
		}
		t.Error(v)
	}
	t.Logf("committed offsets sampled %d times", w.samples)
}

// doneUnion makes a done function for commitWatch from sets of records; a
// set that is nil (not known) makes the union nil.
func doneUnion(sets ...func() map[po]int) func() map[po]bool {
	return func() map[po]bool {
		m := map[po]bool{}
		for _, s := range sets {
			set := s()
			if set == nil {
				return nil
			}
			for k, n := range set {
				if n > 0 {
					m[k] = true
				}
			}
		}
		return m
	}
}

// fileDone reads the records of a file destination, for commitWatch.
func fileDone(path string) func() map[po]int {
	return func() map[po]int {
		fs, err := readFailureFile(path)
		if err != nil {
			return nil
		}
		return failureSet(fs)
	}
}

// allCommitted reports whether group committed every partition of topic to
// its end offset, for waitFor.
func allCommitted(t *testing.T, b *broker, group, topic string, ends map[int32]int64) (bool, string) {
	c, err := b.tryCommitted(group, topic)
	if err != nil {
		return false, err.Error()
	}
	for p := int32(0); p < partitions; p++ {
		if c[p] != ends[p] {
			return false, fmt.Sprintf("committed %v, end offsets %v", c, ends)
		}
	}
	return true, ""
}

// destServer is an http on-failure destination: it answers 503 while down,
// and stores the on-failure records POSTed to it while up.
type destServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	up       bool
	bodies   [][]byte // every POST, in arrival order
	refused  int      // answered 503
	stored   []*failureRec
	problems []string
}

func newDestServer(t *testing.T, down bool) *destServer {
	d := &destServer{up: !down}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, p := range d.problems {
			t.Errorf("on-failure endpoint: %s", p)
		}
	})
	return d
}

func (d *destServer) url() string { return d.srv.URL + "/failed?token=abc" }

func (d *destServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil:
	case r.Method != http.MethodPost || r.URL.Path != "/failed" || r.URL.Query().Get("token") != "abc":
		err = fmt.Errorf("%s %s, want POST /failed?token=abc", r.Method, r.URL)
	case r.Header.Get("Content-Type") != "application/json":
		err = fmt.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	if err != nil {
		d.problems = append(d.problems, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.bodies = append(d.bodies, body)
	if !d.up {
		d.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	f, err := parseFailure(body)
	if err != nil {
		d.problems = append(d.problems, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.stored = append(d.stored, f)
	w.WriteHeader(http.StatusNoContent)
}

func (d *destServer) setUp() {
	d.mu.Lock()
	d.up = true
	d.mu.Unlock()
}

// counts returns how many POSTs were refused and how many stored.
func (d *destServer) counts() (refused, stored int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused, len(d.stored)
}

func (d *destServer) storedSet() map[po]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return failureSet(d.stored)
}

// dlqReader consumes an on-failure topic from its start while a test runs.
type dlqReader struct {
	b     *broker
	topic string

	mu   sync.Mutex
	recs []*kgo.Record
	next map[int32]int64 // the offset after the last record read, per partition
}

func readDLQ(t *testing.T, b *broker, topic string) *dlqReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	d := &dlqReader{b: b, topic: topic, next: map[int32]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			d.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				d.recs = append(d.recs, r)
				d.next[r.Partition] = r.Offset + 1
			})
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return d
}

func (d *dlqReader) records() []*kgo.Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.recs)
}

// synced is set for commitWatch: it waits until the reader has read
// every message the topic holds now (its end offsets), so that what it
// returns holds every record dead-lettered before it was called.
func (d *dlqReader) synced() map[po]int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := d.b.adm.ListEndOffsets(ctx, d.topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil // no sample: the watcher sees nothing as done
	}
	for {
		behind := false
		d.mu.Lock()
		lo.Each(func(o kadm.ListedOffset) {
			if d.next[o.Partition] < o.Offset {
				behind = true
			}
		})
		d.mu.Unlock()
		if !behind {
			return d.set()
		}
		if ctx.Err() != nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond) // the reader polls on
	}
}

// set counts the records named by the messages' pipe-partition and
// pipe-offset headers.
func (d *dlqReader) set() map[po]int {
	m := map[po]int{}
	for _, r := range d.records() {
		var k po
		for _, h := range r.Headers {
			switch h.Key {
			case "pipe-partition":
				p, _ := strconv.Atoi(string(h.Value))
				k.p = int32(p)
			case "pipe-offset":
				k.o, _ = strconv.ParseInt(string(h.Value), 10, 64)
			}
		}
		m[k]++
	}
	return m
}

// adminAddr returns the address of the process's admin server, from its
// log.
func adminAddr(t *testing.T, p *proc) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, p.name+"'s admin server", func() (bool, string) {
		for _, l := range logLines(t, p) {
			if l["msg"] == "admin server listening" {
				addr, _ = l["address"].(string)
			}
		}
		return addr != "", "no \"admin server listening\" in the log"
	}, p)
	return addr
}

// metricSet is a scrape of /metrics: the value of each series.
type metricSet []struct {
	name   string
	labels map[string]string
	value  float64
}

var seriesRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrapeMetrics reads the admin server's /metrics.
func scrapeMetrics(t *testing.T, addr string) metricSet {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, %v", resp.StatusCode, err)
	}
	var m metricSet
	for _, line := range strings.Split(string(body), "\n") {
		sm := seriesRE.FindStringSubmatch(line)
		if sm == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(sm[3], 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, lm := range labelRE.FindAllStringSubmatch(sm[2], -1) {
			labels[lm[1]] = lm[2]
		}
		m = append(m, struct {
			name   string
			labels map[string]string
			value  float64
		}{sm[1], labels, v})
	}
	return m
}

// sum adds up the series of name whose labels include kv (pairs).
func (m metricSet) sum(name string, kv ...string) float64 {
	var total float64
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && s.labels[kv[i]] == kv[i+1]
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// checkCounters compares counters of the pipe "faults" with what the test
// saw happen.
func checkCounters(t *testing.T, m metricSet, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		if got := m.sum(name, "pipe", "faults"); got != v {
			t.Errorf("metric %s is %v, want %v", name, got, v)
		}
	}
}

// partitionReport is a partition as /pipes shows it.
type partitionReport struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Blocked   *struct {
		Offset   int64  `json:"offset"`
		Stage    string `json:"stage"`
		Reason   string `json:"reason"`
		Attempts int    `json:"attempts"`
	} `json:"blockedOnRetry"`
}

// partitionsOf reads the partitions of the pipe "faults" from /pipes.
func partitionsOf(t *testing.T, addr string) []partitionReport {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/pipes")
	if err != nil {
		t.Fatalf("GET /pipes: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Pipes []struct {
			Name  string            `json:"name"`
			Parts []partitionReport `json:"partitions"`
		} `json:"pipes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /pipes: %v", err)
	}
	for _, p := range out.Pipes {
		if p.Name == "faults" {
			return p.Parts
		}
	}
	t.Fatalf("GET /pipes: no pipe faults in %+v", out)
	return nil
}

func quoteOr(s *string, none string) string {
	if s == nil {
		return none
	}
	return strconv.Quote(*s)
}
