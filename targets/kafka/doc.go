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
// A failed record fails its batch partially: it and every later record of
// the same source partition are retried by the runner (pipeline.RetryOnly),
// so a partition never skips ahead. Records that cannot succeed on a retry
// (too large, not authorized, an invalid topic name, a topic resolved empty)
// fail permanently. A missing topic is retried: it may be created. When the
// brokers cannot be reached or reject the credentials, the error says why
// in the words of internal/kafkaconn (authentication failed, TLS
// verification failed ...).
package kafka
