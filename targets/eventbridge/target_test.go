package eventbridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
)

const (
	testKeyID  = "AKIDEVENTSTEST"
	testSecret = "events-secret-access-key"
	testToken  = "events-session-token"
)

// env points the SDK's default chain at test credentials and a region,
// away from the host's settings.
func env(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": testKeyID, "AWS_SECRET_ACCESS_KEY": testSecret,
		"AWS_SESSION_TOKEN": testToken, "AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
	} {
		t.Setenv(k, v)
	}
}

func parse(t testing.TB, settings ...string) (*Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      eventbridge:\n")
	for _, s := range settings {
		fmt.Fprintf(&y, "        %s\n", s)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pipes[0].Target.(*Config), nil
}

// build makes a target on the server s from settings.
func build(t testing.TB, s *server, settings ...string) *target {
	t.Helper()
	c, err := parse(t, append(settings, "aws: {endpoint: "+s.URL+"}")...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	tg, err := c.NewTarget(pipeline.Env{Pipe: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg.(*target)
}

// testBatch holds n records, spread over partitions in order (all of
// partition 0 first), with values {"id":<i>,"source":"shop.<i%2>","arn":...}.
func testBatch(n int, partitions int32) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for p := range partitions {
		for i := range n {
			if int32(i)%partitions != p {
				continue
			}
			b.Records = append(b.Records, pipeline.Record{
				Topic: "orders", Partition: p, Offset: int64(i),
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)*1001),
				Key:       []byte(fmt.Sprintf("k%d", i)),
				Value:     []byte(fmt.Sprintf(`{"id":%d,"source":"shop.%d","arn":"arn:aws:s3:::bucket-%d","at":"2026-03-0%dT10:00:00.5Z"}`, i, i%2, i, i%9+1)),
				Headers:   []pipeline.Header{{Key: "trace", Value: []byte{0xdc, 'x'}}},
			})
		}
	}
	return b
}

func deliver(t *testing.T, tg *target, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tg.Deliver(ctx, b)
	if err != nil {
		for _, s := range []string{testSecret, testToken} {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error shows a credential: %v", err)
			}
		}
	}
	return err
}

func TestConfig(t *testing.T) {
	cases := []struct {
		settings []string
		want     string
	}{
		{nil, ""},
		{[]string{"eventBusName: arn:aws:events:eu-west-1:123456789012:event-bus/orders", "source: shop", "detailType: Order", "time: $.timestamp", "resources: [arn:aws:s3:::b, $.value.arn]"}, ""},
		{[]string{"eventBusName: 'bad bus'"}, "eventBusName: must be an event bus name or ARN"},
		{[]string{"source: aws.orders"}, "source: must not start with aws."},
		{[]string{"source: " + strings.Repeat("s", 257)}, "source: is 257 characters long"},
		{[]string{"source: $.value["}, "source: "},
		{[]string{"detailType: " + strings.Repeat("d", 129)}, "detailType: is 129 characters long"},
		{[]string{"time: yesterday"}, "time: must be an RFC 3339 timestamp"},
		{[]string{"time: $.x["}, "time: "},
		{[]string{"resources: ['']"}, "resources[0]: must be 1 to 1600 characters"},
		{[]string{"resources: [a, b, c, d, e, f, g, h, i, j, k]"}, "resources: takes at most 10 entries"},
		{[]string{"inputTemplate: '[<$.value>]'"}, "inputTemplate: must render a JSON object"},
		{[]string{`inputTemplate: '"<$.value.id>"'`}, "inputTemplate: must render a JSON object"},
		{[]string{"inputTemplate: '<aws.pipes.x>'"}, "inputTemplate: "},
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
	env(t)
	c, err := parse(t, "eventBusName: arn:aws:events:ap-south-1:123456789012:event-bus/orders")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.NewTarget(pipeline.Env{Pipe: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tg.(*target).client.Options().Region; got != "ap-south-1" {
		t.Errorf("region %q, want ap-south-1 from the bus ARN", got)
	}
}

// TestServer checks the test server against the SDK: it answers like
// PutEvents does to requests the target never makes.
func TestServer(t *testing.T) {
	s := newServer(t)
	cl := eventbridge.New(eventbridge.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
	})
	ctx := context.Background()
	entry := func(detail string) types.PutEventsRequestEntry {
		return types.PutEventsRequestEntry{Source: aws.String("shop"), DetailType: aws.String("t"), Detail: aws.String(detail)}
	}
	var many []types.PutEventsRequestEntry
	for range 11 {
		many = append(many, entry(`{}`))
	}
	if _, err := cl.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: many}); err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("11 entries: %v", err)
	}
	big := `{"x":"` + strings.Repeat("x", 130<<10) + `"}`
	_, err := cl.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{entry(big), entry(big)}})
	if err == nil || !strings.Contains(err.Error(), "Total size of the entries in the request is over the limit") {
		t.Fatalf("2 x 130 KiB: %v", err)
	}
	e := entry(`{}`)
	e.EventBusName = aws.String("nope")
	if _, err := cl.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{e}}); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("unknown bus: %v", err)
	}
	aws1 := entry(`{}`)
	aws1.Source = aws.String("aws.s3")
	res := entry(`{}`)
	res.Resources = []string{"bucket"}
	out, err := cl.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		entry(`{"ok":1}`), entry(`[1]`), aws1, {Source: aws.String("s"), Detail: aws.String("{}")}, res, entry(`{"ok":2}`)}})
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, r := range out.Entries {
		codes = append(codes, aws.ToString(r.ErrorCode))
	}
	if out.FailedEntryCount != 4 || !slices.Equal(codes, []string{"", "MalformedDetail", "NotAuthorizedForSourceException", "InvalidArgument", "InvalidArgument", ""}) ||
		out.Entries[0].EventId == nil || out.Entries[5].EventId == nil {
		t.Fatalf("per-entry answers: %d failed, codes %q", out.FailedEntryCount, codes)
	}
}

// TestDefaults: the detail is the record as JSON; the source is "Pipe
// <pipe name>", the detail type "Event from SelfManagedKafka", the bus
// "default"; no time, no resources.
func TestDefaults(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s)
	b := testBatch(4, 2)
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	events, calls := s.Received()
	if !slices.Equal(calls, []int{4}) || len(events) != 4 {
		t.Fatalf("calls %v, %d events", calls, len(events))
	}
	for i, e := range events {
		want := event{ID: e.ID, Bus: "default", Source: "Pipe test", DetailType: "Event from SelfManagedKafka",
			Detail: string(pipeline.AppendRecord(nil, &b.Records[i])), Time: e.Time}
		if e.HasTime || e.Resources != nil || fmt.Sprint(e) != fmt.Sprint(want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, e, want)
		}
	}
	auth := s.Auths()[0]
	if !strings.Contains(auth, "Credential="+testKeyID+"/") || !strings.Contains(auth, "/eu-west-1/events/aws4_request") {
		t.Fatalf("request not signed for events in eu-west-1 with the environment's key: %q", auth)
	}
}

// TestParameters: source, detail type, resources and time from the
// record; the detail from a JSON template; the bus by ARN.
func TestParameters(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s, "eventBusName: arn:aws:events:eu-west-1:123456789012:event-bus/orders",
		"source: $.value.source", "detailType: 'order <$.value.id>'", "resources: [arn:aws:s3:::static, $.value.arn, $.value.missing]",
		"time: $.timestamp", `inputTemplate: '{"order": <$.value.id>, "key": "<$.key>"}'`)
	b := testBatch(3, 1)
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	events, _ := s.Received()
	for i, e := range events {
		want := event{ID: e.ID, Bus: "orders", Source: fmt.Sprintf("shop.%d", i%2), DetailType: fmt.Sprintf("order %d", i),
			Detail:    fmt.Sprintf(`{"order": %d, "key": "k%d"}`, i, i),
			Resources: []string{"arn:aws:s3:::static", fmt.Sprintf("arn:aws:s3:::bucket-%d", i)},
			Time:      b.Records[i].Timestamp.UTC(), HasTime: true}
		if fmt.Sprint(e) != fmt.Sprint(want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, e, want)
		}
	}

	// A time read as an RFC 3339 string, and a static one.
	s.Reset(nil, nil)
	tg = build(t, s, "time: $.value.at")
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	tg = build(t, s, "time: 2026-01-02T03:04:05Z", "source: shop", "detailType: Order")
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	events, _ = s.Received()
	for i, e := range events {
		want := time.Date(2026, 3, i%9+1, 10, 0, 0, 5e8, time.UTC)
		if i >= 3 {
			want = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		}
		if !e.HasTime || !e.Time.Equal(want) {
			t.Errorf("event %d: time %v, want %v", i, e.Time, want)
		}
	}
}

// TestBadRecords: a record whose detail is not a JSON object, whose time
// does not parse, or whose source resolves to nothing or to aws.* fails
// permanently before any call, named by its coordinates; the others go.
func TestBadRecords(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s, "inputTemplate: '<$.value>'", "source: $.value.source", "time: $.value.at")
	b := testBatch(6, 1)
	b.Records[1].Value = []byte(`[1,2]`)
	b.Records[2].Value = []byte(`plain text`)
	b.Records[3].Value = []byte(`{"source":"shop","at":"soon"}`)
	b.Records[4].Value = []byte(`{"source":"aws.s3"}`)
	b.Records[5].Value = []byte(`{"id":5}`)
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || !ok || !slices.Equal(failed, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("got %v, failed %v", err, failed)
	}
	for _, want := range []string{
		`orders/0/1: the detail is not a JSON object (inputTemplate rendered "[1,2]")`,
		`orders/0/2: the detail is not a JSON object (inputTemplate rendered "plain text")`,
		`orders/0/3: time $.value.at resolved to "soon": not an RFC 3339 timestamp or epoch milliseconds`,
		`orders/0/4: source $.value.source: must not start with aws.`,
		`orders/0/5: source $.value.source: is empty`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if events, calls := s.Received(); len(events) != 1 || !slices.Equal(calls, []int{1}) {
		t.Fatalf("%d events in calls %v, want record 0 alone", len(events), calls)
	}
}

// TestChunks: 25 events go in calls of 10, 10 and 5; events of about 80 KB
// go three per call (256 KiB per call); an event over 256 KiB fails
// permanently as too large.
func TestChunks(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s)
	if err := deliver(t, tg, testBatch(25, 3)); err != nil {
		t.Fatal(err)
	}
	if events, calls := s.Received(); len(events) != 25 || !slices.Equal(calls, []int{10, 10, 5}) {
		t.Fatalf("%d events in calls %v", len(events), calls)
	}

	s.Reset(nil, nil)
	b := testBatch(8, 1)
	for i := range b.Records {
		b.Records[i].Value = []byte(strings.Repeat("v", 60<<10))
	}
	b.Records[4].Value = []byte(strings.Repeat("v", 200<<10))
	err := deliver(t, tg, b)
	failed, _ := pipeline.RetryOnlyOf(err)
	if !pipeline.IsTooLarge(err) || !slices.Equal(failed, []int{4}) || !strings.Contains(err.Error(), "orders/0/4: the event is 273") {
		t.Fatalf("got %v, failed %v", err, failed)
	}
	if events, calls := s.Received(); len(events) != 7 || !slices.Equal(calls, []int{3, 3, 1}) {
		t.Fatalf("%d events in calls %v, want [3 3 1]", len(events), calls)
	}
}

// TestEntryFailures: the service throttles one entry and rejects another
// (a resource that is not an ARN): only those two are retried; the
// throttled one then goes through and the rejected one is left, failed
// permanently. Later records of the throttled record's partition wait for
// it; nothing is delivered twice.
func TestEntryFailures(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s, "resources: [$.value.arn]")
	b := testBatch(24, 2) // indexes 0-11 partition 0, 12-23 partition 1
	b.Records[15].Value = []byte(`{"arn":"bucket"}`)
	s.Reset(func(call, k int, e *putEntry) (string, string) {
		if call == 1 && k == 2 {
			return "ThrottlingException", "Rate exceeded"
		}
		return "", ""
	}, nil)
	err := deliver(t, tg, b)
	failed, _ := pipeline.RetryOnlyOf(err)
	// Call 1: 0-9 (2 throttled); 10 and 11 wait; call 2: 12-21 (15
	// rejected); call 3: 22-23.
	if pipeline.IsPermanent(err) || !slices.Equal(failed, []int{2, 10, 11, 15}) {
		t.Fatalf("first attempt: got %v, failed %v", err, failed)
	}
	if !strings.Contains(err.Error(), "orders/0/4: ThrottlingException: Rate exceeded") || !strings.Contains(err.Error(), "orders/1/7: InvalidArgument: Parameter Resources is not valid") {
		t.Fatalf("error does not describe the failures: %v", err)
	}
	rest := &pipeline.Batch{EventSource: b.EventSource, Records: []pipeline.Record{b.Records[2], b.Records[10], b.Records[11], b.Records[15]}}
	err = deliver(t, tg, rest)
	failed, _ = pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || !slices.Equal(failed, []int{3}) {
		t.Fatalf("second attempt: got %v, failed %v; want its record 3 permanent", err, failed)
	}
	events, calls := s.Received()
	if !slices.Equal(calls, []int{10, 10, 2, 4}) {
		t.Fatalf("calls %v", calls)
	}
	// Every record but index 15 arrived once; partition 0 in offset order
	// but for the throttled record 2, which came after 3-9 of its call, and
	// 10 and 11, held back behind it.
	var got []int64
	for _, e := range events {
		var off int64
		fmt.Sscanf(e.Resources[0], "arn:aws:s3:::bucket-%d", &off)
		if off%2 == 0 {
			got = append(got, off)
		}
	}
	if want := []int64{0, 2, 6, 8, 10, 12, 14, 16, 18, 4, 20, 22}; !slices.Equal(got, want) {
		t.Fatalf("partition 0 offsets in arrival order %v, want %v", got, want)
	}
	if len(events) != 23 {
		t.Fatalf("%d events, want 23", len(events))
	}
}

// TestCallFailures: a call answered 500 or throttled is retryable and the
// rest of the batch waits; a missing bus fails permanently.
func TestCallFailures(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s)
	for _, c := range []struct {
		status int
		typ    string
	}{{500, "InternalException"}, {400, "ThrottlingException"}, {503, "ServiceUnavailable"}} {
		s.Reset(nil, func(call int) (int, string, string) {
			if call == 2 {
				return c.status, c.typ, "no"
			}
			return 0, "", ""
		})
		err := deliver(t, tg, testBatch(25, 1))
		failed, _ := pipeline.RetryOnlyOf(err)
		if pipeline.IsPermanent(err) || len(failed) != 15 || failed[0] != 10 {
			t.Fatalf("%d %s: got %v, failed %v; want records 10-24 retryable", c.status, c.typ, err, failed)
		}
		if _, calls := s.Received(); !slices.Equal(calls, []int{10, 10}) {
			t.Fatalf("%d %s: calls %v", c.status, c.typ, calls)
		}
	}
	s.Reset(nil, nil)
	tg = build(t, s, "eventBusName: missing")
	err := deliver(t, tg, testBatch(12, 1))
	failed, _ := pipeline.RetryOnlyOf(err)
	if !pipeline.IsPermanent(err) || len(failed) != 12 || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("missing bus: got %v, failed %v", err, failed)
	}
	if _, calls := s.Received(); !slices.Equal(calls, []int{10, 2}) {
		t.Fatalf("missing bus: calls %v", calls)
	}
}

// TestPreview: what `pipe test` shows, without a call.
func TestPreview(t *testing.T) {
	env(t)
	s := newServer(t)
	tg := build(t, s, "source: $.value.source", "resources: [$.value.arn]", "time: $.timestamp", `inputTemplate: '{"order": <$.value.id>}'`)
	b := testBatch(3, 1)
	b.Records[1].Value = []byte(`{"id":1}`)
	tctx := pipeline.NewTemplateContext("test")
	reqs := tg.Preview(b, &tctx)
	if len(reqs) != 3 {
		t.Fatalf("%d requests: %+v", len(reqs), reqs)
	}
	want := map[string]string{"source": "shop.0", "detailType": "Event from SelfManagedKafka", "eventBusName": "default",
		"resources": "arn:aws:s3:::bucket-2", "time": "2023-11-14T22:13:22.002Z"}
	if r := reqs[1]; r.Summary != "PutEvents default (call 1)" || !slices.Equal(r.Records, []int{2}) || string(r.Body) != `{"order": 2}` || fmt.Sprint(r.Attributes) != fmt.Sprint(want) {
		t.Errorf("event of record 2: %+v (body %q)", r, r.Body)
	}
	if r := reqs[2]; !slices.Equal(r.Records, []int{1}) || r.Err != "source $.value.source: is empty" {
		t.Errorf("failure: %+v (body %q)", r, r.Body)
	}
	if _, calls := s.Received(); len(calls) != 0 {
		t.Fatalf("Preview made calls: %v", calls)
	}
}
