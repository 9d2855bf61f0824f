// Package sns is the `sns` target: each record becomes one message
// published to an Amazon SNS topic, standard or FIFO.
//
// Messages are published with PublishBatch, up to 10 per call and up to
// 256 KiB for the sum of their bodies, in batch order. The message is the
// record as JSON, the object that stands for it in the envelope's records
// lists (key and value in base64, headers as byte arrays), or the record's
// rendering of inputTemplate. A FIFO topic (its name ends in .fifo) needs
// messageGroupId; messageDeduplicationId may be left out when the topic has
// content-based deduplication. Both are static text, templates or a whole
// $.path.
//
// Failures are reported per record and only the failed records are retried,
// as for the sqs target (package internal/awscfg/batch): a message larger
// than 256 KiB, an empty one, or a FIFO group ID that resolves to nothing
// fails permanently before any call; an entry that SNS rejects as a sender
// fault fails permanently unless its code is one of throttling; other
// failed entries, and calls that SNS did not answer, answered 5xx or
// throttled, are retried, and the later records of a partition wait for
// the failed one. Another 4xx answer to a call (a missing topic, access
// denied) fails its records permanently.
//
// AWS access (region, credentials, role, endpoint) is the aws: block of
// internal/awscfg; the region defaults to the one in the topic ARN.
package sns
