package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// po names a record of the test topic: partition and offset.
type po struct {
	p int32
	o int64
}

func (x po) String() string { return fmt.Sprintf("%d@%d", x.p, x.o) }

// rec is a record as a plain franz-go consumer reads it back: the ground
// truth that deliveries are compared with.
type rec struct {
	key, value []byte // nil: null
	headers    []kgo.RecordHeader
	ts         int64 // epoch ms
	tsType     string
}

// produced is a record as the test meant to write it.
type produced struct {
	key, value []byte // nil: null
	headers    []kgo.RecordHeader
}

// kcat's delimiters: bytes that the generated keys and values never hold.
const (
	keyDelim = "\x1f"
	msgDelim = "\x1e\x1d"
)

// kcatRun is one `kcat -P` invocation into one partition.
type kcatRun struct {
	flags   []string
	headers []kgo.RecordHeader // as the -H flags set them
	null    bool               // -Z: empty keys and values are sent as null
	input   bytes.Buffer
	want    []produced
}

// hdr is a -H flag: "name=value", or "name" alone for a null value.
type hdr struct {
	name, value string
	null        bool
}

func newKcatRun(null bool, flags []string, headers ...hdr) *kcatRun {
	r := &kcatRun{null: null, flags: flags}
	if null {
		r.flags = append(r.flags, "-Z")
	}
	for _, h := range headers {
		if h.null {
			r.flags = append(r.flags, "-H", h.name)
			r.headers = append(r.headers, kgo.RecordHeader{Key: h.name})
			continue
		}
		r.flags = append(r.flags, "-H", h.name+"="+h.value)
		r.headers = append(r.headers, kgo.RecordHeader{Key: h.name, Value: []byte(h.value)})
	}
	return r
}

// keyed adds a line KEY<delim>VALUE: an empty key or value is sent empty, or
// as null with -Z.
func (r *kcatRun) keyed(key, value []byte) {
	r.input.Write(key)
	r.input.WriteString(keyDelim)
	r.input.Write(value)
	r.input.WriteString(msgDelim)
	k, v := bytes.Clone(key), bytes.Clone(value)
	if k == nil {
		k = []byte{}
	}
	if v == nil {
		v = []byte{}
	}
	if r.null && len(k) == 0 {
		k = nil
	}
	if r.null && len(v) == 0 {
		v = nil
	}
	r.want = append(r.want, produced{key: k, value: v, headers: r.headers})
}

// unkeyed adds a line without the key delimiter: a null key. kcat skips
// empty messages, so value must not be empty.
func (r *kcatRun) unkeyed(value []byte) {
	if len(value) == 0 {
		panic("kcat skips empty messages")
	}
	r.input.Write(value)
	r.input.WriteString(msgDelim)
	r.want = append(r.want, produced{value: bytes.Clone(value), headers: r.headers})
}

// randBytes returns n random bytes, high bytes, NUL and newlines included,
// but never kcat's delimiters.
func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		for {
			b[i] = byte(rng.UintN(256))
			if b[i] < 0x1d || b[i] > 0x1f {
				break
			}
		}
	}
	return b
}

// kcatRecordsPerPartition is what produceWithKcat writes to each partition.
const kcatRecordsPerPartition = 2500

// produceWithKcat writes 2,500 records to each partition of topic with
// three kcat runs per partition that differ in flags: keys, null keys
// (lines without the key delimiter, and empty keys under -Z), empty keys,
// empty values, tombstones, binary keys and values, headers with high
// bytes, duplicate names and null values, no headers, gzip and lz4. It
// returns the records as meant, per partition in offset order.
func produceWithKcat(t *testing.T, b *broker, topic string) map[int32][]produced {
	t.Helper()
	want := map[int32][]produced{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []string
	)
	for p := int32(0); p < partitions; p++ {
		rng := rand.New(rand.NewPCG(uint64(p), 42))
		a := newKcatRun(false, nil,
			hdr{name: "trace", value: fmt.Sprintf("p%d-a", p)},
			hdr{name: "bin", value: "\xdc\xff\x80\x7f\x01"},
			hdr{name: "trace", value: "dup"},
			hdr{name: "eq", value: "a=b"},
			hdr{name: "empty"},
			hdr{name: "novalue", null: true},
			hdr{name: "héader", value: "ü"})
		for i := range 1000 {
			key := []byte(fmt.Sprintf("order-%d-%d", p, i))
			value := []byte(fmt.Sprintf(`{"orderId":%d,"partition":%d,"item":"caf\u00e9 \"%d\""}`, i, p, i%7))
			switch i % 10 {
			case 6:
				a.unkeyed(value)
			case 7:
				a.keyed(nil, value)
			case 8:
				a.keyed(key, nil)
			case 9:
				a.keyed(nil, nil)
			default:
				a.keyed(key, value)
			}
		}
		bz := newKcatRun(true, []string{"-z", "gzip"},
			hdr{name: "run", value: "b"},
			hdr{name: "neg", value: "\x80\x81\xfe"})
		for i := range 700 {
			key := []byte(fmt.Sprintf("user-%d", rng.IntN(50)))
			value := randBytes(rng, 1+rng.IntN(64))
			switch i % 7 {
			case 3:
				bz.keyed(key, nil) // tombstone
			case 4:
				bz.keyed(nil, value) // null key
			case 5:
				bz.keyed(nil, nil) // null key, tombstone
			case 6:
				bz.unkeyed(value)
			default:
				bz.keyed(key, value)
			}
		}
		c := newKcatRun(false, []string{"-z", "lz4"})
		for i := range 800 {
			switch {
			case i%13 == 5:
				c.unkeyed(randBytes(rng, 1+rng.IntN(200)))
			case i%11 == 3:
				c.keyed(randBytes(rng, 1+rng.IntN(20)), nil)
			default:
				c.keyed(randBytes(rng, 1+rng.IntN(20)), randBytes(rng, rng.IntN(400)))
			}
		}
		runs := []*kcatRun{a, bz, c}
		for _, r := range runs {
			want[p] = append(want[p], r.want...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range runs {
				args := append([]string{"-P", "-q", "-b", b.addr, "-t", topic, "-p", fmt.Sprint(p),
					"-K", `\x1f`, "-D", `\x1e\x1d`}, r.flags...)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				cmd := exec.CommandContext(ctx, kcatPath, args...)
				cmd.Stdin = bytes.NewReader(r.input.Bytes())
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil || len(bytes.TrimSpace(out)) > 0 {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("kcat %v: %v: %s", args, err, out))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("producing with kcat:\n%s", strings.Join(errs, "\n"))
	}
	return want
}

// produceWithFranz writes n records spread evenly over the partitions with
// franz-go; tag makes their keys and values unique to the call.
func produceWithFranz(t *testing.T, b *broker, topic, tag string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{
			Topic:     topic,
			Partition: int32(i % partitions),
			Key:       []byte(fmt.Sprintf("%s-%d", tag, i)),
			Value:     []byte(fmt.Sprintf(`{"tag":%q,"n":%d}`, tag, i)),
			Headers:   []kgo.RecordHeader{{Key: "tag", Value: []byte(tag)}, {Key: "bin", Value: []byte{0xdc, 0x00, 0x7f}}},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing %d records: %v", n, err)
	}
}

// readAll reads every record of topic back with a plain franz-go consumer,
// up to the current high watermarks.
func readAll(t *testing.T, b *broker, topic string) map[po]*rec {
	t.Helper()
	ends := b.endOffsets(t, topic)
	offsets := map[int32]kgo.Offset{}
	total := 0
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
		total += int(end)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(map[po]*rec, total)
	for len(got) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s back: %d of %d records after a minute", topic, len(got), total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("reading %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			tsType := map[int8]string{0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}[r.Attrs.TimestampType()]
			got[po{r.Partition, r.Offset}] = &rec{
				key: r.Key, value: r.Value, headers: r.Headers,
				ts: r.Timestamp.UnixMilli(), tsType: tsType,
			}
		})
	}
	return got
}

// checkProduced compares what was read back with what was meant: kcat
// wrote each partition's records in order into an empty topic, so the n-th
// record of a partition is at offset n. It also checks that the data holds
// every case it is meant to cover.
func checkProduced(t *testing.T, want map[int32][]produced, got map[po]*rec) {
	t.Helper()
	n := 0
	var nullKey, emptyKey, tombstone, emptyValue, highHeader, noHeaders, nullHeader int
	for p, ws := range want {
		for o, w := range ws {
			n++
			r := got[po{p, int64(o)}]
			if r == nil {
				t.Fatalf("record %d@%d was not read back", p, o)
			}
			if !sameBytes(w.key, r.key) || !sameBytes(w.value, r.value) || !sameHeaders(w.headers, r.headers) {
				t.Fatalf("record %d@%d: produced key %q value %q headers %q, read back key %q value %q headers %q",
					p, o, w.key, w.value, w.headers, r.key, r.value, r.headers)
			}
			switch {
			case r.key == nil:
				nullKey++
			case len(r.key) == 0:
				emptyKey++
			}
			switch {
			case r.value == nil:
				tombstone++
			case len(r.value) == 0:
				emptyValue++
			}
			if len(r.headers) == 0 {
				noHeaders++
			}
			for _, h := range r.headers {
				if bytes.IndexFunc(h.Value, func(c rune) bool { return c >= 0x80 }) >= 0 {
					highHeader++
				}
				if h.Value == nil {
					nullHeader++
				}
			}
		}
	}
	if n != len(got) {
		t.Fatalf("produced %d records, read back %d", n, len(got))
	}
	for what, c := range map[string]int{"null keys": nullKey, "empty keys": emptyKey, "tombstones": tombstone,
		"empty values": emptyValue, "high-byte headers": highHeader, "records without headers": noHeaders,
		"null header values": nullHeader} {
		if c == 0 {
			t.Errorf("the produced data holds no %s", what)
		}
	}
	t.Logf("produced %d records: %d null keys, %d empty keys, %d tombstones, %d empty values, %d without headers",
		n, nullKey, emptyKey, tombstone, emptyValue, noHeaders)
}

// sameBytes compares two byte strings, null and empty being different.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
