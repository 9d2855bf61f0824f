package kafka

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("kafka", "Produces each record to a Kafka topic, on the source's cluster or another, with an idempotent producer and acks from all in-sync replicas.",
		func() *Config { return &Config{} })
}

// Config is the `target: {kafka: ...}` block.
type Config struct {
	BootstrapServers []string          `yaml:"bootstrapServers" required:"true" min:"1" max:"10" doc:"Brokers of the cluster to produce to, host:port, as a list or one comma-separated string; 1 to 10 servers. It may be the source's cluster or another."`
	Topic            string            `yaml:"topic" required:"true" doc:"Topic to produce to: a name, a $.path read from each record ($.topic keeps the source topic), or a template such as orders-<$.value.region>. A record whose topic comes out empty or invalid fails permanently. A missing topic is created if the brokers allow it (auto.create.topics.enable), else the batch fails and is retried."`
	Key              string            `yaml:"key" doc:"The produced record's key, when it should not be the source record's key: static text, a $.path ($.value.customerId) or a template. Default: the source key, byte for byte (a null key stays null)."`
	InputTemplate    string            `yaml:"inputTemplate" doc:"The produced record's value, rendered per record (EventBridge Pipes input template: <$.value.id>, <aws.pipes.event.json> ...). Default: the source value, byte for byte (a tombstone stays a tombstone)."`
	Headers          map[string]string `yaml:"headers" doc:"Headers to set on each produced record: name -> static text, $.path or template. A header named here replaces the source headers of that name."`
	CopyHeaders      bool              `yaml:"copyHeaders" default:"true" doc:"Copy the source record's headers (in order, duplicates kept) to the produced record."`
	Partitioner      string            `yaml:"partitioner" default:"murmur2" enum:"murmur2,sourcePartition,roundRobin" doc:"How records are spread over the topic's partitions: murmur2 (Kafka's Java default: murmur2 hash of the key, so a key always lands in the same partition; keyless records fill one partition at a time), sourcePartition (the source record's partition number; the topic needs at least as many partitions), roundRobin (one record per partition in turn, keys ignored)."`
	Compression      string            `yaml:"compression" default:"none" enum:"none,gzip,snappy,lz4,zstd" doc:"Compression of produced record batches."`
	MaxMessageBytes  pipeline.Size     `yaml:"maxMessageBytes" default:"1MB" min:"1KB" max:"1GB" doc:"Largest record batch sent to a partition; a record larger than this on its own fails permanently. Keep it at or below the topic's max.message.bytes."`
	DeliveryTimeout  time.Duration     `yaml:"deliveryTimeout" default:"30s" min:"1s" max:"15m" doc:"How long the producer keeps trying to write a record (its own protocol retries: leader changes, connection loss) before the batch fails and the pipe retries it with backoff."`
	ClientID         string            `yaml:"clientId" default:"pipe" doc:"Kafka client id, as brokers see it in their logs and quotas."`
	TLS              *kafkaconn.TLS    `yaml:"tls" doc:"TLS to the brokers. Without it the connection is plaintext."`
	SASL             *kafkaconn.SASL   `yaml:"sasl" doc:"SASL authentication. Without it the client does not authenticate."`

	brokers []string
	topic   pipeline.Param
	key     *pipeline.Param
	value   *pipeline.Template
	headers []header
}

type header struct {
	name  string
	value pipeline.Param
}

// topicRE is what Kafka accepts as a topic name.
var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate compiles the dynamic parameters and templates at load time.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	var probs []string
	c.brokers, probs = kafkaconn.Brokers(c.BootstrapServers, 10)
	for _, p := range probs {
		add("bootstrapServers", "%s", p)
	}
	topic, err := pipeline.ParseParam(c.Topic)
	switch {
	case err != nil:
		add("topic", "%s", syntax(err))
	case topic.Static() && !topicRE.MatchString(c.Topic):
		add("topic", "must be a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -), a $.path or a template")
	}
	c.topic = topic
	c.key = nil
	if c.Key != "" {
		k, err := pipeline.ParseParam(c.Key)
		if err != nil {
			add("key", "%s", syntax(err))
		}
		c.key = &k
	}
	c.value = nil
	if c.InputTemplate != "" {
		v, err := pipeline.ParseTemplate(c.InputTemplate)
		if err != nil {
			add("inputTemplate", "%s", syntax(err))
		}
		c.value = v
	}
	c.headers = c.headers[:0]
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			add("headers", "a header name cannot be empty")
			continue
		}
		p, err := pipeline.ParseParam(c.Headers[name])
		if err != nil {
			add("headers", "%s: %s", name, syntax(err))
			continue
		}
		c.headers = append(c.headers, header{name, p})
	}
	return ps
}

// syntax says where a template or path does not parse.
func syntax(err error) string { return "does not parse " + err.Error() }

func (c *Config) conn() *kafkaconn.Config {
	return &kafkaconn.Config{TLS: c.TLS, SASL: c.SASL}
}

// NewTarget builds the producer; it connects on the first delivery.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	return newTarget(c, env)
}

// Brokers returns the bootstrap servers, one per entry.
func (c *Config) Brokers() []string { return c.brokers }

// UseBrokers points the target at other brokers (the embedded broker of
// `pipe dev`, when the target names the source's cluster).
func (c *Config) UseBrokers(brokers []string) {
	c.brokers = append([]string(nil), brokers...)
	c.BootstrapServers = c.brokers
}
