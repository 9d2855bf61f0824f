package lambda_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/targets/lambda"
)

func TestFunctionNames(t *testing.T) {
	for _, tc := range []struct {
		lines     []string
		path      string // escaped, as the Invoke API sees it
		query     string
		region    string
		signedFor string
	}{
		{lines: []string{"functionName: orders"}, path: "orders"},
		{lines: []string{"functionName: orders:live"}, path: "orders%3Alive"},
		{lines: []string{"functionName: orders", "qualifier: live"}, path: "orders", query: "Qualifier=live"},
		{lines: []string{"functionName: orders", "qualifier: $LATEST"}, path: "orders", query: "Qualifier=%24LATEST"},
		{lines: []string{"functionName: 123456789012:function:orders"}, path: "123456789012%3Afunction%3Aorders"},
		{lines: []string{"functionName: 123456789012:function:orders:7"}, path: "123456789012%3Afunction%3Aorders%3A7"},
		{lines: []string{"functionName: arn:aws:lambda:eu-west-1:123456789012:function:orders"},
			path: "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders", signedFor: "/eu-west-1/lambda/"},
		{lines: []string{"functionName: arn:aws:lambda:eu-west-1:123456789012:function:orders", "aws:", "  region: ap-south-1"},
			path: "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders", signedFor: "/ap-south-1/lambda/"},
		{lines: []string{"functionName: arn:aws:lambda:eu-west-1:123456789012:function:orders:live"},
			path: "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders%3Alive", signedFor: "/eu-west-1/lambda/"},
	} {
		t.Run(strings.Join(tc.lines, ","), func(t *testing.T) {
			api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{Body: "null"} })
			tg := newTarget(t, api.Endpoint, tc.lines...)
			if err := tg.Deliver(context.Background(), batch(rec(0, 1, "k", "v"))); err != nil {
				t.Fatal(err)
			}
			inv := api.Requests()[0]
			if want := "/2015-03-31/functions/" + tc.path + "/invocations"; inv.Path != want {
				t.Errorf("path %s, want %s", inv.Path, want)
			}
			if inv.Query != tc.query {
				t.Errorf("query %q, want %q", inv.Query, tc.query)
			}
			if inv.Header.Get("X-Amz-Invocation-Type") != "RequestResponse" {
				t.Errorf("X-Amz-Invocation-Type %q, want RequestResponse", inv.Header.Get("X-Amz-Invocation-Type"))
			}
			signed := tc.signedFor
			if signed == "" {
				signed = "/us-east-1/lambda/"
			}
			if !strings.Contains(inv.Header.Get("Authorization"), signed) {
				t.Errorf("Authorization %q is not signed for %s", inv.Header.Get("Authorization"), signed)
			}
		})
	}
}

func TestConfigProblems(t *testing.T) {
	awsEnv(t)
	for _, tc := range []struct {
		lines []string
		want  string // "" = valid
	}{
		{[]string{"functionName: orders"}, ""},
		{[]string{"functionName: my_fn-2:$LATEST"}, ""},
		{[]string{"functionName: orders", "invocationType: FIRE_AND_FORGET"}, ""},
		{[]string{"functionName: orders", "reportBatchItemFailures: true"}, ""},
		{[]string{"qualifier: live"}, `missing required key "functionName"`},
		{[]string{"functionName: orders", "invocationType: Event"}, "invocationType"},
		{[]string{"functionName: orders", "reportBatchItemFailures: true", "invocationType: FIRE_AND_FORGET"}, "reportBatchItemFailures: needs invocationType REQUEST_RESPONSE"},
		{[]string{"functionName: orders:live", "qualifier: live"}, "qualifier: functionName already names a version or alias"},
		{[]string{"functionName: orders", "qualifier: a.b"}, "qualifier: must be $LATEST"},
		{[]string{"functionName: 'orders:'"}, "functionName: has an empty part"},
		{[]string{"functionName: or.ders"}, "functionName: the function name must be"},
		{[]string{"functionName: a:b:c"}, "functionName: is not a function name"},
		{[]string{"functionName: arn:aws:lambda:eu-west-1:123:function:orders"}, "functionName: is not a Lambda function ARN"},
		{[]string{"functionName: arn:aws:s3:eu-west-1:123456789012:function:orders"}, "functionName: is not a Lambda function ARN"},
		{[]string{"functionName: 12345:function:orders"}, "functionName: is not a partial Lambda ARN"},
		{[]string{"functionName: orders:a.b"}, "functionName: the version or alias must be"},
		{[]string{"functionName: " + strings.Repeat("x", 171)}, "longer than 170"},
		{[]string{"functionName: orders", "timeout: 0s"}, "timeout"},
		{[]string{"functionName: orders", "aws:", "  endpoint: localhost:9000"}, "aws.endpoint: must be an absolute"},
	} {
		_, err := config(t, tc.lines...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.lines, err)
		case tc.want != "" && err == nil:
			t.Errorf("%q: no problem, want %q", tc.lines, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: %v, want %q", tc.lines, err, tc.want)
		}
	}
}

func TestFunctionError(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer {
		return testenv.LambdaAnswer{FunctionError: "Unhandled", Body: `{"errorMessage":"boom on order 7","errorType":"errorString"}`}
	})
	tg := newTarget(t, api.Endpoint, "functionName: orders", "reportBatchItemFailures: true")
	err := tg.Deliver(context.Background(), batch(rec(0, 1, "a", "1"), rec(0, 2, "b", "2")))
	if err == nil {
		t.Fatal("a function error was taken for success")
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("a function error is permanent: %v", err)
	}
	if _, partial := pipeline.RetryOnlyOf(err); partial {
		t.Errorf("a function error fails only part of the batch: %v", err)
	}
	var fe pipeline.FunctionErrorer
	var sc pipeline.StatusCoder
	if !errors.As(err, &fe) || fe.FunctionError() != "Unhandled" || !errors.As(err, &sc) || sc.StatusCode() != 200 {
		t.Errorf("the error does not carry the function error and status for the on-failure record")
	}
	for _, want := range []string{"orders", "Unhandled", "boom on order 7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(api.Requests()); n != 1 {
		t.Errorf("%d invocations, want 1", n)
	}
}

func TestServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		status     int
		errType    string
		header     map[string]string
		permanent  bool
		retryAfter time.Duration
	}{
		{status: 429, errType: "TooManyRequestsException"},
		{status: 429, errType: "TooManyRequestsException", header: map[string]string{"Retry-After": "7"}, retryAfter: 7 * time.Second},
		{status: 500, errType: "ServiceException"},
		{status: 502, errType: "EC2ThrottledException"},
		{status: 503, errType: "ServiceException", header: map[string]string{"Retry-After": "2"}, retryAfter: 2 * time.Second},
		{status: 409, errType: "ResourceConflictException"},
		{status: 400, errType: "InvalidRequestContentException", permanent: true},
		{status: 403, errType: "AccessDeniedException", permanent: true},
		{status: 403, errType: "ExpiredTokenException"},
		{status: 404, errType: "ResourceNotFoundException", permanent: true},
	} {
		t.Run(fmt.Sprintf("%d %s %v", tc.status, tc.errType, tc.header), func(t *testing.T) {
			api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer {
				return testenv.LambdaAnswer{Status: tc.status, ErrorType: tc.errType, Header: tc.header, Body: "it went wrong"}
			})
			tg := newTarget(t, api.Endpoint, "functionName: orders")
			err := tg.Deliver(context.Background(), batch(rec(0, 1, "a", "1")))
			if err == nil {
				t.Fatal("no error")
			}
			if n := len(api.Requests()); n != 1 {
				t.Errorf("%d invocations, want 1: the SDK must not retry, the runner does", n)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", got, tc.permanent, err)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("retry after %v, want %v", got, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.errType) || !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("error %q does not name %d %s", err, tc.status, tc.errType)
			}
			var sc pipeline.StatusCoder
			if !errors.As(err, &sc) || sc.StatusCode() != tc.status {
				t.Errorf("the error does not carry the status %d", tc.status)
			}
			var fe pipeline.FunctionErrorer
			if errors.As(err, &fe) {
				t.Errorf("a service error passes for a function error")
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := newTarget(t, url, "functionName: orders").Deliver(context.Background(), batch(rec(0, 1, "a", "1")))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("a refused connection gave %v, want a retryable error", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer {
		<-release
		return testenv.LambdaAnswer{}
	})
	defer close(release)
	tg := newTarget(t, api.Endpoint, "functionName: orders", "timeout: 1s")
	err := tg.Deliver(context.Background(), batch(rec(0, 1, "a", "1")))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("a function that does not answer within the timeout gave %v, want a retryable error", err)
	}
}

func TestFireAndForget(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(inv testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{} })
	tg := newTarget(t, api.Endpoint, "functionName: orders", "invocationType: FIRE_AND_FORGET")
	b := batch(rec(0, 1, "a", "1"), rec(1, 5, "b", "2"))
	if err := tg.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	invs := api.Requests()
	if len(invs) != 1 || invs[0].Header.Get("X-Amz-Invocation-Type") != "Event" {
		t.Fatalf("invocations %+v, want one with X-Amz-Invocation-Type Event", invs)
	}
	if !bytes.Equal(invs[0].Body, pipeline.AppendEnvelope(nil, b)) {
		t.Errorf("body is not the envelope: %s", invs[0].Body)
	}
}

// TestTooLargeRecord: Lambda refuses one record as too large (413): that
// record fails permanently, naming it; the others are delivered once each.
func TestTooLargeRecord(t *testing.T) {
	const refuseAbove = 20_000
	api := testenv.StartLambdaAPI(t, func(inv testenv.LambdaRequest) testenv.LambdaAnswer {
		if len(inv.Body) > refuseAbove {
			return testenv.LambdaAnswer{Status: 413, ErrorType: "RequestEntityTooLargeException",
				Body: "Request must be smaller than 20000 bytes for the InvokeFunction operation"}
		}
		return testenv.LambdaAnswer{Body: "null"}
	})
	tg := newTarget(t, api.Endpoint, "functionName: orders")

	t.Run("alone", func(t *testing.T) {
		b := batch(rec(3, 40, "big", strings.Repeat("x", 30_000)))
		err := tg.Deliver(context.Background(), b)
		if !pipeline.IsTooLarge(err) || !pipeline.IsPermanent(err) || !errors.Is(err, lambda.ErrRequestTooLarge) {
			t.Fatalf("got %v, want a permanent MaximumPayloadSizeExceeded (pipeline.TooLarge)", err)
		}
		var sc pipeline.StatusCoder
		if !errors.As(err, &sc) || sc.StatusCode() != 413 {
			t.Errorf("the error does not carry the 413 status")
		}
		if !strings.Contains(err.Error(), "orders/3/40") {
			t.Errorf("error %q does not name the record", err)
		}
	})

	t.Run("among others", func(t *testing.T) {
		before := len(api.Requests())
		var recs []pipeline.Record
		for i := range 12 {
			v := strings.Repeat("v", 3_000)
			if i == 7 {
				v = strings.Repeat("B", 30_000)
			}
			recs = append(recs, rec(int32(i/6), int64(100+i), fmt.Sprint("k", i), v))
		}
		b := batch(recs...)
		err := tg.Deliver(context.Background(), b)
		failed, partial := pipeline.RetryOnlyOf(err)
		if !partial || !reflect.DeepEqual(failed, []int{7}) {
			t.Fatalf("got %v (failed %v), want only record 7 to fail", err, failed)
		}
		if !pipeline.IsTooLarge(err) || !strings.Contains(err.Error(), "orders/1/107") {
			t.Errorf("got %v, want a MaximumPayloadSizeExceeded failure naming orders/1/107", err)
		}
		// Every other record reached the function exactly once, in order.
		var got []string
		for _, inv := range api.Requests()[before:] {
			if len(inv.Body) <= refuseAbove {
				got = append(got, envelopeRecords(t, inv.Body)...)
			}
		}
		want := coords(b, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11)
		if !slices.Equal(got, want) {
			t.Errorf("the function got %v, want %v", got, want)
		}
	})
}

// TestSplit: a batch whose envelope passes 6 MB is invoked in several
// parts, in order, each within the limit; a record too large on its own is
// not sent and fails permanently.
func TestSplit(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{Body: "{}"} })
	tg := newTarget(t, api.Endpoint, "functionName: orders", "reportBatchItemFailures: true")
	var recs []pipeline.Record
	for i := range 9 {
		recs = append(recs, rec(int32(i/4), int64(i), fmt.Sprint("k", i), strings.Repeat(string(rune('a'+i)), 1_500_000)))
	}
	b := batch(recs...)
	if err := tg.Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	invs := api.Requests()
	if len(invs) < 3 {
		t.Fatalf("%d invocations for a %d-byte envelope, want at least 3", len(invs), pipeline.EnvelopeSize(b))
	}
	var got []string
	for i, inv := range invs {
		if len(inv.Body) > pipeline.MaxPayloadSize {
			t.Errorf("invocation %d is %d bytes, above 6 MB", i, len(inv.Body))
		}
		got = append(got, envelopeRecords(t, inv.Body)...)
	}
	if !slices.Equal(got, coords(b)) {
		t.Errorf("the function got %v, want %v", got, coords(b))
	}
	// Each invocation was the envelope of its records.
	sent := 0
	for _, inv := range invs {
		n := len(envelopeRecords(t, inv.Body))
		want := pipeline.AppendEnvelope(nil, batch(b.Records[sent:sent+n]...))
		if !bytes.Equal(inv.Body, want) {
			t.Errorf("invocation of records %d-%d is not their envelope", sent, sent+n-1)
		}
		sent += n
	}

	// A record above 6 MB on its own.
	before := len(api.Requests())
	b = batch(rec(0, 1, "a", "small"), rec(0, 2, "huge", strings.Repeat("h", 5_000_000)), rec(0, 3, "c", "small"))
	err := tg.Deliver(context.Background(), b)
	failed, _ := pipeline.RetryOnlyOf(err)
	if !pipeline.IsTooLarge(err) || !slices.Equal(failed, []int{1}) || !strings.Contains(err.Error(), "orders/0/2") {
		t.Fatalf("got %v (failed %v), want a MaximumPayloadSizeExceeded failure of orders/0/2 only", err, failed)
	}
	got = nil
	for _, inv := range api.Requests()[before:] {
		got = append(got, envelopeRecords(t, inv.Body)...)
	}
	if want := coords(b, 0, 2); !slices.Equal(got, want) {
		t.Errorf("the function got %v, want %v", got, want)
	}
}

// TestSplitFailure: when a later part of a split batch fails, the records
// of that part and after it are retried, not the ones delivered before.
func TestSplitFailure(t *testing.T) {
	calls := 0
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer {
		calls++
		if calls == 2 {
			return testenv.LambdaAnswer{Status: 503, ErrorType: "ServiceException"}
		}
		return testenv.LambdaAnswer{Body: "null"}
	})
	tg := newTarget(t, api.Endpoint, "functionName: orders")
	var recs []pipeline.Record
	for i := range 8 {
		recs = append(recs, rec(int32(i/3), int64(i), "k", strings.Repeat("x", 2_000_000)))
	}
	b := batch(recs...)
	err := tg.Deliver(context.Background(), b)
	invs := api.Requests()
	if len(invs) != 2 {
		t.Fatalf("%d invocations, want 2: nothing is invoked after a failure", len(invs))
	}
	first := len(envelopeRecords(t, invs[0].Body))
	failed, partial := pipeline.RetryOnlyOf(err)
	var want []int
	for i := first; i < len(recs); i++ {
		want = append(want, i)
	}
	if !partial || !slices.Equal(failed, want) || pipeline.IsPermanent(err) {
		t.Fatalf("got %v (failed %v), want a retryable failure of records %v", err, failed, want)
	}
}

func TestBatchItemFailures(t *testing.T) {
	b := batch(rec(0, 10, "a", "1"), rec(0, 11, "b", "2"), rec(0, 12, "c", "3"),
		rec(1, 20, "d", "4"), rec(1, 21, "e", "5"),
		rec(2, 30, "f", "6"))
	b.Records = append(b.Records, pipeline.Record{Topic: "my-topic", Partition: 0, Offset: 7, Timestamp: time.UnixMilli(1)})
	item := func(pk string, off int) string {
		return fmt.Sprintf(`{"itemIdentifier":{"partition":%q,"offset":%d}}`, pk, off)
	}
	for _, tc := range []struct {
		name   string
		answer string
		failed []int // nil: success; "all": whole batch
		whole  bool
	}{
		{name: "empty answer", answer: ""},
		{name: "null", answer: "null"},
		{name: "empty object", answer: "{}"},
		{name: "other keys", answer: `{"status":"ok"}`},
		{name: "null list", answer: `{"batchItemFailures":null}`},
		{name: "empty list", answer: `{"batchItemFailures":[]}`},
		{name: "one", answer: `{"batchItemFailures":[` + item("orders-0", 11) + `]}`, failed: []int{1, 2}},
		{name: "first of partition", answer: `{"batchItemFailures":[` + item("orders-1", 20) + `]}`, failed: []int{3, 4}},
		{name: "last", answer: `{"batchItemFailures":[` + item("orders-2", 30) + `]}`, failed: []int{5}},
		{name: "several", answer: `{"batchItemFailures":[` + item("orders-1", 21) + "," + item("orders-0", 12) + "," + item("orders-0", 10) + `]}`, failed: []int{0, 1, 2, 4}},
		{name: "every record", answer: `{"batchItemFailures":[` + item("orders-2", 30) + "," + item("orders-1", 20) + "," + item("orders-0", 10) + "," + item("my-topic-0", 7) + `]}`, failed: []int{0, 1, 2, 3, 4, 5, 6}},
		{name: "dashed topic", answer: `{"batchItemFailures":[` + item("my-topic-0", 7) + `]}`, failed: []int{6}},
		{name: "not JSON", answer: `batch done`, whole: true},
		{name: "truncated", answer: `{"batchItemFailures":[`, whole: true},
		{name: "string", answer: `"ok"`, whole: true},
		{name: "list answer", answer: `[]`, whole: true},
		{name: "list not a list", answer: `{"batchItemFailures":{}}`, whole: true},
		{name: "null entry", answer: `{"batchItemFailures":[null]}`, whole: true},
		{name: "null identifier", answer: `{"batchItemFailures":[{"itemIdentifier":null}]}`, whole: true},
		{name: "empty identifier", answer: `{"batchItemFailures":[{"itemIdentifier":""}]}`, whole: true},
		{name: "bad key name", answer: `{"batchItemFailures":[{"itemIdentifer":{"partition":"orders-0","offset":10}}]}`, whole: true},
		{name: "bad inner key", answer: `{"batchItemFailures":[{"itemIdentifier":{"Partition":"orders-0","offset":10}}]}`, whole: true},
		{name: "offset as string", answer: `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":"10"}}]}`, whole: true},
		{name: "fractional offset", answer: `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":10.5}}]}`, whole: true},
		{name: "unknown offset", answer: `{"batchItemFailures":[` + item("orders-0", 13) + `]}`, whole: true},
		{name: "unknown partition", answer: `{"batchItemFailures":[` + item("orders-9", 10) + `]}`, whole: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{Body: tc.answer} })
			err := newTarget(t, api.Endpoint, "functionName: orders", "reportBatchItemFailures: true").Deliver(context.Background(), b)
			failed, partial := pipeline.RetryOnlyOf(err)
			switch {
			case tc.whole:
				if err == nil || partial || pipeline.IsPermanent(err) {
					t.Fatalf("answer %q: got %v (failed %v), want a retryable failure of the whole batch", tc.answer, err, failed)
				}
			case tc.failed == nil:
				if err != nil {
					t.Fatalf("answer %q: %v, want success", tc.answer, err)
				}
			default:
				if !partial || !slices.Equal(failed, tc.failed) || pipeline.IsPermanent(err) {
					t.Fatalf("answer %q: got %v (failed %v), want records %v retried", tc.answer, err, failed, tc.failed)
				}
			}
		})
	}

	// Without reportBatchItemFailures the answer is not read.
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer {
		return testenv.LambdaAnswer{Body: `{"batchItemFailures":[` + item("orders-0", 11) + `]}`}
	})
	if err := newTarget(t, api.Endpoint, "functionName: orders").Deliver(context.Background(), b); err != nil {
		t.Errorf("a partial batch response was honoured without reportBatchItemFailures: %v", err)
	}
}

// TestBatchItemFailuresSplit: with a batch split in several invocations,
// a partition with a reported failure is left out of the later ones.
func TestBatchItemFailuresSplit(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(inv testenv.LambdaRequest) testenv.LambdaAnswer {
		if bytes.Contains(inv.Body, []byte(`"orders-0":[{"topic":"orders","partition":0,"offset":0,`)) {
			return testenv.LambdaAnswer{Body: `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":1}}]}`}
		}
		return testenv.LambdaAnswer{Body: "{}"}
	})
	tg := newTarget(t, api.Endpoint, "functionName: orders", "reportBatchItemFailures: true")
	// Partition 0: offsets 0..4, partition 1: offsets 0..2; 1.5 MB each, so
	// the first invocation holds records 0..2 of partition 0.
	var recs []pipeline.Record
	for i := range 5 {
		recs = append(recs, rec(0, int64(i), "k", strings.Repeat("x", 1_500_000)))
	}
	for i := range 3 {
		recs = append(recs, rec(1, int64(i), "k", strings.Repeat("y", 1_500_000)))
	}
	b := batch(recs...)
	err := tg.Deliver(context.Background(), b)
	failed, partial := pipeline.RetryOnlyOf(err)
	if !partial || !slices.Equal(failed, []int{1, 2, 3, 4}) {
		t.Fatalf("got %v (failed %v), want records 1-4 of partition 0 retried", err, failed)
	}
	var got []string
	for _, inv := range api.Requests() {
		got = append(got, envelopeRecords(t, inv.Body)...)
	}
	if want := coords(b, 0, 1, 2, 5, 6, 7); !slices.Equal(got, want) {
		t.Errorf("the function got %v, want %v (partition 0 stops after its failure)", got, want)
	}
}

func TestPartialResponseHTTPStatus(t *testing.T) {
	// A 200 answer with an empty body is success even when partial batch
	// responses are read.
	api := testenv.StartLambdaAPI(t, func(testenv.LambdaRequest) testenv.LambdaAnswer { return testenv.LambdaAnswer{Status: http.StatusOK} })
	if err := newTarget(t, api.Endpoint, "functionName: orders", "reportBatchItemFailures: true").Deliver(context.Background(), batch(rec(0, 1, "a", "1"))); err != nil {
		t.Fatal(err)
	}
}

// captured is an on-failure destination that keeps what it gets.
type captured struct{ failures []*pipeline.Failure }

func (c *captured) Send(_ context.Context, f *pipeline.Failure) error {
	c.failures = append(c.failures, f)
	return nil
}
func (c *captured) Close() error { return nil }

// TestOnFailureRecords runs the target in a pipe with an on-failure
// destination: a record too large is given up as
// MaximumPayloadSizeExceeded while the others are delivered; a function
// error, once retries are exhausted, leaves Lambda's response context.
func TestOnFailureRecords(t *testing.T) {
	api := testenv.StartLambdaAPI(t, func(inv testenv.LambdaRequest) testenv.LambdaAnswer {
		switch {
		case len(inv.Body) > 20_000:
			return testenv.LambdaAnswer{Status: 413, ErrorType: "RequestEntityTooLargeException"}
		case bytes.Contains(inv.Body, []byte(`"offset":77`)):
			return testenv.LambdaAnswer{FunctionError: "Unhandled", Body: `{"errorMessage":"bad order","errorType":"Error"}`}
		}
		return testenv.LambdaAnswer{Body: "null"}
	})
	tg := newTarget(t, api.Endpoint, "functionName: orders:live")
	dest := &captured{}
	p := &pipeline.Pipe{Name: "test", Target: tg, MaxRetries: 1, OnFailure: dest,
		Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()

	b := batch(rec(0, 1, "a", "small"), rec(0, 2, "big", strings.Repeat("x", 30_000)), rec(0, 3, "c", "small"))
	if err := p.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	if len(dest.failures) != 1 || dest.failures[0].Condition != pipeline.MaximumPayloadSizeExceeded ||
		!slices.Equal(coords(dest.failures[0].Batch), coords(b, 1)) {
		t.Fatalf("on-failure records %+v, want orders-0/2 as MaximumPayloadSizeExceeded", dest.failures)
	}
	var got []string
	for _, inv := range api.Requests() {
		if len(inv.Body) <= 20_000 {
			got = append(got, envelopeRecords(t, inv.Body)...)
		}
	}
	if !slices.Equal(got, coords(b, 0, 2)) {
		t.Errorf("the function got %v, want the two small records once each", got)
	}

	dest.failures = nil
	b = batch(rec(4, 77, "a", "1"))
	if err := p.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	if len(dest.failures) != 1 || dest.failures[0].Condition != pipeline.RetryAttemptsExhausted || dest.failures[0].Attempts != 2 {
		t.Fatalf("on-failure records %+v, want one RetryAttemptsExhausted after 2 attempts", dest.failures)
	}
	rec := string(pipeline.AppendFailureRecord(nil, dest.failures[0], false))
	for _, want := range []string{`"functionArn":"orders:live"`, `"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"}`, "bad order"} {
		if !strings.Contains(rec, want) {
			t.Errorf("on-failure record %s lacks %s", rec, want)
		}
	}
}

func TestPreview(t *testing.T) {
	awsEnv(t)
	tg := newTarget(t, "http://127.0.0.1:1", "functionName: orders", "qualifier: live")
	var recs []pipeline.Record
	for i := range 5 {
		recs = append(recs, rec(int32(i/3), int64(i), "k", strings.Repeat("p", 2_000_000)))
	}
	recs = append(recs, rec(1, 9, "huge", strings.Repeat("h", 5_000_000)))
	b := batch(recs...)
	reqs := tg.(pipeline.Previewer).Preview(b, nil)
	var got [][]int
	for _, r := range reqs {
		got = append(got, r.Records)
		if r.Summary != "Invoke orders:live" || r.Attributes["Qualifier"] != "live" || r.Attributes["InvocationType"] != "RequestResponse" {
			t.Errorf("request %q %v", r.Summary, r.Attributes)
		}
		sub := batch()
		for _, i := range r.Records {
			sub.Records = append(sub.Records, b.Records[i])
		}
		if !bytes.Equal(r.Body, pipeline.AppendEnvelope(nil, sub)) {
			t.Errorf("the body of %v is not the envelope of its records", r.Records)
		}
	}
	if fmt.Sprint(got) != "[[0 1] [2 3] [4]]" {
		t.Errorf("preview invocations %v, want [[0 1] [2 3] [4]] (record 5 is too large alone)", got)
	}
	if d := tg.(pipeline.Describer).Describe(); d != "orders:live" {
		t.Errorf("Describe() = %q", d)
	}
}
