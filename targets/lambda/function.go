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
//     error type and message the function returned;
//   - 413 (RequestEntityTooLargeException) is Permanent and matches
//     ErrRequestTooLarge;
//   - 429 (TooManyRequestsException), 5xx, 408 and 409 (a function being
//     updated) are plain errors, with the delay of a Retry-After header;
//   - any other 4xx (no such function, access denied, invalid payload) is
//     Permanent;
//   - no answer at all (connection refused, timeout) is a plain error.
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
		return nil, fmt.Errorf("invoking lambda %s: function error (%s): %s", f.name, *out.FunctionError, snippet(out.Payload, 512))
	}
	return out.Payload, nil
}

// tooLargeError is a 413 answer.
type tooLargeError struct{ error }

func (e tooLargeError) Unwrap() error        { return e.error }
func (e tooLargeError) Is(target error) bool { return target == ErrRequestTooLarge }

func (f *Function) classify(err error) error {
	err = fmt.Errorf("invoking lambda %s: %w", f.name, err)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return err // no answer: retried
	}
	status := re.HTTPStatusCode()
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return pipeline.Permanent(tooLargeError{err})
	case status == http.StatusTooManyRequests || status >= 500:
		if d := retryAfter(re.Response.Header.Get("Retry-After"), time.Now()); d > 0 {
			return pipeline.RetryAfter(err, d)
		}
		return err
	case status == http.StatusRequestTimeout || status == http.StatusConflict:
		return err
	case status >= 400:
		return pipeline.Permanent(err)
	}
	return err
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
