package sns_test

import (
	"context"
	"encoding/json"
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
		{[]string{"topicArn: arn:aws:sns:eu-west-1:123456789012:failed"}, ""},
		{[]string{"topicArn: arn:aws:sns:eu-west-1:123456789012:failed.fifo", "payload: false", "timeout: 5s"}, ""},
		{[]string{"payload: true"}, `missing required key "topicArn"`},
		{[]string{"topicArn: arn:aws:sqs:eu-west-1:123456789012:failed"}, "topicArn: must be a topic ARN"},
		{[]string{"topicArn: arn:aws:sns:eu-west-1:123456789012:failed", "maxMessageSize: 1MB"}, `unknown key "maxMessageSize"`},
		{[]string{"topicArn: arn:aws:sns:eu-west-1:123456789012:failed", "aws: {endpoint: localhost}"}, "aws.endpoint: must be an absolute"},
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
	c, err := parse(t, "topicArn: arn:aws:sns:eu-west-1:123456789012:failed")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Payload || c.Timeout != 30*time.Second {
		t.Fatalf("defaults: payload %v, timeout %v", c.Payload, c.Timeout)
	}
}

// TestPublishesTheFailureRecord: the message a raw subscription delivers is
// the on-failure record with its payload, byte for byte, with the failure's
// context as attributes; with payload: false it has no records.
func TestPublishesTheFailureRecord(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	arn, queue := topicWithQueue(t, fq, "failed")
	ctx := context.Background()

	f := failure("req-1", 2, 0, 5, 6, 7)
	if err := build(t, "topicArn: "+arn).Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m := one(t, fq.Receive(t, queue, 1, 10*time.Second))
	body := aws.ToString(m.Body)
	if want := string(pipeline.AppendFailureRecord(nil, f, true)); body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	if b, err := pipeline.ParseFailureRecord([]byte(body)); err != nil || len(b.Records) != 3 || b.Records[1].Offset != 6 {
		t.Fatalf("payload read back: %+v, %v", b, err)
	}
	want := map[string]string{"pipe-pipe": "p", "pipe-condition": "RetryAttemptsExhausted", "pipe-stage": "target",
		"pipe-attempts": "3", "pipe-topic": "orders", "pipe-partition": "2", "pipe-first-offset": "5", "pipe-last-offset": "7"}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("attributes: %s", d)
	}

	if err := build(t, "topicArn: "+arn, "payload: false").Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m = one(t, fq.Receive(t, queue, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, f, false)); body != want {
		t.Fatalf("payload: false: body\n%s\nwant\n%s", body, want)
	}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("payload: false: attributes: %s", d)
	}
}

// TestFIFO: on a FIFO topic a message's group is the pipe and the records'
// topic-partition and its deduplication ID the failure's requestId: a
// failure published twice reaches the FIFO queue once, and a partition's
// failures stay in order.
func TestFIFO(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	arn, queue := topicWithQueue(t, fq, "failed.fifo")
	d := build(t, "topicArn: "+arn)
	ctx := context.Background()
	f1, f2, f3 := failure("req-a", 3, 0, 10), failure("req-b", 3, 0, 11, 12), failure("req-c", 4, 0, 20)
	for _, f := range []*pipeline.Failure{f1, f1, f2, f3} {
		if err := d.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fq.Receive(t, queue, 3, 10*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3 (the repeated failure delivered once)", len(msgs))
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
}

// TestTooLarge: a failure over 256 KiB with its records is published
// without them in one call, with the pipe-payload attribute; one that SNS
// answers is too long is published again at once without them.
func TestTooLarge(t *testing.T) {
	fq := testenv.StartFauxqs(t)
	fq.SetEnv(t)
	arn, queue := topicWithQueue(t, fq, "failed")
	px := newProxy(t, fq.URL)
	d := build(t, "topicArn: "+arn, "aws: {endpoint: "+px.URL+"}")
	ctx := context.Background()

	big := failure("req-big", 1, 300<<10, 40)
	if err := d.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	if n := px.count("Publish"); n != 1 {
		t.Fatalf("%d Publish calls, want 1", n)
	}
	m := one(t, fq.Receive(t, queue, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, big, false)); body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	want := map[string]string{"pipe-pipe": "p", "pipe-condition": "RetryAttemptsExhausted", "pipe-stage": "target",
		"pipe-attempts": "3", "pipe-topic": "orders", "pipe-partition": "1", "pipe-first-offset": "40", "pipe-last-offset": "40",
		"pipe-payload": "omitted: too large for the topic"}
	if d := diff(attrs(m), want); d != "" {
		t.Fatalf("attributes: %s", d)
	}

	// SNS counts what it counts: the first call is answered as AWS
	// answers a message over its limit.
	px.setHook(func(action string, n int) (int, string, string) {
		if action == "Publish" && n == 1 {
			return 400, "InvalidParameter", "Invalid parameter: Message too long"
		}
		return 0, "", ""
	})
	mid := failure("req-mid", 1, 3<<10, 41)
	if err := d.Send(ctx, mid); err != nil {
		t.Fatal(err)
	}
	if n := px.count("Publish"); n != 2 {
		t.Fatalf("%d Publish calls, want 2 (the refused one and the one without records)", n)
	}
	m = one(t, fq.Receive(t, queue, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, mid, false)); body != want {
		t.Fatalf("refused as too long: body\n%s\nwant\n%s", body, want)
	}
	if got := attrs(m)["pipe-payload"]; got != "omitted: too large for the topic" {
		t.Fatalf("refused as too long: pipe-payload %q", got)
	}
}

// TestErrors: a missing topic and a throttled call make Send fail, naming
// the topic and never the credentials, with one call each (the runner
// retries); the same failure sent again once SNS takes it is delivered.
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
	arn, queue := topicWithQueue(t, fq, "failed")
	missing := strings.TrimSuffix(arn, "failed") + "missing"
	err := build(t, "topicArn: "+missing).Send(ctx, failure("r1", 0, 0, 1))
	if err == nil || !strings.Contains(err.Error(), "SNS topic missing") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing topic: %v", err)
	}
	noSecret(err)

	px := newProxy(t, fq.URL)
	px.setHook(func(action string, n int) (int, string, string) { return 400, "Throttling", "Rate exceeded" })
	d := build(t, "topicArn: "+arn, "aws: {endpoint: "+px.URL+"}")
	f := failure("r2", 0, 0, 2)
	err = d.Send(ctx, f)
	if err == nil || !strings.Contains(err.Error(), "SNS topic failed") || !strings.Contains(err.Error(), "Throttling") {
		t.Fatalf("throttled: %v", err)
	}
	noSecret(err)
	if n := px.count("Publish"); n != 1 {
		t.Fatalf("throttled: %d calls, want 1", n)
	}
	px.setHook(nil)
	if err := d.Send(ctx, f); err != nil {
		t.Fatal(err)
	}
	m := one(t, fq.Receive(t, queue, 1, 10*time.Second))
	if body, want := aws.ToString(m.Body), string(pipeline.AppendFailureRecord(nil, f, true)); body != want {
		t.Fatalf("after throttling: body\n%s\nwant\n%s", body, want)
	}
}
