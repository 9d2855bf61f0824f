// Package lambda is the `lambda` target: it invokes an AWS Lambda function
// with each batch's envelope (Lambda's Kafka event, pipeline.AppendEnvelope),
// so a function written for Lambda's Kafka event source mapping runs
// unchanged behind pipe.
//
// The function is named by functionName: a name, name:qualifier, a partial
// ARN or an ARN, with an optional separate qualifier (a version or alias).
// invocationType REQUEST_RESPONSE (the default) waits for the function;
// FIRE_AND_FORGET invokes it as an event, which Lambda queues.
//
// A batch whose envelope would pass the payload limit (6 MB, 1 MB for
// FIRE_AND_FORGET) is split, in record order, into several invocations, so a
// partition's records reach the function in order. When Lambda still
// answers 413 for an invocation of several records, it is invoked again with
// fewer (Lambda's limit is then lower than ours); this is not a retry: no
// record is sent twice.
//
// What fails, and what the runner retries:
//
//   - A function error (the X-Amz-Function-Error header) or a failed invoke
//     fails the records of that invocation and of every later one: the
//     runner retries those (RetryOnly when earlier invocations of the batch
//     succeeded, else the whole batch).
//   - Throttling (429 TooManyRequestsException), service errors (5xx), 408
//     and 409 are retried, after the Retry-After delay when Lambda gives one.
//     Other 4xx answers (no such function, access denied) are permanent.
//   - A record whose envelope alone passes the limit, or that Lambda refuses
//     as too large (413) on its own, is a permanent failure of that record
//     (pipeline.TooLarge: its on-failure condition is
//     MaximumPayloadSizeExceeded; the error names topic, partition and
//     offset); the other records are still delivered.
//   - Errors carry what the on-failure record reports: the status of
//     Lambda's answer and the function error (pipeline.StatusCoder,
//     pipeline.FunctionErrorer); the target names itself by its function
//     (Describe).
//   - With reportBatchItemFailures, the answer is read as a partial batch
//     response (REFERENCE section 3):
//     {"batchItemFailures": [{"itemIdentifier": {"partition": "<topic>-<n>",
//     "offset": <n>}}]}. The records named and every later record of their
//     partitions are retried (pipeline.RetryOnly), nothing else. As in
//     Lambda, an empty answer, null, {} and a null or empty list mean that
//     every record succeeded; an answer that is not a JSON object, a list
//     entry without a proper itemIdentifier (a "partition" string and an
//     integer "offset"), or one naming a record that was not in the
//     invocation fail the whole invocation, so no record is lost to a
//     malformed answer. Later invocations of the same Deliver leave out the
//     partitions with failed records.
//
// The SDK client does not retry (internal/awscfg gives it no retryer): the
// runner owns retries and backoff. AWS access (region, credentials, role,
// endpoint) comes from the `aws:` block; the region of an ARN is the
// default region.
//
// Function is the invoking part on its own, shared with the lambda
// enrichment (stages/enrich/lambda).
package lambda
