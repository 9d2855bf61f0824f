// Package kafka is the `kafka` target: it produces each record of a batch
// to a Kafka topic, on the source's cluster or another one, and reports the
// batch delivered once every record is acknowledged by all in-sync replicas.
//
// By default the produced record is the source record: same key, value,
// headers and timestamp, byte for byte (a null key or a tombstone stays
// null). key, inputTemplate and headers replace them with dynamic values
// (static text, a $.path read from the record, or an EventBridge Pipes
// template), and topic may itself be a $.path or a template, so one pipe
// can route records to several topics.
//
// Records are spread over partitions as Kafka's Java producer does (murmur2
// of the key), or by the source partition number, or round robin. The
// producer is idempotent with acks=all: franz-go's own protocol retries
// (leader changes, lost connections) neither duplicate nor reorder records
// within deliveryTimeout. Records of one batch are produced in order, so
// records of one source partition with the same key keep their order.
//
// Every record of a batch is produced; Deliver then reports the records to
// try again with pipeline.RetryOnly, and the others are done. A record that
// cannot succeed on a retry (not authorized, an invalid topic name, a topic
// resolved empty) fails permanently and is reported alone: the later
// records of its source partition were produced, so they are neither
// produced again nor sent to an on-failure destination. A record too large
// for maxMessageBytes or the topic (MESSAGE_TOO_LARGE,
// RECORD_LIST_TOO_LARGE) is marked pipeline.TooLarge, so its on-failure
// condition is MaximumPayloadSizeExceeded. A record that failed in a way a
// retry may fix (a missing topic, which may be created; a timeout) is
// reported with every later record of its source partition, so the
// partition is produced again in order from there and never skips ahead
// (the later records may then be in the topic twice).
//
// When one batch has both kinds, the target does what
// internal/awscfg/batch's Failures does for the AWS targets: RetryOnly
// lists every failed record and those retried behind a retryable failure,
// and the error is retryable; the next attempt produces the permanently
// failed records again with the others, and once only they fail the error
// is permanent (too large when every one is too large).
//
// A broker refuses a whole record batch larger than the topic's
// max.message.bytes, with the records that would fit: keep maxMessageBytes,
// which bounds the batches, at or below it, and a record too large fails
// alone, before it is sent.
//
// When the brokers cannot be reached or reject the credentials, the error
// says why in the words of internal/kafkaconn (authentication failed, TLS
// verification failed ...).
package kafka
