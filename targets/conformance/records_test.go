package conformance_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// allBytes is every byte value, 0x00 to 0xff.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// mixedBatch is the batch every check delivers: 23 records of three topics
// and four partitions, each partition in offset order, with a null key, an
// empty key, a null value (tombstone), an empty value, text, JSON of every
// kind, a value of every byte, an 8 KB JSON value, a 48 KB binary value, no
// headers, duplicate header names, binary and empty header values, a
// non-ASCII header name, and both timestamp types. More than 10 records,
// so the batch APIs (SendMessageBatch, PublishBatch, PutEvents) need
// several calls.
func mixedBatch() *pipeline.Batch {
	ts := func(ms int64) time.Time { return time.UnixMilli(1_700_000_000_000 + ms) }
	rng := rand.New(rand.NewPCG(1, 2))
	binary := make([]byte, 48<<10)
	for i := range binary {
		binary[i] = byte(rng.UintN(256))
	}
	var items []string
	for i := 0; len(strings.Join(items, ",")) < 8<<10; i++ {
		items = append(items, fmt.Sprintf(`{"sku":"item-%04d","qty":%d,"note":"line \"%d\"\n"}`, i, i%7, i))
	}
	bigJSON := `{"orderId":201,"items":[` + strings.Join(items, ",") + `]}`
	reversed := allBytes()
	slices.Reverse(reversed)

	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b-1.example:9092,b-2.example:9092"}
	b.Records = []pipeline.Record{
		// orders-0
		{Topic: "orders", Partition: 0, Offset: 10, Timestamp: ts(10), Key: []byte("order-1"),
			Value: []byte(`{"orderId":1,"note":"quote \" backslash \\ newline \n tab \t é ✓"}`),
			Headers: []pipeline.Header{
				{Key: "trace", Value: []byte("abc")},
				{Key: "trace", Value: []byte("def")},
				{Key: "bin", Value: []byte{0x00, 0xdc, 0xff, 0x7f, 0x80}},
			}},
		{Topic: "orders", Partition: 0, Offset: 11, Timestamp: ts(11), Key: nil, Value: []byte("plain text, not JSON")},
		{Topic: "orders", Partition: 0, Offset: 12, Timestamp: ts(12), Key: []byte("order-1"), Value: nil,
			Headers: []pipeline.Header{{Key: "deleted", Value: []byte("yes")}}},
		{Topic: "orders", Partition: 0, Offset: 13, Timestamp: ts(13), Key: []byte{}, Value: []byte{},
			Headers: []pipeline.Header{{Key: "empty", Value: []byte{}}, {Key: "größe ✓", Value: []byte("ü")}}},
		// orders-1: failIndex is 5, followed by 6 and 7.
		{Topic: "orders", Partition: 1, Offset: 200, Timestamp: ts(200), Key: allBytes(), Value: reversed,
			Headers: []pipeline.Header{{Key: "all", Value: allBytes()}}},
		{Topic: "orders", Partition: 1, Offset: 201, Timestamp: ts(201), Key: []byte("big-json"), Value: []byte(bigJSON)},
		{Topic: "orders", Partition: 1, Offset: 202, Timestamp: ts(202), Key: []byte("big-binary"), Value: binary,
			Headers: []pipeline.Header{{Key: "content-type", Value: []byte("application/octet-stream")}}},
		{Topic: "orders", Partition: 1, Offset: 203, Timestamp: ts(203), TimestampType: pipeline.LogAppendTime,
			Key: []byte("appended"), Value: []byte(`{"n":203}`)},
		// payments-3
		{Topic: "payments", Partition: 3, Offset: 7, Timestamp: ts(7), Key: []byte("p-7"), Value: []byte(`[1,2,3]`)},
		{Topic: "payments", Partition: 3, Offset: 8, Timestamp: ts(8), Key: []byte("p-8"), Value: []byte(`"a JSON string"`)},
		{Topic: "payments", Partition: 3, Offset: 9, Timestamp: ts(9), Key: []byte("p-9"), Value: []byte(`123.5e3`)},
	}
	// orders-2: small records, so that the batch APIs need three calls.
	for i := range 12 {
		b.Records = append(b.Records, pipeline.Record{Topic: "orders", Partition: 2, Offset: int64(i), Timestamp: ts(int64(i)),
			Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, `{"orderId":%d,"partition":2}`, 1000+i),
			Headers: []pipeline.Header{{Key: "seq", Value: []byte(strconv.Itoa(i))}}})
	}
	return b
}

// wire is a record as a receiver got it. Key and Value are nil for a Kafka
// null. Coords and TimestampType are empty when the receiver does not
// carry them (a record produced to Kafka again).
type wire struct {
	Coords        string
	Timestamp     int64
	TimestampType string
	Key, Value    []byte
	Headers       []pipeline.Header
}

// carries says which fields of a record a receiver gets.
type carries struct {
	coords, timestampType bool
}

// expected is the wire form of r as a receiver that carries c gets it.
func expected(r *pipeline.Record, c carries) wire {
	w := wire{Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value, Headers: r.Headers}
	if c.coords {
		w.Coords = coords(r)
	}
	if c.timestampType {
		w.TimestampType = r.TimestampType.String()
	}
	return w
}

func coords(r *pipeline.Record) string {
	return fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.Offset)
}

// String is the canonical form that comparisons use: every byte of keys,
// values and headers counts (through a SHA-256), and the form stays short
// enough to print.
func (w wire) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s ts=%d", w.Coords, w.Timestamp)
	if w.TimestampType != "" {
		s.WriteString("/" + w.TimestampType)
	}
	s.WriteString(" key=" + show(w.Key) + " value=" + show(w.Value) + " headers=[")
	for i, h := range w.Headers {
		if i > 0 {
			s.WriteString(" ")
		}
		fmt.Fprintf(&s, "%q:%s", h.Key, show(h.Value))
	}
	s.WriteString("]")
	return s.String()
}

// show names a byte string exactly without printing all of it: null, or
// its length, a hash and its start. An empty header value and a missing
// one are alike (Kafka headers have no null the envelope could show).
func show(b []byte) string {
	if b == nil {
		return "null"
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d:%x:%.16q", len(b), sum[:6], b)
}

// decodeRecord decodes one record in the envelope's record format
// (REFERENCE section 1), strictly: every field present except a null key or
// value, which must be left out (not null); key and value standard base64
// with padding; headers one-key objects of signed bytes.
func decodeRecord(raw []byte) (wire, error) {
	var r struct {
		Topic         *string            `json:"topic"`
		Partition     *int32             `json:"partition"`
		Offset        *int64             `json:"offset"`
		Timestamp     *int64             `json:"timestamp"`
		TimestampType *string            `json:"timestampType"`
		Key           json.RawMessage    `json:"key"`
		Value         json.RawMessage    `json:"value"`
		Headers       *[]json.RawMessage `json:"headers"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return wire{}, fmt.Errorf("%w: %.200s", err, raw)
	}
	if dec.More() {
		return wire{}, fmt.Errorf("data after the record: %.200s", raw)
	}
	switch {
	case r.Topic == nil || r.Partition == nil || r.Offset == nil || r.Timestamp == nil || r.TimestampType == nil || r.Headers == nil:
		return wire{}, fmt.Errorf("a field is missing: %.200s", raw)
	case *r.TimestampType != "CREATE_TIME" && *r.TimestampType != "LOG_APPEND_TIME":
		return wire{}, fmt.Errorf("timestampType %q", *r.TimestampType)
	}
	w := wire{Coords: fmt.Sprintf("%s-%d@%d", *r.Topic, *r.Partition, *r.Offset), Timestamp: *r.Timestamp, TimestampType: *r.TimestampType}
	var err error
	if w.Key, err = decodeB64("key", r.Key); err != nil {
		return wire{}, err
	}
	if w.Value, err = decodeB64("value", r.Value); err != nil {
		return wire{}, err
	}
	for _, h := range *r.Headers {
		var m map[string][]int
		if err := json.Unmarshal(h, &m); err != nil || len(m) != 1 {
			return wire{}, fmt.Errorf("header %s is not an object of one key with a list of numbers", h)
		}
		for k, ns := range m {
			v := make([]byte, len(ns))
			for i, n := range ns {
				if n < -128 || n > 127 {
					return wire{}, fmt.Errorf("header %q: %d is not a signed byte", k, n)
				}
				v[i] = byte(int8(n))
			}
			w.Headers = append(w.Headers, pipeline.Header{Key: k, Value: v})
		}
	}
	return w, nil
}

func decodeB64(field string, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return nil, nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return nil, fmt.Errorf("%s is %.40s, not a string (a null %s is left out)", field, raw, field)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(*s)
	if err != nil {
		return nil, fmt.Errorf("%s %.40q is not standard base64: %v", field, *s, err)
	}
	return b, nil
}

// decodeEnvelope decodes a batch envelope and returns its records in
// envelope order. Each list must be keyed by its records' topic and
// partition and be in offset order.
func decodeEnvelope(raw []byte) (eventSource, bootstrap string, out []wire, err error) {
	var env struct {
		EventSource      *string                        `json:"eventSource"`
		BootstrapServers *string                        `json:"bootstrapServers"`
		Records          *orderedMap[[]json.RawMessage] `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return "", "", nil, fmt.Errorf("envelope: %w: %.200s", err, raw)
	}
	if env.EventSource == nil || env.BootstrapServers == nil || env.Records == nil {
		return "", "", nil, fmt.Errorf("envelope without eventSource, bootstrapServers or records: %.200s", raw)
	}
	for _, kv := range env.Records.entries {
		last := int64(-1)
		for _, rr := range kv.value {
			w, err := decodeRecord(rr)
			if err != nil {
				return "", "", nil, err
			}
			tp, off, _ := strings.Cut(w.Coords, "@")
			o, _ := strconv.ParseInt(off, 10, 64)
			if tp != kv.key || o <= last {
				return "", "", nil, fmt.Errorf("record %s under %q after offset %d", w.Coords, kv.key, last)
			}
			last = o
			out = append(out, w)
		}
	}
	return *env.EventSource, *env.BootstrapServers, out, nil
}

// orderedMap decodes a JSON object keeping its keys' order and refusing
// duplicate keys.
type orderedMap[V any] struct {
	entries []struct {
		key   string
		value V
	}
}

func (m *orderedMap[V]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k := tok.(string)
		if seen[k] {
			return fmt.Errorf("key %q twice", k)
		}
		seen[k] = true
		var v V
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		m.entries = append(m.entries, struct {
			key   string
			value V
		}{k, v})
	}
	_, err := dec.Token()
	return err
}

// counts is a multiset of canonical forms.
func counts(ws []wire) map[string]int {
	m := map[string]int{}
	for _, w := range ws {
		m[w.String()]++
	}
	return m
}

// sameRecords checks that got holds each wanted record exactly once and
// nothing else.
func sameRecords(t *testing.T, got, want []wire) {
	t.Helper()
	g, w := counts(got), counts(want)
	for k, n := range w {
		if g[k] != n {
			t.Errorf("received %d times, want %d: %s", g[k], n, k)
		}
	}
	for k, n := range g {
		if w[k] == 0 {
			t.Errorf("received %d times, never sent: %s", n, k)
		}
	}
}

// inOrder checks that the records of each source partition arrived in
// offset order.
func inOrder(t *testing.T, got []wire) {
	t.Helper()
	last := map[string]int64{}
	for _, w := range got {
		tp, off, _ := strings.Cut(w.Coords, "@")
		o, _ := strconv.ParseInt(off, 10, 64)
		if prev, ok := last[tp]; ok && o <= prev {
			t.Errorf("%s arrived after offset %d of its partition", w.Coords, prev)
		}
		last[tp] = o
	}
}

// TestDecoder: the decoder written here reads what the spec says, and
// refuses what it forbids, so that the checks do not pass on a lenient
// reading.
func TestDecoder(t *testing.T) {
	good := `{"topic":"t","partition":1,"offset":2,"timestamp":5,"timestampType":"CREATE_TIME","value":"","headers":[{"a":[-36,0,127]},{"a":[]}]}`
	w, err := decodeRecord([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := wire{Coords: "t-1@2", Timestamp: 5, TimestampType: "CREATE_TIME", Key: nil, Value: []byte{},
		Headers: []pipeline.Header{{Key: "a", Value: []byte{0xdc, 0, 0x7f}}, {Key: "a", Value: []byte{}}}}
	if w.String() != want.String() {
		t.Fatalf("decoded %s, want %s", w, want)
	}
	for _, bad := range []string{
		strings.Replace(good, `"value":""`, `"value":null`, 1),
		strings.Replace(good, `"value":""`, `"value":"YQ"`, 1),
		strings.Replace(good, `"value":""`, `"value":"YQ==","extra":1`, 1),
		strings.Replace(good, `-36`, `220`, 1),
		strings.Replace(good, `,"headers":[{"a":[-36,0,127]},{"a":[]}]`, ``, 1),
		strings.Replace(good, `{"a":[]}`, `{"a":[],"b":[]}`, 1),
		strings.Replace(good, `CREATE_TIME`, `create`, 1),
	} {
		if _, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	b := mixedBatch()
	env := pipeline.AppendEnvelope(nil, b)
	src, boot, got, err := decodeEnvelope(env)
	if err != nil || src != "SelfManagedKafka" || boot != b.BootstrapServers {
		t.Fatalf("envelope: %q %q %v", src, boot, err)
	}
	var all []wire
	for i := range b.Records {
		all = append(all, expected(&b.Records[i], carries{true, true}))
	}
	sameRecords(t, got, all)
	if _, _, _, err := decodeEnvelope(bytes.Replace(env, []byte(`"orders-1":`), []byte(`"orders-9":`), 1)); err == nil {
		t.Error("records under another partition's key were accepted")
	}
	if want := "null"; show(nil) != want || show([]byte{}) == want {
		t.Error("a null and an empty byte string must differ")
	}
}
