package pipeline

import "time"

// Header is one Kafka record header. Value may be nil.
type Header struct {
	Key   string
	Value []byte
}

// TimestampType says where a record's timestamp came from.
type TimestampType uint8

const (
	// CreateTime is a timestamp set by the producer.
	CreateTime TimestampType = iota
	// LogAppendTime is a timestamp set by the broker.
	LogAppendTime
)

// String returns the envelope spelling: CREATE_TIME or LOG_APPEND_TIME.
func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LOG_APPEND_TIME"
	}
	return "CREATE_TIME"
}

// Record is one Kafka record as it travels through a pipe. Its identity is
// (Topic, Partition, Offset). A nil Key or Value is a Kafka null; an empty
// non-nil one is an empty byte string.
type Record struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     time.Time
	TimestampType TimestampType
	Key           []byte
	Value         []byte
	Headers       []Header

	// view is the decoded record, built on first use by View.
	view *Value
}

// Batch is a group of records delivered together. Records are grouped by
// topic-partition and, within one partition, in offset order. A batch and its
// records belong to the caller of Target.Deliver or Stage.Process only until
// that call returns: components must not keep references to them.
type Batch struct {
	// EventSource is the envelope's eventSource, "SelfManagedKafka".
	EventSource string
	// BootstrapServers is the comma-separated list of brokers, as configured.
	BootstrapServers string
	Records          []Record
}

// EventSourceSelfManagedKafka is the eventSource of a self-managed Kafka
// envelope.
const EventSourceSelfManagedKafka = "SelfManagedKafka"
