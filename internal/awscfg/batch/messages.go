package batch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

// MaxEntries is the most entries a call built by Messages may hold: the
// limit of SendMessageBatch and PublishBatch.
const MaxEntries = 10

// Messages builds and makes the calls of a batch API that sends one
// message per record (SQS SendMessageBatch, SNS PublishBatch): a body, and
// optional group and deduplication IDs, for each record; at most
// MaxEntries messages and MaxBytes of bodies per call. Set its fields, then
// call Deliver; it is safe for concurrent use after that.
type Messages struct {
	// Template renders the body; nil sends the record as JSON, the object
	// that stands for it in the envelope (pipeline.AppendRecord).
	Template *pipeline.Template
	// GroupID and DedupID are the message group and deduplication IDs; the
	// zero Param sends none. An ID that resolves to nothing is left out,
	// unless GroupRequired (a FIFO queue or topic) makes that a permanent
	// failure of the record.
	GroupID, DedupID pipeline.Param
	GroupRequired    bool
	// MaxBytes bounds a body and the sum of the bodies of one call. A
	// record whose body is larger fails permanently (TooLarge).
	MaxBytes int
	// Limit names the setting that sets MaxBytes in messages
	// ("maxMessageSize"), if there is one.
	Limit string
	// Service names the API in messages ("SQS").
	Service string

	pool sync.Pool // *Chunk
}

// Chunk is one call being built: the bodies and IDs of its messages, and
// the index in the batch of the record of each entry. Its strings alias
// memory that is reused once the call has returned: the send function must
// not keep them.
type Chunk struct {
	buf   []byte
	idx   []int
	spans [][3]span // body, group ID, deduplication ID
	size  int
	seen  [MaxEntries]bool
}

type span struct{ start, end int }

// entryIDs are the Ids of the entries of a call: their place in it.
var entryIDs = [MaxEntries]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// Len returns the number of entries.
func (c *Chunk) Len() int { return len(c.idx) }

// ID returns the Id of entry k: its place in the call.
func (c *Chunk) ID(k int) *string { return &entryIDs[k] }

// Body returns the body of entry k.
func (c *Chunk) Body(k int) *string { return c.str(c.spans[k][0]) }

// GroupID returns the message group ID of entry k, or nil.
func (c *Chunk) GroupID(k int) *string { return c.str(c.spans[k][1]) }

// DedupID returns the message deduplication ID of entry k, or nil.
func (c *Chunk) DedupID(k int) *string { return c.str(c.spans[k][2]) }

func (c *Chunk) str(s span) *string {
	if s.end == s.start {
		return nil
	}
	// The string aliases buf, which is not written again before the call
	// that reads it has returned.
	p := unsafe.String(&c.buf[s.start], s.end-s.start)
	return &p
}

func (c *Chunk) reset() {
	c.buf = c.buf[:0]
	c.idx = c.idx[:0]
	c.spans = c.spans[:0]
	c.size = 0
	c.seen = [MaxEntries]bool{}
}

// entry returns the place of the entry whose Id is id, if there is one.
func (c *Chunk) entry(id *string) (int, bool) {
	if id == nil {
		return 0, false
	}
	k, err := strconv.Atoi(*id)
	return k, err == nil && k >= 0 && k < len(c.idx)
}

// Succeeded records the answer that the entry with Id id was accepted.
func (c *Chunk) Succeeded(id *string) {
	if k, ok := c.entry(id); ok {
		c.seen[k] = true
	}
}

// Failed records the answer that the entry with Id id failed, with the
// service's code and message. A sender fault is permanent unless its code
// says throttling or another condition that passes (awscfg.RetryableCode).
func (c *Chunk) Failed(f *Failures, recs []pipeline.Record, id *string, code, msg string, senderFault bool) {
	k, ok := c.entry(id)
	if !ok || c.seen[k] {
		return
	}
	c.seen[k] = true
	i := c.idx[k]
	f.Fail(i, &recs[i], senderFault && !awscfg.RetryableCode(code), "%s: %s", code, msg)
}

// unanswered fails the entries the answer said nothing about.
func (c *Chunk) unanswered(f *Failures, recs []pipeline.Record, service string) {
	for k, i := range c.idx {
		if !c.seen[k] {
			f.Fail(i, &recs[i], false, "the %s answer said nothing of this message", service)
		}
	}
}

// add renders record i into the chunk. It returns false, leaving the chunk
// as it was, when the record does not fit; a record that cannot be sent at
// all is recorded in f instead.
func (m *Messages) add(c *Chunk, i int, r *pipeline.Record, tctx *pipeline.TemplateContext, f *Failures) bool {
	start := len(c.buf)
	if m.Template != nil {
		c.buf = m.Template.Render(c.buf, r, tctx)
	} else {
		c.buf = pipeline.AppendRecord(c.buf, r)
	}
	body := span{start, len(c.buf)}
	n := body.end - body.start
	switch {
	case n == 0:
		f.Fail(i, r, true, "the message body is empty (inputTemplate rendered nothing); %s needs at least 1 character", m.Service)
		return true
	case n > m.MaxBytes:
		c.buf = c.buf[:start]
		if m.Limit != "" {
			f.TooLarge(i, r, "the message body is %d bytes, larger than %s (%d bytes)", n, m.Limit, m.MaxBytes)
		} else {
			f.TooLarge(i, r, "the message body is %d bytes, larger than the %d bytes %s takes", n, m.MaxBytes, m.Service)
		}
		return true
	case c.size+n > m.MaxBytes:
		c.buf = c.buf[:start]
		return false
	}
	group, ok := m.appendID(c, &m.GroupID, "messageGroupId", m.GroupRequired, i, r, tctx, f)
	if !ok {
		c.buf = c.buf[:start]
		return true
	}
	dedup, ok := m.appendID(c, &m.DedupID, "messageDeduplicationId", false, i, r, tctx, f)
	if !ok {
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
func (m *Messages) appendID(c *Chunk, p *pipeline.Param, name string, required bool, i int, r *pipeline.Record, tctx *pipeline.TemplateContext, f *Failures) (span, bool) {
	if p.String() == "" {
		return span{}, true
	}
	start := len(c.buf)
	c.buf = p.Append(c.buf, r, tctx)
	s := span{start, len(c.buf)}
	if s.end == s.start && !required {
		return s, true
	}
	if msg := CheckID(unsafe.String(unsafe.SliceData(c.buf[start:]), s.end-s.start)); msg != "" {
		f.Fail(i, r, true, "%s %s: %s", name, p.String(), msg)
		return s, false
	}
	return s, true
}

// CheckID returns what is wrong with a message group or deduplication ID,
// or "": it must be 1 to 128 printable ASCII characters, without spaces.
func CheckID(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > 128 {
		return fmt.Sprintf("is %d characters long; at most 128 are allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return "must be printable ASCII characters without spaces (! to ~)"
		}
	}
	return ""
}

// Preview returns what Deliver would send for b, without sending it: one
// request per message, named "<call> (call <n>)", with its IDs as
// attributes; and one per record that would fail before any call, with
// the reason as its body.
func (m *Messages) Preview(b *pipeline.Batch, tctx *pipeline.TemplateContext, call string) []pipeline.Request {
	var reqs []pipeline.Request
	f := Failures{}
	f.KeepReasons()
	n := 0
	m.Deliver(context.Background(), b, tctx, &f, func(_ context.Context, c *Chunk) error {
		n++
		for k, i := range c.idx {
			req := pipeline.Request{Records: []int{i}, Summary: fmt.Sprintf("%s (call %d)", call, n), Body: []byte(*c.Body(k))}
			for name, v := range map[string]*string{"messageGroupId": c.GroupID(k), "messageDeduplicationId": c.DedupID(k)} {
				if v != nil {
					if req.Attributes == nil {
						req.Attributes = map[string]string{}
					}
					req.Attributes[name] = strings.Clone(*v) // *v aliases reused memory
				}
			}
			reqs = append(reqs, req)
			c.Succeeded(c.ID(k))
		}
		return nil
	})
	for i := range b.Records {
		if why, ok := f.Reasons()[i]; ok {
			reqs = append(reqs, pipeline.Request{Records: []int{i}, Summary: "not sent: fails permanently", Err: why})
		}
	}
	return reqs
}

// Deliver sends the records of b in calls made by send, in batch order,
// and returns the error for the runner (see Failures.Err). send makes one
// call with the chunk's entries and reports each entry's outcome with
// Chunk.Succeeded and Chunk.Failed; it returns the call's error when the
// call failed as a whole. Such an error is classified (awscfg.Classify):
// when a retry may fix it, the records not sent yet wait for the next
// attempt; when it is permanent, the call's records fail and the next
// calls are made.
func (m *Messages) Deliver(ctx context.Context, b *pipeline.Batch, tctx *pipeline.TemplateContext, f *Failures,
	send func(ctx context.Context, c *Chunk) error) error {
	c, _ := m.pool.Get().(*Chunk)
	if c == nil {
		c = &Chunk{buf: make([]byte, 0, 64<<10)}
	}
	defer m.pool.Put(c)
	recs := b.Records
	for i := 0; i < len(recs); {
		c.reset()
		for ; i < len(recs) && len(c.idx) < MaxEntries; i++ {
			r := &recs[i]
			if f.Blocked(r) {
				f.Skip(i, r)
				continue
			}
			if !m.add(c, i, r, tctx, f) {
				break
			}
		}
		if len(c.idx) == 0 {
			continue
		}
		if err := send(ctx, c); err != nil {
			err = awscfg.Classify(err)
			f.FailCall(c.idx, recs, err)
			if !pipeline.IsPermanent(err) {
				for ; i < len(recs); i++ {
					f.Skip(i, &recs[i])
				}
			}
			continue
		}
		c.unanswered(f, recs, m.Service)
	}
	if err := ctx.Err(); err != nil && f.Len() > 0 {
		return err
	}
	return f.Err(len(recs))
}
