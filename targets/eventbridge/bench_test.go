package eventbridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg/batch"
	"github.com/pipe-run/pipe/pipeline"
)

// BenchmarkEvents measures building the entries of one PutEvents call of 10
// events into the chunk's reused buffer (ns/op and allocs/op per call of
// 10): the record as Detail with the default source and detail type, and
// every parameter read from the record. The records' decoded views are
// kept, as after a filter.
func BenchmarkEvents(b *testing.B) {
	b.Setenv("AWS_REGION", "eu-west-1")
	b.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	var recs []pipeline.Record
	for i := range MaxEntries {
		recs = append(recs, pipeline.Record{
			Topic: "orders", Partition: 3, Offset: int64(1000 + i),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
			Key:       []byte(fmt.Sprintf("customer-%d", i%7)),
			Value: []byte(fmt.Sprintf(`{"orderId":"o-%d","source":"shop.eu","arn":"arn:aws:s3:::bucket-%d","customer":{"id":"c-%d"},"total":%d.95}`,
				i, i, i%7, i)),
			Headers: []pipeline.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}},
		})
	}
	for _, c := range []struct {
		name     string
		settings []string
	}{
		{"record", nil},
		{"params", []string{"source: $.value.source", "detailType: 'order <$.value.orderId>'", "resources: [$.value.arn]",
			"time: $.timestamp", `inputTemplate: '{"order": <$.value.orderId>, "customer": <$.value.customer>}'`}},
	} {
		b.Run(c.name, func(b *testing.B) {
			conf, err := parse(b, c.settings...)
			if err != nil {
				b.Fatal(err)
			}
			tg, err := newTarget(conf, pipeline.Env{Pipe: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			s := &batchState{recs: recs, tctx: tg.tctx, detailType: conf.detailType, f: batch.Failures{}}
			if conf.DetailType == "" {
				s.detailType, _ = pipeline.ParseParam("Event from SelfManagedKafka")
			}
			ch := &chunk{buf: make([]byte, 0, 64<<10)}
			b.ReportAllocs()
			for b.Loop() {
				ch.reset()
				for i := range recs {
					if !tg.add(ch, s, i, &recs[i]) {
						b.Fatal("does not fit")
					}
				}
			}
			if s.f.Len() != 0 || len(ch.idx) != MaxEntries {
				b.Fatalf("%d failures, %d entries", s.f.Len(), len(ch.idx))
			}
		})
	}
}
