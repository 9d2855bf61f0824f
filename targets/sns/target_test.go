package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

func TestConfig(t *testing.T) {
	const arn = "topicArn: arn:aws:sns:eu-west-1:123456789012:orders"
	const fifo = "topicArn: arn:aws:sns:eu-west-1:123456789012:orders.fifo"
	cases := []struct {
		settings []string
		want     string
	}{
		{[]string{arn}, ""},
		{[]string{fifo, "messageGroupId: $.key", "messageDeduplicationId: <$.topic>-<$.partition>-<$.offset>"}, ""},
		{[]string{"inputTemplate: x"}, `missing required key "topicArn"`},
		{[]string{"topicArn: orders"}, "topicArn: must be a topic ARN"},
		{[]string{"topicArn: arn:aws:sqs:eu-west-1:123456789012:orders"}, "topicArn: must be a topic ARN"},
		{[]string{fifo}, "messageGroupId: is required for a FIFO topic"},
		{[]string{arn, "messageGroupId: g"}, "messageGroupId: applies to FIFO topics only"},
		{[]string{arn, "messageDeduplicationId: $.offset"}, "messageDeduplicationId: applies to FIFO topics only"},
		{[]string{fifo, "messageGroupId: 'a b'"}, "messageGroupId: must be printable ASCII"},
		{[]string{fifo, "messageGroupId: $.value["}, "messageGroupId: "},
		{[]string{arn, "inputTemplate: '<aws.pipes.nope>'"}, "inputTemplate: "},
		{[]string{arn, "aws: {roleArn: nope}"}, "aws.roleArn: must be an IAM role ARN"},
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
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	if got := build(t, arn).client.Options().Region; got != "eu-west-1" {
		t.Errorf("region %q, want eu-west-1 from the topic ARN", got)
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

// topic creates a topic with a queue subscribed to it and returns both.
func topic(t *testing.T, f *testenv.Fauxqs, name string, attrs map[string]string, raw bool) (arn, queueURL string) {
	arn = f.CreateTopic(t, name, attrs)
	queueURL = f.CreateQueue(t, name, nil)
	f.Subscribe(t, arn, queueURL, raw)
	return arn, queueURL
}

// TestBodies: the record as JSON by default, the rendered template
// otherwise; a subscriber without raw delivery gets it as the Message of
// SNS's notification.
func TestBodies(t *testing.T) {
	f, _ := start(t)
	arn, url := topic(t, f, "bodies", nil, true)
	b := testBatch(5, 2)
	if err := deliver(t, build(t, "topicArn: "+arn), b); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range b.Records {
		want = append(want, string(pipeline.AppendRecord(nil, &b.Records[i])))
	}
	sort.Strings(want)
	if got := bodies(f.Receive(t, url, 5, 10*time.Second)); !slices.Equal(got, want) {
		t.Fatalf("default bodies:\n got %q\nwant %q", got, want)
	}

	arn2, wrapped := topic(t, f, "wrapped", nil, false)
	for _, a := range []string{arn, arn2} {
		tg := build(t, "topicArn: "+a, `inputTemplate: 'order <$.value.id> of <aws.pipes.pipe-name>'`)
		if err := deliver(t, tg, b); err != nil {
			t.Fatal(err)
		}
	}
	want = nil
	for _, r := range b.Records {
		var v struct{ ID int }
		json.Unmarshal(r.Value, &v)
		want = append(want, fmt.Sprintf("order %d of test", v.ID))
	}
	sort.Strings(want)
	if got := bodies(f.Receive(t, url, 5, 10*time.Second)); !slices.Equal(got, want) {
		t.Fatalf("template bodies:\n got %q\nwant %q", got, want)
	}
	var got []string
	for _, m := range f.Receive(t, wrapped, 5, 10*time.Second) {
		var n struct{ Type, Message, TopicArn string }
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil || n.Type != "Notification" || n.TopicArn != arn2 {
			t.Fatalf("not a notification of %s: %s", arn2, aws.ToString(m.Body))
		}
		got = append(got, n.Message)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("notification messages:\n got %q\nwant %q", got, want)
	}
}

// TestFIFO: group and deduplication IDs from the record reach the FIFO
// queue subscribed to a FIFO topic, each group in order. (Nine records:
// fauxqs takes the entries of a PublishBatch call in the order their keys
// first appear in the form, which the SDK sorts as text, so the tenth entry
// (member.10) comes second.)
func TestFIFO(t *testing.T) {
	f, _ := start(t)
	arn, url := topic(t, f, "orders.fifo", nil, true)
	tg := build(t, "topicArn: "+arn, "messageGroupId: $.value.group", "messageDeduplicationId: <$.topic>-<$.partition>-<$.offset>",
		"inputTemplate: '<$.value.id>'")
	if err := deliver(t, tg, testBatch(9, 1)); err != nil {
		t.Fatal(err)
	}
	order := map[string][]string{}
	for _, m := range f.Receive(t, url, 9, 10*time.Second) {
		g, d := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]
		id := aws.ToString(m.Body)
		if d != "orders-0-"+id {
			t.Errorf("message %s: deduplication ID %q", id, d)
		}
		order[g] = append(order[g], id)
	}
	want := map[string][]string{"g0": {"0", "3", "6"}, "g1": {"1", "4", "7"}, "g2": {"2", "5", "8"}}
	for g, ids := range want {
		if !slices.Equal(order[g], ids) {
			t.Errorf("group %s: %q, want %q", g, order[g], ids)
		}
	}
}

// TestChunks: 25 records are published in calls of 10, 10 and 5; messages
// of about 137 KB one per call.
func TestChunks(t *testing.T) {
	f, p := start(t)
	arn, url := topic(t, f, "chunks", nil, true)
	tg := build(t, "topicArn: "+arn, "aws: {endpoint: "+p.URL+"}")
	if err := deliver(t, tg, testBatch(25, 3)); err != nil {
		t.Fatal(err)
	}
	if got := p.calls(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("calls of %v entries, want [10 10 5]", got)
	}
	f.Receive(t, url, 25, 10*time.Second)

	p.reset(nil)
	b := testBatch(3, 1)
	for i := range b.Records {
		b.Records[i].Value = []byte(strings.Repeat("v", 100<<10))
	}
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	if got := p.calls(); !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("calls of %v entries, want [1 1 1]", got)
	}
	f.Receive(t, url, 3, 10*time.Second)
}

// TestFailures: a message over 256 KiB fails permanently before any call
// (MaximumPayloadSizeExceeded); on a FIFO topic without content-based
// deduplication, fauxqs fails the entries that have no deduplication ID
// (sender faults): those records fail permanently, the others are
// delivered.
func TestFailures(t *testing.T) {
	f, p := start(t)
	arn, url := topic(t, f, "large", nil, true)
	tg := build(t, "topicArn: "+arn, "aws: {endpoint: "+p.URL+"}")
	b := testBatch(4, 1)
	b.Records[1].Value = []byte(strings.Repeat("x", 200<<10))
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	if !pipeline.IsTooLarge(err) || !ok || !slices.Equal(failed, []int{1}) || !strings.Contains(err.Error(), "orders/0/1: the message body is 273") {
		t.Fatalf("got %v, failed %v", err, failed)
	}
	if got := p.calls(); !slices.Equal(got, []int{3}) {
		t.Fatalf("calls %v, want [3]", got)
	}
	f.Receive(t, url, 3, 10*time.Second)

	arn, url = topic(t, f, "nodedup.fifo", nil, true)
	tg = build(t, "topicArn: "+arn, "messageGroupId: g", "messageDeduplicationId: <$.value.dedup>", "inputTemplate: '<$.value.id>'")
	b = testBatch(5, 1)
	for i := range b.Records {
		if i != 1 && i != 3 {
			b.Records[i].Value = []byte(fmt.Sprintf(`{"id":%d,"dedup":"d%d"}`, i, i))
		}
	}
	err = deliver(t, tg, b)
	failed, ok = pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || pipeline.IsTooLarge(err) || !ok || !slices.Equal(failed, []int{1, 3}) {
		t.Fatalf("got %v, failed %v; want records 1 and 3 failed permanently", err, failed)
	}
	if !strings.Contains(err.Error(), "orders/0/1: InvalidParameter: The topic should either have ContentBasedDeduplication enabled") {
		t.Fatalf("error does not give SNS's reason: %v", err)
	}
	if got := bodies(f.Receive(t, url, 3, 10*time.Second)); !slices.Equal(got, []string{"0", "2", "4"}) {
		t.Fatalf("received %q", got)
	}
}

// TestCallFailures: a call that fails with 500 or throttling is retryable
// and the rest of the batch waits; a missing topic is permanent. No error
// shows the credentials.
func TestCallFailures(t *testing.T) {
	f, p := start(t)
	t.Setenv("AWS_SESSION_TOKEN", "the-session-token")
	arn, url := topic(t, f, "calls", nil, true)
	tg := build(t, "topicArn: "+arn, "aws: {endpoint: "+p.URL+"}")
	for _, c := range []struct {
		status int
		code   string
	}{{500, "InternalError"}, {400, "Throttling"}, {503, "ServiceUnavailable"}} {
		p.reset(func(n int) (int, string) {
			if n == 2 {
				return c.status, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>` +
					c.code + `</Code><Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>`
			}
			return 0, ""
		})
		err := deliver(t, tg, testBatch(25, 1))
		noSecrets(t, err)
		failed, _ := pipeline.RetryOnlyOf(err)
		if pipeline.IsPermanent(err) || len(failed) != 15 || failed[0] != 10 {
			t.Fatalf("%d %s: got %v, failed %v; want records 10-24 retryable", c.status, c.code, err, failed)
		}
		if got := p.calls(); !slices.Equal(got, []int{10, 10}) {
			t.Fatalf("%d %s: calls %v, want [10 10]", c.status, c.code, got)
		}
	}
	f.Receive(t, url, 30, 10*time.Second)

	p.reset(nil)
	tg = build(t, "topicArn: "+strings.Replace(arn, "calls", "missing", 1), "aws: {endpoint: "+p.URL+"}")
	err := deliver(t, tg, testBatch(12, 1))
	noSecrets(t, err)
	failed, _ := pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || len(failed) != 12 {
		t.Fatalf("missing topic: got %v, failed %v; want all 12 permanent", err, failed)
	}
}

func noSecrets(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{testenv.FauxqsSecretAccessKey, "the-session-token"} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a credential: %v", err)
		}
	}
}
