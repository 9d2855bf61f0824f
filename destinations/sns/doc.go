// Package sns is the `sns` on-failure destination: each failure is
// published with Publish as one message of an Amazon SNS topic, standard or
// FIFO, for its subscribers (queues, functions, e-mail ...) to take.
//
// The message is the on-failure record of Lambda (requestContext with the
// condition and attempt count, responseContext, KafkaBatchInfo with the
// records' offsets and timestamps) with the pipe, the stage and the error
// text, and, unless payload is false, the records as a batch envelope under
// "payload". String message attributes carry the failure's context, for
// subscription filter policies: pipe-pipe, pipe-condition, pipe-stage (not
// for RecordAgeExceeded), pipe-attempts, pipe-topic, pipe-partition,
// pipe-first-offset and pipe-last-offset.
//
// Size: a message is at most 256 KiB, counting the body and the attributes.
// A failure whose message would be larger with its records is published
// without them, with the attribute pipe-payload "omitted: too large for the
// topic"; its offsets name the records in the source topic. When SNS itself
// answers that the message is too long, it is published again at once
// without the records. An error text too long for even that is shortened.
// So a large failure is never retried for ever.
//
// FIFO topics (a name ending in .fifo): the message group ID is the pipe
// name, "-" and the records' topic-partition, which keeps a partition's
// failures in order; the deduplication ID is the failure's requestId, so a
// failure published again after an unanswered call is delivered once within
// SNS's deduplication interval.
//
// Errors: a call that fails (throttled, a missing topic, access denied, no
// answer within timeout) makes Send fail; the pipe retries it with backoff
// and the partition waits, since the records' offsets are committed only
// once the failure is stored. Errors name the topic, never the credentials.
//
// `pipe redrive` does not read SNS. To redrive, subscribe a queue with raw
// message delivery and consume it yourself: the body of a message with its
// payload is a line that `pipe redrive --from-file` reads. Or use a file or
// kafka destination.
//
// AWS access (region, credentials, role, endpoint) is the aws: block of
// internal/awscfg; the region defaults to the one in the topic ARN.
package sns
