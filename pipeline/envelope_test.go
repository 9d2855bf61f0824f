package pipeline_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pipe-run/pipe/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output (review the diff before committing)")

// ts is the timestamp of most golden records: the one of the example in
// REFERENCE.md section 1.
var ts = time.UnixMilli(1545084650987)

func rec(topic string, partition int32, offset int64, key, value []byte, headers ...pipeline.Header) pipeline.Record {
	return pipeline.Record{Topic: topic, Partition: partition, Offset: offset, Timestamp: ts, Key: key, Value: value, Headers: headers}
}

func hdr(key, value string) pipeline.Header { return pipeline.Header{Key: key, Value: []byte(value)} }

func batch(servers string, records ...pipeline.Record) pipeline.Batch {
	return pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: servers, Records: records}
}

// goldenBatches are the batches whose envelopes are kept, written by hand
// from REFERENCE.md section 1, in testdata/envelope/<name>.json.
func goldenBatches() map[string]pipeline.Batch {
	withTime := func(r pipeline.Record, ms int64, tt pipeline.TimestampType) pipeline.Record {
		r.Timestamp, r.TimestampType = time.UnixMilli(ms), tt
		return r
	}
	return map[string]pipeline.Batch{
		"one-partition": batch("b-2.example:9092,b-1.example:9092",
			rec("mytopic", 0, 15, []byte("key-15"), []byte("Hello, this is a test."), hdr("headerKey", "headerValue")),
			withTime(rec("mytopic", 0, 16, []byte("key-16"), []byte(`{"orderId":16}`)), 1545084650988, pipeline.CreateTime),
			withTime(rec("mytopic", 0, 17, []byte("key-17"), []byte("x")), 1545084650990, pipeline.CreateTime),
		),
		"several-partitions": batch("a:9092,b:9092",
			rec("orders", 0, 7, nil, []byte("o7")),
			rec("orders", 0, 8, nil, []byte("o8")),
			rec("orders", 1, 3, nil, []byte("o3")),
			rec("orders", 10, 0, nil, []byte("ab")),
			withTime(rec("payments", 12, 1_000_000_000_000, nil, []byte("p1")), 1700000000000, pipeline.CreateTime),
		),
		"null-key": batch("k:9092", rec("t", 0, 1, nil, []byte("v"))),
		"tombstone": batch("k:9092",
			rec("t", 0, 2, []byte("k"), nil),
			rec("t", 0, 3, nil, nil),
		),
		"empty-key-value": batch("k:9092",
			rec("t", 0, 4, []byte{}, []byte{}, pipeline.Header{Key: "empty", Value: []byte{}}, pipeline.Header{Key: "nil"}),
		),
		"no-headers": batch("k:9092",
			rec("t", 0, 5, nil, []byte("v")),
			rec("t", 0, 6, nil, []byte("v"), []pipeline.Header{}...),
		),
		"duplicate-headers": batch("k:9092",
			rec("t", 0, 7, nil, []byte("v"), hdr("a", "1"), hdr("b", "2"), hdr("a", "3")),
		),
		"signed-header-bytes": batch("k:9092",
			rec("t", 0, 8, nil, []byte{0xFB, 0xFF, 0xFE},
				pipeline.Header{Key: "bytes", Value: []byte{0x00, 0x7F, 0x80, 0xDC, 0xFF}},
				pipeline.Header{Key: "high", Value: []byte{0x81, 0xFE, 0xFD, 0xFC}}),
		),
		"log-append-time": batch("k:9092",
			withTime(rec("t", 0, 9, nil, []byte("v")), 1545084650987, pipeline.LogAppendTime),
			withTime(rec("t", 0, 10, nil, []byte("v")), 1545084650999, pipeline.CreateTime),
		),
		"escapes": batch("k:9092",
			rec("q\"b\\s\x01\t</>&é", 3, 11, nil, nil,
				pipeline.Header{Key: "bad\xffutf8"},
				pipeline.Header{Key: "\b\f\n\r\x1f\x00"},
				pipeline.Header{Key: "\u2028\u2029"},
				pipeline.Header{Key: "cut\xe2\x82"},
				pipeline.Header{Key: "ok\ufffd😀"}),
		),
		"extremes": batch("k:9092",
			withTime(rec("t", math.MaxInt32, math.MaxInt64, nil, nil), -1, pipeline.CreateTime),
		),
		"empty-batch": batch("k:9092"),
	}
}

func TestEnvelopeGolden(t *testing.T) {
	for name, b := range goldenBatches() {
		t.Run(name, func(t *testing.T) {
			got := append(pipeline.AppendEnvelope(nil, &b), '\n')
			file := filepath.Join("testdata", "envelope", name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("envelope differs from %s\n got: %s\nwant: %s", file, got, want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
			if n := pipeline.EnvelopeSize(&b); n != len(got)-1 {
				t.Errorf("EnvelopeSize = %d, len(AppendEnvelope) = %d", n, len(got)-1)
			}
		})
	}
}

// TestEnvelopeGoldenFilesUsed fails on a golden file that no case writes,
// so a renamed case cannot leave a stale file behind.
func TestEnvelopeGoldenFilesUsed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "envelope", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := goldenBatches()
	for _, f := range files {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(f), ".json")]; !ok {
			t.Errorf("%s belongs to no test case", f)
		}
	}
	if len(files) != len(cases) {
		t.Errorf("%d golden files for %d cases", len(files), len(cases))
	}
}

func TestAppendEnvelopeAppends(t *testing.T) {
	b := goldenBatches()["one-partition"]
	prefix := []byte("prefix:")
	got := pipeline.AppendEnvelope(append([]byte(nil), prefix...), &b)
	want := append(append([]byte(nil), prefix...), pipeline.AppendEnvelope(nil, &b)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendEnvelope did not keep dst:\n got: %s\nwant: %s", got, want)
	}
	r := &b.Records[0]
	got = pipeline.AppendRecord([]byte("["), r)
	if !bytes.HasPrefix(got, []byte(`[{"topic":"mytopic"`)) || len(got) != 1+pipeline.RecordSize(r) {
		t.Fatalf("AppendRecord did not keep dst: %s", got)
	}
}

// wantString is s as it reads after a JSON round trip: each byte of invalid
// UTF-8 becomes U+FFFD.
func wantString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// partitionKeys returns the "<topic>-<partition>" keys of b in batch order
// and the records under each.
func partitionKeys(b *pipeline.Batch) ([]string, map[string][]pipeline.Record) {
	var keys []string
	groups := map[string][]pipeline.Record{}
	for _, r := range b.Records {
		k := wantString(r.Topic) + "-" + strconv.Itoa(int(r.Partition))
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	return keys, groups
}

// checkLambdaDecodes decodes an envelope with aws-lambda-go's
// events.KafkaEvent, the type Lambda functions in Go use, and checks that
// every field of every record comes back as it went in.
func checkLambdaDecodes(t *testing.T, b *pipeline.Batch, out []byte) {
	t.Helper()
	var ev events.KafkaEvent
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatalf("events.KafkaEvent cannot decode the envelope: %v\n%s", err, out)
	}
	// The same envelope decoded loosely, to tell a missing key or value
	// (null) from an empty one, which KafkaEvent does not.
	var raw struct {
		Records map[string][]map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	if ev.EventSource != b.EventSource || ev.BootstrapServers != b.BootstrapServers || ev.EventSourceARN != "" {
		t.Errorf("event: source %q servers %q arn %q, want %q %q \"\"", ev.EventSource, ev.BootstrapServers, ev.EventSourceARN, b.EventSource, b.BootstrapServers)
	}
	keys, groups := partitionKeys(b)
	if len(ev.Records) != len(keys) {
		t.Errorf("event has %d partitions, batch %d", len(ev.Records), len(keys))
	}
	for _, k := range keys {
		got, want := ev.Records[k], groups[k]
		if len(got) != len(want) {
			t.Errorf("%s: %d records, want %d", k, len(got), len(want))
			continue
		}
		for i, w := range want {
			g := got[i]
			where := fmt.Sprintf("%s[%d]", k, i)
			if g.Topic != wantString(w.Topic) || g.Partition != int64(w.Partition) || g.Offset != w.Offset {
				t.Errorf("%s: topic/partition/offset %q/%d/%d, want %q/%d/%d", where, g.Topic, g.Partition, g.Offset, w.Topic, w.Partition, w.Offset)
			}
			if g.Timestamp.UnixMilli() != w.Timestamp.UnixMilli() || g.TimestampType != w.TimestampType.String() {
				t.Errorf("%s: timestamp %d %s, want %d %s", where, g.Timestamp.UnixMilli(), g.TimestampType, w.Timestamp.UnixMilli(), w.TimestampType)
			}
			for _, f := range []struct {
				name    string
				encoded string
				want    []byte
			}{{"key", g.Key, w.Key}, {"value", g.Value, w.Value}} {
				dec, err := base64.StdEncoding.DecodeString(f.encoded)
				if err != nil || !bytes.Equal(dec, f.want) {
					t.Errorf("%s: %s %q decodes to %q (%v), want %q", where, f.name, f.encoded, dec, err, f.want)
				}
				if _, present := raw.Records[k][i][f.name]; present != (f.want != nil) {
					t.Errorf("%s: %s present = %v for a %s one", where, f.name, present, map[bool]string{true: "non-null", false: "null"}[f.want != nil])
				}
			}
			if len(g.Headers) != len(w.Headers) {
				t.Errorf("%s: %d headers, want %d", where, len(g.Headers), len(w.Headers))
				continue
			}
			for j, h := range w.Headers {
				v, ok := g.Headers[j][wantString(h.Key)]
				if len(g.Headers[j]) != 1 || !ok || !bytes.Equal(v, h.Value) {
					t.Errorf("%s: header %d = %v, want {%q: %v}", where, j, g.Headers[j], h.Key, h.Value)
				}
			}
		}
	}
}

func TestEnvelopeDecodesAsLambdaKafkaEvent(t *testing.T) {
	for name, b := range goldenBatches() {
		t.Run(name, func(t *testing.T) {
			checkLambdaDecodes(t, &b, pipeline.AppendEnvelope(nil, &b))
		})
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			b := randomBatch(rng, false)
			checkLambdaDecodes(t, &b, pipeline.AppendEnvelope(nil, &b))
			if t.Failed() {
				return
			}
		}
	})
	t.Run("every header byte", func(t *testing.T) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		b := batch("k:9092", rec("t", 0, 0, all, all, pipeline.Header{Key: "all", Value: all}))
		checkLambdaDecodes(t, &b, pipeline.AppendEnvelope(nil, &b))
	})
}

// TestLambdaNeedsSignedBytes shows why header bytes are signed: written as
// unsigned numbers, a byte above 0x7F breaks aws-lambda-go's decoding.
func TestLambdaNeedsSignedBytes(t *testing.T) {
	var ev events.KafkaEvent
	unsigned := `{"records":{"t-0":[{"topic":"t","headers":[{"h":[220]}]}]}}`
	if err := json.Unmarshal([]byte(unsigned), &ev); err == nil {
		t.Fatal("events.KafkaEvent accepted 220 as a header byte; the envelope's signed bytes would not be needed")
	}
	b := batch("k:9092", rec("t", 0, 0, nil, nil, pipeline.Header{Key: "h", Value: []byte{220}}))
	out := pipeline.AppendEnvelope(nil, &b)
	if !bytes.Contains(out, []byte(`{"h":[-36]}`)) {
		t.Fatalf("0xDC not written as -36: %s", out)
	}
}

// Pieces of random strings: plain text, every kind of JSON escape, multi-byte
// runes, and (when invalid is set) broken UTF-8.
var (
	validPieces   = []string{"a", "orders", "Z9", ".", "_", "-", " ", `"`, `\`, "/", "<", ">", "&", "\x00", "\x01", "\b", "\f", "\n", "\r", "\t", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\u2029", "\ufffd", "\U0010FFFF"}
	invalidPieces = []string{"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"}
)

func randomString(rng *rand.Rand, invalid bool, maxPieces int) string {
	var b strings.Builder
	for range rng.IntN(maxPieces + 1) {
		if invalid && rng.IntN(5) == 0 {
			b.WriteString(invalidPieces[rng.IntN(len(invalidPieces))])
		} else {
			b.WriteString(validPieces[rng.IntN(len(validPieces))])
		}
	}
	return b.String()
}

func randomBytes(rng *rand.Rand, max int) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(max+1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randomInt64(rng *rand.Rand) int64 {
	switch rng.IntN(6) {
	case 0:
		return []int64{0, -1, 1, 9, 10, -9, -10, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}[rng.IntN(10)]
	case 1:
		return rng.Int64N(1000)
	case 2:
		return -rng.Int64N(1 << 40)
	}
	return int64(rng.Uint64())
}

func randomRecord(rng *rand.Rand, topic string, partition int32, offset int64, invalid bool) pipeline.Record {
	r := pipeline.Record{
		Topic:         topic,
		Partition:     partition,
		Offset:        offset,
		Timestamp:     time.UnixMilli(randomInt64(rng)),
		TimestampType: pipeline.TimestampType(rng.IntN(2)),
		Key:           randomBytes(rng, 40),
		Value:         randomBytes(rng, 300),
	}
	for range rng.IntN(5) {
		r.Headers = append(r.Headers, pipeline.Header{Key: randomString(rng, invalid, 6), Value: randomBytes(rng, 20)})
	}
	return r
}

// randomBatch returns a batch of up to 5 partitions of up to 6 records each.
// Without invalid, every string is valid UTF-8 and partitions are not
// negative, so the envelope decodes back to the same values.
func randomBatch(rng *rand.Rand, invalid bool) pipeline.Batch {
	b := pipeline.Batch{
		EventSource:      []string{pipeline.EventSourceSelfManagedKafka, "aws:kafka"}[rng.IntN(2)],
		BootstrapServers: randomString(rng, invalid, 8),
	}
	seen := map[string]bool{}
	for p := range rng.IntN(6) {
		topic := randomString(rng, invalid, 5)
		partition := int32(p)
		if rng.IntN(3) == 0 {
			partition = int32(rng.Uint32() >> 1)
			if invalid && rng.IntN(2) == 0 {
				partition = -partition - 1
			}
		}
		if k := wantString(topic) + "-" + strconv.Itoa(int(partition)); seen[k] {
			continue // one list per key
		} else {
			seen[k] = true
		}
		offset := randomInt64(rng)
		if offset > math.MaxInt64-10 {
			offset = math.MaxInt64 - 10
		}
		for i := range rng.IntN(6) + 1 {
			b.Records = append(b.Records, randomRecord(rng, topic, partition, offset+int64(i), invalid))
		}
	}
	return b
}

// refRecord is a record as encoding/json writes it, the reference the
// hand-written encoder is checked against.
type refRecord struct {
	Topic         string              `json:"topic"`
	Partition     int32               `json:"partition"`
	Offset        int64               `json:"offset"`
	Timestamp     int64               `json:"timestamp"`
	TimestampType string              `json:"timestampType"`
	Key           *[]byte             `json:"key,omitempty"`
	Value         *[]byte             `json:"value,omitempty"`
	Headers       []map[string][]int8 `json:"headers"`
}

func refJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func refRecordJSON(t *testing.T, r *pipeline.Record) []byte {
	rr := refRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), TimestampType: r.TimestampType.String(),
		Headers: []map[string][]int8{},
	}
	if r.Key != nil {
		rr.Key = &r.Key
	}
	if r.Value != nil {
		rr.Value = &r.Value
	}
	for _, h := range r.Headers {
		v := make([]int8, len(h.Value))
		for i, c := range h.Value {
			v[i] = int8(c)
		}
		rr.Headers = append(rr.Headers, map[string][]int8{h.Key: v})
	}
	return refJSON(t, rr)
}

func refEnvelopeJSON(t *testing.T, b *pipeline.Batch) []byte {
	out := []byte(`{"eventSource":`)
	out = append(out, refJSON(t, b.EventSource)...)
	out = append(out, `,"bootstrapServers":`...)
	out = append(out, refJSON(t, b.BootstrapServers)...)
	out = append(out, `,"records":{`...)
	for i := range b.Records {
		r := &b.Records[i]
		if i > 0 && r.Topic == b.Records[i-1].Topic && r.Partition == b.Records[i-1].Partition {
			out = append(out, ',')
		} else {
			if i > 0 {
				out = append(out, "],"...)
			}
			out = append(out, refJSON(t, r.Topic+"-"+strconv.Itoa(int(r.Partition)))...)
			out = append(out, ":["...)
		}
		out = append(out, refRecordJSON(t, r)...)
	}
	if len(b.Records) > 0 {
		out = append(out, ']')
	}
	return append(out, "}}"...)
}

// TestEnvelopeProperties checks random batches, with every kind of string
// and number, against encoding/json and the size functions against the
// encoder.
func TestEnvelopeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 3000 {
		b := randomBatch(rng, true)
		out := pipeline.AppendEnvelope(nil, &b)
		if !json.Valid(out) {
			t.Fatalf("batch %d: invalid JSON: %q", i, out)
		}
		if want := refEnvelopeJSON(t, &b); !bytes.Equal(out, want) {
			t.Fatalf("batch %d: envelope differs from encoding/json's\n got: %q\nwant: %q", i, out, want)
		}
		if n := pipeline.EnvelopeSize(&b); n != len(out) {
			t.Fatalf("batch %d: EnvelopeSize = %d, len(AppendEnvelope) = %d\n%q", i, n, len(out), out)
		}
		for j := range b.Records {
			r := &b.Records[j]
			rout := pipeline.AppendRecord(nil, r)
			if n := pipeline.RecordSize(r); n != len(rout) {
				t.Fatalf("batch %d record %d: RecordSize = %d, len(AppendRecord) = %d\n%q", i, j, n, len(rout), rout)
			}
		}
	}
}

// TestPartitionOverhead checks the pieces a source adds up while a batch
// grows (see sources/kafka) against the real envelope.
func TestPartitionOverhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 500 {
		b := randomBatch(rng, true)
		n := pipeline.EnvelopeOverhead(b.EventSource, b.BootstrapServers)
		for j := range b.Records {
			r := &b.Records[j]
			if j == 0 || r.Topic != b.Records[j-1].Topic || r.Partition != b.Records[j-1].Partition {
				n += pipeline.PartitionOverhead(r.Topic, r.Partition)
			} else {
				n++
			}
			n += pipeline.RecordSize(r)
		}
		if len(b.Records) > 0 {
			n-- // PartitionOverhead counts a comma before every partition, the first has none
		}
		if got := len(pipeline.AppendEnvelope(nil, &b)); n != got {
			t.Fatalf("batch %d: overheads add up to %d, envelope is %d bytes", i, n, got)
		}
	}
}

func benchBatch() pipeline.Batch {
	b := batch("b-1.example:9092,b-2.example:9092")
	value := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	for i := range 100 {
		b.Records = append(b.Records, pipeline.Record{
			Topic: "orders", Partition: int32(i / 25), Offset: int64(1_000_000 + i), Timestamp: ts,
			Key: []byte(fmt.Sprintf("order-%08d", i)), Value: value,
			Headers: []pipeline.Header{hdr("content-type", "application/json"), hdr("trace", "00-4bf92f3577b34da6-01")},
		})
	}
	return b
}

func TestAppendEnvelopeDoesNotAllocate(t *testing.T) {
	b := benchBatch()
	buf := make([]byte, 0, pipeline.EnvelopeSize(&b))
	allocs := testing.AllocsPerRun(20, func() {
		buf = pipeline.AppendEnvelope(buf[:0], &b)
		_ = pipeline.EnvelopeSize(&b)
	})
	if allocs != 0 {
		t.Fatalf("AppendEnvelope and EnvelopeSize into a large enough buffer: %v allocations, want 0", allocs)
	}
}

// BenchmarkAppendEnvelope encodes 100 records of 1 KiB into a reused buffer.
func BenchmarkAppendEnvelope(bm *testing.B) {
	b := benchBatch()
	buf := make([]byte, 0, pipeline.EnvelopeSize(&b))
	bm.SetBytes(int64(cap(buf)))
	bm.ReportAllocs()
	for bm.Loop() {
		buf = pipeline.AppendEnvelope(buf[:0], &b)
	}
}

// BenchmarkEnvelopeSize sizes the same batch without encoding it.
func BenchmarkEnvelopeSize(bm *testing.B) {
	b := benchBatch()
	bm.ReportAllocs()
	for bm.Loop() {
		_ = pipeline.EnvelopeSize(&b)
	}
}
