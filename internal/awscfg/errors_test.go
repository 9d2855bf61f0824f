package awscfg

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pipe-run/pipe/pipeline"
)

// answer is an SDK error for an answer with status and code, wrapped as
// the SDK wraps it.
func answer(status int, code string) error {
	re := &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "m"},
		},
		RequestID: "r",
	}
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessageBatch", Err: re}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err       error
		permanent bool
	}{
		{answer(400, "AWS.SimpleQueueService.NonExistentQueue"), true},
		{answer(400, "QueueDoesNotExist"), true},
		{answer(403, "AccessDenied"), true},
		{answer(400, "InvalidParameterValue"), true},
		{answer(404, "NotFound"), true},
		{answer(400, "ThrottlingException"), false},
		{answer(400, "RequestThrottled"), false},
		{answer(400, "AWS.SimpleQueueService.RequestThrottled"), false},
		{answer(400, "KmsThrottled"), false},
		{answer(400, "ExpiredToken"), false},
		{answer(400, "RequestTimeTooSkewed"), false},
		{answer(429, "TooManyRequests"), false},
		{answer(500, "InternalError"), false},
		{answer(503, "ServiceUnavailable"), false},
		{errors.New("dial tcp 127.0.0.1:1: connection refused"), false},
		{fmt.Errorf("get credentials: %w", errors.New("no EC2 IMDS role found")), false},
	} {
		got := Classify(c.err)
		if pipeline.IsPermanent(got) != c.permanent {
			t.Errorf("%v: permanent %v, want %v", c.err, !c.permanent, c.permanent)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%v: the error is not wrapped", c.err)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
}
