package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/pipeline"
)

type target struct {
	cfg       *Config
	conn      *kafkaconn.Config
	cl        *kgo.Client
	log       *slog.Logger
	tctx      pipeline.TemplateContext
	bootstrap string
}

var _ pipeline.Target = (*target)(nil)

func newTarget(c *Config, env pipeline.Env) (*target, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("target", "kafka")
	conn := c.conn()
	connOpts, err := conn.Opts(log)
	if err != nil {
		return nil, err
	}
	var part kgo.Partitioner
	switch c.Partitioner {
	case "sourcePartition":
		part = kgo.ManualPartitioner()
	case "roundRobin":
		part = kgo.RoundRobinPartitioner()
	default:
		// Keys hash with murmur2 as Kafka's Java client does; keyless
		// records stick to a partition until its batch is full.
		part = kgo.UniformBytesPartitioner(64<<10, true, true, nil)
	}
	var codec kgo.CompressionCodec
	switch c.Compression {
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		codec = kgo.NoCompression()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.ClientID),
		// Idempotent (franz-go's default, kept): retries inside the client
		// never duplicate or reorder records of a partition.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(part),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(int32(min(c.MaxMessageBytes, 1<<30))),
		// Topics are created on first use when the brokers allow it
		// (auto.create.topics.enable), as with Kafka's Java producer.
		kgo.AllowAutoTopicCreation(),
		// A topic that is missing (or just created) is looked up again
		// after a second, not franz-go's default 5s: a batch for a missing
		// topic fails within a few seconds and the runner's backoff
		// takes over.
		kgo.MetadataMinAge(time.Second),
		// Deliver waits for its records; lingering would only add latency.
		kgo.ProducerLinger(0),
		kgo.WithLogger(kgoLogger{log}),
	}, connOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &target{
		cfg:       c,
		conn:      conn,
		cl:        cl,
		log:       log,
		tctx:      pipeline.NewTemplateContext(env.Pipe),
		bootstrap: strings.Join(c.brokers, ","),
	}, nil
}

// produced is the outcome of one record.
type produced struct {
	err       error
	permanent bool
	// tooLarge: the record is larger than the producer or the topic
	// takes (permanent).
	tooLarge bool
}

// Deliver produces every record of the batch and waits for all their acks.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	n := len(b.Records)
	if n == 0 {
		return nil
	}
	tctx := t.tctx
	// franz-go's record timeout counts from a record's timestamp, which is
	// the source record's: the delivery timeout is a deadline instead. The
	// client fails the records it safely can when it passes.
	pctx, cancel := context.WithTimeout(ctx, t.cfg.DeliveryTimeout)
	defer cancel()
	recs := make([]kgo.Record, n)
	results := make([]produced, n)
	// Rendered keys and values share one buffer; slices are taken once
	// it stops growing.
	var buf []byte
	type span struct{ key, val [2]int }
	spans := make([]span, n)
	var wg sync.WaitGroup
	for i := range b.Records {
		r := &b.Records[i]
		kr := &recs[i]
		topic, err := t.topic(r, &tctx)
		if err != nil {
			results[i] = produced{err: err, permanent: true}
			continue
		}
		kr.Topic = topic
		kr.Partition = r.Partition
		if !r.Timestamp.IsZero() {
			kr.Timestamp = r.Timestamp
		}
		kr.Key = r.Key
		if t.cfg.key != nil {
			start := len(buf)
			buf = t.cfg.key.Append(buf, r, &tctx)
			spans[i].key = [2]int{start, len(buf)}
		}
		kr.Value = r.Value
		if t.cfg.value != nil {
			start := len(buf)
			buf = t.cfg.value.Render(buf, r, &tctx)
			spans[i].val = [2]int{start, len(buf)}
		}
		kr.Headers = t.headers(r, &tctx)
	}
	for i := range recs {
		if results[i].err != nil {
			continue
		}
		if t.cfg.key != nil {
			recs[i].Key = buf[spans[i].key[0]:spans[i].key[1]:spans[i].key[1]]
		}
		if t.cfg.value != nil {
			recs[i].Value = buf[spans[i].val[0]:spans[i].val[1]:spans[i].val[1]]
		}
		wg.Add(1)
		t.cl.Produce(pctx, &recs[i], func(_ *kgo.Record, err error) {
			if err != nil {
				results[i] = produced{err: err, permanent: permanent(err), tooLarge: tooLarge(err)}
			}
			wg.Done()
		})
	}
	// The client holds the records (and the batch's bytes) until every
	// promise ran: it fails what it safely can when ctx is cancelled, and
	// the rest within the delivery timeout.
	wg.Wait()
	return t.outcome(ctx, b, results)
}

// topic resolves the record's topic.
func (t *target) topic(r *pipeline.Record, tctx *pipeline.TemplateContext) (string, error) {
	if t.cfg.topic.Static() {
		return t.cfg.Topic, nil
	}
	topic := string(t.cfg.topic.Append(nil, r, tctx))
	if !topicRE.MatchString(topic) {
		if topic == "" {
			return "", fmt.Errorf("topic %s is empty for this record", t.cfg.Topic)
		}
		return "", fmt.Errorf("topic %s gives %q for this record, not a valid topic name", t.cfg.Topic, clip(topic))
	}
	return topic, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// headers builds the produced record's headers: the source's (unless
// copyHeaders is off) without the names set in the config, then those.
func (t *target) headers(r *pipeline.Record, tctx *pipeline.TemplateContext) []kgo.RecordHeader {
	set := t.cfg.headers
	if !t.cfg.CopyHeaders && len(set) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, 0, len(r.Headers)+len(set))
	if t.cfg.CopyHeaders {
	next:
		for _, h := range r.Headers {
			for _, s := range set {
				if s.name == h.Key {
					continue next
				}
			}
			out = append(out, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	for _, s := range set {
		out = append(out, kgo.RecordHeader{Key: s.name, Value: s.value.Append(nil, r, tctx)})
	}
	return out
}

// permanent reports errors that producing the same record again cannot fix.
func permanent(err error) bool {
	if strings.Contains(err.Error(), "invalid record partitioning choice") {
		// sourcePartition on a topic with fewer partitions than the source.
		return true
	}
	for _, e := range []error{
		kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.InvalidTopicException,
		kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed,
		kerr.PolicyViolation, kerr.InvalidRequiredAcks, kerr.UnsupportedForMessageFormat,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// tooLarge reports errors that say the record is larger than the producer
// (ProducerBatchMaxBytes, from maxMessageBytes) or the topic
// (max.message.bytes) takes.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// outcome turns the records' results into Deliver's error, as
// internal/awscfg/batch's Failures does for the AWS targets: nil when all
// were acked. A record that failed permanently is reported alone: the
// later records of its source partition were produced, and retrying them
// would only add duplicates. A record that failed in a way a retry may fix
// is reported with every later record of its source partition, so the
// partition is produced again in order from there. The error is permanent
// when every failure is (pipeline.TooLarge when every one is a record too
// large); when retryable failures are among them it is retryable, and the
// permanently failed records are produced again with them until only they
// are left.
func (t *target) outcome(ctx context.Context, b *pipeline.Batch, results []produced) error {
	type tp struct {
		topic     string
		partition int32
	}
	// held are the source partitions stopped at a retryable failure.
	held := map[tp]bool{}
	var failed []int
	first := -1
	nfail, nheld, tooLarge := 0, 0, 0
	for i := range results {
		r := &b.Records[i]
		k := tp{r.Topic, r.Partition}
		res := &results[i]
		if res.err != nil {
			nfail++
			if first < 0 {
				first = i
			}
			if res.tooLarge {
				tooLarge++
			}
		}
		switch {
		case held[k]:
			failed = append(failed, i)
			if res.err == nil {
				nheld++
			}
		case res.err == nil:
		case res.permanent:
			failed = append(failed, i)
		default:
			held[k] = true
			failed = append(failed, i)
		}
	}
	if first < 0 {
		return nil
	}
	fr := &b.Records[first]
	cause := results[first].err
	var more string
	if nheld > 0 {
		more = fmt.Sprintf(", %d more retried behind a failure that a retry may fix", nheld)
	}
	msg := fmt.Sprintf("producing to kafka %s: %d of %d records failed%s; first %s-%d@%d: %v",
		t.bootstrap, nfail, len(results), more, fr.Topic, fr.Partition, fr.Offset, cause)
	if reason, ok := t.explain(ctx, cause); ok {
		msg += " (" + reason + ")"
	}
	err := &deliveryError{msg: msg, cause: cause}
	var out error = err
	switch {
	case len(held) > 0:
	case tooLarge == nfail:
		out = pipeline.TooLarge(err)
	default:
		out = pipeline.Permanent(err)
	}
	if len(failed) == len(results) {
		return out
	}
	return pipeline.RetryOnly(out, failed)
}

// deliveryError names the batch's failure and wraps its first cause.
type deliveryError struct {
	msg   string
	cause error
}

func (e *deliveryError) Error() string { return e.msg }
func (e *deliveryError) Unwrap() error { return e.cause }

// explain says why a connection-level failure happened. A record that
// timed out carries no cause when the client never got a connection, so
// the brokers are pinged once to find it.
func (t *target) explain(ctx context.Context, err error) (string, bool) {
	if f, ok := t.conn.Explain(err); ok {
		return f.Reason, true
	}
	if !errors.Is(err, kgo.ErrRecordTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		return "", false
	}
	if perr := t.cl.Ping(pctx); perr != nil {
		if f, ok := t.conn.Explain(perr); ok {
			return f.Reason, true
		}
	}
	return "", false
}

// Close stops the producer. Deliver waits for its records, so none is
// pending.
func (t *target) Close() error {
	t.cl.Close()
	return nil
}

// kgoLogger sends franz-go's warnings and errors to the pipe's log.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelWarn
	if level == kgo.LogLevelError {
		l = slog.LevelError
	}
	k.l.Log(context.Background(), l, "kafka producer: "+msg, keyvals...)
}
