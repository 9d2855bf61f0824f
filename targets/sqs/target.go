package sqs

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

// maxEntries is the most entries one SendMessageBatch call takes.
const maxEntries = 10

type target struct {
	cfg      *Config
	client   *sqs.Client
	queueURL *string
	// what names the queue in errors.
	what    string
	maxSize int
	tctx    pipeline.TemplateContext
	pool    sync.Pool // *chunk
}

var _ pipeline.Target = (*target)(nil)

func newTarget(c *Config, env pipeline.Env) (*target, error) {
	ac := c.AWS
	if ac.Region == "" {
		ac.Region = c.region
	}
	cfg, err := ac.Load(context.Background())
	if err != nil {
		return nil, err
	}
	t := &target{
		cfg:      c,
		queueURL: aws.String(c.QueueURL),
		what:     "sending to SQS queue " + c.queueName,
		maxSize:  int(c.MaxMessageSize),
		tctx:     pipeline.NewTemplateContext(env.Pipe),
		client: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if ep := c.AWS.BaseEndpoint(); ep != nil {
				o.BaseEndpoint = ep
			}
		}),
	}
	t.pool.New = func() any { return &chunk{buf: make([]byte, 0, 64<<10)} }
	return t, nil
}

// entryIDs are the Ids of the entries of one call: their place in it.
var entryIDs = [maxEntries]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// chunk is one SendMessageBatch call being built: the bodies and IDs of its
// messages in buf, and for each entry the index of its record.
type chunk struct {
	buf     []byte
	idx     []int
	spans   [][3]span // body, group ID, deduplication ID
	entries [maxEntries]types.SendMessageBatchRequestEntry
	size    int
}

type span struct{ start, end int }

func (s span) str(buf []byte) *string {
	if s.end == s.start {
		return nil
	}
	// The strings alias buf, which is not written again until the call that
	// reads them has returned.
	p := unsafe.String(&buf[s.start], s.end-s.start)
	return &p
}

func (c *chunk) reset() {
	c.buf = c.buf[:0]
	c.idx = c.idx[:0]
	c.spans = c.spans[:0]
	c.size = 0
}

// add renders record i into the chunk. It returns false, leaving the chunk
// as it was, when the record does not fit; a record that cannot be sent at
// all is recorded in f instead.
func (t *target) add(c *chunk, i int, r *pipeline.Record, tctx *pipeline.TemplateContext, f *awscfg.Failures) bool {
	start := len(c.buf)
	c.buf = appendBody(c.buf, t.cfg.tmpl, r, tctx)
	body := span{start, len(c.buf)}
	n := body.end - body.start
	switch {
	case n == 0:
		f.Fail(i, r, true, "the message body is empty (inputTemplate rendered nothing); SQS needs at least 1 character")
		return true
	case n > t.maxSize:
		c.buf = c.buf[:start]
		f.Fail(i, r, true, "the message body is %d bytes, larger than maxMessageSize (%d bytes)", n, t.maxSize)
		return true
	case c.size+n > t.maxSize:
		c.buf = c.buf[:start]
		return false
	}
	var group, dedup span
	var ok bool
	if group, ok = t.appendID(c, &t.cfg.groupID, "messageGroupId", t.cfg.fifo, i, r, tctx, f); !ok {
		c.buf = c.buf[:start]
		return true
	}
	if dedup, ok = t.appendID(c, &t.cfg.dedupID, "messageDeduplicationId", false, i, r, tctx, f); !ok {
		c.buf = c.buf[:start]
		return true
	}
	c.idx = append(c.idx, i)
	c.spans = append(c.spans, [3]span{body, group, dedup})
	c.size += n
	return true
}

// appendID renders a message group or deduplication ID. An empty one is
// left out of the message, unless required. It returns false after
// recording a permanent failure when the ID is not valid.
func (t *target) appendID(c *chunk, p *pipeline.Param, name string, required bool, i int, r *pipeline.Record, tctx *pipeline.TemplateContext, f *awscfg.Failures) (span, bool) {
	if p.String() == "" {
		return span{}, true
	}
	start := len(c.buf)
	c.buf = p.Append(c.buf, r, tctx)
	s := span{start, len(c.buf)}
	if s.end == s.start && !required {
		return s, true
	}
	if msg := checkID(unsafe.String(unsafe.SliceData(c.buf[start:]), s.end-s.start)); msg != "" {
		f.Fail(i, r, true, "%s %s: %s", name, p.String(), msg)
		return s, false
	}
	return s, true
}

// appendBody appends a record's message body: the rendered template, or
// the record as JSON.
func appendBody(dst []byte, tmpl *pipeline.Template, r *pipeline.Record, tctx *pipeline.TemplateContext) []byte {
	if tmpl != nil {
		return tmpl.Render(dst, r, tctx)
	}
	return pipeline.AppendRecord(dst, r)
}

// Deliver sends the batch's records in calls of up to 10 messages, each call
// within maxMessageSize. It reports the records SQS did not accept; see the
// package doc for what is retried.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	c := t.pool.Get().(*chunk)
	defer t.pool.Put(c)
	tctx := t.tctx
	f := awscfg.Failures{What: t.what}
	recs := b.Records
	for i := 0; i < len(recs); {
		c.reset()
		for ; i < len(recs) && len(c.idx) < maxEntries; i++ {
			r := &recs[i]
			if f.Blocked(r) {
				f.Skip(i, r)
				continue
			}
			if !t.add(c, i, r, &tctx, &f) {
				break
			}
		}
		if len(c.idx) == 0 {
			continue
		}
		if err := t.send(ctx, c, recs, &f); err != nil {
			// The service is not answering or asks to slow down: the
			// records not sent yet wait for the next attempt.
			for ; i < len(recs); i++ {
				f.Skip(i, &recs[i])
			}
		}
	}
	if err := ctx.Err(); err != nil && f.Len() > 0 {
		return err
	}
	return f.Err(len(recs))
}

// send makes one SendMessageBatch call and records its failures. It returns
// the call's error when it failed as a whole in a way a retry may fix.
func (t *target) send(ctx context.Context, c *chunk, recs []pipeline.Record, f *awscfg.Failures) error {
	entries := c.entries[:len(c.idx)]
	for k := range entries {
		sp := &c.spans[k]
		entries[k] = types.SendMessageBatchRequestEntry{
			Id:                     &entryIDs[k],
			MessageBody:            sp[0].str(c.buf),
			MessageGroupId:         sp[1].str(c.buf),
			MessageDeduplicationId: sp[2].str(c.buf),
			DelaySeconds:           int32(t.cfg.DelaySeconds),
		}
	}
	out, err := t.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: t.queueURL, Entries: entries})
	clear(entries) // drop the strings that alias buf
	if err != nil {
		err = awscfg.Classify(err)
		f.FailCall(c.idx, recs, fmt.Errorf("SendMessageBatch: %w", err))
		if pipeline.IsPermanent(err) {
			return nil // the other chunks may fare better
		}
		return err
	}
	var seen [maxEntries]bool
	for _, e := range out.Successful {
		if k, ok := entryIndex(e.Id, len(c.idx)); ok {
			seen[k] = true
		}
	}
	for _, e := range out.Failed {
		k, ok := entryIndex(e.Id, len(c.idx))
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		code := aws.ToString(e.Code)
		permanent := e.SenderFault && !awscfg.RetryableCode(code)
		f.Fail(c.idx[k], &recs[c.idx[k]], permanent, "%s: %s", code, aws.ToString(e.Message))
	}
	for k := range c.idx {
		if !seen[k] {
			f.Fail(c.idx[k], &recs[c.idx[k]], false, "SendMessageBatch answered nothing for this message")
		}
	}
	return nil
}

func entryIndex(id *string, n int) (int, bool) {
	k, err := strconv.Atoi(aws.ToString(id))
	return k, err == nil && k >= 0 && k < n
}

// Close releases nothing: the SDK client holds only idle connections.
func (t *target) Close() error { return nil }
