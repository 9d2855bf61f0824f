// Package batch is what the targets that send records through an AWS batch
// API share (SQS SendMessageBatch, SNS PublishBatch, EventBridge
// PutEvents): building the calls of a batch within the API's limits, and
// reporting which records failed, and how, to the runner.
//
// Failures keeps a partition's records in order: after a failure that a
// retry may fix, the later records of the partition are held back until
// the next attempt. When an attempt mixes failures that a retry may fix
// with permanent ones, the error is retryable (the runner has no
// per-record permanence); the next attempt sends the failed records again
// and, once only permanent failures are left, the error is permanent.
package batch
