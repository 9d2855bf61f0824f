package sqs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		settings []string
		want     string // a problem's text, "" for none
	}{
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/failed"}, ""},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/failed.fifo", "payload: false", "maxMessageSize: 1MB", "timeout: 5s"}, ""},
		{[]string{"payload: true"}, `missing required key "queueUrl"`},
		{[]string{"queueUrl: sqs.eu-west-1.amazonaws.com/1/failed"}, "queueUrl: must be an absolute https:// URL"},
		{[]string{"queueUrl: https://u:p@sqs.eu-west-1.amazonaws.com/1/failed"}, "queueUrl: must be a queue URL without credentials"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/failed?x=1"}, "queueUrl: must be a queue URL without credentials, query or fragment"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/"}, "queueUrl: must end with the queue name"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/f", "maxMessageSize: 2MB"}, "maxMessageSize: must be between 1KB and 1MB"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/f", "timeout: 0s"}, "timeout: must be between"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/f", "aws: {endpoint: localhost}"}, "aws.endpoint: must be an absolute"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/f", "queueURL: x"}, `unknown key "queueURL"`},
	}
	for _, c := range cases {
		_, err := parse(t, c.settings...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: unexpected problems:\n%v", c.settings, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: got %v, want a problem with %q", c.settings, err, c.want)
		}
	}
	c, err := parse(t, "queueUrl: https://sqs.eu-west-1.amazonaws.com/1/f")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Payload || c.MaxMessageSize != 256<<10 || c.Timeout != 30*time.Second {
		t.Fatalf("defaults: payload %v, maxMessageSize %d, timeout %v", c.Payload, c.MaxMessageSize, c.Timeout)
	}
}

// TestSendsTheFailureRecord: the message's body is the on-failure record
// with its payload, byte for byte, and its attributes are the failure's
// context; with payload: false the body has no records. A failure without
// a stage (RecordAgeExceeded) has no pipe-stage attribute (SQS takes no
// empty values).
func TestSendsTheFailureRecord(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	url := fq.CreateQueue(t, "failed", nil)
	ctx := context.Background()

	f := failure("req-1", 2, 0, 5, 6, 7)
	if err := build(t, "queueUrl: "+url).Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m := one(t, fq.Receive(t, url, 1, 10*time.Second))
	body := aws.ToString(m.Body)
	if want := string(pipeline.AppendFailureRecord(nil, f, true)); body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	if !strings.Contains(body, `"responseContext":{"statusCode":400}`) {
		t.Fatalf("the status of the error is missing: %s", body)
	}
	b, err := pipeline.ParseFailureRecord([]byte(body))
	if err != nil || len(b.Records) != 3 || b.Records[2].Offset != 7 || string(b.Records[0].Value) != `{"n":5}` {
		t.Fatalf("payload read back: %+v, %v", b, err)
	}
	want := map[string]string{"pipe-pipe": "p", "pipe-condition": "RetryAttemptsExhausted", "pipe-stage": "target",
		"pipe-attempts": "3", "pipe-topic": "orders", "pipe-partition": "2", "pipe-first-offset": "5", "pipe-last-offset": "7"}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("attributes: %s", d)
	}
	if _, ok := m.Attributes["MessageGroupId"]; ok {
		t.Fatalf("a standard queue's message has a group: %v", m.Attributes)
	}

	if err := build(t, "queueUrl: "+url, "payload: false").Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m = one(t, fq.Receive(t, url, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, f, false)); body != want {
		t.Fatalf("payload: false: body\n%s\nwant\n%s", body, want)
	}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("payload: false: attributes: %s", d)
	}

	aged := failure("req-2", 0, 0, 9)
	aged.Condition, aged.Stage, aged.Err, aged.Attempts = pipeline.RecordAgeExceeded, "", nil, 0
	if err := build(t, "queueUrl: "+url).Send(ctx, aged); err != nil {
		t.Fatal(err)
	}
	m = one(t, fq.Receive(t, url, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, aged, true)); body != want {
		t.Fatalf("record age: body\n%s\nwant\n%s", body, want)
	}
	want = map[string]string{"pipe-pipe": "p", "pipe-condition": "RecordAgeExceeded", "pipe-attempts": "0",
		"pipe-topic": "orders", "pipe-partition": "0", "pipe-first-offset": "9", "pipe-last-offset": "9"}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("record age: attributes: %s", d)
	}
}

// TestFIFO: on a FIFO queue a message's group is the pipe and the records'
// topic-partition, and its deduplication ID the failure's requestId, so a
// failure sent twice (a retry after a lost answer) is stored once, and a
// partition's failures stay in order. A group ID over 128 characters ends
// with a hash of the whole and is accepted.
func TestFIFO(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	url := fq.CreateQueue(t, "failed.fifo", nil)
	d := build(t, "queueUrl: "+url)
	ctx := context.Background()
	f1, f2, f3 := failure("req-a", 3, 0, 10), failure("req-b", 3, 0, 11, 12), failure("req-c", 4, 0, 20)
	for _, f := range []*pipeline.Failure{f1, f1, f2, f3} {
		if err := d.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fq.Receive(t, url, 3, 10*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3 (the repeated failure stored once)", len(msgs))
	}
	var group3 []string
	seen := map[string]bool{}
	for _, m := range msgs {
		var rec struct {
			RequestContext struct {
				RequestID string `json:"requestId"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &rec); err != nil {
			t.Fatal(err)
		}
		id := rec.RequestContext.RequestID
		seen[id] = true
		wantGroup := map[string]string{"req-a": "p-orders-3", "req-b": "p-orders-3", "req-c": "p-orders-4"}[id]
		if g, dd := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]; g != wantGroup || dd != id {
			t.Errorf("%s: group %q, deduplication ID %q; want %q, %q", id, g, dd, wantGroup, id)
		}
		if wantGroup == "p-orders-3" {
			group3 = append(group3, id)
		}
	}
	if len(seen) != 3 || strings.Join(group3, ",") != "req-a,req-b" {
		t.Fatalf("request IDs %v, partition 3 in order %v", seen, group3)
	}

	long := failure("req-long", 7, 0, 1)
	topic := strings.Repeat("t", 200)
	long.Batch.Records[0].Topic = topic
	if err := d.Send(ctx, long); err != nil {
		t.Fatal(err)
	}
	m := one(t, fq.Receive(t, url, 1, 10*time.Second))
	whole := "p-" + topic + "-7"
	sum := sha256.Sum256([]byte(whole))
	want := whole[:128-17] + "-" + hex.EncodeToString(sum[:8])
	if g := m.Attributes["MessageGroupId"]; g != want || len(g) != 128 {
		t.Fatalf("long group ID %q (%d), want %q", g, len(g), want)
	}
}

// TestTooLarge: a failure whose message would pass maxMessageSize with its
// records is sent without them, in one call, with the pipe-payload
// attribute; one the queue refuses (its MaximumMessageSize below
// maxMessageSize) is sent again at once without them; an error text too
// long for even that is shortened, keeping the status. None is retried for
// ever.
func TestTooLarge(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	px := newProxy(t, fq.URL)
	ctx := context.Background()
	const send = "AmazonSQS.SendMessage"

	url := fq.CreateQueue(t, "failed", nil)
	d := build(t, "queueUrl: "+url, "aws: {endpoint: "+px.URL+"}")
	big := failure("req-big", 1, 300<<10, 40)
	if err := d.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	if n := px.count(send); n != 1 {
		t.Fatalf("%d SendMessage calls, want 1", n)
	}
	m := one(t, fq.Receive(t, url, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, big, false)); body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	want := map[string]string{"pipe-pipe": "p", "pipe-condition": "RetryAttemptsExhausted", "pipe-stage": "target",
		"pipe-attempts": "3", "pipe-topic": "orders", "pipe-partition": "1", "pipe-first-offset": "40", "pipe-last-offset": "40",
		"pipe-payload": "omitted: too large for the queue"}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("attributes: %s", d)
	}

	small := fq.CreateQueue(t, "small", map[string]string{"MaximumMessageSize": "2048"})
	d = build(t, "queueUrl: "+small, "aws: {endpoint: "+px.URL+"}")
	mid := failure("req-mid", 1, 3<<10, 41)
	if err := d.Send(ctx, mid); err != nil {
		t.Fatal(err)
	}
	if n := px.count(send); n != 3 {
		t.Fatalf("%d SendMessage calls in all, want 3 (1 before, the refused one and the one without records)", n)
	}
	m = one(t, fq.Receive(t, small, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, mid, false)); body != want {
		t.Fatalf("refused by the queue: body\n%s\nwant\n%s", body, want)
	}
	if got := attrs(m)["pipe-payload"]; got != "omitted: too large for the queue" {
		t.Fatalf("refused by the queue: pipe-payload %q", got)
	}

	d = build(t, "queueUrl: "+url, "maxMessageSize: 1KB")
	long := failure("req-long", 1, 0, 42)
	text := "POST http://x/orders: status 400: " + strings.Repeat("é", 3000)
	long.Err = &statusErr{400, text}
	if err := d.Send(ctx, long); err != nil {
		t.Fatal(err)
	}
	m = one(t, fq.Receive(t, url, 1, 10*time.Second))
	body := aws.ToString(m.Body)
	size := len(body)
	for k, v := range m.MessageAttributes {
		size += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
	var rec struct {
		ResponseContext struct {
			StatusCode int `json:"statusCode"`
		} `json:"responseContext"`
		ErrorMessage string          `json:"errorMessage"`
		Payload      json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	const mark = " ... (shortened to fit the message)"
	cut, ok := strings.CutSuffix(rec.ErrorMessage, mark)
	if size > 1024 || size < 900 || !ok || !strings.HasPrefix(text, cut) || len(cut) < 100 || rec.ResponseContext.StatusCode != 400 || rec.Payload != nil {
		t.Fatalf("shortened: %d bytes, status %d, payload %s, errorMessage %q", size, rec.ResponseContext.StatusCode, rec.Payload, rec.ErrorMessage)
	}
}

// TestErrors: a missing queue, a throttled call and a call that takes
// longer than timeout make Send fail, naming the queue and never the
// credentials; the same failure sent again once the queue answers is
// stored once.
func TestErrors(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	ctx := context.Background()
	noSecret := func(err error) {
		t.Helper()
		for _, s := range []string{testenv.FauxqsSecretAccessKey, testenv.FauxqsAccessKeyID} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q holds a credential", err)
			}
		}
	}

	url := fq.CreateQueue(t, "failed", nil)
	missing := strings.TrimSuffix(url, "failed") + "missing"
	err := build(t, "queueUrl: "+missing).Send(ctx, failure("r1", 0, 0, 1))
	if err == nil || !strings.Contains(err.Error(), "SQS queue missing") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing queue: %v", err)
	}
	noSecret(err)

	px := newProxy(t, fq.URL)
	px.setThrottle(true)
	d := build(t, "queueUrl: "+url, "aws: {endpoint: "+px.URL+"}")
	f := failure("r2", 0, 0, 2)
	err = d.Send(ctx, f)
	if err == nil || !strings.Contains(err.Error(), "SQS queue failed") || !strings.Contains(err.Error(), "RequestThrottled") {
		t.Fatalf("throttled: %v", err)
	}
	noSecret(err)
	if n := px.count("AmazonSQS.SendMessage"); n != 1 {
		t.Fatalf("throttled: %d calls, want 1 (the runner retries, not the destination)", n)
	}
	px.setThrottle(false)
	if err := d.Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m := one(t, fq.Receive(t, url, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, f, true)); body != want {
		t.Fatalf("after throttling: body\n%s\nwant\n%s", body, want)
	}

	hang := make(chan struct{})
	defer close(hang)
	stuck := newHangingServer(t, hang)
	d = build(t, "queueUrl: "+url, "timeout: 100ms", "aws: {endpoint: "+stuck+"}")
	err = d.Send(ctx, f)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v", err)
	}
	noSecret(err)
}
