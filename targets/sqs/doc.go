// Package sqs is the `sqs` target: each record becomes one message of an
// Amazon SQS queue, standard or FIFO.
//
// Messages are sent with SendMessageBatch, up to 10 per call and up to
// maxMessageSize (256 KiB by default) for the sum of their bodies, in batch
// order. The body of a message is the record as JSON, the object that
// stands for it in the envelope's records lists (key and value in base64,
// headers as byte arrays), or the record's rendering of inputTemplate. A
// FIFO queue (its URL ends in .fifo) needs messageGroupId;
// messageDeduplicationId may be left out when the queue has content-based
// deduplication. Both are static text, templates or a whole $.path.
//
// Failures are reported per record, and only the failed records are
// retried by the runner:
//
//   - A record that cannot be sent as configured fails permanently before
//     any call: a body larger than maxMessageSize, an empty body, a FIFO
//     group ID that resolves to nothing or is not 1 to 128 printable ASCII
//     characters. The error names it as topic/partition/offset.
//   - An entry that SQS rejects with SenderFault (invalid characters, too
//     large for the queue's MaximumMessageSize, a FIFO parameter missing)
//     fails permanently, unless its code is one of throttling. Any other
//     failed entry is retryable.
//   - A call that fails as a whole is retryable when SQS did not answer,
//     answered 5xx, or asked to slow down; the records not sent yet are then
//     not sent in this attempt. Any other 4xx (a missing queue, access
//     denied) fails the call's records permanently and the next calls are
//     still made.
//
// The runner has no per-record permanence: when an attempt has both kinds
// of failure the error is retryable, the next attempt sends the failed
// records again, and once only permanent failures are left the error is
// permanent (pipeline.Permanent around pipeline.RetryOnly).
//
// Order: after a retryable failure, the later records of the same
// partition are held back until the next attempt, so they do not overtake
// it. Records sent in the same call as the failed one are not held back:
// SQS accepted them already. A FIFO queue keeps the order of what it
// accepted within a message group.
//
// AWS access (region, credentials, role, endpoint) is the aws: block of
// internal/awscfg; the region defaults to the one in the queue URL.
package sqs
