// Package kafka is the `kafka` on-failure destination: one message per
// failed record on a Kafka topic, keyed by the record's key. Its value is the
// on-failure record of Lambda whose payload is an envelope holding that one
// record; its headers carry the failure context (pipe-pipe, pipe-condition,
// pipe-stage, pipe-attempts, pipe-error, pipe-topic, pipe-partition,
// pipe-offset), so a consumer can route or count failures without parsing
// the value. `pipe redrive --from-topic` reads them back. A failure whose
// record is too large for the topic (the payload holds it base64-encoded)
// is sent without the payload, with the header pipe-payload saying so; its
// coordinates name the record in the source topic.
//
// Without bootstrapServers the destination is on the source's cluster, with
// the source's connection settings, and must not be one of the pipe's
// source topics. The producer is idempotent and waits for all in-sync
// replicas.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/pipeline"
	kafkasource "github.com/pipe-run/pipe/sources/kafka"
)

func init() {
	pipeline.RegisterDestination("kafka", "Produces one message per failed record to a Kafka topic: the on-failure record with that record as payload, the failure context in headers.",
		func() *Config { return &Config{} })
}

// Config is the `onFailure: {kafka: ...}` block.
type Config struct {
	Topic            string          `yaml:"topic" required:"true" pattern:"^[a-zA-Z0-9._-]{1,249}$" patternDesc:"a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)" doc:"Topic to produce to; on the source's cluster it must not be a source topic of the pipe."`
	BootstrapServers []string        `yaml:"bootstrapServers" max:"10" doc:"Brokers of another cluster, host:port. Default: the source's cluster and connection settings (tls, sasl)."`
	TLS              *kafkaconn.TLS  `yaml:"tls" doc:"TLS to another cluster's brokers (with bootstrapServers)."`
	SASL             *kafkaconn.SASL `yaml:"sasl" doc:"SASL authentication to another cluster (with bootstrapServers)."`
	Timeout          time.Duration   `yaml:"timeout" default:"30s" min:"1s" max:"15m" doc:"Limit for writing one failure's messages; past it the send fails and is retried, the partition waiting."`
}

// Validate checks that connection settings come with bootstrapServers.
func (c *Config) Validate() []pipeline.FieldProblem {
	if len(c.BootstrapServers) == 0 && (c.TLS != nil || c.SASL != nil) {
		return []pipeline.FieldProblem{{Field: "bootstrapServers", Msg: "tls and sasl apply to another cluster: give its bootstrapServers (the source's cluster uses the source's settings)"}}
	}
	return nil
}

// DestinationTopic is the topic when it is on the source's cluster, for
// the pipe's check that it is not a source topic.
func (c *Config) DestinationTopic() string {
	if len(c.BootstrapServers) > 0 {
		return ""
	}
	return c.Topic
}

// NewDestination builds the producer's options; it connects on first use.
func (c *Config) NewDestination(env pipeline.Env) (pipeline.Destination, error) {
	var opts []kgo.Opt
	if len(c.BootstrapServers) > 0 {
		conn, err := (&kafkaconn.Config{TLS: c.TLS, SASL: c.SASL}).Opts(env.Logger)
		if err != nil {
			return nil, err
		}
		opts = append(conn, kgo.SeedBrokers(c.BootstrapServers...))
	} else {
		src, ok := env.Source.(*kafkasource.Config)
		if !ok {
			return nil, fmt.Errorf("the source is not Kafka: give bootstrapServers")
		}
		conn, err := src.Conn().Opts(env.Logger)
		if err != nil {
			return nil, err
		}
		opts = append(conn, kgo.SeedBrokers(src.Brokers()...))
	}
	opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(c.Topic),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.ClientID("pipe-"+env.Pipe+"-onfailure"))
	return &destination{opts: opts, topic: c.Topic, timeout: c.Timeout}, nil
}

type destination struct {
	opts    []kgo.Opt
	topic   string
	timeout time.Duration

	mu sync.Mutex
	cl *kgo.Client
}

func (d *destination) client() (*kgo.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cl == nil {
		cl, err := kgo.NewClient(d.opts...)
		if err != nil {
			return nil, err
		}
		d.cl = cl
	}
	return d.cl, nil
}

// Send produces one message per record and waits for every acknowledgement.
func (d *destination) Send(ctx context.Context, f *pipeline.Failure) error {
	cl, err := d.client()
	if err != nil {
		return err
	}
	recs := make([]*kgo.Record, len(f.Batch.Records))
	for i := range f.Batch.Records {
		r := &f.Batch.Records[i]
		one := f.Single(i)
		kr := &kgo.Record{Topic: d.topic, Key: r.Key, Value: pipeline.AppendFailureRecord(nil, one, true)}
		kr.Headers = []kgo.RecordHeader{
			{Key: "pipe-pipe", Value: []byte(f.Pipe)},
			{Key: "pipe-condition", Value: []byte(f.Condition)},
			{Key: "pipe-stage", Value: []byte(f.Stage)},
			{Key: "pipe-attempts", Value: strconv.AppendInt(nil, int64(f.Attempts), 10)},
			{Key: "pipe-topic", Value: []byte(r.Topic)},
			{Key: "pipe-partition", Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: "pipe-offset", Value: strconv.AppendInt(nil, r.Offset, 10)},
		}
		if f.Err != nil {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: "pipe-error", Value: []byte(f.Err.Error())})
		}
		recs[i] = kr
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	results := cl.ProduceSync(ctx, recs...)
	var again []*kgo.Record
	for i, res := range results {
		switch {
		case res.Err == nil:
		case errors.Is(res.Err, kerr.MessageTooLarge) || errors.Is(res.Err, kerr.RecordListTooLarge):
			// The record, base64 in the payload, is over the topic's
			// limit; retrying cannot help. Send the failure without it:
			// its coordinates name the record in the source topic.
			r := recs[i]
			r.Value = pipeline.AppendFailureRecord(nil, f.Single(i), false)
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "pipe-payload", Value: []byte("omitted: too large for the on-failure topic")})
			r.Partition, r.Offset = 0, 0
			again = append(again, r)
		default:
			return fmt.Errorf("on-failure topic %s: %w", d.topic, res.Err)
		}
	}
	if len(again) > 0 {
		if err := cl.ProduceSync(ctx, again...).FirstErr(); err != nil {
			return fmt.Errorf("on-failure topic %s: %w", d.topic, err)
		}
	}
	return nil
}

// Close flushes and closes the producer.
func (d *destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cl != nil {
		d.cl.Close()
		d.cl = nil
	}
	return nil
}
