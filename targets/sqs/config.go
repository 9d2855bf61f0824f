package sqs

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/internal/awscfg/batch"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("sqs", "Sends each record as one message to an Amazon SQS queue (standard or FIFO), with SendMessageBatch in chunks of 10.",
		func() *Config { return &Config{} })
}

// Config is the `target: {sqs: ...}` block.
type Config struct {
	Timeout                time.Duration `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one SendMessageBatch call, from sending it to reading the answer; a call that takes longer fails and is retried."`
	QueueURL               string        `yaml:"queueUrl" required:"true" doc:"URL of the queue, as SQS gives it (https://sqs.eu-west-1.amazonaws.com/123456789012/orders). A URL ending in .fifo is a FIFO queue and needs messageGroupId. The region defaults to the one in the URL."`
	InputTemplate          string        `yaml:"inputTemplate" doc:"The message body, rendered per record (an EventBridge Pipes input template: <$.value.id>, <aws.pipes.event.json> ...). Default: the record as JSON, as in the envelope's records lists (key and value in base64)."`
	MessageGroupID         string        `yaml:"messageGroupId" doc:"MessageGroupId of each message: static text, a template, or a whole $.path read from the record ($.key for the Kafka key as text or JSON). Required for a FIFO queue, where it keeps the order of the messages of one group; on a standard queue it names the fair-queue tenant. 1 to 128 printable ASCII characters once resolved."`
	MessageDeduplicationID string        `yaml:"messageDeduplicationId" doc:"MessageDeduplicationId of each message on a FIFO queue, like messageGroupId. Default: none, which needs content-based deduplication on the queue. A record's coordinates make a good one: <$.topic>-<$.partition>-<$.offset>."`
	DelaySeconds           int           `yaml:"delaySeconds" default:"0" min:"0" max:"900" doc:"Seconds each message stays invisible after it is sent. Standard queues only (a FIFO queue has a delay per queue)."`
	MaxMessageSize         pipeline.Size `yaml:"maxMessageSize" default:"256KB" min:"1KB" max:"1MB" doc:"Largest message body, and largest sum of bodies in one SendMessageBatch call. A record whose body is larger fails permanently. Raise it to 1MB only for a queue whose MaximumMessageSize allows it."`
	AWS                    awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	tmpl             *pipeline.Template
	groupID, dedupID pipeline.Param
	fifo             bool
	queueName        string
	region           string
}

// sqsHostRE matches the host of an AWS queue URL and captures its region:
// sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com.
var sqsHostRE = regexp.MustCompile(`^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$`)

// Validate checks the queue URL and compiles the template and parameters.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	u, err := url.Parse(c.QueueURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		add("queueUrl", "must be an absolute https:// URL like https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		add("queueUrl", "must be a queue URL without credentials, query or fragment")
	default:
		c.queueName = u.Path[strings.LastIndexByte(u.Path, '/')+1:]
		if c.queueName == "" {
			add("queueUrl", "must end with the queue name")
		}
		c.fifo = strings.HasSuffix(c.queueName, ".fifo")
		if m := sqsHostRE.FindStringSubmatch(u.Hostname()); m != nil {
			c.region = m[1] + m[2]
		}
	}
	if c.InputTemplate != "" {
		t, err := pipeline.ParseTemplate(c.InputTemplate)
		if err != nil {
			add("inputTemplate", "%v", err)
		}
		c.tmpl = t
	}
	c.groupID, err = parseID(c.MessageGroupID)
	if err != nil {
		add("messageGroupId", "%v", err)
	}
	c.dedupID, err = parseID(c.MessageDeduplicationID)
	if err != nil {
		add("messageDeduplicationId", "%v", err)
	}
	if c.queueName != "" {
		if c.fifo && c.MessageGroupID == "" {
			add("messageGroupId", "is required for a FIFO queue (a queue URL ending in .fifo)")
		}
		if c.fifo && c.DelaySeconds != 0 {
			add("delaySeconds", "must be 0 for a FIFO queue: FIFO queues have a delay per queue, not per message")
		}
		if !c.fifo && c.MessageDeduplicationID != "" {
			add("messageDeduplicationId", "applies to FIFO queues only (a queue URL ending in .fifo)")
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
