// Package testenv starts the real parts that tests run against: an
// in-process Kafka broker (franz-go's kfake, spoken to over TCP) and helpers
// to put records in and read offsets back. It is imported by tests only.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxMessageBytes is the largest record batch the test broker and the
// producer of a Cluster accept: 16 MiB, so tests can produce records larger
// than the 6 MB payload cap (Kafka's default is about 1 MB).
const MaxMessageBytes = 16 << 20

// Cluster is a running kfake broker with a producing client and an admin
// client on it. It is closed when the test ends.
type Cluster struct {
	// Addr is the broker's host:port on the loopback interface.
	Addr string
	// Client produces with a manual partitioner: a record goes to the
	// partition it names. It is not in a consumer group.
	Client *kgo.Client
	// Admin is a kadm client on Client.
	Admin *kadm.Client

	fake *kfake.Cluster
}

// Kafka starts a one-broker cluster listening on 127.0.0.1 with the topics
// created, each with the given number of partitions. Topics not named are
// created on first use with that many partitions too.
func Kafka(t testing.TB, partitions int32, topics ...string) *Cluster {
	t.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxMessageBytes)}),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	fake, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(fake.Close)
	addr := fake.ListenAddrs()[0]
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(MaxMessageBytes),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		t.Fatalf("producer client: %v", err)
	}
	t.Cleanup(cl.Close)
	return &Cluster{Addr: addr, Client: cl, Admin: kadm.NewClient(cl), fake: fake}
}

// Produce writes the records synchronously and fails the test on any error.
// Each record goes to its Partition; its Timestamp is kept when set.
func (c *Cluster) Produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing %d records: %v", len(recs), err)
	}
}

// Records makes n records for one partition, values "<prefix>-<i>" padded
// with 'x' to at least size bytes.
func Records(topic string, partition int32, n, size int, prefix string) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := []byte(prefix + "-" + strconv.Itoa(i))
		for len(v) < size {
			v = append(v, 'x')
		}
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: v}
	}
	return recs
}

// ProduceN writes Records(topic, partition, n, size, prefix) and returns
// them, in offset order.
func (c *Cluster) ProduceN(t testing.TB, topic string, partition int32, n, size int, prefix string) []*kgo.Record {
	t.Helper()
	recs := Records(topic, partition, n, size, prefix)
	c.Produce(t, recs...)
	return recs
}

// NewClient returns another client of the cluster with the options given
// (seed broker added), closed when the test ends.
func (c *Cluster) NewClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Committed returns the group's committed offsets: topic -> partition ->
// next offset to read. Partitions with no commit are absent.
func (c *Cluster) Committed(t testing.TB, group string) map[string]map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := c.Admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetching offsets of group %s: %v", group, err)
	}
	out := map[string]map[int32]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("offset of group %s for %s-%d: %v", group, o.Topic, o.Partition, o.Err)
		}
		if o.At < 0 {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

// CommittedAt returns the group's committed offset of one partition, or -1
// when it has none.
func (c *Cluster) CommittedAt(t testing.TB, group, topic string, partition int32) int64 {
	t.Helper()
	if o, ok := c.Committed(t, group)[topic][partition]; ok {
		return o
	}
	return -1
}

// Commit sets the group's committed offset of one partition (the group must
// have no active members).
func (c *Cluster) Commit(t testing.TB, group, topic string, partition int32, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var os kadm.Offsets
	os.AddOffset(topic, partition, offset, -1)
	resps, err := c.Admin.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("committing %s-%d@%d for group %s: %v", topic, partition, offset, group, err)
	}
}

// HighWatermarks returns each partition's end offset (the offset the next
// produced record gets) for the topics.
func (c *Cluster) HighWatermarks(t testing.TB, topics ...string) map[string]map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := c.Admin.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets of %v: %v", topics, err)
	}
	out := map[string]map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// ReadAll reads every record of the topics, from the start up to the high
// watermarks taken when it is called, with a client outside any group.
func (c *Cluster) ReadAll(t testing.TB, topics ...string) []*kgo.Record {
	t.Helper()
	ends := c.HighWatermarks(t, topics...)
	want := map[string]map[int32]int64{}
	total := int64(0)
	for topic, ps := range ends {
		for p, end := range ps {
			if end > 0 {
				if want[topic] == nil {
					want[topic] = map[int32]int64{}
				}
				want[topic][p] = end
				total += end
			}
		}
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Addr),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(MaxMessageBytes*2),
		kgo.FetchMaxPartitionBytes(MaxMessageBytes),
	)
	if err != nil {
		t.Fatalf("reader client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %v: got %d records, still waiting for %v", topics, len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("reading %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset == end-1 {
				delete(want[r.Topic], r.Partition)
				if len(want[r.Topic]) == 0 {
					delete(want, r.Topic)
				}
			}
		})
	}
	return out
}

// WaitFor polls cond every 10ms until it holds, and fails the test with the
// message when it does not within d. Arguments made with Now are evaluated
// when the message is written, so it can say what was seen last.
func WaitFor(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if l, ok := a.(lazy); ok {
					args[i] = l()
				}
			}
			t.Fatalf("after %v: %s", d, fmt.Sprintf(format, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lazy func() any

// Now wraps f for a WaitFor message: it is called when the message is
// written.
func Now[T any](f func() T) any { return lazy(func() any { return f() }) }
