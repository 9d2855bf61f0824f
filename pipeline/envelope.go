package pipeline

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// MaxPayloadSize is the cap on one invocation payload: 6 MB (6,291,456
// bytes), as for Lambda. A batch stops growing before its envelope would pass
// it.
const MaxPayloadSize = 6 << 20

// AppendEnvelope appends the Lambda Kafka batch event for b to dst and
// returns the extended slice. The output is byte for byte what AWS Lambda's
// Kafka event source mapping sends: records keyed "<topic>-<partition>" in
// batch order, key and value in standard base64 (left out when null), headers
// as arrays of signed bytes.
func AppendEnvelope(dst []byte, b *Batch) []byte {
	dst = append(dst, `{"eventSource":`...)
	dst = appendString(dst, b.EventSource)
	dst = append(dst, `,"bootstrapServers":`...)
	dst = appendString(dst, b.BootstrapServers)
	dst = append(dst, `,"records":{`...)
	for i := range b.Records {
		r := &b.Records[i]
		if i == 0 || r.Partition != b.Records[i-1].Partition || r.Topic != b.Records[i-1].Topic {
			if i > 0 {
				dst = append(dst, "],"...)
			}
			dst = appendPartitionKey(dst, r.Topic, r.Partition)
			dst = append(dst, ":["...)
		} else {
			dst = append(dst, ',')
		}
		dst = AppendRecord(dst, r)
	}
	if len(b.Records) > 0 {
		dst = append(dst, ']')
	}
	return append(dst, "}}"...)
}

// EnvelopeSize returns len(AppendEnvelope(nil, b)) without encoding.
func EnvelopeSize(b *Batch) int {
	n := EnvelopeOverhead(b.EventSource, b.BootstrapServers)
	if len(b.Records) > 0 {
		n-- // PartitionOverhead counts a comma before each partition; the first has none
	}
	for i := range b.Records {
		r := &b.Records[i]
		if i == 0 || r.Partition != b.Records[i-1].Partition || r.Topic != b.Records[i-1].Topic {
			n += PartitionOverhead(r.Topic, r.Partition)
		} else {
			n++ // comma
		}
		n += RecordSize(r)
	}
	return n
}

// EnvelopeOverhead is the size of an envelope with no records.
func EnvelopeOverhead(eventSource, bootstrapServers string) int {
	return len(`{"eventSource":,"bootstrapServers":,"records":{}}`) +
		stringSize(eventSource) + stringSize(bootstrapServers)
}

// PartitionOverhead is what one topic-partition adds to an envelope besides
// its records: the key, the brackets and the comma before it.
func PartitionOverhead(topic string, partition int32) int {
	return len(`,"-":[]`) + stringSize(topic) - 2 + intSize(int64(partition))
}

// AppendRecord appends one record of the envelope as JSON.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"timestampType":"`...)
	dst = append(dst, r.TimestampType.String()...)
	dst = append(dst, '"')
	if r.Key != nil {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Key)
		dst = append(dst, '"')
	}
	if r.Value != nil {
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = appendString(dst, h.Key)
		dst = append(dst, ":["...)
		for j, c := range h.Value {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(int8(c)), 10)
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// RecordSize returns len(AppendRecord(nil, r)) without encoding.
func RecordSize(r *Record) int {
	n := len(`{"topic":,"partition":,"offset":,"timestamp":,"timestampType":"","headers":[]}`) +
		stringSize(r.Topic) + intSize(int64(r.Partition)) + intSize(r.Offset) +
		intSize(r.Timestamp.UnixMilli()) + len(r.TimestampType.String())
	if r.Key != nil {
		n += len(`,"key":""`) + base64.StdEncoding.EncodedLen(len(r.Key))
	}
	if r.Value != nil {
		n += len(`,"value":""`) + base64.StdEncoding.EncodedLen(len(r.Value))
	}
	for i, h := range r.Headers {
		if i > 0 {
			n++
		}
		n += len(`{:[]}`) + stringSize(h.Key)
		for j, c := range h.Value {
			if j > 0 {
				n++
			}
			n += intSize(int64(int8(c)))
		}
	}
	return n
}

func appendPartitionKey(dst []byte, topic string, partition int32) []byte {
	dst = appendString(dst, topic)
	dst = dst[:len(dst)-1] // reopen the string to add "-<partition>"
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	return append(dst, '"')
}

func intSize(v int64) int {
	n := 1
	u := uint64(v)
	if v < 0 {
		n++
		u = -u // also right for math.MinInt64, whose negation does not fit an int64
	}
	for u >= 10 {
		u /= 10
		n++
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// except that <, > and & are left as they are. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// stringSize returns len(appendString(nil, s)).
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
