package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// envelopeRecord is one record of an envelope as JSON.
type envelopeRecord struct {
	Topic         *string            `json:"topic"`
	Partition     *int32             `json:"partition"`
	Offset        *int64             `json:"offset"`
	Timestamp     int64              `json:"timestamp"`
	TimestampType string             `json:"timestampType"`
	Key           *string            `json:"key"`
	Value         *string            `json:"value"`
	Headers       []map[string][]int `json:"headers"`
}

// ParseEnvelope reads a Kafka batch envelope ({"eventSource": ...,
// "records": {"topic-0": [...]}}) back into a Batch: the inverse of
// AppendEnvelope. Record lists come in the order of their keys, sorted.
func ParseEnvelope(data []byte) (*Batch, error) {
	var env struct {
		EventSource      string                       `json:"eventSource"`
		BootstrapServers string                       `json:"bootstrapServers"`
		Records          map[string][]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("not a Kafka batch envelope: %w", err)
	}
	if env.Records == nil {
		return nil, fmt.Errorf("not a Kafka batch envelope: no records object")
	}
	keys := make([]string, 0, len(env.Records))
	for k := range env.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := &Batch{EventSource: env.EventSource, BootstrapServers: env.BootstrapServers}
	for _, k := range keys {
		for i, raw := range env.Records[k] {
			r, err := ParseEnvelopeRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("records[%q][%d]: %w", k, i, err)
			}
			b.Records = append(b.Records, r)
		}
	}
	return b, nil
}

// ParseEnvelopeRecord reads one record of an envelope: topic, partition and
// offset required, key and value base64, headers as lists of byte values
// (-128..255 accepted).
func ParseEnvelopeRecord(raw []byte) (Record, error) {
	var er envelopeRecord
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&er); err != nil {
		return Record{}, err
	}
	switch {
	case er.Topic == nil:
		return Record{}, fmt.Errorf("no topic")
	case er.Partition == nil:
		return Record{}, fmt.Errorf("no partition")
	case er.Offset == nil:
		return Record{}, fmt.Errorf("no offset")
	}
	r := Record{Topic: *er.Topic, Partition: *er.Partition, Offset: *er.Offset, Timestamp: time.UnixMilli(er.Timestamp)}
	switch er.TimestampType {
	case "", "CREATE_TIME":
	case "LOG_APPEND_TIME":
		r.TimestampType = LogAppendTime
	default:
		return Record{}, fmt.Errorf("timestampType %q is not CREATE_TIME or LOG_APPEND_TIME", er.TimestampType)
	}
	var err error
	if er.Key != nil {
		if r.Key, err = base64.StdEncoding.DecodeString(*er.Key); err != nil {
			return Record{}, fmt.Errorf("key is not base64: %w", err)
		}
	}
	if er.Value != nil {
		if r.Value, err = base64.StdEncoding.DecodeString(*er.Value); err != nil {
			return Record{}, fmt.Errorf("value is not base64: %w", err)
		}
	}
	for _, hm := range er.Headers {
		names := make([]string, 0, len(hm))
		for name := range hm {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ints := hm[name]
			v := make([]byte, len(ints))
			for i, n := range ints {
				if n < -128 || n > 255 {
					return Record{}, fmt.Errorf("header %q: %d is not a byte", name, n)
				}
				v[i] = byte(n)
			}
			r.Headers = append(r.Headers, Header{Key: name, Value: v})
		}
	}
	return r, nil
}
