// Package conformance holds the tests that every target passes, each
// against the real part that plays its receiver: stdout captured through a
// pipe, http on an httptest server, sqs and sns on fauxqs, eventbridge on a
// server that speaks the PutEvents API, lambda on AWS's runtime interface
// emulator with an aws-lambda-go function, kafka on kfake. Each target is
// built from a pipes.yaml through pipeline.Parse and its config's
// NewTarget, so its config decoding is checked too.
//
// The same checks run for each target:
//
//   - deliver: a batch of mixed records (null and empty keys and values, a
//     tombstone, duplicate and binary headers, every byte value, values of
//     tens of KB, several topics and partitions, more records than one call
//     of a batch API takes) arrives whole. What the receiver got is decoded
//     with a decoder of the envelope's record format written here, not the
//     engine's, and compared byte for byte with the records sent; where the
//     receiver keeps arrival order, each partition's records arrive in
//     offset order.
//   - fail: one record of a batch fails in a way the target supports (a
//     message above the size limit, an entry or request rejected by the
//     receiver, a batchItemFailures answer). Deliver reports
//     pipeline.RetryOnly with exactly that record and, where the target
//     keeps a partition's order after that kind of failure, the later
//     records of its partition; permanent exactly when a retry cannot help.
//     The other records arrived. Delivering the reported records again, as
//     the runner does, delivers them once the receiver takes them, and fails
//     permanently again when it never will. stdout has no per-record
//     failure: a failed write fails the whole batch.
//   - stop: Deliver with a cancelled context returns an error at once, and
//     so does a Deliver in flight to a receiver that never answers once its
//     context is cancelled; Close returns nil, and a second Close too.
//
// TestSNSExample and TestEventBridgeExample run examples/kafka-to-sns and
// examples/kafka-to-eventbridge the same way and compare what arrives with
// what their READMEs show.
//
// The package has no code besides this documentation: everything is in its
// tests.
package conformance
