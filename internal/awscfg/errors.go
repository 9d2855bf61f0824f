package awscfg

import (
	"errors"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/pipe-run/pipe/pipeline"
)

// Classify marks the error of an AWS call for the runner: it returns
// pipeline.Permanent(err) when the service answered that the request itself
// is wrong (a 4xx status other than throttling, a request timeout or expired
// credentials), and err unchanged otherwise: no answer (connection refused,
// timeout), 429 and 5xx, credentials that could not be fetched. nil stays
// nil.
func Classify(err error) error {
	if err == nil || pipeline.IsPermanent(err) {
		return err
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	status := re.HTTPStatusCode()
	if status < 400 || status >= 500 || status == 429 {
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && RetryableCode(ae.ErrorCode()) {
		return err
	}
	return pipeline.Permanent(err)
}

// retryableCodes are error codes of a 4xx answer, or of one entry of a
// batch answer, that a later attempt may not get.
var retryableCodes = map[string]bool{
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"ExpiredToken":                           true,
	"ExpiredTokenException":                  true,
	"RequestExpired":                         true,
	"RequestTimeTooSkewed":                   true,
	"InternalError":                          true,
	"InternalFailure":                        true,
	"InternalException":                      true,
	"ServiceUnavailable":                     true,
	"LimitExceededException":                 true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"KMSThrottlingException":                 true,
	"KMSInternalException":                   true,
}

// RetryableCode reports whether an AWS error code says that the same
// request may succeed later: throttling (any code containing "Throttl"),
// timeouts, expired credentials, internal errors.
func RetryableCode(code string) bool {
	code = strings.TrimPrefix(code, "AWS.SimpleQueueService.")
	return retryableCodes[code] || strings.Contains(code, "Throttl")
}
