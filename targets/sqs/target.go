package sqs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipe-run/pipe/internal/awscfg/batch"
	"github.com/pipe-run/pipe/pipeline"
)

type target struct {
	cfg      *Config
	client   *sqs.Client
	queueURL *string
	// what names the queue in errors.
	what string
	msgs batch.Messages
	tctx pipeline.TemplateContext
}

var (
	_ pipeline.Target    = (*target)(nil)
	_ pipeline.Describer = (*target)(nil)
	_ pipeline.Previewer = (*target)(nil)
)

func newTarget(c *Config, env pipeline.Env) (*target, error) {
	ac := c.AWS
	if ac.Region == "" {
		ac.Region = c.region
	}
	cfg, err := ac.Load(context.Background())
	if err != nil {
		return nil, err
	}
	return &target{
		cfg:      c,
		queueURL: aws.String(c.QueueURL),
		what:     "sending to SQS queue " + c.queueName,
		tctx:     pipeline.NewTemplateContext(env.Pipe),
		msgs: batch.Messages{
			Template:      c.tmpl,
			GroupID:       c.groupID,
			DedupID:       c.dedupID,
			GroupRequired: c.fifo,
			MaxBytes:      int(c.MaxMessageSize),
			Limit:         "maxMessageSize",
			Service:       "SQS",
		},
		client: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if ep := c.AWS.BaseEndpoint(); ep != nil {
				o.BaseEndpoint = ep
			}
		}),
	}, nil
}

// Deliver sends the batch's records in calls of up to 10 messages, each call
// within maxMessageSize, and reports the records SQS did not accept; see
// the package doc for what is retried.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	tctx := t.tctx
	f := batch.Failures{What: t.what}
	return t.msgs.Deliver(ctx, b, &tctx, &f, func(ctx context.Context, c *batch.Chunk) error {
		return t.send(ctx, c, b.Records, &f)
	})
}

// send makes one SendMessageBatch call with the chunk's messages.
func (t *target) send(ctx context.Context, c *batch.Chunk, recs []pipeline.Record, f *batch.Failures) error {
	var buf [batch.MaxEntries]types.SendMessageBatchRequestEntry
	entries := buf[:c.Len()]
	for k := range entries {
		entries[k] = types.SendMessageBatchRequestEntry{
			Id:                     c.ID(k),
			MessageBody:            c.Body(k),
			MessageGroupId:         c.GroupID(k),
			MessageDeduplicationId: c.DedupID(k),
			DelaySeconds:           int32(t.cfg.DelaySeconds),
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	out, err := t.client.SendMessageBatch(callCtx, &sqs.SendMessageBatchInput{QueueUrl: t.queueURL, Entries: entries})
	if err != nil {
		return fmt.Errorf("SendMessageBatch: %w", err)
	}
	for _, e := range out.Successful {
		c.Succeeded(e.Id)
	}
	for _, e := range out.Failed {
		c.Failed(f, recs, e.Id, aws.ToString(e.Code), aws.ToString(e.Message), e.SenderFault)
	}
	return nil
}

// Preview says what Deliver would send, for `pipe test`: each message
// with its IDs, and the records that would fail before any call.
func (t *target) Preview(b *pipeline.Batch, tctx *pipeline.TemplateContext) []pipeline.Request {
	return t.msgs.Preview(b, tctx, "SendMessageBatch "+t.cfg.queueName)
}

// Describe names the target in on-failure records: the queue URL.
func (t *target) Describe() string { return t.cfg.QueueURL }

// Close releases nothing: the SDK client holds only idle connections.
func (t *target) Close() error { return nil }
