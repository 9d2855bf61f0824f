package sns

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/pipe-run/pipe/destinations/internal/awsmsg"
	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterDestination("sns", "Publishes each on-failure record, with its records when they fit, as a message to an Amazon SNS topic (standard or FIFO).",
		func() *Config { return &Config{} })
}

// MaxMessageSize is the largest message SNS takes, attributes included:
// 256 KiB.
const MaxMessageSize = 256 << 10

// Config is the `onFailure: {sns: ...}` block.
type Config struct {
	TopicARN string        `yaml:"topicArn" required:"true" pattern:"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?$" patternDesc:"a topic ARN like arn:aws:sns:eu-west-1:123456789012:orders-failed" doc:"ARN of the topic. A name ending in .fifo is a FIFO topic: each message's group is the pipe name and the records' topic-partition, its deduplication ID the failure's requestId. The region defaults to the one in the ARN."`
	Payload  bool          `yaml:"payload" default:"true" doc:"Include the records, as a batch envelope, under payload, when the message stays within 256 KiB (body and message attributes). A failure too large for it is published without them, with the message attribute pipe-payload saying so."`
	Timeout  time.Duration `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one Publish call; a call that takes longer fails and is retried, the partition waiting."`
	AWS      awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	fifo      bool
	topicName string
	region    string
}

var topicARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:([a-z0-9-]+):[0-9]{12}:(.+)$`)

// Validate reads the region and name from the ARN (its form is checked by
// the pattern).
func (c *Config) Validate() []pipeline.FieldProblem {
	if m := topicARNRE.FindStringSubmatch(c.TopicARN); m != nil {
		c.region, c.topicName = m[1], m[2]
		c.fifo = strings.HasSuffix(c.topicName, ".fifo")
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
		topicARN: aws.String(c.TopicARN),
		what:     "publishing the on-failure record to SNS topic " + c.topicName,
		msgs: awsmsg.Builder{
			Payload:  c.Payload,
			MaxBytes: MaxMessageSize,
			Omitted:  "omitted: too large for the topic",
		},
		client: sns.NewFromConfig(cfg, func(o *sns.Options) {
			if ep := c.AWS.BaseEndpoint(); ep != nil {
				o.BaseEndpoint = ep
			}
		}),
	}, nil
}

type destination struct {
	cfg      *Config
	client   *sns.Client
	topicARN *string
	// what names the topic in errors.
	what string
	msgs awsmsg.Builder
}

var _ pipeline.Destination = (*destination)(nil)

// Send publishes the failure as one message. When SNS answers that it is
// too large, it is published again at once without its records.
func (d *destination) Send(ctx context.Context, f *pipeline.Failure) error {
	m, err := d.msgs.Build(f)
	if err != nil {
		return fmt.Errorf("%s: %w", d.what, err)
	}
	err = d.publish(ctx, f, m)
	if err != nil && m.Payload && awsmsg.TooLarge(err) {
		if m, err = d.msgs.WithoutPayload(f); err != nil {
			return fmt.Errorf("%s: %w", d.what, err)
		}
		err = d.publish(ctx, f, m)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.what, err)
	}
	return nil
}

// publish makes one Publish call.
func (d *destination) publish(ctx context.Context, f *pipeline.Failure, m *awsmsg.Message) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	in := &sns.PublishInput{
		TopicArn:          d.topicARN,
		Message:           aws.String(string(m.Body)),
		MessageAttributes: make(map[string]types.MessageAttributeValue, len(m.Attrs)),
	}
	for _, a := range m.Attrs {
		in.MessageAttributes[a.Name] = types.MessageAttributeValue{DataType: aws.String(awsmsg.DataType), StringValue: aws.String(a.Value)}
	}
	if d.cfg.fifo {
		in.MessageGroupId = aws.String(awsmsg.GroupID(f))
		in.MessageDeduplicationId = aws.String(f.RequestID)
	}
	_, err := d.client.Publish(ctx, in)
	return err
}

// Close releases nothing: the SDK client holds only idle connections.
func (d *destination) Close() error { return nil }
