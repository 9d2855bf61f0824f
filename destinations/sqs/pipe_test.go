package sqs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// rejecting is an HTTP target that answers 400 for the record whose key is
// "bad" and takes the others.
type rejecting struct {
	mu   sync.Mutex
	took []string // keys, in the order received
}

func (s *rejecting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec struct {
		Key []byte `json:"key"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &rec); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if string(rec.Key) == "bad" {
		http.Error(w, "rejected", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.took = append(s.took, string(rec.Key))
	s.mu.Unlock()
}

func (s *rejecting) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.took)
}

// TestPipeSendsRejectedRecordToQueue: a pipe built from YAML, reading
// Kafka, whose HTTP target rejects one record for good, sends that record
// to the FIFO on-failure queue as exactly the on-failure record of
// REFERENCE.md section 4, delivers the two others and commits past all
// three.
func TestPipeSendsRejectedRecordToQueue(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	queue := fq.CreateQueue(t, "orders-failed.fifo", nil)
	kc := testenv.Kafka(t, 1, "orders")
	srv := &rejecting{}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	cfg, err := pipeline.Parse("pipes.yaml", fmt.Appendf(nil, `pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: %s
        topics: [orders]
        consumerGroupId: orders-pipe
        batchSize: 3
        maximumBatchingWindow: 5s
    target:
      http: {url: %q, mode: record}
    retryBackoff: {initial: 1ms, maximum: 5ms}
    onFailure:
      sqs: {queueUrl: %q}
`, kc.Addr, hs.URL+"/orders", queue))
	if err != nil {
		t.Fatal(err)
	}
	pipes, err := pipeline.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	failedAt := time.UnixMilli(1_700_000_500_123)
	pipes[0].Now = func() time.Time { return failedAt }

	ts := func(i int) time.Time { return time.UnixMilli(1_700_000_000_000 + int64(i)) }
	kc.Produce(t,
		&kgo.Record{Topic: "orders", Key: []byte("good-0"), Value: []byte(`{"n":0}`), Timestamp: ts(0)},
		&kgo.Record{Topic: "orders", Key: []byte("bad"), Value: []byte(`{"n":1}`), Timestamp: ts(1),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0xdc, 'x'}}}},
		&kgo.Record{Topic: "orders", Key: []byte("good-2"), Value: []byte(`{"n":2}`), Timestamp: ts(2)},
	)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, pipes) }()
	msgs := fq.Receive(t, queue, 1, 30*time.Second)
	testenv.WaitFor(t, 30*time.Second, func() bool { return len(srv.keys()) == 2 }, "delivered %v", testenv.Now(srv.keys))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := srv.keys(); !slices.Equal(got, []string{"good-0", "good-2"}) {
		t.Fatalf("delivered %v", got)
	}
	if off := kc.CommittedAt(t, "orders-pipe", "orders", 0); off != 3 {
		t.Fatalf("committed %d, want 3", off)
	}

	m := one(t, msgs)
	body := aws.ToString(m.Body)
	id := regexp.MustCompile(`^\{"requestContext":\{"requestId":"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("no request ID at the start of %s", body)
	}
	envelope := fmt.Sprintf(`{"eventSource":"SelfManagedKafka","bootstrapServers":%q,"records":{"orders-0":[`+
		`{"topic":"orders","partition":0,"offset":1,"timestamp":1700000000001,"timestampType":"CREATE_TIME",`+
		`"key":"YmFk","value":"eyJuIjoxfQ==","headers":[{"h":[-36,120]}]}]}}`, kc.Addr)
	want := fmt.Sprintf(`{"requestContext":{"requestId":%q,"functionArn":%q,"condition":"RetryAttemptsExhausted","approximateInvokeCount":1},`+
		`"responseContext":{"statusCode":400},"version":"1.0","timestamp":"2023-11-14T22:21:40.123Z",`+
		`"KafkaBatchInfo":{"batchSize":1,"bootstrapServers":%q,"payloadSize":%d,"recordsInfo":{"orders-0":`+
		`{"firstRecordOffset":"1","lastRecordOffset":"1","firstRecordTimestamp":"2023-11-14T22:13:20.001Z","lastRecordTimestamp":"2023-11-14T22:13:20.001Z"}}},`+
		`"pipe":"orders","stage":"target","errorMessage":%q,"payload":%s}`,
		id[1], hs.URL+"/orders", kc.Addr, len(envelope),
		"1 of 3 records not delivered (1 failed); first: POST "+hs.URL+"/orders: record orders-0 offset 1: status 400: rejected",
		envelope)
	if body != want {
		t.Fatalf("on-failure message\n%s\nwant\n%s", body, want)
	}
	wantAttrs := map[string]string{"pipe-pipe": "orders", "pipe-condition": "RetryAttemptsExhausted", "pipe-stage": "target",
		"pipe-attempts": "1", "pipe-topic": "orders", "pipe-partition": "0", "pipe-first-offset": "1", "pipe-last-offset": "1"}
	if d := diff(attrs(m), wantAttrs); d != "" {
		t.Fatalf("attributes: %s", d)
	}
	if g, d := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]; g != "orders-orders-0" || d != id[1] {
		t.Fatalf("group %q, deduplication ID %q", g, d)
	}
}
