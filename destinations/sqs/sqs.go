package sqs

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipe-run/pipe/destinations/internal/awsmsg"
	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterDestination("sqs", "Sends each on-failure record, with its records when they fit, as a message to an Amazon SQS queue (standard or FIFO).",
		func() *Config { return &Config{} })
}

// Config is the `onFailure: {sqs: ...}` block.
type Config struct {
	QueueURL       string        `yaml:"queueUrl" required:"true" doc:"URL of the queue, as SQS gives it (https://sqs.eu-west-1.amazonaws.com/123456789012/orders-failed). A URL ending in .fifo is a FIFO queue: each message's group is the pipe name and the records' topic-partition, its deduplication ID the failure's requestId. The region defaults to the one in the URL."`
	Payload        bool          `yaml:"payload" default:"true" doc:"Include the records, as a batch envelope, under payload, when the message stays within maxMessageSize. A failure too large for it is sent without them, with the message attribute pipe-payload saying so."`
	MaxMessageSize pipeline.Size `yaml:"maxMessageSize" default:"256KB" min:"1KB" max:"1MB" doc:"Largest message: the body and the message attributes' names, types and values, as SQS counts them. Raise it to 1MB only for a queue whose MaximumMessageSize allows it."`
	Timeout        time.Duration `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one SendMessage call; a call that takes longer fails and is retried, the partition waiting."`
	AWS            awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	fifo      bool
	queueName string
	region    string
}

// sqsHostRE matches the host of an AWS queue URL and captures its region:
// sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com.
var sqsHostRE = regexp.MustCompile(`^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$`)

// Validate checks the queue URL.
func (c *Config) Validate() []pipeline.FieldProblem {
	u, err := url.Parse(c.QueueURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return []pipeline.FieldProblem{{Field: "queueUrl", Msg: "must be an absolute https:// URL like https://sqs.eu-west-1.amazonaws.com/123456789012/orders-failed"}}
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return []pipeline.FieldProblem{{Field: "queueUrl", Msg: "must be a queue URL without credentials, query or fragment"}}
	}
	c.queueName = u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	if c.queueName == "" {
		return []pipeline.FieldProblem{{Field: "queueUrl", Msg: "must end with the queue name"}}
	}
	c.fifo = strings.HasSuffix(c.queueName, ".fifo")
	if m := sqsHostRE.FindStringSubmatch(u.Hostname()); m != nil {
		c.region = m[1] + m[2]
	}
	return nil
}

// NewDestination builds the client. It reads the AWS settings (environment,
// shared files) but touches no network.
func (c *Config) NewDestination(env pipeline.Env) (pipeline.Destination, error) {
	ac := c.AWS
	if ac.Region == "" {
		ac.Region = c.region
	}
	cfg, err := ac.Load(context.Background())
	if err != nil {
		return nil, err
	}
	return &destination{
		cfg:      c,
		queueURL: aws.String(c.QueueURL),
		what:     "sending the on-failure record to SQS queue " + c.queueName,
		msgs: awsmsg.Builder{
			Payload:  c.Payload,
			MaxBytes: int(c.MaxMessageSize),
			Omitted:  "omitted: too large for the queue",
			Limit:    "maxMessageSize",
		},
		client: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if ep := c.AWS.BaseEndpoint(); ep != nil {
				o.BaseEndpoint = ep
			}
		}),
	}, nil
}

type destination struct {
	cfg      *Config
	client   *sqs.Client
	queueURL *string
	// what names the queue in errors.
	what string
	msgs awsmsg.Builder
}

var _ pipeline.Destination = (*destination)(nil)

// Send sends the failure as one message. When SQS answers that it is too
// large (the queue's MaximumMessageSize is below maxMessageSize), it is
// sent again at once without its records.
func (d *destination) Send(ctx context.Context, f *pipeline.Failure) error {
	m, err := d.msgs.Build(f)
	if err != nil {
		return fmt.Errorf("%s: %w", d.what, err)
	}
	err = d.send(ctx, f, m)
	if err != nil && m.Payload && awsmsg.TooLarge(err) {
		if m, err = d.msgs.WithoutPayload(f); err != nil {
			return fmt.Errorf("%s: %w", d.what, err)
		}
		err = d.send(ctx, f, m)
	}
	if err != nil {
		if awsmsg.TooLarge(err) {
			return fmt.Errorf("%s: %w (even without its records: the queue's MaximumMessageSize is below maxMessageSize)", d.what, err)
		}
		return fmt.Errorf("%s: %w", d.what, err)
	}
	return nil
}

// send makes one SendMessage call.
func (d *destination) send(ctx context.Context, f *pipeline.Failure, m *awsmsg.Message) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	in := &sqs.SendMessageInput{
		QueueUrl:          d.queueURL,
		MessageBody:       aws.String(string(m.Body)),
		MessageAttributes: make(map[string]types.MessageAttributeValue, len(m.Attrs)),
	}
	for _, a := range m.Attrs {
		in.MessageAttributes[a.Name] = types.MessageAttributeValue{DataType: aws.String(awsmsg.DataType), StringValue: aws.String(a.Value)}
	}
	if d.cfg.fifo {
		in.MessageGroupId = aws.String(awsmsg.GroupID(f))
		in.MessageDeduplicationId = aws.String(f.RequestID)
	}
	_, err := d.client.SendMessage(ctx, in)
	return err
}

// Close releases nothing: the SDK client holds only idle connections.
func (d *destination) Close() error { return nil }
