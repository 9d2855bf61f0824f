package kafka_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/destinations/file"
	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka"
	_ "github.com/pipe-run/pipe/targets/kafka"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

func testLogger() *slog.Logger {
	if os.Getenv("PIPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// load decodes a pipes.yaml whose target is a kafka block of the lines
// given, so the decoder applies defaults and checks.
func load(t *testing.T, lines ...string) (*pipeline.Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka: {bootstrapServers: \"127.0.0.1:1\", topics: [in]}\n    target:\n      kafka:\n")
	for _, l := range lines {
		for _, ll := range strings.Split(l, "\n") {
			fmt.Fprintf(&y, "        %s\n", ll)
		}
	}
	return pipeline.Parse("pipes.yaml", []byte(y.String()))
}

// newTarget builds the target of such a config.
func newTarget(t *testing.T, lines ...string) pipeline.Target {
	t.Helper()
	cfg, err := load(t, lines...)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "test", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func deliver(t *testing.T, tg pipeline.Target, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Deliver(ctx, b)
}

// batch makes records of source topic "in": n per partition, keys k<i%keys>,
// values {"id":<i>,"dest":"<dest>"} and two headers.
func batch(partitions []int32, n, keys int) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "src:9092"}
	ts := time.UnixMilli(1_700_000_000_000)
	for _, p := range partitions {
		for i := range n {
			b.Records = append(b.Records, pipeline.Record{
				Topic: "in", Partition: p, Offset: int64(100 + i),
				Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
				Key:       fmt.Appendf(nil, "k%d", i%keys),
				Value:     fmt.Appendf(nil, `{"id":%d,"p":%d}`, i, p),
				Headers:   []pipeline.Header{{Key: "trace", Value: fmt.Appendf(nil, "t-%d-%d", p, i)}, {Key: "bin", Value: []byte{0xdc, 0x00}}},
			})
		}
	}
	return b
}

// murmur2 is Kafka's Utils.murmur2, written from the Java source, to check
// the partitioner independently of franz-go.
func murmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func javaPartition(key []byte, n int32) int32 { return (murmur2(key) & 0x7fffffff) % n }

func TestMurmur2Vectors(t *testing.T) {
	// Values of org.apache.kafka.common.utils.Utils.murmur2.
	for s, want := range map[string]int32{"1": -1993445489, "12": 126087238, "123": -267702483, "1234": -1614185708, "12345": -1188365604} {
		if got := murmur2([]byte(s)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestDeliver: records keep their key, value, headers and timestamp, land
// in the partition Kafka's Java client would pick, and keep their order per
// key.
func TestDeliver(t *testing.T) {
	k := testenv.Kafka(t, 4, "out")
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: out")
	b := batch([]int32{0, 1, 2}, 40, 7)
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	got := k.ReadAll(t, "out")
	if len(got) != len(b.Records) {
		t.Fatalf("read %d records, delivered %d", len(got), len(b.Records))
	}
	byValue := map[string]*kgo.Record{}
	perKey := map[string][]string{}
	slices.SortFunc(got, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	for _, r := range got {
		byValue[string(r.Value)] = r
		perKey[string(r.Key)] = append(perKey[string(r.Key)], string(r.Value))
	}
	wantPerKey := map[string][]string{}
	for i := range b.Records {
		src := &b.Records[i]
		wantPerKey[string(src.Key)] = append(wantPerKey[string(src.Key)], string(src.Value))
		r := byValue[string(src.Value)]
		if r == nil {
			t.Fatalf("record %s missing", src.Value)
		}
		if string(r.Key) != string(src.Key) || !r.Timestamp.Equal(src.Timestamp) {
			t.Errorf("record %s: key %q timestamp %v, want %q %v", src.Value, r.Key, r.Timestamp, src.Key, src.Timestamp)
		}
		if want := javaPartition(src.Key, 4); r.Partition != want {
			t.Errorf("key %s in partition %d, Java's partitioner picks %d", src.Key, r.Partition, want)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || string(r.Headers[0].Value) != string(src.Headers[0].Value) ||
			r.Headers[1].Key != "bin" || string(r.Headers[1].Value) != "\xdc\x00" {
			t.Errorf("record %s headers %v", src.Value, r.Headers)
		}
	}
	// Records of one key were produced from three source partitions in
	// batch order; a key's target partition holds them in that order.
	for key, want := range wantPerKey {
		if !slices.Equal(perKey[key], want) {
			t.Errorf("key %s: order %v, want %v", key, perKey[key], want)
		}
	}
}

// TestNullsStayNull: a null key and a tombstone are produced as nulls, an
// empty key as empty.
func TestNullsStayNull(t *testing.T) {
	k := testenv.Kafka(t, 1, "out")
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: out")
	b := &pipeline.Batch{Records: []pipeline.Record{
		{Topic: "in", Offset: 1, Key: nil, Value: []byte("v")},
		{Topic: "in", Offset: 2, Key: []byte{}, Value: nil},
	}}
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	got := k.ReadAll(t, "out")
	if len(got) != 2 || got[0].Key != nil || string(got[0].Value) != "v" || got[1].Key == nil || len(got[1].Key) != 0 || got[1].Value != nil {
		t.Fatalf("got %+v %+v", got[0], got[1])
	}
}

// TestTemplates: topic, key, value and headers from the record.
func TestTemplates(t *testing.T) {
	k := testenv.Kafka(t, 1, "orders-eu", "orders-us")
	tg := newTarget(t, "bootstrapServers: "+k.Addr,
		"topic: orders-<$.value.region>",
		"key: $.value.customer.id",
		`inputTemplate: '{"order": <$.value.id>, "from": "<$.topic>-<$.partition>@<$.offset>", "pipe": "<aws.pipes.pipe-name>"}'`,
		"headers: {source-key: $.key, kind: order, trace: 'x-<$.headers.trace>'}",
		"copyHeaders: true")
	b := &pipeline.Batch{Records: []pipeline.Record{
		{Topic: "in", Partition: 2, Offset: 7, Key: []byte("k1"), Value: []byte(`{"id": 1, "region": "eu", "customer": {"id": "c-9"}}`),
			Headers: []pipeline.Header{{Key: "trace", Value: []byte("abc")}, {Key: "kind", Value: []byte("old")}, {Key: "keep", Value: []byte("me")}}},
		{Topic: "in", Partition: 2, Offset: 8, Key: []byte("k2"), Value: []byte(`{"id": 2, "region": "us", "customer": {"id": 42}}`)},
	}}
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	eu, us := k.ReadAll(t, "orders-eu"), k.ReadAll(t, "orders-us")
	if len(eu) != 1 || len(us) != 1 {
		t.Fatalf("eu %d us %d records", len(eu), len(us))
	}
	if string(eu[0].Key) != "c-9" || string(us[0].Key) != "42" {
		t.Errorf("keys %q %q", eu[0].Key, us[0].Key)
	}
	if want := `{"order": 1, "from": "in-2@7", "pipe": "test"}`; string(eu[0].Value) != want {
		t.Errorf("value %s, want %s", eu[0].Value, want)
	}
	var hs []string
	for _, h := range eu[0].Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	// The source's kind and trace are replaced; keep stays, first.
	if want := "keep=me,kind=order,source-key=k1,trace=x-abc"; strings.Join(hs, ",") != want {
		t.Errorf("headers %s, want %s", strings.Join(hs, ","), want)
	}

	tg = newTarget(t, "bootstrapServers: "+k.Addr, "topic: orders-eu", "copyHeaders: false")
	if err := deliver(t, tg, &pipeline.Batch{Records: b.Records[:1]}); err != nil {
		t.Fatal(err)
	}
	if got := k.ReadAll(t, "orders-eu"); len(got) != 2 || len(got[1].Headers) != 0 {
		t.Fatalf("copyHeaders false: %+v", got[len(got)-1].Headers)
	}
}

// TestPartitioners: sourcePartition keeps the partition number;
// roundRobin spreads one record per partition in turn.
func TestPartitioners(t *testing.T) {
	k := testenv.Kafka(t, 3, "same", "spread")
	b := batch([]int32{0, 2}, 6, 1) // one key for all
	if err := deliver(t, newTarget(t, "bootstrapServers: "+k.Addr, "topic: same", "partitioner: sourcePartition"), b); err != nil {
		t.Fatal(err)
	}
	for _, r := range k.ReadAll(t, "same") {
		if want := fmt.Sprintf(`"p":%d}`, r.Partition); !strings.HasSuffix(string(r.Value), want) {
			t.Errorf("record %s in partition %d", r.Value, r.Partition)
		}
	}
	// A topic with fewer partitions than the source: those records fail
	// for good, the others are produced.
	one := testenv.Kafka(t, 1, "one")
	err := deliver(t, newTarget(t, "bootstrapServers: "+one.Addr, "topic: one", "partitioner: sourcePartition"), batch([]int32{0, 1}, 2, 1))
	if failed, _ := pipeline.RetryOnlyOf(err); !slices.Equal(failed, []int{2, 3}) || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "invalid record partitioning choice of 1 from 1 available") {
		t.Errorf("partition 1 of a 1-partition topic: %v (failed %v)", err, failed)
	}
	if err := deliver(t, newTarget(t, "bootstrapServers: "+k.Addr, "topic: spread", "partitioner: roundRobin"), b); err != nil {
		t.Fatal(err)
	}
	counts := map[int32]int{}
	for _, r := range k.ReadAll(t, "spread") {
		counts[r.Partition]++
	}
	if counts[0] != 4 || counts[1] != 4 || counts[2] != 4 {
		t.Errorf("roundRobin counts %v, want 4 per partition", counts)
	}
}

// TestPartialFailure: a record that fails permanently is reported alone:
// the later records of its source partition are produced and not reported,
// and the other partitions are produced.
func TestPartialFailure(t *testing.T) {
	k := testenv.Kafka(t, 1, "ok")
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: $.value.dest", "maxMessageBytes: 1KB")
	b := &pipeline.Batch{Records: []pipeline.Record{
		destRec(0, 10, "ok", 1),
		destRec(0, 11, "", 1), // no topic: permanent
		destRec(0, 12, "ok", 1),
		destRec(1, 20, "ok", 1),
		destRec(1, 21, "ok", 1),
		destRec(2, 30, "ok", 1),
		destRec(2, 31, "ok", 2000), // too large: permanent
		destRec(2, 32, "ok", 1),
		destRec(3, 40, "bad topic!", 1),
	}}
	err := deliver(t, tg, b)
	failed, ok := pipeline.RetryOnlyOf(err)
	if !ok {
		t.Fatalf("want a partial failure, got %v", err)
	}
	if !slices.Equal(failed, []int{1, 6, 8}) {
		t.Fatalf("failed %v, want [1 6 8]: %v", failed, err)
	}
	if !pipeline.IsPermanent(err) {
		t.Errorf("every failure is permanent, the error is not: %v", err)
	}
	if pipeline.IsTooLarge(err) {
		t.Errorf("one failure of three is a record too large, the error says all are: %v", err)
	}
	for _, want := range []string{"3 of 9 records failed; first in-0@11", "topic $.value.dest is empty for this record"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Everything that could be produced was, once: the records after a
	// permanent failure included.
	var produced []string
	for _, r := range k.ReadAll(t, "ok") {
		produced = append(produced, string(r.Value[:12]))
	}
	if len(produced) != 6 {
		t.Errorf("%d records produced, want 6 (in-0@10, in-0@12, in-1@20, in-1@21, in-2@30, in-2@32): %v", len(produced), produced)
	}

	// Retrying the failed records, as the runner does: all fail again,
	// permanently, as one batch error.
	rest := &pipeline.Batch{Records: []pipeline.Record{b.Records[1], b.Records[6], b.Records[8]}}
	err = deliver(t, tg, rest)
	if _, partial := pipeline.RetryOnlyOf(err); err == nil || partial || !pipeline.IsPermanent(err) {
		t.Fatalf("retry: %v", err)
	}
}

// destRec is a record of source topic "in" whose value names the topic it
// goes to and has size bytes of padding.
func destRec(p int32, off int64, dest string, size int) pipeline.Record {
	v := fmt.Sprintf(`{"dest":%q,"pad":"%s"}`, dest, strings.Repeat("x", size))
	return pipeline.Record{Topic: "in", Partition: p, Offset: off, Value: []byte(v)}
}

// TestTooLarge: a record larger than maxMessageBytes fails as too large
// (the on-failure condition MaximumPayloadSizeExceeded), alone, before it
// is sent; one larger than the topic's max.message.bytes is refused by the
// broker, too large as well. (The broker refuses a whole record batch, so
// maxMessageBytes, which bounds the batches, must not be above the topic's
// limit: the config says so.)
func TestTooLarge(t *testing.T) {
	k := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	limit := "1024"
	resp, err := k.Admin.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &limit}, "ok")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}

	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: ok", "maxMessageBytes: 1KB")
	b := &pipeline.Batch{Records: []pipeline.Record{destRec(0, 10, "ok", 1), destRec(0, 11, "ok", 4000), destRec(0, 12, "ok", 1)}}
	err = deliver(t, tg, b)
	if failed, _ := pipeline.RetryOnlyOf(err); !slices.Equal(failed, []int{1}) || !pipeline.IsTooLarge(err) {
		t.Fatalf("failed %v, too large %v, want [1] too large: %v", failed, pipeline.IsTooLarge(err), err)
	}
	if !strings.Contains(err.Error(), "1 of 3 records failed; first in-0@11: MESSAGE_TOO_LARGE") {
		t.Errorf("error %q does not name the record and why", err)
	}
	if got := len(k.ReadAll(t, "ok")); got != 2 {
		t.Errorf("%d records produced, want 2", got)
	}

	broker := newTarget(t, "bootstrapServers: "+k.Addr, "topic: ok", "maxMessageBytes: 1MB")
	err = deliver(t, broker, &pipeline.Batch{Records: []pipeline.Record{destRec(0, 13, "ok", 4000)}})
	if !pipeline.IsTooLarge(err) || !strings.Contains(err.Error(), "in-0@13: MESSAGE_TOO_LARGE") {
		t.Fatalf("a record over the topic's max.message.bytes: %v, want too large", err)
	}
}

// TestMixedFailures: a failure that a retry may fix (a missing topic)
// reports the rest of its partition, produced or not, and makes the error
// retryable although a record of another partition failed permanently; the
// next attempt produces them, and the permanent failure is left alone.
func TestMixedFailures(t *testing.T) {
	k := testenv.KafkaSecure(t, testenv.SecureKafka{NoAutoCreate: true, Topics: []string{"ok"}})
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: $.value.dest", "maxMessageBytes: 1KB")
	b := &pipeline.Batch{Records: []pipeline.Record{
		destRec(0, 10, "ok", 1),
		destRec(0, 11, "later", 1), // a missing topic: retryable
		destRec(0, 12, "ok", 1),    // produced, retried for order
		destRec(1, 20, "ok", 2000), // too large: permanent
		destRec(1, 21, "ok", 1),
	}}
	err := deliver(t, tg, b)
	failed, _ := pipeline.RetryOnlyOf(err)
	if !slices.Equal(failed, []int{1, 2, 3}) || pipeline.IsPermanent(err) {
		t.Fatalf("failed %v, permanent %v, want [1 2 3] retryable: %v", failed, pipeline.IsPermanent(err), err)
	}
	if !strings.Contains(err.Error(), "2 of 5 records failed, 1 more retried behind a failure that a retry may fix; first in-0@11") {
		t.Errorf("error %q", err)
	}
	if got := len(k.ReadAll(t, "ok")); got != 3 {
		t.Errorf("%d records produced, want 3 (in-0@10, in-0@12, in-1@21)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := k.Admin.CreateTopic(ctx, 1, 1, nil, "later"); err != nil {
		t.Fatal(err)
	}
	rest := &pipeline.Batch{Records: []pipeline.Record{b.Records[1], b.Records[2], b.Records[3]}}
	err = deliver(t, tg, rest)
	if failed, _ := pipeline.RetryOnlyOf(err); !slices.Equal(failed, []int{2}) || !pipeline.IsTooLarge(err) {
		t.Fatalf("retry: failed %v, too large %v, want [2] too large: %v", failed, pipeline.IsTooLarge(err), err)
	}
	if got := len(k.ReadAll(t, "later")); got != 1 {
		t.Errorf("%d records in the topic created since, want 1", got)
	}
}

// TestTooLargeToDestination: through the runner, a record too large goes
// to the on-failure destination alone, as MaximumPayloadSizeExceeded; the
// later records of its partition are in the topic once, and not in the
// destination.
func TestTooLargeToDestination(t *testing.T) {
	k := testenv.Kafka(t, 1, "ok")
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: ok", "maxMessageBytes: 1KB")
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	dest, err := (&file.Config{Path: path}).NewDestination(pipeline.Env{Pipe: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	b := &pipeline.Batch{Records: []pipeline.Record{
		destRec(0, 10, "ok", 1), destRec(0, 11, "ok", 2000), destRec(0, 12, "ok", 1), destRec(0, 13, "ok", 1),
		destRec(1, 20, "ok", 1),
	}}
	pipe := &pipeline.Pipe{Name: "test", Target: tg, OnFailure: dest, MaxRetries: 3,
		Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}, Logger: testLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipe.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	var offsets []string
	for _, r := range k.ReadAll(t, "ok") {
		offsets = append(offsets, string(r.Value[:15]))
	}
	if len(offsets) != 4 {
		t.Errorf("%d records in the topic, want 4 (all but in-0@11, once each)", len(offsets))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"condition":"MaximumPayloadSizeExceeded"`) {
		t.Fatalf("on-failure records, want one of MaximumPayloadSizeExceeded:\n%s", raw)
	}
	fb, err := pipeline.ParseFailureRecord([]byte(lines[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Records) != 1 || fb.Records[0].Partition != 0 || fb.Records[0].Offset != 11 {
		t.Errorf("dead-lettered %+v, want in-0@11 alone", fb.Records)
	}
}

// TestMissingTopic: without auto-creation, a missing topic fails the
// batch within the client's unknown-topic retries, and the runner may
// retry: the topic can be created.
func TestMissingTopic(t *testing.T) {
	k := testenv.KafkaSecure(t, testenv.SecureKafka{NoAutoCreate: true, Topics: []string{"other"}})
	tg := newTarget(t, "bootstrapServers: "+k.Addr, "topic: nope")
	err := deliver(t, tg, batch([]int32{0}, 3, 1))
	if err == nil {
		t.Fatal("delivered to a missing topic")
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("a missing topic must be retried: %v", err)
	}
	if _, partial := pipeline.RetryOnlyOf(err); partial {
		t.Errorf("every record failed; the error should cover the batch: %v", err)
	}
	if !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(err.Error(), "3 of 3 records failed") {
		t.Errorf("error %q", err)
	}
	// Once the topic exists, the same batch goes through.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := k.Admin.CreateTopic(ctx, 1, 1, nil, "nope"); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, tg, batch([]int32{0}, 3, 1)); err != nil {
		t.Fatalf("after creating the topic: %v", err)
	}
	if got := len(k.ReadAll(t, "nope")); got != 3 {
		t.Fatalf("%d records, want 3", got)
	}
}

// TestSecure: over mTLS with SCRAM; a wrong password fails with the
// reason and is retried; with the password fixed, the batch goes through.
func TestSecure(t *testing.T) {
	ca := testenv.NewPKI(t, "Test CA")
	k := testenv.KafkaSecure(t, testenv.SecureKafka{
		TLS:   &testenv.BrokerTLS{CA: ca, ClientCA: ca},
		Users: []testenv.SASLUser{{Mechanism: "SCRAM-SHA-256", User: "bob", Pass: "bob-secret"}},
	})
	cert := ca.Issue(t, "pipe", testenv.CertOpts{})
	key := cert.EncryptedKeyFile(t, "key-secret")
	t.Setenv("PIPE_TEST_KEY_PASSWORD", "key-secret")
	conn := func(pass string) string {
		t.Setenv("PIPE_TEST_KAFKA_PASSWORD", pass)
		return fmt.Sprintf(`tls: {caFile: %s, certFile: %s, keyFile: %s, keyPassword: "${PIPE_TEST_KEY_PASSWORD}"}
sasl: {mechanism: SCRAM-SHA-256, username: bob, password: "${PIPE_TEST_KAFKA_PASSWORD}"}`, ca.CAFile, cert.CertFile, key)
	}
	b := batch([]int32{0, 1}, 5, 3)
	bad := newTarget(t, "bootstrapServers: "+k.Addr, "topic: out", "deliveryTimeout: 2s", conn("wrong-secret"))
	err := deliver(t, bad, b)
	if err == nil {
		t.Fatal("delivered with a wrong password")
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("an authentication failure must be retried (the password may be fixed): %v", err)
	}
	if want := "(authentication failed (SASL SCRAM-SHA-256, user bob; client certificate CN=pipe,O=pipe tests): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	for _, s := range []string{"wrong-secret", "key-secret", "bob-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error shows a secret: %v", err)
		}
	}
	good := newTarget(t, "bootstrapServers: "+k.Addr, "topic: out", "compression: zstd", conn("bob-secret"))
	if err := deliver(t, good, b); err != nil {
		t.Fatal(err)
	}
	got := k.ReadAll(t, "out")
	if len(got) != len(b.Records) {
		t.Fatalf("read %d records, want %d", len(got), len(b.Records))
	}
}

// TestPipe runs a whole pipe, Kafka source to Kafka target on another
// cluster, through the runner.
func TestPipe(t *testing.T) {
	src := testenv.Kafka(t, 3, "in")
	dst := testenv.Kafka(t, 3, "out")
	for p := range int32(3) {
		recs := testenv.Records("in", p, 50, 10, fmt.Sprintf("p%d", p))
		for i, r := range recs {
			r.Key = fmt.Appendf(nil, "key-%d-%d", p, i%5)
			r.Headers = []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}
		}
		src.Produce(t, recs...)
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(fmt.Sprintf(`
pipes:
  - name: mirror
    source:
      kafka: {bootstrapServers: %q, topics: [in], batchSize: 20, maximumBatchingWindow: 10ms}
    target:
      kafka: {bootstrapServers: %q, topic: out}
`, src.Addr, dst.Addr)))
	if err != nil {
		t.Fatal(err)
	}
	pipes, err := pipeline.Build(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, pipes) }()
	testenv.WaitFor(t, 30*time.Second, func() bool {
		n := int64(0)
		for _, o := range dst.HighWatermarks(t, "out")["out"] {
			n += o
		}
		return n >= 150
	}, "150 records mirrored")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	perKey := map[string][]string{}
	for _, r := range dst.ReadAll(t, "out") {
		perKey[string(r.Key)] = append(perKey[string(r.Key)], string(r.Value))
		if r.Partition != javaPartition(r.Key, 3) {
			t.Errorf("key %s in partition %d", r.Key, r.Partition)
		}
	}
	if len(perKey) != 15 {
		t.Fatalf("%d keys, want 15", len(perKey))
	}
	for key, vals := range perKey {
		if !slices.IsSortedFunc(vals, func(a, b string) int { return seq(a) - seq(b) }) || len(vals) != 10 {
			t.Errorf("key %s: %v", key, vals)
		}
	}
	if got := src.CommittedAt(t, "pipe-mirror", "in", 0); got != 50 {
		t.Errorf("committed offset of in-0: %d, want 50", got)
	}
}

// seq reads i from "p<p>-<i>xxx".
func seq(v string) int {
	var p, i int
	fmt.Sscanf(strings.TrimRight(v, "x"), "p%d-%d", &p, &i)
	return i
}

// TestConfigProblems: mistakes are reported at load time, at their place.
func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"bootstrapServers: b:1", "topic: 'bad topic'"},
			`pipes.yaml:8:16: pipe "test": target.kafka.topic: must be a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -), a $.path or a template`},
		{[]string{"bootstrapServers: b:1", "topic: $.value["},
			`pipes.yaml:8:16: pipe "test": target.kafka.topic: does not parse at offset 7: unterminated [`},
		{[]string{"bootstrapServers: 'b:1,c'", "topic: t"},
			`pipes.yaml:7:27: pipe "test": target.kafka.bootstrapServers: "c" is not host:port`},
		{[]string{"bootstrapServers: b:1", "topic: t", "inputTemplate: '{\"a\": <$.value.>}'"},
			`pipes.yaml:9:24: pipe "test": target.kafka.inputTemplate: does not parse at offset 15: a name must follow the dot, not '>' (quote other names: ['...'])`},
		{[]string{"bootstrapServers: b:1", "topic: t", "partitioner: hash"},
			`pipes.yaml:9:22: pipe "test": target.kafka.partitioner: must be one of murmur2, sourcePartition, roundRobin, got "hash"`},
		{[]string{"bootstrapServers: b:1", "topic: t", "sasl: {mechanism: PLAIN, username: u}"},
			`pipes.yaml:9:15: pipe "test": target.kafka.sasl.password: mechanism PLAIN needs password`},
	} {
		_, err := load(t, tc.lines...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v:\n got %v\nwant %s", tc.lines, err, tc.want)
		}
	}
	cfg, err := load(t, "bootstrapServers: b:1", "topic: t")
	if err != nil {
		t.Fatal(err)
	}
	// Building the target touches no network: b:1 does not exist.
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "test", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
}

// TestExamples: the example configs load.
func TestExamples(t *testing.T) {
	t.Setenv("CONFLUENT_BOOTSTRAP", "pkc-1.eu-west-1.aws.confluent.cloud:9092")
	t.Setenv("CONFLUENT_API_KEY", "key")
	t.Setenv("CONFLUENT_API_SECRET", "secret")
	for _, f := range []string{"pipes.yaml", "hosted.yaml"} {
		if _, err := pipeline.LoadFile("../../examples/kafka-to-kafka/" + f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// BenchmarkDeliver produces batches of 500 records of 200 bytes to an
// in-process broker: the target's cost and the client's, over loopback.
func BenchmarkDeliver(b *testing.B) {
	k := testenv.Kafka(b, 3, "out")
	cfg, err := load(&testing.T{}, "bootstrapServers: "+k.Addr, "topic: out")
	if err != nil {
		b.Fatal(err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "bench", Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	batch := batch([]int32{0, 1, 2}, 500/3, 50)
	for i := range batch.Records {
		batch.Records[i].Value = append(batch.Records[i].Value, strings.Repeat("x", 200-len(batch.Records[i].Value))...)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := tg.Deliver(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Records))/b.Elapsed().Seconds(), "records/s")
}
