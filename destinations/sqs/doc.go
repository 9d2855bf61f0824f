// Package sqs is the `sqs` on-failure destination: each failure is sent
// with SendMessage as one message of an Amazon SQS queue, standard or FIFO.
//
// The body is the on-failure record of Lambda (requestContext with the
// condition and attempt count, responseContext, KafkaBatchInfo with the
// records' offsets and timestamps) with the pipe, the stage and the error
// text, and, unless payload is false, the records as a batch envelope under
// "payload". String message attributes carry the failure's context, so a
// consumer or a subscription can route failures without parsing the body:
// pipe-pipe, pipe-condition, pipe-stage (not for RecordAgeExceeded),
// pipe-attempts, pipe-topic, pipe-partition, pipe-first-offset and
// pipe-last-offset.
//
// Size: a message is at most maxMessageSize (256 KiB by default), counting
// the body and the attributes as SQS does. A failure whose message would be
// larger with its records is sent without them, with the attribute
// pipe-payload "omitted: too large for the queue"; its offsets name the
// records in the source topic. When SQS itself answers that the message is
// too large (a queue whose MaximumMessageSize is below maxMessageSize), it
// is sent again at once without the records. An error text too long for
// even that is shortened. So a large failure is never retried for ever.
//
// FIFO queues (a URL ending in .fifo): the message group ID is the pipe name,
// "-" and the records' topic-partition (orders-pipe-orders-3), which keeps a
// partition's failures in order; the deduplication ID is the failure's
// requestId, so a failure sent again after an unanswered call is stored once
// within SQS's deduplication interval.
//
// Errors: a call that fails (throttled, a missing queue, access denied, no
// answer within timeout) makes Send fail; the pipe retries it with backoff
// and the partition waits, since the records' offsets are committed only
// once the failure is stored. Errors name the queue, never the credentials.
//
// `pipe redrive` does not read SQS. To redrive, consume the queue yourself:
// the body of a message with its payload is a line that
// `pipe redrive --from-file` reads. Or use a file or kafka destination.
//
// AWS access (region, credentials, role, endpoint) is the aws: block of
// internal/awscfg; the region defaults to the one in the queue URL.
package sqs
