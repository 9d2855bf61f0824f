package batch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

func benchRecords(n int) []pipeline.Record {
	var recs []pipeline.Record
	for i := range n {
		recs = append(recs, pipeline.Record{
			Topic: "orders", Partition: 3, Offset: int64(1000 + i),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
			Key:       []byte(fmt.Sprintf("customer-%d", i%7)),
			Value:     []byte(fmt.Sprintf(`{"orderId":"o-%d","customer":{"id":"c-%d","tier":"gold"},"total":%d.95,"items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}`, i, i%7, i)),
			Headers:   []pipeline.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}},
		})
	}
	return recs
}

// BenchmarkMessages measures building the entries of one SendMessageBatch
// or PublishBatch call of 10 messages: bodies and IDs rendered into the
// chunk's reused buffer. ns/op and allocs/op are per call of 10. A record's
// decoded view is kept with it, so template and fifo-ids measure rendering
// alone; template+decode decodes each value again.
func BenchmarkMessages(b *testing.B) {
	mustParam := func(s string) pipeline.Param {
		p, err := pipeline.ParseParam(s)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	mustTemplate := func(s string) *pipeline.Template {
		t, err := pipeline.ParseTemplate(s)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	for _, c := range []struct {
		name string
		m    *Messages
	}{
		{"record", &Messages{MaxBytes: 256 << 10}},
		{"template", &Messages{MaxBytes: 256 << 10, Template: mustTemplate(`{"order": <$.value.orderId>, "customer": <$.value.customer>, "at": "<$.topic>-<$.partition>-<$.offset>"}`)}},
		{"template+decode", &Messages{MaxBytes: 256 << 10, Template: mustTemplate(`{"order": <$.value.orderId>, "customer": <$.value.customer>, "at": "<$.topic>-<$.partition>-<$.offset>"}`)}},
		{"fifo-ids", &Messages{MaxBytes: 256 << 10, GroupRequired: true,
			GroupID: mustParam("$.value.customer.id"), DedupID: mustParam("<$.topic>-<$.partition>-<$.offset>")}},
	} {
		b.Run(c.name, func(b *testing.B) {
			recs := benchRecords(MaxEntries)
			tctx := pipeline.NewTemplateContext("bench")
			var f Failures
			ch := &Chunk{buf: make([]byte, 0, 64<<10)}
			b.ReportAllocs()
			for b.Loop() {
				ch.reset()
				for i := range recs {
					if c.name == "template+decode" {
						recs[i].ResetView() // decode the value again, as each new record is
					}
					if !c.m.add(ch, i, &recs[i], &tctx, &f) {
						b.Fatal("does not fit")
					}
				}
			}
			if f.Len() != 0 || ch.Len() != MaxEntries {
				b.Fatalf("%d failures, %d entries", f.Len(), ch.Len())
			}
			b.ReportMetric(float64(len(ch.buf))/MaxEntries, "bytes/msg")
		})
	}
}

// TestMessagesChunk checks what a chunk holds: bodies, IDs left out when
// they resolve to nothing, and the limits.
func TestMessagesChunk(t *testing.T) {
	group, _ := pipeline.ParseParam("$.key")
	dedup, _ := pipeline.ParseParam("<$.value.dedup>")
	m := Messages{MaxBytes: 1100, GroupID: group, DedupID: dedup, Service: "SQS"}
	recs := benchRecords(4)
	recs[1].Key = nil
	tctx := pipeline.NewTemplateContext("t")
	var f Failures
	c := &Chunk{}
	for i := range recs {
		if !m.add(c, i, &recs[i], &tctx, &f) {
			if i != 2 {
				t.Fatalf("record %d does not fit", i)
			}
			break
		}
	}
	if c.Len() != 2 || f.Len() != 0 {
		t.Fatalf("%d entries, %d failures; want 2 entries (the third passes 1100 bytes)", c.Len(), f.Len())
	}
	if *c.Body(0) != string(pipeline.AppendRecord(nil, &recs[0])) || *c.GroupID(0) != "customer-0" || c.DedupID(0) != nil || c.GroupID(1) != nil {
		t.Fatalf("entry 0: %q %v %v; entry 1 group %v", *c.Body(0), c.GroupID(0), c.DedupID(0), c.GroupID(1))
	}
	if *c.ID(1) != "1" {
		t.Fatalf("ID %q", *c.ID(1))
	}

	// Required group IDs; a body over the limit.
	m.GroupRequired = true
	c.reset()
	recs[2].Value = []byte(strings.Repeat("x", 2000))
	for i := range recs[:3] {
		m.add(c, i, &recs[i], &tctx, &f)
	}
	err := f.Err(3)
	failed, _ := pipeline.RetryOnlyOf(err)
	if c.Len() != 1 || len(failed) != 2 || !pipeline.IsPermanent(err) ||
		!strings.Contains(err.Error(), "orders/3/1001: messageGroupId $.key: is empty") ||
		!strings.Contains(err.Error(), "orders/3/1002: the message body is 3009 bytes, larger than the 1100 bytes SQS takes") {
		t.Fatalf("%d entries; %v", c.Len(), err)
	}
}
