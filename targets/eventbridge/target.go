package eventbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/internal/awscfg/batch"
	"github.com/pipe-run/pipe/pipeline"
)

type target struct {
	cfg    *Config
	client *eventbridge.Client
	bus    *string
	// what names the bus in errors.
	what   string
	source pipeline.Param
	tctx   pipeline.TemplateContext
	pool   sync.Pool // *chunk
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
	t := &target{
		cfg:    c,
		bus:    aws.String(c.EventBusName),
		what:   "putting events on EventBridge bus " + c.EventBusName,
		source: c.source,
		tctx:   pipeline.NewTemplateContext(env.Pipe),
		client: eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
			if ep := c.AWS.BaseEndpoint(); ep != nil {
				o.BaseEndpoint = ep
			}
		}),
	}
	if c.Source == "" {
		t.source, err = pipeline.ParseParam("Pipe " + env.Pipe)
		if err != nil {
			return nil, fmt.Errorf("default source: %w", err)
		}
	}
	t.pool.New = func() any { return &chunk{buf: make([]byte, 0, 64<<10)} }
	return t, nil
}

// span is a string of a chunk's buf.
type span struct{ start, end int }

// entry is one event being built: its strings in the chunk's buf.
type entry struct {
	detail, detailType, source span
	// resources are the chunk's res[res0:res1], when they depend on the
	// record.
	res0, res1 int
	time       time.Time
	hasTime    bool
}

// chunk is one PutEvents call being built.
type chunk struct {
	buf     []byte
	idx     []int
	ents    []entry
	res     []span
	size    int
	entries [MaxEntries]types.PutEventsRequestEntry
}

func (c *chunk) reset() {
	c.buf = c.buf[:0]
	c.idx = c.idx[:0]
	c.ents = c.ents[:0]
	c.res = c.res[:0]
	c.size = 0
}

func (c *chunk) str(s span) *string {
	if s.end == s.start {
		return nil
	}
	// The string aliases buf, which is not written again until the call
	// that reads it has returned.
	p := unsafe.String(&c.buf[s.start], s.end-s.start)
	return &p
}

func (c *chunk) text(s span) string {
	return unsafe.String(unsafe.SliceData(c.buf[s.start:]), s.end-s.start)
}

// batchState is what Deliver shares with the calls it makes.
type batchState struct {
	recs       []pipeline.Record
	tctx       pipeline.TemplateContext
	detailType pipeline.Param
	f          batch.Failures
}

// Deliver puts the batch's records on the bus in calls of up to 10 events,
// each call within 256 KiB, and reports the records EventBridge did not
// accept; see the package doc for what is retried.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	s, err := t.state(b, t.tctx)
	if err != nil {
		return err
	}
	return t.run(ctx, s, t.put)
}

func (t *target) state(b *pipeline.Batch, tctx pipeline.TemplateContext) (*batchState, error) {
	s := &batchState{recs: b.Records, tctx: tctx, detailType: t.cfg.detailType, f: batch.Failures{What: t.what}}
	if t.cfg.DetailType == "" {
		var err error
		if s.detailType, err = pipeline.ParseParam("Event from " + b.EventSource); err != nil {
			return nil, pipeline.Permanent(fmt.Errorf("%s: default detail type: %w", t.what, err))
		}
	}
	return s, nil
}

// run builds the calls of a batch and makes them with put.
func (t *target) run(ctx context.Context, s *batchState, put func(context.Context, *chunk, *batchState) error) error {
	c := t.pool.Get().(*chunk)
	defer t.pool.Put(c)
	recs := s.recs
	for i := 0; i < len(recs); {
		c.reset()
		for ; i < len(recs) && len(c.idx) < MaxEntries; i++ {
			r := &recs[i]
			if s.f.Blocked(r) {
				s.f.Skip(i, r)
				continue
			}
			if !t.add(c, s, i, r) {
				break
			}
		}
		if len(c.idx) == 0 {
			continue
		}
		if err := put(ctx, c, s); err != nil {
			err = awscfg.Classify(err)
			s.f.FailCall(c.idx, recs, err)
			if !pipeline.IsPermanent(err) {
				for ; i < len(recs); i++ {
					s.f.Skip(i, &recs[i])
				}
			}
		}
	}
	if err := ctx.Err(); err != nil && s.f.Len() > 0 {
		return err
	}
	return s.f.Err(len(recs))
}

// Preview says what Deliver would put, for `pipe test`: each event with its
// source, detail type, resources and time, and the records that would fail
// before any call.
func (t *target) Preview(b *pipeline.Batch, tctx *pipeline.TemplateContext) []pipeline.Request {
	s, err := t.state(b, *tctx)
	if err != nil {
		return []pipeline.Request{{Summary: "not sent", Err: err.Error()}}
	}
	s.f.KeepReasons()
	var reqs []pipeline.Request
	n := 0
	t.run(context.Background(), s, func(_ context.Context, c *chunk, _ *batchState) error {
		n++
		for k, i := range c.idx {
			e := &c.ents[k]
			// Clones: the chunk's strings alias memory that the next call reuses.
			attrs := map[string]string{"source": strings.Clone(c.text(e.source)), "detailType": strings.Clone(c.text(e.detailType)),
				"eventBusName": t.cfg.EventBusName}
			if e.hasTime {
				attrs["time"] = e.time.UTC().Format(time.RFC3339Nano)
			}
			res := t.cfg.staticResources
			if res == nil {
				for _, sp := range c.res[e.res0:e.res1] {
					res = append(res, strings.Clone(c.text(sp)))
				}
			}
			if len(res) > 0 {
				attrs["resources"] = strings.Join(res, ", ")
			}
			reqs = append(reqs, pipeline.Request{Records: []int{i}, Summary: fmt.Sprintf("PutEvents %s (call %d)", t.cfg.EventBusName, n),
				Attributes: attrs, Body: []byte(c.text(e.detail))})
		}
		return nil
	})
	for i := range b.Records {
		if why, ok := s.f.Reasons()[i]; ok {
			reqs = append(reqs, pipeline.Request{Records: []int{i}, Summary: "not sent: fails permanently", Err: why})
		}
	}
	return reqs
}

// add renders record i as an event of the chunk. It returns false, leaving
// the chunk as it was, when the event does not fit; a record that cannot
// be sent at all is recorded as failed instead.
func (t *target) add(c *chunk, s *batchState, i int, r *pipeline.Record) bool {
	start, res0 := len(c.buf), len(c.res)
	undo := func() {
		c.buf = c.buf[:start]
		c.res = c.res[:res0]
	}
	var e entry
	// Detail.
	if t.cfg.tmpl != nil {
		c.buf = t.cfg.tmpl.Render(c.buf, r, &s.tctx)
	} else {
		c.buf = pipeline.AppendRecord(c.buf, r)
	}
	e.detail = span{start, len(c.buf)}
	if t.cfg.checkDetail && !jsonObject(c.buf[start:]) {
		undo()
		s.f.Fail(i, r, true, "the detail is not a JSON object (inputTemplate rendered %s); EventBridge takes JSON objects only", describe(c.buf[start:e.detail.end]))
		return true
	}
	// DetailType and Source.
	var msg string
	if e.detailType, msg = t.param(c, &s.detailType, r, &s.tctx, checkDetailType); msg != "" {
		undo()
		s.f.Fail(i, r, true, "detailType %s: %s", s.detailType.String(), msg)
		return true
	}
	if e.source, msg = t.param(c, &t.source, r, &s.tctx, checkSource); msg != "" {
		undo()
		s.f.Fail(i, r, true, "source %s: %s", t.source.String(), msg)
		return true
	}
	size := e.detail.end - e.detail.start + e.detailType.end - e.detailType.start + e.source.end - e.source.start
	// Resources.
	if t.cfg.staticResources != nil {
		for _, res := range t.cfg.staticResources {
			size += len(res)
		}
	} else {
		e.res0 = len(c.res)
		for k := range t.cfg.resources {
			p := &t.cfg.resources[k]
			rs := len(c.buf)
			c.buf = p.Append(c.buf, r, &s.tctx)
			if len(c.buf) > rs {
				c.res = append(c.res, span{rs, len(c.buf)})
				size += len(c.buf) - rs
			}
		}
		e.res1 = len(c.res)
	}
	// Time.
	switch {
	case t.cfg.staticTime != nil:
		e.time, e.hasTime = *t.cfg.staticTime, true
	case t.cfg.Time != "":
		ts := len(c.buf)
		c.buf = t.cfg.timeParam.Append(c.buf, r, &s.tctx)
		text := c.buf[ts:]
		if len(text) > 0 {
			tm, ok := parseTime(text)
			if !ok {
				undo()
				s.f.Fail(i, r, true, "time %s resolved to %s: not an RFC 3339 timestamp or epoch milliseconds", t.cfg.Time, describe(text))
				return true
			}
			e.time, e.hasTime = tm, true
		}
		c.buf = c.buf[:ts]
	}
	if e.hasTime {
		size += timeSize
	}
	switch {
	case size > MaxRequestSize:
		undo()
		s.f.TooLarge(i, r, "the event is %d bytes (detail, detail type, source, resources, time), larger than the %d bytes PutEvents takes", size, MaxRequestSize)
		return true
	case c.size+size > MaxRequestSize:
		undo()
		return false
	}
	c.idx = append(c.idx, i)
	c.ents = append(c.ents, e)
	c.size += size
	return true
}

// param renders a source or detail type and checks it.
func (t *target) param(c *chunk, p *pipeline.Param, r *pipeline.Record, tctx *pipeline.TemplateContext, check func(string) string) (span, string) {
	start := len(c.buf)
	c.buf = p.Append(c.buf, r, tctx)
	sp := span{start, len(c.buf)}
	return sp, check(c.text(sp))
}

// put makes one PutEvents call with the chunk's events and records the
// events that failed. It returns the call's error when it failed as a
// whole.
func (t *target) put(ctx context.Context, c *chunk, s *batchState) error {
	entries := c.entries[:len(c.idx)]
	for k := range entries {
		e := &c.ents[k]
		entries[k] = types.PutEventsRequestEntry{
			EventBusName: t.bus,
			Detail:       c.str(e.detail),
			DetailType:   c.str(e.detailType),
			Source:       c.str(e.source),
			Resources:    t.cfg.staticResources,
		}
		if t.cfg.staticResources == nil && e.res1 > e.res0 {
			res := make([]string, 0, e.res1-e.res0)
			for _, sp := range c.res[e.res0:e.res1] {
				res = append(res, *c.str(sp))
			}
			entries[k].Resources = res
		}
		if e.hasTime {
			entries[k].Time = &e.time
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	out, err := t.client.PutEvents(callCtx, &eventbridge.PutEventsInput{Entries: entries})
	clear(entries) // drop the strings that alias buf
	if err != nil {
		return fmt.Errorf("PutEvents: %w", err)
	}
	for k, i := range c.idx {
		r := &s.recs[i]
		if k >= len(out.Entries) {
			s.f.Fail(i, r, false, "the PutEvents answer said nothing of this event")
			continue
		}
		res := &out.Entries[k]
		if res.ErrorCode == nil && res.EventId != nil {
			continue
		}
		code := aws.ToString(res.ErrorCode)
		s.f.Fail(i, r, !awscfg.RetryableCode(code), "%s: %s", code, aws.ToString(res.ErrorMessage))
	}
	return nil
}

// jsonObject reports whether b is one JSON object.
func jsonObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(b)
		}
		return false
	}
	return false
}

// describe shows the start of a rendered value in an error.
func describe(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	if len(b) > 40 {
		return strconv.Quote(string(b[:37]) + "...")
	}
	return strconv.Quote(string(b))
}

// parseTime reads an event time: epoch milliseconds, or RFC 3339.
func parseTime(b []byte) (time.Time, bool) {
	s := unsafe.String(unsafe.SliceData(b), len(b))
	if s[0] >= '0' && s[0] <= '9' && !bytes.ContainsAny(b, "-:T") {
		ms, err := strconv.ParseFloat(s, 64)
		if err != nil || ms > 1e15 {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(ms)).UTC(), true
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	return tm, err == nil
}

// Describe names the target in on-failure records: the event bus.
func (t *target) Describe() string { return t.cfg.EventBusName }

// Close releases nothing: the SDK client holds only idle connections.
func (t *target) Close() error { return nil }
