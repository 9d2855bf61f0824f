package lambda_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
	"github.com/pipe-run/pipe/stages/enrich"
	_ "github.com/pipe-run/pipe/stages/enrich/lambda"
	_ "github.com/pipe-run/pipe/targets/stdout" // a target kind for the test configs
)

// awsEnv gives the SDK static credentials, a region and the Lambda
// endpoint, and keeps it away from the machine's AWS settings.
func awsEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)
}

const pipeYAML = `pipes:
  - name: orders-enriched
    source:
      kafka:
        bootstrapServers: 127.0.0.1:9092
        topics: [orders]
    enrichment:
      lambda:
%s
    target:
      stdout: {}
`

// build parses a pipes.yaml whose enrichment is the lambda block given,
// builds it, and returns the pipe's enrichment stage.
func build(t *testing.T, endpoint string, lines ...string) pipeline.Stage {
	t.Helper()
	return buildPipe(t, endpoint, lines...).Stages[0]
}

// buildPipe is build returning the whole pipe.
func buildPipe(t *testing.T, endpoint string, lines ...string) *pipeline.Pipe {
	t.Helper()
	awsEnv(t, endpoint)
	for i, l := range lines {
		lines[i] = "        " + l
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(fmt.Sprintf(pipeYAML, strings.Join(lines, "\n"))))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	pipes, err := pipeline.Build(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pipes) != 1 || len(pipes[0].Stages) != 1 {
		t.Fatalf("Build made %d pipes, the first with %d stages; want one enrichment stage", len(pipes), len(pipes[0].Stages))
	}
	return pipes[0]
}

// capture is a target that keeps the batches it gets.
type capture struct{ batches []*pipeline.Batch }

func (c *capture) Deliver(_ context.Context, b *pipeline.Batch) error {
	c.batches = append(c.batches, &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers,
		Records: append([]pipeline.Record(nil), b.Records...)})
	return nil
}
func (c *capture) Close() error { return nil }

// TestPipeHandle: the runner hands the target what the enrichment
// answered; an answer with nothing to deliver completes the batch without
// calling the target.
func TestPipeHandle(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "reply"})
	p := buildPipe(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction)
	tg := &capture{}
	p.Target = tg
	fn.SetReply(t, []byte(`[{"n":1},null,{"n":3}]`))
	if err := p.Handle(context.Background(), testBatch()); err != nil {
		t.Fatal(err)
	}
	if len(tg.batches) != 1 || values(tg.batches[0]) != `orders-0/5 k5={"n":1} 1; orders-1/2 k2={"n":3} 0` {
		t.Fatalf("the target got %d batches: %v", len(tg.batches), tg.batches)
	}
	fn.SetReply(t, []byte(`{}`))
	if err := p.Handle(context.Background(), testBatch()); err != nil {
		t.Fatal(err)
	}
	if len(tg.batches) != 1 {
		t.Errorf("the target was called for an enrichment answer with nothing to deliver")
	}
	if n := len(fn.Events(t)); n != 2 {
		t.Errorf("the function was invoked %d times, want 2", n)
	}
}

func testBatch() *pipeline.Batch {
	ts := time.UnixMilli(1_700_000_000_000)
	return &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b:9092", Records: []pipeline.Record{
		{Topic: "orders", Partition: 0, Offset: 5, Timestamp: ts, Key: []byte("k5"), Value: []byte(`{"id":5,"name":"ann"}`),
			Headers: []pipeline.Header{{Key: "trace", Value: []byte{0xdc, 1}}}},
		{Topic: "orders", Partition: 0, Offset: 6, Timestamp: ts, Key: []byte("drop"), Value: []byte(`{"id":6,"name":"bob"}`)},
		{Topic: "orders", Partition: 1, Offset: 2, Timestamp: ts, Key: []byte("k2"), Value: []byte(`{"id":2,"name":"cy"}`)},
	}}
}

func values(b *pipeline.Batch) string {
	if b == nil {
		return "<nothing>"
	}
	var out []string
	for _, r := range b.Records {
		out = append(out, fmt.Sprintf("%s-%d/%d %s=%s %d", r.Topic, r.Partition, r.Offset, r.Key, r.Value, len(r.Headers)))
	}
	return strings.Join(out, "; ")
}

// TestPipeConfig: a pipes.yaml with `enrichment: {lambda: ...}` decodes,
// Build wires the stage, and the stage calls the function (on the
// emulator) with the envelope and replaces the batch with its answer.
func TestPipeConfig(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "enrich"})
	st := build(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction, "timeout: 30s")
	b := testBatch()
	out, err := st.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	// The function upper-cased the values and left out the record keyed drop.
	if got, want := values(out), `orders-0/5 k5={"ID":5,"NAME":"ANN"} 1; orders-1/2 k2={"ID":2,"NAME":"CY"} 0`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if out.Records[0].Headers[0].Value[0] != 0xdc {
		t.Errorf("headers changed on the way: %v", out.Records[0].Headers)
	}
	evs := fn.Events(t)
	if len(evs) != 1 || !bytes.Equal(evs[0].Payload, pipeline.AppendEnvelope(nil, b)) {
		t.Fatalf("the function received %d events, want the envelope once", len(evs))
	}
	if evs[0].Event == nil || len(evs[0].Event.Records["orders-0"]) != 2 {
		t.Errorf("the function did not decode the envelope as events.KafkaEvent")
	}
	if got := fn.Requests()[0].Header.Get("X-Amz-Invocation-Type"); got != "RequestResponse" {
		t.Errorf("X-Amz-Invocation-Type %q, want RequestResponse", got)
	}
}

func TestEmulatorTemplate(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "enrich"})
	st := build(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction, `inputTemplate: '{"id": <$.value.id>, "pipe": "<aws.pipes.pipe-name>"}'`)
	out, err := st.Process(context.Background(), testBatch())
	if err != nil {
		t.Fatal(err)
	}
	evs := fn.Events(t)
	if want := `[{"id": 5, "pipe": "orders-enriched"},{"id": 6, "pipe": "orders-enriched"},{"id": 2, "pipe": "orders-enriched"}]`; len(evs) != 1 || string(evs[0].Payload) != want {
		t.Fatalf("the function received %q, want %s", evs[0].Payload, want)
	}
	// One answer element per record: the new values; keys and headers stay.
	want := `orders-0/5 k5={"enriched":{"id":5,"pipe":"orders-enriched"}} 1; ` +
		`orders-0/6 drop={"enriched":{"id":6,"pipe":"orders-enriched"}} 0; ` +
		`orders-1/2 k2={"enriched":{"id":2,"pipe":"orders-enriched"}} 0`
	if got := values(out); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestEmulatorAnswers runs every shape of answer through a function on the
// emulator.
func TestEmulatorAnswers(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "reply"})
	st := build(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction)
	for _, tc := range []struct {
		name, answer, want string
		fail               bool
	}{
		{name: "empty", answer: "", want: "<nothing>"},
		{name: "null", answer: "null", want: "<nothing>"},
		{name: "empty string", answer: `""`, want: "<nothing>"},
		{name: "empty object", answer: "{}", want: "<nothing>"},
		{name: "empty array", answer: "[]", want: "<nothing>"},
		{name: "envelope", answer: `{"records":{"orders-1":[{"topic":"orders","partition":1,"offset":2,"value":"eyJ0aWVyIjoxfQ=="}]}}`,
			want: `orders-1/2 k2={"tier":1} 0`},
		{name: "per record", answer: `["a", null, {"b": 2}]`, want: `orders-0/5 k5=a 1; orders-1/2 k2={"b": 2} 0`},
		{name: "new events", answer: `[{"total":3}]`, want: `orders-0/5 ={"total":3} 0`},
		{name: "number", answer: `42`, fail: true},
		{name: "object", answer: `{"ok":true}`, fail: true},
		{name: "unknown record", answer: `{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":99}]}}`, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn.SetReply(t, []byte(tc.answer))
			out, err := st.Process(context.Background(), testBatch())
			if tc.fail {
				if err == nil || pipeline.IsPermanent(err) {
					t.Fatalf("answer %s: got %s, %v; want a retryable failure", tc.answer, values(out), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("answer %s: %v", tc.answer, err)
			}
			if got := values(out); got != tc.want {
				t.Errorf("answer %s:\n got %s\nwant %s", tc.answer, got, tc.want)
			}
		})
	}
}

// TestEmulatorFunctionError: the emulator answers a handler error with 200
// and no X-Amz-Function-Error; its error object is still no valid answer.
func TestEmulatorFunctionError(t *testing.T) {
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "error"})
	_, err := build(t, fn.Endpoint, "functionName: "+testenv.LambdaFunction).Process(context.Background(), testBatch())
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "errorMessage") {
		t.Fatalf("got %v, want a retryable failure showing the answer", err)
	}
}

func TestInvokeErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     testenv.LambdaAnswer
		permanent  bool
		retryAfter time.Duration
		want       string
	}{
		{name: "function error", answer: testenv.LambdaAnswer{FunctionError: "Unhandled", Body: `{"errorMessage":"no tier for 7","errorType":"Error"}`}, want: "no tier for 7"},
		{name: "throttled", answer: testenv.LambdaAnswer{Status: 429, ErrorType: "TooManyRequestsException", Header: map[string]string{"Retry-After": "3"}}, retryAfter: 3 * time.Second, want: "TooManyRequestsException"},
		{name: "service", answer: testenv.LambdaAnswer{Status: 500, ErrorType: "ServiceException"}, want: "500"},
		{name: "too large", answer: testenv.LambdaAnswer{Status: 413, ErrorType: "RequestEntityTooLargeException"}, permanent: true, want: "413"},
		{name: "no function", answer: testenv.LambdaAnswer{Status: 404, ErrorType: "ResourceNotFoundException"}, permanent: true, want: "ResourceNotFoundException"},
		{name: "answer above 6 MB", answer: testenv.LambdaAnswer{Body: `["` + strings.Repeat("x", enrich.MaxResponseSize) + `"]`}, want: "above the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return tc.answer })
			out, err := build(t, api.Endpoint, "functionName: orders-enrich:live").Process(context.Background(), testBatch())
			if err == nil {
				t.Fatalf("got %s, want an error", values(out))
			}
			if n := len(api.Requests()); n != 1 {
				t.Errorf("%d invocations, want 1", n)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", got, tc.permanent, err)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("retry after %v, want %v", got, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "orders-enrich:live") {
				t.Errorf("error %.300q does not say %q and name the function", err, tc.want)
			}
		})
	}
}

func TestRequestCap(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{Body: "[]"} })
	st := build(t, api.Endpoint, "functionName: orders-enrich", `inputTemplate: '{"a": <$.value>, "b": <$.value>, "c": <$.value>}'`)
	b := testBatch()
	b.Records[0].Value = bytes.Repeat([]byte("v"), 2_500_000) // rendered three times
	_, err := st.Process(context.Background(), b)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "payload limit") {
		t.Fatalf("a request above 6 MB gave %v, want a permanent failure", err)
	}
	if n := len(api.Requests()); n != 0 {
		t.Errorf("%d invocations, want none", n)
	}
}

func TestConfigProblems(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"qualifier: live"}, `missing required key "functionName"`},
		{[]string{"functionName: a:b:c"}, "functionName: is not a function name"},
		{[]string{"functionName: f:live", "qualifier: live"}, "qualifier: functionName already names"},
		{[]string{"functionName: f", `inputTemplate: "<$.value"`}, "inputTemplate: at offset"},
		{[]string{"functionName: f", "invocationType: FIRE_AND_FORGET"}, `unknown key "invocationType"`},
	} {
		for i, l := range tc.lines {
			tc.lines[i] = "        " + l
		}
		_, err := pipeline.Parse("pipes.yaml", []byte(fmt.Sprintf(pipeYAML, strings.Join(tc.lines, "\n"))))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.lines, err, tc.want)
		}
	}
}
