package enrich

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// ErrBadResponse is matched (errors.Is) by the error of an answer that is
// none of the shapes of the contract.
var ErrBadResponse = errors.New("enrichment answer")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadResponse}, args...)...)
}

// Apply reads an enrichment's answer to the batch in and returns the batch
// that replaces it, or nil when nothing is left to deliver. The shapes of
// the answer are described in the package doc. Apply does not change in;
// the records it returns may share memory with answer.
func Apply(answer []byte, in *pipeline.Batch) (*pipeline.Batch, error) {
	s := bytes.TrimSpace(answer)
	if len(s) == 0 {
		return nil, nil
	}
	if len(s) > MaxResponseSize {
		return nil, badf("%d bytes, above the %d-byte limit", len(s), MaxResponseSize)
	}
	v, err := pipeline.ParseJSON(s)
	if err != nil {
		return nil, badf("not JSON: %s", snippet(s))
	}
	out := &pipeline.Batch{EventSource: in.EventSource, BootstrapServers: in.BootstrapServers}
	switch v.Type {
	case pipeline.TypeNull:
		return nil, nil
	case pipeline.TypeString:
		if v.Str == "" {
			return nil, nil
		}
		return nil, badf("a JSON string, not an object or array: %s", snippet(s))
	case pipeline.TypeObject:
		if len(v.Fields) == 0 {
			return nil, nil
		}
		recs := v.Get("records")
		switch {
		case recs == nil:
			return nil, badf(`an object without "records": %s`, snippet(s))
		case recs.Type == pipeline.TypeNull:
			return nil, nil
		case recs.Type != pipeline.TypeObject:
			return nil, badf(`"records" is %s, not an object keyed "<topic>-<partition>"`, recs.Type)
		}
		if err := byCoordinates(recs, in, out); err != nil {
			return nil, err
		}
	case pipeline.TypeArray:
		switch {
		case len(v.Elems) == 0:
			return nil, nil
		case len(v.Elems) == len(in.Records):
			for i := range v.Elems {
				e := &v.Elems[i]
				if e.Type == pipeline.TypeNull {
					continue
				}
				r := &in.Records[i]
				out.Records = append(out.Records, pipeline.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
					Timestamp: r.Timestamp, TimestampType: r.TimestampType, Key: r.Key, Value: valueOf(e), Headers: r.Headers})
			}
		default:
			if len(in.Records) == 0 {
				return nil, badf("new events for an empty batch")
			}
			first := &in.Records[0]
			for i := range v.Elems {
				e := &v.Elems[i]
				if e.Type == pipeline.TypeNull {
					continue
				}
				out.Records = append(out.Records, pipeline.Record{Topic: first.Topic, Partition: first.Partition, Offset: first.Offset,
					Timestamp: first.Timestamp, TimestampType: first.TimestampType, Value: valueOf(e)})
			}
		}
	default:
		return nil, badf("a JSON %s, not an object or array: %s", v.Type, snippet(s))
	}
	if len(out.Records) == 0 {
		return nil, nil
	}
	return out, nil
}

// valueOf is the record value an element of an answer array stands for: a
// string's text, any other value's JSON text as written.
func valueOf(e *pipeline.Value) []byte {
	if e.Type == pipeline.TypeString {
		return []byte(e.Str)
	}
	return e.Raw
}

type coord struct {
	topic     string
	partition int32
	offset    int64
}

// byCoordinates replaces the records of in with those of an envelope-shaped
// answer, matched by topic, partition and offset; the records of in that
// the answer leaves out are dropped. The result keeps the order of in.
func byCoordinates(recs *pipeline.Value, in *pipeline.Batch, out *pipeline.Batch) error {
	at := make(map[coord]int, len(in.Records))
	for i := range in.Records {
		r := &in.Records[i]
		at[coord{r.Topic, r.Partition, r.Offset}] = i
	}
	replaced := make([]*pipeline.Record, len(in.Records))
	for _, f := range recs.Fields {
		if f.Value.Type != pipeline.TypeArray {
			return badf("records[%q] is %s, not a list of records", f.Name, f.Value.Type)
		}
		for j := range f.Value.Elems {
			e := &f.Value.Elems[j]
			where := fmt.Sprintf("records[%q][%d]", f.Name, j)
			if e.Type != pipeline.TypeObject {
				return badf("%s is %s, not a record", where, e.Type)
			}
			c, err := coordOf(e, where)
			if err != nil {
				return err
			}
			if want := c.topic + "-" + strconv.Itoa(int(c.partition)); f.Name != want {
				return badf("%s is a record of %s, listed under %q", where, want, f.Name)
			}
			i, ok := at[c]
			if !ok {
				return badf("%s is %s-%d offset %d, which is not in the batch", where, c.topic, c.partition, c.offset)
			}
			if replaced[i] != nil {
				return badf("%s: %s-%d offset %d is in the answer twice", where, c.topic, c.partition, c.offset)
			}
			r, err := replace(&in.Records[i], e, where)
			if err != nil {
				return err
			}
			replaced[i] = r
		}
	}
	for _, r := range replaced {
		if r != nil {
			out.Records = append(out.Records, *r)
		}
	}
	return nil
}

func coordOf(e *pipeline.Value, where string) (coord, error) {
	var c coord
	t := e.Get("topic")
	if t == nil || t.Type != pipeline.TypeString {
		return c, badf(`%s has no "topic" string`, where)
	}
	c.topic = t.Str
	p, ok := integer(e.Get("partition"), math.MinInt32, math.MaxInt32)
	if !ok {
		return c, badf(`%s has no integer "partition"`, where)
	}
	c.partition = int32(p)
	if c.offset, ok = integer(e.Get("offset"), math.MinInt64, math.MaxInt64); !ok {
		return c, badf(`%s has no integer "offset"`, where)
	}
	return c, nil
}

// integer reads an integer number within [lo, hi].
func integer(v *pipeline.Value, lo, hi int64) (int64, bool) {
	if v == nil || v.Type != pipeline.TypeNumber {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Str, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// replace builds the record that e, an envelope record of the answer,
// makes of r. A field e leaves out keeps r's; key and value null are a
// Kafka null, headers null is no headers.
func replace(r *pipeline.Record, e *pipeline.Value, where string) (*pipeline.Record, error) {
	nr := &pipeline.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp, TimestampType: r.TimestampType, Key: r.Key, Value: r.Value, Headers: r.Headers}
	var err error
	if k := e.Get("key"); k != nil {
		if nr.Key, err = base64Field(k, where, "key"); err != nil {
			return nil, err
		}
	}
	if v := e.Get("value"); v != nil {
		if nr.Value, err = base64Field(v, where, "value"); err != nil {
			return nil, err
		}
	}
	if ts := e.Get("timestamp"); ts != nil {
		ms, ok := integer(ts, math.MinInt64, math.MaxInt64)
		if !ok {
			return nil, badf(`%s: "timestamp" is not an integer (epoch milliseconds)`, where)
		}
		nr.Timestamp = time.UnixMilli(ms)
	}
	if tt := e.Get("timestampType"); tt != nil {
		switch {
		case tt.Type == pipeline.TypeString && tt.Str == "CREATE_TIME":
			nr.TimestampType = pipeline.CreateTime
		case tt.Type == pipeline.TypeString && tt.Str == "LOG_APPEND_TIME":
			nr.TimestampType = pipeline.LogAppendTime
		default:
			return nil, badf(`%s: "timestampType" is not CREATE_TIME or LOG_APPEND_TIME`, where)
		}
	}
	if h := e.Get("headers"); h != nil {
		if nr.Headers, err = headers(h, where); err != nil {
			return nil, err
		}
	}
	return nr, nil
}

func base64Field(v *pipeline.Value, where, name string) ([]byte, error) {
	switch v.Type {
	case pipeline.TypeNull:
		return nil, nil
	case pipeline.TypeString:
		b, err := base64.StdEncoding.DecodeString(v.Str)
		if err != nil {
			return nil, badf("%s: %q is not standard base64", where, name)
		}
		return b, nil
	}
	return nil, badf("%s: %q is %s, not a base64 string", where, name, v.Type)
}

// headers reads envelope headers: a list of one-key objects whose values
// are lists of bytes, written as signed (-128..127) or unsigned (0..255)
// integers.
func headers(v *pipeline.Value, where string) ([]pipeline.Header, error) {
	if v.Type == pipeline.TypeNull {
		return nil, nil
	}
	if v.Type != pipeline.TypeArray {
		return nil, badf(`%s: "headers" is %s, not a list`, where, v.Type)
	}
	hs := make([]pipeline.Header, 0, len(v.Elems))
	for i := range v.Elems {
		h := &v.Elems[i]
		if h.Type != pipeline.TypeObject || len(h.Fields) != 1 || h.Fields[0].Value.Type != pipeline.TypeArray {
			return nil, badf(`%s: headers[%d] is not an object with one key whose value is a list of bytes`, where, i)
		}
		bs := h.Fields[0].Value.Elems
		val := make([]byte, len(bs))
		for j := range bs {
			n, ok := integer(&bs[j], -128, 255)
			if !ok {
				return nil, badf(`%s: headers[%d] holds something other than bytes (-128..255)`, where, i)
			}
			val[j] = byte(n)
		}
		hs = append(hs, pipeline.Header{Key: h.Fields[0].Name, Value: val})
	}
	return hs, nil
}

// snippet returns the start of an answer for an error message.
func snippet(b []byte) string {
	const n = 128
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
