package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	_ "github.com/pipe-run/pipe/destinations/file" // the examples' on-failure destination
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// readmeBlock returns the lines of the first fenced block that follows the
// fenced block holding marker in an example's README.md: the output shown
// for a command.
func readmeBlock(t *testing.T, example, marker string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", example, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var cur []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if in {
				blocks = append(blocks, cur)
			}
			in, cur = !in, nil
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	for i, b := range blocks {
		if i+1 < len(blocks) && strings.Contains(strings.Join(b, "\n"), marker) {
			return blocks[i+1]
		}
	}
	t.Fatalf("examples/%s/README.md: no block after one with %q", example, marker)
	return nil
}

// loadExample parses an example's pipes.yaml (with the environment set by
// the test) and builds its target.
func loadExample(t *testing.T, example string) pipeline.Target {
	t.Helper()
	cfg, err := pipeline.LoadFile(filepath.Join("..", "..", "examples", example, "pipes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pipes[0].OnFailure == nil {
		t.Errorf("examples/%s: no onFailure", example)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: cfg.Pipes[0].Name, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// TestSNSExample runs examples/kafka-to-sns on fauxqs started with the
// example's fauxqs.json: the orders of the README, in the partitions the
// README shows, reach the two queues as the README says (the filter policy
// keeps the small order out of large-orders), and the order of 60,000
// items fails alone, permanently, as too large.
func TestSNSExample(t *testing.T) {
	awsEnv(t)
	init, err := filepath.Abs("../../examples/kafka-to-sns/fauxqs.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAUXQS_INIT", init) // read by the fauxqs process
	fq := testenv.StartFauxqs(t)
	t.Setenv("SNS_ENDPOINT", fq.URL)
	tg := loadExample(t, "kafka-to-sns")

	// As Python's json.dumps writes it in the README's command.
	big := []byte(`{"orderId": 4, "customer": "c3", "total": 3, "items": [` + strings.Repeat(`"pin", `, 59999) + `"pin"]}`)
	ts := time.UnixMilli(1_700_000_000_000)
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092", Records: []pipeline.Record{
		{Topic: "orders", Partition: 1, Offset: 0, Timestamp: ts, Key: []byte("c2"), Value: []byte(`{"orderId":2,"customer":"c2","total":250,"items":["cake","tea"]}`)},
		{Topic: "orders", Partition: 2, Offset: 0, Timestamp: ts, Key: []byte("c1"), Value: []byte(`{"orderId":1,"customer":"c1","total":9.5,"items":["tea"]}`)},
		{Topic: "orders", Partition: 2, Offset: 1, Timestamp: ts, Key: []byte("c1"), Value: []byte(`{"orderId":3,"customer":"c1","total":120,"items":["teapot"]}`)},
		{Topic: "orders", Partition: 2, Offset: 2, Timestamp: ts, Key: []byte("c3"), Value: big},
	}}
	err = deliver(t, tg, b)
	if idx, ok := pipeline.RetryOnlyOf(err); !ok || !slices.Equal(idx, []int{3}) || !pipeline.IsTooLarge(err) {
		t.Fatalf("the order of 60,000 items should fail alone as too large: %v", err)
	}
	if want := "orders/2/2: the message body is 420077 bytes, larger than the 262144 bytes SNS takes"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, the README shows %q", err, want)
	}

	want := map[string][]string{}
	var q string
	for _, line := range readmeBlock(t, "kafka-to-sns", "_fauxqs/queues") {
		if name, ok := strings.CutPrefix(line, "== "); ok {
			q = name
			continue
		}
		want[q] = append(want[q], line)
	}
	if len(want) != 2 {
		t.Fatalf("the README shows queues %v", want)
	}
	for name, bodies := range want {
		out, err := fq.SQS.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatalf("queue %s of fauxqs.json: %v", name, err)
		}
		url := aws.ToString(out.QueueUrl)
		var got []string
		for _, m := range fq.Receive(t, url, len(bodies), deadline) {
			got = append(got, aws.ToString(m.Body))
		}
		slices.Sort(got)
		slices.Sort(bodies)
		if !slices.Equal(got, bodies) {
			t.Errorf("queue %s:\n got %q\nwant %q (README)", name, got, bodies)
		}
	}
}

// TestEventBridgeExample runs examples/kafka-to-eventbridge against a server
// that speaks PutEvents: the events it accepts are the ones `pipe test`
// shows in the README (detail type, time, resources, source, detail), in
// one call, and the order without a type fails alone, permanently.
func TestEventBridgeExample(t *testing.T) {
	awsEnv(t)
	s := testenv.StartPutEvents(t)
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", s.URL)
	tg := loadExample(t, "kafka-to-eventbridge")

	sample, err := os.ReadFile("../../examples/kafka-to-eventbridge/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for i, line := range strings.Split(strings.TrimSpace(string(sample)), "\n") {
		b.Records = append(b.Records, pipeline.Record{Topic: "orders", Offset: int64(i), Timestamp: time.Now(), Value: []byte(line)})
	}
	err = deliver(t, tg, b)
	if idx, ok := pipeline.RetryOnlyOf(err); !ok || !slices.Equal(idx, []int{3}) || !pipeline.IsPermanent(err) {
		t.Fatalf("the order without a type should fail alone, permanently: %v", err)
	}

	// The README's preview: each event's fields, then its detail.
	type shown struct {
		fields map[string]string
		detail string
	}
	var want []shown
	for _, line := range readmeBlock(t, "kafka-to-eventbridge", "pipe test") {
		switch {
		case strings.HasPrefix(line, "  PutEvents "):
			want = append(want, shown{fields: map[string]string{}})
		case len(want) > 0 && want[len(want)-1].detail == "" && strings.HasPrefix(line, "    {"):
			want[len(want)-1].detail = strings.TrimSpace(line)
		case len(want) > 0 && want[len(want)-1].detail == "" && strings.HasPrefix(line, "    "):
			k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
			want[len(want)-1].fields[k] = v
		}
	}
	events, calls := s.Received()
	if len(want) != 3 || len(events) != len(want) || !slices.Equal(calls, []int{3}) {
		t.Fatalf("%d events in calls %v; the README shows %d", len(events), calls, len(want))
	}
	for i, e := range events {
		w := want[i]
		tm, err := time.Parse(time.RFC3339Nano, w.fields["time"])
		if err != nil || !e.HasTime || !e.Time.Equal(tm) || e.DetailType != w.fields["detailType"] || e.Bus != w.fields["eventBusName"] ||
			e.Source != w.fields["source"] || strings.Join(e.Resources, ", ") != w.fields["resources"] || e.Detail != w.detail {
			t.Errorf("event %d: %+v\nthe README shows %+v", i, e, w)
		}
	}
}
