package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterSource("kafka", "A Kafka consumer group (self-hosted Kafka, Confluent Cloud, MSK, Redpanda ...).",
		func() *Config { return &Config{} })
}

// Config is the `source: {kafka: ...}` block.
type Config struct {
	BootstrapServers          []string        `yaml:"bootstrapServers" required:"true" min:"1" max:"10" doc:"Brokers to bootstrap from, host:port, as a list or one comma-separated string; 1 to 10 servers. The envelope's bootstrapServers is this list joined by commas."`
	Topics                    []string        `yaml:"topics" required:"true" min:"1" pattern:"^[a-zA-Z0-9._-]{1,249}$" patternDesc:"a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)" doc:"Topics to consume, as a list or one name."`
	ConsumerGroupID           string          `yaml:"consumerGroupId" pattern:"^[a-zA-Z0-9/*:_+=.@-]{1,200}$" patternDesc:"1 to 200 characters of a-z A-Z 0-9 - / * : _ + = . @" doc:"Consumer group id. Default: pipe-<pipe name>, stable across restarts so a restarted pipe resumes where it committed."`
	StartingPosition          string          `yaml:"startingPosition" default:"TRIM_HORIZON" enum:"TRIM_HORIZON,LATEST,AT_TIMESTAMP" doc:"Where a group with no committed offsets starts: TRIM_HORIZON (earliest), LATEST, or AT_TIMESTAMP (needs startingPositionTimestamp). Ignored once the group has committed offsets."`
	StartingPositionTimestamp time.Time       `yaml:"startingPositionTimestamp" doc:"With AT_TIMESTAMP: an RFC 3339 time, not in the future; consumption starts at the first record at or after it."`
	BatchSize                 int             `yaml:"batchSize" default:"100" min:"1" max:"10000" doc:"Most records in one batch."`
	MaximumBatchingWindow     time.Duration   `yaml:"maximumBatchingWindow" default:"500ms" min:"0s" max:"300s" doc:"How long a batch may wait to fill once its first record arrived. A batch also closes when full or when its envelope would pass 6 MB."`
	MaximumConcurrency        int             `yaml:"maximumConcurrency" default:"16" min:"1" max:"1000" doc:"Most batches in flight at once across the pipe's partitions. A partition never has more than one."`
	PartitionBuffer           pipeline.Size   `yaml:"partitionBuffer" default:"2MB" min:"64KB" max:"1GB" doc:"Records fetched ahead per partition; fetching that partition pauses above it and resumes below half of it, so a slow target bounds memory. A batch never holds more than this, so raise it with large records and a large batchSize. The size counted is the records' uncompressed bytes; one fetch response may overshoot it by up to the broker's per-partition fetch size (1MB)."`
	CommitInterval            time.Duration   `yaml:"commitInterval" default:"5s" min:"100ms" max:"1h" doc:"How often offsets of finished batches are committed. They are also committed on partition revocation and on shutdown."`
	SessionTimeout            time.Duration   `yaml:"sessionTimeout" default:"45s" min:"6s" max:"30m" doc:"How long the group waits for a member that stopped heartbeating (a crashed process) before giving its partitions to the others. Shorter means faster recovery, but a pause longer than this (a long GC, a frozen VM) costs a rebalance. The broker bounds it with group.min/max.session.timeout.ms."`
	TLS                       *kafkaconn.TLS  `yaml:"tls" doc:"TLS to the brokers (custom CA, mTLS client certificate, server name). Without it the connection is plaintext."`
	SASL                      *kafkaconn.SASL `yaml:"sasl" doc:"SASL authentication: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM."`
	ClientID                  string          `yaml:"clientId" default:"pipe" doc:"Kafka client id, as brokers see it in their logs and quotas."`

	// brokers is BootstrapServers with comma-separated entries split.
	brokers []string
}

// Validate checks what the tags cannot say.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	c.brokers = c.brokers[:0]
	for i, entry := range c.BootstrapServers {
		for _, hp := range strings.Split(entry, ",") {
			hp = strings.TrimSpace(hp)
			if err := checkHostPort(hp); err != nil {
				ps = append(ps, pipeline.FieldProblem{Field: fmt.Sprintf("bootstrapServers[%d]", i), Msg: err.Error()})
				continue
			}
			c.brokers = append(c.brokers, hp)
		}
	}
	if len(c.brokers) > 10 {
		ps = append(ps, pipeline.FieldProblem{Field: "bootstrapServers", Msg: fmt.Sprintf("takes at most 10 servers, got %d", len(c.brokers))})
	}
	seen := map[string]bool{}
	for i, t := range c.Topics {
		if seen[t] {
			ps = append(ps, pipeline.FieldProblem{Field: fmt.Sprintf("topics[%d]", i), Msg: fmt.Sprintf("topic %q is listed twice", t)})
		}
		seen[t] = true
	}
	switch {
	case c.StartingPosition == "AT_TIMESTAMP" && c.StartingPositionTimestamp.IsZero():
		ps = append(ps, pipeline.FieldProblem{Field: "startingPosition", Msg: "AT_TIMESTAMP needs startingPositionTimestamp"})
	case c.StartingPosition != "AT_TIMESTAMP" && !c.StartingPositionTimestamp.IsZero():
		ps = append(ps, pipeline.FieldProblem{Field: "startingPositionTimestamp", Msg: "is only used with startingPosition: AT_TIMESTAMP"})
	case c.StartingPositionTimestamp.After(time.Now()):
		ps = append(ps, pipeline.FieldProblem{Field: "startingPositionTimestamp", Msg: "is in the future"})
	}
	return ps
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1 to 65535", hp)
	}
	return nil
}

// Brokers returns the bootstrap servers, one per entry.
func (c *Config) Brokers() []string { return c.brokers }

// NewSource builds the consumer; it connects when run.
func (c *Config) NewSource(env pipeline.Env) (pipeline.Source, error) {
	group := c.ConsumerGroupID
	if group == "" {
		group = "pipe-" + env.Pipe
	}
	s := newSource(c, group, env)
	conn, err := c.Conn().Opts(s.log)
	if err != nil {
		return nil, err
	}
	s.opts = append(s.opts, conn...)
	return s, nil
}

// UseBrokers points the source at other brokers (the embedded broker of
// `pipe dev`).
func (c *Config) UseBrokers(brokers []string) {
	c.BootstrapServers = brokers
	c.brokers = brokers
}

// Conn returns the connection settings.
func (c *Config) Conn() *kafkaconn.Config { return &kafkaconn.Config{TLS: c.TLS, SASL: c.SASL} }

// CommitEvery is the commit interval: a pipe's stallTimeout must be
// longer.
func (c *Config) CommitEvery() time.Duration { return c.CommitInterval }

// SourceTopics lists the topics the pipe reads, for checks that span the
// pipe (an on-failure topic must not be one of them).
func (c *Config) SourceTopics() []string { return c.Topics }
