package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// part is a running receiver that plays a target, and the target block of
// pipes.yaml that points at it.
type part struct {
	// yaml is the value of `target:`: the kind and its settings.
	yaml string
	// carries says which fields of a record the receiver gets.
	carries carries
	// ordered says that the receiver keeps the order in which records
	// arrived.
	ordered bool
	// arrived waits until at least n records arrived in all, failing the
	// test after a deadline, and returns every record received so far, in
	// arrival order.
	arrived func(t *testing.T, n int) []wire
	// around, when set, wraps the building of the target (stdout builds
	// its target on os.Stdout).
	around func(build func())
	// inFlight, for a receiver that never answers, is closed once a
	// delivery reached it.
	inFlight <-chan struct{}
}

// lab holds what the parts of one kind share: the fauxqs process of the
// SQS and SNS kinds, and a counter for unique names.
type lab struct {
	fq *testenv.Fauxqs
	n  atomic.Int32
}

func (l *lab) name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, l.n.Add(1)) }

// bootstrap is the envelope's bootstrapServers of mixedBatch.
const bootstrap = "b-1.example:9092,b-2.example:9092"

// deadline bounds every wait for records to arrive.
const deadline = 20 * time.Second

// poll calls read until it returns at least n records and returns them;
// it fails the test after deadline.
func poll(t *testing.T, n int, what string, read func() []wire) []wire {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		got := read()
		if len(got) >= n {
			return got
		}
		if time.Now().After(end) {
			t.Fatalf("%s: %d records arrived within %v, want at least %d", what, len(got), deadline, n)
		}
		time.Sleep(10 * time.Millisecond) // polling a receiver
	}
}

// problems collects what handlers running on other goroutines found wrong,
// for the test to report.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) addf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) report(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.list {
		t.Error(s)
	}
	p.list = nil
}

// awsEnv gives the SDK a region and static credentials, keeps it away from
// the machine's AWS settings and instance metadata, and points
// AWS_ENDPOINT_URL at a closed port: only the aws.endpoint of the target's
// block reaches the part.
func awsEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION":                  testenv.FauxqsRegion,
		"AWS_ACCESS_KEY_ID":           testenv.FauxqsAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       testenv.FauxqsSecretAccessKey,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "http://127.0.0.1:1",
	} {
		t.Setenv(k, v)
	}
}

// ---- stdout: the target writes to os.Stdout, which is a pipe while it is
// built; a reader decodes each line as an envelope.

func startStdout(t *testing.T, _ *lab) *part {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		got  []wire
		errs problems
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				if !bytes.HasSuffix(line, []byte("\n")) {
					errs.addf("stdout: a line without its newline: %.100q", line)
				} else if ws, err := envelopeRecords(line); err != nil {
					errs.addf("stdout: %v", err)
				} else {
					mu.Lock()
					got = append(got, ws...)
					mu.Unlock()
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		w.Close()
		<-done
		r.Close()
	})
	return &part{
		yaml:    "stdout: {}\n",
		carries: carries{coords: true, timestampType: true},
		ordered: true,
		around:  onStdout(w),
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			defer errs.report(t)
			return poll(t, n, "stdout", func() []wire {
				mu.Lock()
				defer mu.Unlock()
				return append([]wire(nil), got...)
			})
		},
	}
}

// onStdout builds a target with os.Stdout set to f.
func onStdout(f *os.File) func(build func()) {
	return func(build func()) {
		old := os.Stdout
		os.Stdout = f
		defer func() { os.Stdout = old }()
		build()
	}
}

// envelopeRecords decodes one envelope of mixedBatch's source.
func envelopeRecords(raw []byte) ([]wire, error) {
	src, boot, ws, err := decodeEnvelope(bytes.TrimSuffix(raw, []byte("\n")))
	if err != nil {
		return nil, err
	}
	if src != pipeline.EventSourceSelfManagedKafka || boot != bootstrap {
		return nil, fmt.Errorf("envelope of eventSource %q, bootstrapServers %q", src, boot)
	}
	return ws, nil
}

// hangStdout is a stdout whose reader takes the first byte and then stops
// reading, so that the target's write blocks.
func hangStdout(t *testing.T) *part {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	go func() {
		var one [1]byte
		if n, _ := r.Read(one[:]); n == 1 {
			close(inFlight)
		}
	}()
	// Closing the reading end fails a write still blocked, so that a
	// Deliver that ignores its context ends with the test.
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return &part{yaml: "stdout: {}\n", around: onStdout(w), inFlight: inFlight}
}

// ---- http: an httptest server taking one record per request, as the
// http target sends them in record mode.

// httpReceiver is the endpoint of the http target.
type httpReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []wire
	errs problems
	// reject, when set, gives the status that refuses a record (0 takes it).
	reject func(w wire) int
}

func newHTTPReceiver(t *testing.T) *httpReceiver {
	h := &httpReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/records" || r.Header.Get("Content-Type") != "application/json" {
			h.errs.addf("http: %s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec, err := decodeRecord(body)
		if err != nil {
			h.errs.addf("http: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		status := 0
		if h.reject != nil {
			status = h.reject(rec)
		}
		if status == 0 {
			h.got = append(h.got, rec)
		}
		h.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			io.WriteString(w, `{"error":"refused"}`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *httpReceiver) part() *part {
	return &part{
		yaml:    "http:\n  url: " + h.srv.URL + "/records\n  mode: record\n",
		carries: carries{coords: true, timestampType: true},
		ordered: true,
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			defer h.errs.report(t)
			return poll(t, n, "http", func() []wire {
				h.mu.Lock()
				defer h.mu.Unlock()
				return append([]wire(nil), h.got...)
			})
		},
	}
}

func (h *httpReceiver) setReject(f func(wire) int) {
	h.mu.Lock()
	h.reject = f
	h.mu.Unlock()
}

func startHTTP(t *testing.T, _ *lab) *part { return newHTTPReceiver(t).part() }

// rejectHTTP starts an endpoint that answers status to record i of b, for
// ever when permanent, else until healed.
func rejectHTTP(status int, permanent bool) func(t *testing.T, _ *lab, b *pipeline.Batch, i int) (*part, func()) {
	return func(t *testing.T, _ *lab, b *pipeline.Batch, i int) (*part, func()) {
		h := newHTTPReceiver(t)
		bad := coords(&b.Records[i])
		h.setReject(func(w wire) int {
			if w.Coords == bad {
				return status
			}
			return 0
		})
		if permanent {
			return h.part(), nil
		}
		return h.part(), func() { h.setReject(nil) }
	}
}

// blackhole is an HTTP server that never answers: each request waits until
// the client gives up or the test ends. inFlight is closed at the first
// request.
func blackhole(t *testing.T) (url string, inFlight <-chan struct{}) {
	arrived := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		once.Do(func() { close(arrived) })
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for the handlers
	return srv.URL, arrived
}

// tcpBlackhole is a TCP server that reads what a client sends and never
// writes: a Kafka broker that does not answer. inFlight is closed once a
// client sent something.
func tcpBlackhole(t *testing.T) (addr string, inFlight <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				var buf [4096]byte
				for {
					n, err := c.Read(buf[:])
					if n > 0 {
						once.Do(func() { close(arrived) })
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String(), arrived
}

func hangHTTP(t *testing.T) *part {
	url, inFlight := blackhole(t)
	return &part{yaml: "http:\n  url: " + url + "/records\n  mode: record\n", inFlight: inFlight}
}

// ---- sqs and sns on fauxqs: messages are read back from a queue (for
// sns, a queue subscribed to the topic with raw delivery).

// queueReader reads the records of the messages of a queue, keeping what it
// read.
func queueReader(f *testenv.Fauxqs, queueURL, what string) func(t *testing.T, n int) []wire {
	var got []wire
	return func(t *testing.T, n int) []wire {
		t.Helper()
		for _, m := range f.Receive(t, queueURL, max(n-len(got), 0), deadline) {
			w, err := decodeRecord([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Errorf("%s: message body: %v", what, err)
				continue
			}
			got = append(got, w)
		}
		return append([]wire(nil), got...)
	}
}

func startSQS(t *testing.T, l *lab) *part {
	url := l.fq.CreateQueue(t, l.name("conformance"), nil)
	return &part{
		yaml:    fmt.Sprintf("sqs:\n  queueUrl: %s\n  aws: {endpoint: %q}\n", url, l.fq.URL),
		carries: carries{coords: true, timestampType: true},
		arrived: queueReader(l.fq, url, "sqs"),
	}
}

func startSNS(t *testing.T, l *lab) *part {
	name := l.name("conformance")
	arn := l.fq.CreateTopic(t, name, nil)
	url := l.fq.CreateQueue(t, name, nil)
	l.fq.Subscribe(t, arn, url, true)
	return &part{
		yaml:    fmt.Sprintf("sns:\n  topicArn: %s\n  aws: {endpoint: %q}\n", arn, l.fq.URL),
		carries: carries{coords: true, timestampType: true},
		arrived: queueReader(l.fq, url, "sns"),
	}
}

// tooLarge makes record i of b larger than any message or event may be
// (the record as JSON passes 256 KiB) and starts the part.
func tooLarge(start func(*testing.T, *lab) *part) func(t *testing.T, l *lab, b *pipeline.Batch, i int) (*part, func()) {
	return func(t *testing.T, l *lab, b *pipeline.Batch, i int) (*part, func()) {
		b.Records[i].Value = bytes.Repeat([]byte("x"), 200<<10) // 267 KB in base64
		return start(t, l), nil
	}
}

func hangSQS(t *testing.T) *part {
	url, inFlight := blackhole(t)
	return &part{yaml: fmt.Sprintf("sqs:\n  queueUrl: http://sqs.us-east-1.localhost/000000000000/nowhere\n  aws: {endpoint: %q}\n", url), inFlight: inFlight}
}

func hangSNS(t *testing.T) *part {
	url, inFlight := blackhole(t)
	return &part{yaml: fmt.Sprintf("sns:\n  topicArn: arn:aws:sns:us-east-1:000000000000:nowhere\n  aws: {endpoint: %q}\n", url), inFlight: inFlight}
}

// ---- eventbridge: a server that speaks PutEvents; each event's Detail is
// the record as JSON.

func eventBridgePart(s *testenv.PutEvents) *part {
	var errs problems
	return &part{
		yaml:    fmt.Sprintf("eventbridge:\n  eventBusName: orders\n  aws: {endpoint: %q}\n", s.URL),
		carries: carries{coords: true, timestampType: true},
		ordered: true,
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			defer errs.report(t)
			return poll(t, n, "eventbridge", func() []wire {
				evs, _ := s.Received()
				var out []wire
				for _, e := range evs {
					if e.Bus != "orders" || e.Source != "Pipe conformance" || e.DetailType != "Event from SelfManagedKafka" {
						errs.addf("eventbridge: event on bus %q with source %q, detail type %q", e.Bus, e.Source, e.DetailType)
					}
					w, err := decodeRecord([]byte(e.Detail))
					if err != nil {
						errs.addf("eventbridge: Detail: %v", err)
						continue
					}
					out = append(out, w)
				}
				return out
			})
		},
	}
}

func startEventBridge(t *testing.T, _ *lab) *part { return eventBridgePart(testenv.StartPutEvents(t)) }

// rejectEntry starts a PutEvents server that fails the entry of record i of
// b with code, for ever when permanent, else until healed.
func rejectEntry(code string, permanent bool) func(t *testing.T, _ *lab, b *pipeline.Batch, i int) (*part, func()) {
	return func(t *testing.T, _ *lab, b *pipeline.Batch, i int) (*part, func()) {
		s := testenv.StartPutEvents(t)
		bad := coords(&b.Records[i])
		var healed atomic.Bool
		s.Reset(func(_, _ int, e *testenv.PutEntry) (string, string) {
			if e.Detail != nil && !healed.Load() {
				if w, err := decodeRecord([]byte(*e.Detail)); err == nil && w.Coords == bad {
					return code, "refused for the test"
				}
			}
			return "", ""
		}, nil)
		if permanent {
			return eventBridgePart(s), nil
		}
		return eventBridgePart(s), func() { healed.Store(true) }
	}
}

func hangEventBridge(t *testing.T) *part {
	url, inFlight := blackhole(t)
	return &part{yaml: fmt.Sprintf("eventbridge:\n  aws: {endpoint: %q}\n", url), inFlight: inFlight}
}

// ---- lambda: the runtime interface emulator running the aws-lambda-go
// function of internal/testenv/lambdafn; each invocation's payload is an
// envelope, which the function also decoded as events.KafkaEvent.

func lambdaPart(l *testenv.Lambda, extra string) *part {
	return &part{
		yaml:    fmt.Sprintf("lambda:\n  functionName: %s\n  aws: {endpoint: %q}\n%s", testenv.LambdaFunction, l.Endpoint, extra),
		carries: carries{coords: true, timestampType: true},
		ordered: true,
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			var out []wire
			for _, ev := range l.Events(t) {
				ws, err := envelopeRecords(ev.Payload)
				if err != nil {
					t.Errorf("lambda: %v", err)
					continue
				}
				checkKafkaEvent(t, ev, ws)
				out = append(out, ws...)
			}
			if len(out) < n {
				t.Fatalf("lambda: the function received %d records, want at least %d", len(out), n)
			}
			return out
		},
	}
}

// checkKafkaEvent checks that aws-lambda-go's events.KafkaEvent, as the
// function decoded it, holds the same records as the payload: a function
// written for Lambda reads what was sent.
func checkKafkaEvent(t *testing.T, ev testenv.LambdaEvent, ws []wire) {
	t.Helper()
	if ev.Event == nil {
		t.Errorf("lambda: aws-lambda-go could not decode the event: %.200s", ev.Payload)
		return
	}
	byCoords := map[string]wire{}
	for _, w := range ws {
		byCoords[w.Coords] = w
	}
	n := 0
	for key, recs := range ev.Event.Records {
		for _, r := range recs {
			n++
			c := fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.Offset)
			w, ok := byCoords[c]
			if !ok || key != fmt.Sprintf("%s-%d", r.Topic, r.Partition) {
				t.Errorf("lambda: events.KafkaEvent has %s under %q", c, key)
				continue
			}
			if r.Key != base64.StdEncoding.EncodeToString(w.Key) || r.Value != base64.StdEncoding.EncodeToString(w.Value) ||
				r.Timestamp.UnixMilli() != w.Timestamp || r.TimestampType != w.TimestampType || len(r.Headers) != len(w.Headers) {
				t.Errorf("lambda: events.KafkaEvent's %s differs from the payload's", c)
				continue
			}
			for i, h := range r.Headers {
				if len(h) != 1 || !bytes.Equal(h[w.Headers[i].Key], w.Headers[i].Value) {
					t.Errorf("lambda: events.KafkaEvent's %s: header %d differs", c, i)
				}
			}
		}
	}
	if n != len(ws) {
		t.Errorf("lambda: events.KafkaEvent has %d records, the payload %d", n, len(ws))
	}
}

func startLambda(t *testing.T, _ *lab) *part {
	return lambdaPart(testenv.StartLambda(t, testenv.LambdaOptions{Mode: "echo"}), "")
}

// lambdaFails starts a function that reports record i of b in its
// batchItemFailures the first time it sees it (so it heals by itself).
func lambdaFails(t *testing.T, _ *lab, b *pipeline.Batch, i int) (*part, func()) {
	l := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "fail-keys", FailKeys: []string{string(b.Records[i].Key)}, FailOnce: true})
	return lambdaPart(l, "  reportBatchItemFailures: true\n"), func() {}
}

func hangLambda(t *testing.T) *part {
	url, inFlight := blackhole(t)
	return &part{yaml: fmt.Sprintf("lambda:\n  functionName: function\n  aws: {endpoint: %q}\n", url), inFlight: inFlight}
}

// ---- kafka: kfake, with the records read back from the topic the target
// produces to. A produced record has no source coordinates or timestamp
// type, and keeps the key, value, headers and timestamp.

// kafkaMaxMessage is the max.message.bytes of the topic, and the target's
// maxMessageBytes.
const kafkaMaxMessage = 64 << 10

func startKafka(t *testing.T, _ *lab) *part {
	k := testenv.Kafka(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	limit := fmt.Sprint(kafkaMaxMessage)
	resp, err := k.Admin.CreateTopic(ctx, 3, 1, map[string]*string{"max.message.bytes": &limit}, "out")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic out: %v", err)
	}
	return &part{
		yaml:    fmt.Sprintf("kafka:\n  bootstrapServers: [%s]\n  topic: out\n  maxMessageBytes: 64KB\n", k.Addr),
		carries: carries{},
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			return poll(t, n, "kafka", func() []wire {
				var out []wire
				for _, r := range k.ReadAll(t, "out") {
					w := wire{Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
					for _, h := range r.Headers {
						w.Headers = append(w.Headers, pipeline.Header{Key: h.Key, Value: h.Value})
					}
					out = append(out, w)
				}
				return out
			})
		},
	}
}

// kafkaTooLarge makes record i of b larger than the topic's
// max.message.bytes.
func kafkaTooLarge(t *testing.T, l *lab, b *pipeline.Batch, i int) (*part, func()) {
	b.Records[i].Value = bytes.Repeat([]byte("x"), kafkaMaxMessage+1)
	return startKafka(t, l), nil
}

func hangKafka(t *testing.T) *part {
	addr, inFlight := tcpBlackhole(t)
	return &part{yaml: fmt.Sprintf("kafka:\n  bootstrapServers: [%s]\n  topic: out\n", addr), inFlight: inFlight}
}

// startHTTPBatch is an endpoint of the http target in batch mode (its
// default): one request per batch, whose body is the envelope.
func startHTTPBatch(t *testing.T) *part {
	var (
		mu   sync.Mutex
		got  []wire
		errs problems
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ws, err := envelopeRecords(body)
		if err != nil || r.Header.Get("Content-Type") != "application/json" {
			errs.addf("http batch: Content-Type %q, %v", r.Header.Get("Content-Type"), err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ws...)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return &part{
		yaml:    "http:\n  url: " + srv.URL + "/batches\n",
		carries: carries{coords: true, timestampType: true},
		ordered: true,
		arrived: func(t *testing.T, n int) []wire {
			t.Helper()
			defer errs.report(t)
			return poll(t, n, "http batch", func() []wire {
				mu.Lock()
				defer mu.Unlock()
				return append([]wire(nil), got...)
			})
		},
	}
}
