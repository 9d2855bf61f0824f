package lambda

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

// ErrRequestTooLarge is matched (errors.Is) by the error of an invocation
// that Lambda refused as too large (413 RequestEntityTooLargeException).
var ErrRequestTooLarge = errors.New("request too large")

// Function invokes one Lambda function. The lambda target and the lambda
// enrichment share it. It is safe for concurrent use.
type Function struct {
	client  *lambda.Client
	name    FunctionName
	timeout time.Duration
}

// NewFunction builds the client of a function from its AWS settings (the
// region of an ARN is the default region). It touches no network. The
// client does not retry (awscfg sets no retryer): the runner does.
func NewFunction(fn FunctionName, ac awscfg.Config, timeout time.Duration) (*Function, error) {
	if ac.Region == "" {
		ac.Region = fn.Region
	}
	cfg, err := ac.Load(context.Background())
	if err != nil {
		return nil, fmt.Errorf("lambda %s: %w", fn, err)
	}
	client := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		if ep := ac.BaseEndpoint(); ep != nil {
			o.BaseEndpoint = ep
		}
	})
	return &Function{client: client, name: fn, timeout: timeout}, nil
}

// Name returns the function's name as configured.
func (f *Function) Name() FunctionName { return f.name }

// Invoke invokes the function with payload, synchronously or, with async,
// as an event (Lambda queues it), and returns the function's answer (none
// for an event). Errors say whether retrying can help:
//
//   - a function error (X-Amz-Function-Error) is a plain error naming the
//     error type and message the function returned; it carries the status
//     and the function error for the on-failure record
//     (pipeline.StatusCoder, pipeline.FunctionErrorer);
//   - 413 (RequestEntityTooLargeException) is pipeline.TooLarge (permanent,
//     MaximumPayloadSizeExceeded) and matches ErrRequestTooLarge;
//   - 429 (TooManyRequestsException), 5xx and 409 (ResourceConflict: the
//     function is being updated) are plain errors, with the delay of a
//     Retry-After header;
//   - any other 4xx (no such function, access denied, invalid payload) is
//     permanent, as awscfg.Classify says (but expired credentials and
//     request timeouts);
//   - no answer at all (connection refused, timeout) is a plain error.
//
// Every error of an answer carries its status (pipeline.StatusCoder).
func (f *Function) Invoke(ctx context.Context, payload []byte, async bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	in := &lambda.InvokeInput{
		FunctionName:   &f.name.Name,
		Payload:        payload,
		InvocationType: types.InvocationTypeRequestResponse,
	}
	if async {
		in.InvocationType = types.InvocationTypeEvent
	}
	if f.name.Qualifier != "" {
		in.Qualifier = &f.name.Qualifier
	}
	out, err := f.client.Invoke(ctx, in)
	if err != nil {
		return nil, f.classify(err)
	}
	if out.FunctionError != nil {
		return nil, &functionError{fmt.Errorf("invoking lambda %s: function error (%s): %s", f.name, *out.FunctionError, snippet(out.Payload, 512)),
			int(out.StatusCode), *out.FunctionError}
	}
	return out.Payload, nil
}

// tooLargeError is a 413 answer.
type tooLargeError struct{ error }

func (e tooLargeError) Unwrap() error        { return e.error }
func (e tooLargeError) Is(target error) bool { return target == ErrRequestTooLarge }

// statusError is an invocation Lambda refused, with the status of its
// answer (for the on-failure record's responseContext).
type statusError struct {
	error
	status int
}

func (e *statusError) Unwrap() error   { return e.error }
func (e *statusError) StatusCode() int { return e.status }

// functionError is an invocation whose function failed
// (X-Amz-Function-Error).
type functionError struct {
	error
	status int
	kind   string
}

func (e *functionError) Unwrap() error         { return e.error }
func (e *functionError) StatusCode() int       { return e.status }
func (e *functionError) FunctionError() string { return e.kind }

var (
	_ pipeline.StatusCoder     = (*statusError)(nil)
	_ pipeline.FunctionErrorer = (*functionError)(nil)
)

func (f *Function) classify(err error) error {
	err = fmt.Errorf("invoking lambda %s: %w", f.name, err)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return err // no answer: retried
	}
	status := re.HTTPStatusCode()
	err = &statusError{err, status}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return pipeline.TooLarge(tooLargeError{err})
	case status == http.StatusConflict:
		// ResourceConflictException: the function is being updated.
		return err
	case status == http.StatusTooManyRequests || status >= 500:
		if d := retryAfter(re.Response.Header.Get("Retry-After"), time.Now()); d > 0 {
			return pipeline.RetryAfter(err, d)
		}
		return err
	}
	return awscfg.Classify(err)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// snippet returns the start of a function's answer for an error message.
func snippet(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
