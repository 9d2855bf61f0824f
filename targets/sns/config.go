package sns

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/internal/awscfg/batch"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("sns", "Publishes each record as one message to an Amazon SNS topic (standard or FIFO), with PublishBatch in chunks of 10.",
		func() *Config { return &Config{} })
}

// MaxMessageSize is the largest message SNS takes, and the largest sum of
// the messages of one PublishBatch call: 256 KiB.
const MaxMessageSize = 256 << 10

// Config is the `target: {sns: ...}` block.
type Config struct {
	Timeout                time.Duration `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one PublishBatch call, from sending it to reading the answer; a call that takes longer fails and is retried."`
	TopicARN               string        `yaml:"topicArn" required:"true" pattern:"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?$" patternDesc:"a topic ARN like arn:aws:sns:eu-west-1:123456789012:orders" doc:"ARN of the topic. A name ending in .fifo is a FIFO topic and needs messageGroupId. The region defaults to the one in the ARN."`
	InputTemplate          string        `yaml:"inputTemplate" doc:"The message, rendered per record (an EventBridge Pipes input template). Default: the record as JSON, as in the envelope's records lists (key and value in base64). A message is at most 256 KiB; a larger one fails permanently."`
	MessageGroupID         string        `yaml:"messageGroupId" doc:"MessageGroupId of each message on a FIFO topic: static text, a template, or a whole $.path read from the record. Required for a FIFO topic. 1 to 128 printable ASCII characters once resolved."`
	MessageDeduplicationID string        `yaml:"messageDeduplicationId" doc:"MessageDeduplicationId of each message on a FIFO topic, like messageGroupId. Default: none, which needs content-based deduplication on the topic."`
	AWS                    awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	tmpl             *pipeline.Template
	groupID, dedupID pipeline.Param
	fifo             bool
	topicName        string
	region           string
}

var topicARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:([a-z0-9-]+):[0-9]{12}:(.+)$`)

// Validate compiles the template and parameters and checks the rules of
// FIFO topics.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if m := topicARNRE.FindStringSubmatch(c.TopicARN); m != nil {
		c.region, c.topicName = m[1], m[2]
		c.fifo = strings.HasSuffix(c.topicName, ".fifo")
	}
	if c.InputTemplate != "" {
		t, err := pipeline.ParseTemplate(c.InputTemplate)
		if err != nil {
			add("inputTemplate", "%v", err)
		}
		c.tmpl = t
	}
	var err error
	if c.groupID, err = parseID(c.MessageGroupID); err != nil {
		add("messageGroupId", "%v", err)
	}
	if c.dedupID, err = parseID(c.MessageDeduplicationID); err != nil {
		add("messageDeduplicationId", "%v", err)
	}
	if c.topicName != "" {
		if c.fifo && c.MessageGroupID == "" {
			add("messageGroupId", "is required for a FIFO topic (a topic name ending in .fifo)")
		}
		if !c.fifo && c.MessageGroupID != "" {
			add("messageGroupId", "applies to FIFO topics only (a topic name ending in .fifo)")
		}
		if !c.fifo && c.MessageDeduplicationID != "" {
			add("messageDeduplicationId", "applies to FIFO topics only (a topic name ending in .fifo)")
		}
	}
	return ps
}

// parseID compiles a MessageGroupId or MessageDeduplicationId; a static
// value is checked here, a dynamic one per record.
func parseID(s string) (pipeline.Param, error) {
	p, err := pipeline.ParseParam(s)
	if err != nil {
		return p, err
	}
	if s != "" && p.Static() {
		if msg := batch.CheckID(s); msg != "" {
			return p, errors.New(msg)
		}
	}
	return p, nil
}

// NewTarget builds the target. It reads the AWS settings (environment,
// shared files) but touches no network.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	return newTarget(c, env)
}
