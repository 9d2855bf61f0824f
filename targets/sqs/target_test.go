package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		settings []string
		want     string // a problem's text, "" for none
	}{
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}, ""},
		{[]string{"inputTemplate: x"}, `missing required key "queueUrl"`},
		{[]string{"queueUrl: sqs.eu-west-1.amazonaws.com/1/orders"}, "queueUrl: must be an absolute https:// URL"},
		{[]string{"queueUrl: https://u:p@sqs.eu-west-1.amazonaws.com/1/orders"}, "queueUrl: must be a queue URL without credentials"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/"}, "queueUrl: must end with the queue name"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o.fifo"}, "messageGroupId: is required for a FIFO queue"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o.fifo", "messageGroupId: $.key", "delaySeconds: 5"}, "delaySeconds: must be 0 for a FIFO queue"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "messageDeduplicationId: $.offset"}, "messageDeduplicationId: applies to FIFO queues only"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o.fifo", "messageGroupId: a b"}, "messageGroupId: must be printable ASCII"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o.fifo", "messageGroupId: " + strings.Repeat("g", 129)}, "messageGroupId: is 129 characters long"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o.fifo", "messageGroupId: $.value[", "messageDeduplicationId: <$.x"}, "messageGroupId: "},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "inputTemplate: '<aws.pipes.nope>'"}, "inputTemplate: "},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "delaySeconds: 901"}, "delaySeconds: must be between 0 and 900"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "maxMessageSize: 2MB"}, "maxMessageSize: must be between 1KB and 1MB"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "aws: {endpoint: localhost}"}, "aws.endpoint: must be an absolute"},
		{[]string{"queueUrl: https://sqs.eu-west-1.amazonaws.com/1/o", "aws: {regoin: x}"}, `aws.regoin: unknown key "regoin"; did you mean "region"?`},
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
}

func TestRegionFromQueueURL(t *testing.T) {
	for url, region := range map[string]string{
		"https://sqs.eu-west-1.amazonaws.com/123456789012/orders":     "eu-west-1",
		"https://ap-south-1.queue.amazonaws.com/123456789012/orders":  "ap-south-1",
		"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders": "cn-north-1",
		"http://sqs.us-east-1.localhost:4566/000000000000/orders":     "",
	} {
		c, err := parse(t, "queueUrl: "+url)
		if err != nil {
			t.Fatal(err)
		}
		if c.region != region {
			t.Errorf("%s: region %q, want %q", url, c.region, region)
		}
	}
	// The region of the URL is used when aws.region is not set, over
	// AWS_REGION; nothing is sent.
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	tg := build(t, "queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
	if got := tg.client.Options().Region; got != "eu-west-1" {
		t.Errorf("client region %q, want eu-west-1", got)
	}
	tg = build(t, "queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "aws: {region: eu-central-1}")
	if got := tg.client.Options().Region; got != "eu-central-1" {
		t.Errorf("client region %q, want eu-central-1 (the aws.region setting)", got)
	}
}

func deliver(t *testing.T, tg *target, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Deliver(ctx, b)
}

func bodies(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.Body))
	}
	sort.Strings(out)
	return out
}

// noSecrets fails the test when an error shows the test credentials.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{testenv.FauxqsSecretAccessKey, "the-session-token"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a credential: %v", err)
		}
	}
}

// TestBodies: by default each message is the record as JSON (AppendRecord);
// with an input template it is the rendered template.
func TestBodies(t *testing.T) {
	f, _ := start(t)
	url := f.CreateQueue(t, "bodies", nil)
	b := testBatch(5, 2)
	if err := deliver(t, build(t, "queueUrl: "+url), b); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range b.Records {
		want = append(want, string(pipeline.AppendRecord(nil, &b.Records[i])))
	}
	sort.Strings(want)
	got := bodies(f.Receive(t, url, len(want), 10*time.Second))
	if !slices.Equal(got, want) {
		t.Fatalf("default bodies:\n got %q\nwant %q", got, want)
	}

	tg := build(t, "queueUrl: "+url, `inputTemplate: '{"id": <$.value.id>, "at": "<$.topic>/<$.partition>/<$.offset>", "pipe": "<aws.pipes.pipe-name>"}'`)
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, r := range b.Records {
		var v struct{ ID int }
		json.Unmarshal(r.Value, &v)
		want = append(want, fmt.Sprintf(`{"id": %d, "at": "orders/%d/%d", "pipe": "test"}`, v.ID, r.Partition, r.Offset))
	}
	sort.Strings(want)
	got = bodies(f.Receive(t, url, len(want), 10*time.Second))
	if !slices.Equal(got, want) {
		t.Fatalf("template bodies:\n got %q\nwant %q", got, want)
	}
}

// TestFIFO: group and deduplication IDs come from the record; the order of
// each group is kept; a record sent again within the deduplication window
// is dropped by the queue.
func TestFIFO(t *testing.T) {
	f, _ := start(t)
	url := f.CreateQueue(t, "orders.fifo", nil)
	tg := build(t, "queueUrl: "+url, "messageGroupId: $.value.group", "messageDeduplicationId: <$.topic>-<$.partition>-<$.offset>",
		"inputTemplate: '<$.value.id>'")
	b := testBatch(12, 1)
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, tg, &pipeline.Batch{Records: b.Records[:3]}); err != nil { // duplicates
		t.Fatal(err)
	}
	msgs := f.Receive(t, url, 12, 10*time.Second)
	if len(msgs) != 12 {
		t.Fatalf("got %d messages, want 12 (duplicates dropped)", len(msgs))
	}
	order := map[string][]string{}
	for _, m := range msgs {
		g, d := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]
		id := aws.ToString(m.Body)
		if want := fmt.Sprintf("orders-0-%s", id); d != want {
			t.Errorf("message %s: deduplication ID %q, want %q", id, d, want)
		}
		order[g] = append(order[g], id)
	}
	want := map[string][]string{"g0": {"0", "3", "6", "9"}, "g1": {"1", "4", "7", "10"}, "g2": {"2", "5", "8", "11"}}
	for g, ids := range want {
		if !slices.Equal(order[g], ids) {
			t.Errorf("group %s: %q, want %q", g, order[g], ids)
		}
	}

	// A record whose group ID resolves to nothing fails permanently, alone.
	b = testBatch(3, 1)
	for i := range b.Records {
		b.Records[i].Offset += 100 // new deduplication IDs
	}
	b.Records[1].Value = []byte(`{"id":1}`)
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || !ok || !slices.Equal(failed, []int{1}) || !strings.Contains(err.Error(), "orders/0/101: messageGroupId $.value.group: is empty") {
		t.Fatalf("got %v (failed %v)", err, failed)
	}
	if n := len(f.Receive(t, url, 2, 10*time.Second)); n != 2 {
		t.Fatalf("got %d messages, want 2", n)
	}
}

// TestChunks: 25 records go in calls of 10, 10 and 5; records of 100 KiB go
// two per call (256 KiB per call); every message arrives once.
func TestChunks(t *testing.T) {
	f, p := start(t)
	url := f.CreateQueue(t, "chunks", nil)
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}")
	if err := deliver(t, tg, testBatch(25, 3)); err != nil {
		t.Fatal(err)
	}
	if got := p.sizes(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("calls of %v entries, want [10 10 5]", got)
	}
	if n := len(f.Receive(t, url, 25, 10*time.Second)); n != 25 {
		t.Fatalf("got %d messages", n)
	}

	p.setHook(nil)
	b := testBatch(5, 1)
	for i := range b.Records {
		b.Records[i].Value = []byte(strings.Repeat("v", 100<<10))
	}
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	// The body is the record as JSON, the value in base64: about 137 KB,
	// so one fits in 256 KiB and five in 1 MiB.
	if got := p.sizes(); !slices.Equal(got, []int{1, 1, 1, 1, 1}) {
		t.Fatalf("calls of %v entries, want 5 calls of 1", got)
	}
	p.setHook(nil)
	tg = build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}", "maxMessageSize: 1MB")
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	if got := p.sizes(); !slices.Equal(got, []int{5}) {
		t.Fatalf("calls of %v entries with maxMessageSize 1MB, want [5]", got)
	}
	if n := len(f.Receive(t, url, 10, 10*time.Second)); n != 10 {
		t.Fatalf("got %d messages", n)
	}
}

// TestTooLarge: a record whose body passes maxMessageSize fails permanently
// and is named; the others are delivered.
func TestTooLarge(t *testing.T) {
	f, p := start(t)
	url := f.CreateQueue(t, "large", nil)
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}", "maxMessageSize: 1KB")
	b := testBatch(4, 1)
	b.Records[2].Value = []byte(strings.Repeat("x", 2000))
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	if !pipeline.IsTooLarge(err) || !ok || !slices.Equal(failed, []int{2}) {
		t.Fatalf("got %v, failed %v; want record 2 too large", err, failed)
	}
	if !strings.Contains(err.Error(), "orders/0/2: the message body is 2") || !strings.Contains(err.Error(), "larger than maxMessageSize (1024 bytes)") {
		t.Fatalf("error does not name the record and the limit: %v", err)
	}
	if got := p.sizes(); !slices.Equal(got, []int{3}) {
		t.Fatalf("calls %v, want one call of the 3 other records", got)
	}
	if n := len(f.Receive(t, url, 3, 10*time.Second)); n != 3 {
		t.Fatalf("got %d messages", n)
	}
}

// TestEntryFailures: fauxqs fails the entries larger than the queue's
// MaximumMessageSize with SenderFault (permanent); the proxy fails another
// entry as SQS does on an internal error (not a sender fault). Only the
// failed records are retried; once only the permanent one is left the
// error is permanent. No message is delivered twice.
func TestEntryFailures(t *testing.T) {
	f, p := start(t)
	url := f.CreateQueue(t, "small", map[string]string{"MaximumMessageSize": "1024"})
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}", "inputTemplate: '<$.value>'")
	b := testBatch(6, 2)
	// Partition 0 holds records 0, 2, 4 (indexes 0-2); partition 1 holds 1,
	// 3, 5 (indexes 3-5).
	b.Records[1].Value = []byte(`{"id":2,"pad":"` + strings.Repeat("p", 1100) + `"}`)
	p.setHook(func(n int, entries []map[string]any) (int, string, map[string]failure) {
		if n == 1 {
			return 0, "", map[string]failure{"4": {"InternalError", false}}
		}
		return 0, "", nil
	})
	err := deliver(t, tg, b)
	noSecrets(t, err)
	failed, ok := pipeline.RetryOnlyOf(err)
	if pipeline.IsPermanent(err) || !ok || !slices.Equal(failed, []int{1, 4}) {
		t.Fatalf("first attempt: got %v, failed %v; want a retryable failure of records 1 and 4", err, failed)
	}
	if !strings.Contains(err.Error(), "orders/0/2: InvalidParameterValue") || !strings.Contains(err.Error(), "orders/1/3: InternalError: injected") {
		t.Fatalf("error does not describe the failures: %v", err)
	}
	rest := &pipeline.Batch{Records: []pipeline.Record{b.Records[1], b.Records[4]}}
	err = deliver(t, tg, rest)
	failed, ok = pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || !ok || !slices.Equal(failed, []int{0}) {
		t.Fatalf("second attempt: got %v, failed %v; want a permanent failure of its record 0", err, failed)
	}
	if got := p.sizes(); !slices.Equal(got, []int{6, 2}) {
		t.Fatalf("calls %v, want [6 2]", got)
	}
	var want []string
	for _, i := range []int{0, 2, 3, 4, 5} {
		want = append(want, string(b.Records[i].Value))
	}
	sort.Strings(want)
	if got := bodies(f.Receive(t, url, 5, 10*time.Second)); !slices.Equal(got, want) {
		t.Fatalf("received %q\nwant %q", got, want)
	}
}

// TestRunnerRetriesFailedOnly: through the runner, a record that failed
// with a retryable entry error is sent again alone and the batch is done.
func TestRunnerRetriesFailedOnly(t *testing.T) {
	f, p := start(t)
	url := f.CreateQueue(t, "runner", nil)
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}")
	p.setHook(func(n int, entries []map[string]any) (int, string, map[string]failure) {
		if n == 1 {
			return 0, "", map[string]failure{"7": {"InternalError", false}}
		}
		return 0, "", nil
	})
	pipe := &pipeline.Pipe{Name: "test", Target: tg, Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond},
		Logger: testLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := testBatch(8, 1)
	if err := pipe.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := p.sizes(); !slices.Equal(got, []int{8, 1}) {
		t.Fatalf("calls %v, want [8 1]: the retry carries the failed record only", got)
	}
	msgs := f.Receive(t, url, 8, 10*time.Second)
	if len(msgs) != 8 {
		t.Fatalf("got %d messages, want 8", len(msgs))
	}
}

// TestPartitionOrder: after a retryable failure, the later records of the
// same partition wait for the next attempt; other partitions go on.
func TestPartitionOrder(t *testing.T) {
	f, p := start(t)
	url := f.CreateQueue(t, "order", nil)
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}")
	b := testBatch(30, 2) // indexes 0-14 partition 0, 15-29 partition 1
	p.setHook(func(n int, entries []map[string]any) (int, string, map[string]failure) {
		if n == 1 {
			return 0, "", map[string]failure{"3": {"ThrottlingException", true}} // throttling is retryable even as a sender fault
		}
		return 0, "", nil
	})
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	// Call 1: indexes 0-9 (3 fails). Then 10-14 are held; call 2: 15-24;
	// call 3: 25-29.
	want := []int{3, 10, 11, 12, 13, 14}
	if pipeline.IsPermanent(err) || !ok || !slices.Equal(failed, want) {
		t.Fatalf("got %v, failed %v, want %v", err, failed, want)
	}
	if got := p.sizes(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("calls %v, want [10 10 5]", got)
	}
	if n := len(f.Receive(t, url, 24, 10*time.Second)); n != 24 {
		t.Fatalf("got %d messages, want 24", n)
	}
}

// TestCallFailures: a throttled or failing call is retryable and stops the
// attempt (the rest waits); a missing queue is permanent.
func TestCallFailures(t *testing.T) {
	f, p := start(t)
	t.Setenv("AWS_SESSION_TOKEN", "the-session-token")
	url := f.CreateQueue(t, "calls", nil)
	tg := build(t, "queueUrl: "+url, "aws: {endpoint: "+p.URL+"}")
	for _, c := range []struct {
		status int
		body   string
	}{
		{500, `{"__type":"com.amazonaws.sqs#InternalError","message":"boom"}`},
		{400, `{"__type":"com.amazonaws.sqs#RequestThrottled","message":"slow down"}`},
		{503, `{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"later"}`},
	} {
		p.setHook(func(n int, entries []map[string]any) (int, string, map[string]failure) {
			if n == 2 {
				return c.status, c.body, nil
			}
			return 0, "", nil
		})
		err := deliver(t, tg, testBatch(25, 1))
		noSecrets(t, err)
		failed, ok := pipeline.RetryOnlyOf(err)
		if pipeline.IsPermanent(err) || !ok || len(failed) != 15 || failed[0] != 10 {
			t.Fatalf("status %d: got %v, failed %v; want records 10-24 retryable", c.status, err, failed)
		}
		if got := p.sizes(); !slices.Equal(got, []int{10, 10}) {
			t.Fatalf("status %d: calls %v, want [10 10]: no call after the failed one", c.status, got)
		}
	}
	f.Receive(t, url, 30, 10*time.Second)

	p.setHook(nil)
	tg = build(t, "queueUrl: "+strings.Replace(url, "calls", "missing", 1), "aws: {endpoint: "+p.URL+"}")
	err := deliver(t, tg, testBatch(12, 1))
	noSecrets(t, err)
	failed, _ := pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || len(failed) != 12 {
		t.Fatalf("missing queue: got %v, failed %v; want all 12 permanent", err, failed)
	}
	if got := p.sizes(); !slices.Equal(got, []int{10, 2}) {
		t.Fatalf("missing queue: calls %v, want [10 2]", got)
	}

	// Nothing listening: retryable.
	tg = build(t, "queueUrl: "+url, "aws: {endpoint: http://127.0.0.1:1}")
	err = deliver(t, tg, testBatch(3, 1))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("connection refused: got %v, want a retryable error", err)
	}
	noSecrets(t, err)

	// A cancelled context ends the attempt with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Deliver(ctx, testBatch(3, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
}

// TestPreview: what `pipe test` shows, without a call: each message in its
// call with its IDs, and a record that would fail, with the reason.
func TestPreview(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	tg := build(t, "queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo", "messageGroupId: $.value.group",
		"messageDeduplicationId: <$.offset>", "inputTemplate: 'order <$.value.id>'", "aws: {endpoint: 'http://127.0.0.1:1'}")
	b := testBatch(12, 1)
	b.Records[4].Value = []byte(`{"id":4}`)
	tctx := pipeline.NewTemplateContext("test")
	reqs := tg.Preview(b, &tctx)
	if len(reqs) != 12 {
		t.Fatalf("%d requests, want 11 messages and 1 failure", len(reqs))
	}
	for k, req := range reqs[:11] {
		i := k
		if k >= 4 {
			i++
		}
		call := "SendMessageBatch orders.fifo (call 1)"
		if k >= 10 {
			call = "SendMessageBatch orders.fifo (call 2)"
		}
		want := fmt.Sprintf("order %d", i)
		if req.Summary != call || !slices.Equal(req.Records, []int{i}) || string(req.Body) != want ||
			req.Attributes["messageGroupId"] != fmt.Sprintf("g%d", i%3) || req.Attributes["messageDeduplicationId"] != fmt.Sprint(i) {
			t.Errorf("request %d: %+v (body %q)", k, req, req.Body)
		}
	}
	if last := reqs[11]; !slices.Equal(last.Records, []int{4}) || last.Summary != "not sent: fails permanently" || last.Err != "messageGroupId $.value.group: is empty" {
		t.Errorf("failure: %+v (body %q)", last, last.Body)
	}
}

// TestExample: examples/kafka-to-sqs/pipes.yaml loads, with the settings
// its README describes.
func TestExample(t *testing.T) {
	cfg, err := pipeline.LoadFile("../../examples/kafka-to-sqs/pipes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Pipes[0].Target.(*Config)
	if !c.fifo || c.MessageGroupID != "$.value.customer" || c.AWS.Endpoint != "http://127.0.0.1:4566" || cfg.Pipes[0].OnFailure == nil {
		t.Fatalf("%+v", c)
	}
}
