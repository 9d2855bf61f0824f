package filter_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// benchValue is a 1 KiB JSON order.
const benchValue = `{"orderId":"ord-2024-000123456","createdAt":"2024-05-17T10:21:33.512Z","status":"PAID",` +
	`"channel":"web","currency":"EUR","amount":249.9,"tax":39.9,"shipping":4.99,"discount":null,` +
	`"customer":{"id":"cus-8812734","email":"jane.doe@example.com","name":"Jane Doe","country":"DE",` +
	`"tier":"gold","marketing":true,"since":"2019-03-02"},` +
	`"shippingAddress":{"line1":"Hauptstraße 12","line2":"","city":"Berlin","zip":"10115","country":"DE"},` +
	`"items":[{"sku":"SKU-1001","name":"Wireless mouse","qty":2,"price":29.95,"tags":["electronics","accessories"]},` +
	`{"sku":"SKU-2002","name":"Mechanical keyboard","qty":1,"price":119.0,"tags":["electronics"]},` +
	`{"sku":"SKU-3003","name":"USB-C cable \"2m\"","qty":3,"price":9.99,"tags":["cables","accessories"]},` +
	`{"sku":"SKU-4004","name":"Laptop stand","qty":1,"price":41.05,"tags":[]}],` +
	`"payment":{"method":"card","brand":"visa","last4":"4242","authorized":true,"attempts":1},` +
	`"source":{"ip":"203.0.113.42","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","session":"s-77d1e0f2"},` +
	`"flags":["first-order","newsletter"],"notes":"Leave at the door, please.","version":3}`

// The filters measured: one 3-field pattern; five patterns of which the
// last matches; one expression.
const (
	bench3Fields = "    filter:\n      patterns:\n" +
		`        - '{"value":{"status":["PAID"],"amount":[{"numeric":[">",100]}],"customer":{"country":["DE","FR"]}}}'` + "\n"
	bench5Patterns = "    filter:\n      patterns:\n" +
		`        - '{"value":{"status":["REFUNDED"],"customer":{"tier":["platinum"]}}}'` + "\n" +
		`        - '{"topic":["payments"],"value":{"amount":[{"numeric":[">",1000]}]}}'` + "\n" +
		`        - '{"value":{"items":{"sku":["SKU-9999"],"qty":[{"numeric":[">=",1]}]}}}'` + "\n" +
		`        - '{"value":{"source":{"ip":[{"cidr":"10.0.0.0/8"}]},"channel":[{"anything-but":["web"]}]}}'` + "\n" +
		`        - '{"value":{"status":["PAID"],"amount":[{"numeric":[">",100]}],"customer":{"country":["DE","FR"]}}}'` + "\n"
	benchExpression = "    filter:\n" +
		`      expression: value.amount > 100 && value.customer.country == "DE"` + "\n"
)

// cpuTime is the CPU time the process has used, all threads (the garbage
// collector's too) counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRecords reports records per second of wall time, and per second
// of the CPU time the process used since cpuStart, less excluded (CPU time
// spent outside the timed loop): the second is what one core does, and
// holds steadier when other processes share the machine.
func reportRecords(b *testing.B, records int, cpuStart, excluded time.Duration) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	if cpu := cpuTime() - cpuStart - excluded; cpu > 0 {
		b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	}
}

func benchRecord() pipeline.Record {
	return pipeline.Record{
		Topic:     "orders",
		Partition: 7,
		Offset:    123456789,
		Timestamp: time.UnixMilli(1715941293512),
		Key:       []byte("ord-2024-000123456"),
		Value:     []byte(benchValue),
		Headers:   []pipeline.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "trace-id", Value: []byte("4bf92f3577b34da6")}},
	}
}

// freshRecords hands out records as the source delivers them, each a new
// Record without a view, from a ring filled outside the timed loop: making
// the test records is not the filter's work. excluded is the CPU time the
// refills took, timer stops included.
type freshRecords struct {
	base     pipeline.Record
	ring     []pipeline.Record
	next     int
	excluded time.Duration
}

func newFreshRecords(n int) *freshRecords {
	f := &freshRecords{base: benchRecord(), ring: make([]pipeline.Record, n)}
	for i := range f.ring {
		f.ring[i] = f.base
	}
	return f
}

// batch returns a batch of the next fresh record, reusing b.
func (f *freshRecords) batch(bm *testing.B, b *pipeline.Batch) *pipeline.Batch {
	if f.next == len(f.ring) {
		start := cpuTime()
		bm.StopTimer()
		for i := range f.ring {
			f.ring[i] = f.base
		}
		bm.StartTimer()
		f.next = 0
		f.excluded += cpuTime() - start
	}
	b.Records = f.ring[f.next : f.next+1]
	f.next++
	return b
}

// benchFresh runs the filter on one fresh record per iteration, as the
// source delivers records: the stage decides it from the parts of the
// value its patterns read.
func benchFresh(b *testing.B, block string) {
	if len(benchValue) < 1000 || len(benchValue) > 1100 {
		b.Fatalf("the value is %d bytes, not about 1 KiB", len(benchValue))
	}
	s := newStage(b, block, nil)
	fresh := newFreshRecords(1 << 14)
	batch := &pipeline.Batch{}
	ctx := context.Background()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		in := fresh.batch(b, batch)
		out, err := s.Process(ctx, in)
		if err != nil || out != in {
			b.Fatalf("the record did not pass: %v", err)
		}
	}
	if batch.Records[0].HasView() {
		b.Fatal("the stage decoded the record's view")
	}
	reportRecords(b, b.N, cpu, fresh.excluded)
}

// benchCopied runs the filter on a fresh copy of the record per
// iteration, the view of the previous one garbage; with fullView, the
// record's whole view is decoded in the loop before the stage runs, as
// when something other than the patterns needs it (or as the stage
// decided before it read only the parts patterns read). The copy, a few
// nanoseconds, is in the loop.
func benchCopied(b *testing.B, block string, fullView bool) {
	s := newStage(b, block, nil)
	base := benchRecord()
	batch := &pipeline.Batch{Records: []pipeline.Record{base}}
	ctx := context.Background()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		batch.Records[0] = base
		if fullView {
			batch.Records[0].View()
		}
		out, err := s.Process(ctx, batch)
		if err != nil || out != batch {
			b.Fatalf("the record did not pass: %v", err)
		}
	}
	reportRecords(b, b.N, cpu, 0)
}

// BenchmarkFilter3Fields: one 3-field pattern on a 1 KiB JSON value,
// fresh records, decided from the parts the pattern reads.
func BenchmarkFilter3Fields(b *testing.B) { benchFresh(b, bench3Fields) }

// BenchmarkFilter3FieldsReused is BenchmarkFilter3Fields through one
// Record reused for every record, its view reset each time
// (Record.ResetView) as a source reusing Records would: decided from the
// parts the pattern reads, in memory reused from record to record.
func BenchmarkFilter3FieldsReused(b *testing.B) {
	s := newStage(b, bench3Fields, nil)
	batch := &pipeline.Batch{Records: []pipeline.Record{benchRecord()}}
	ctx := context.Background()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		batch.Records[0].ResetView()
		if out, err := s.Process(ctx, batch); err != nil || out != batch {
			b.Fatalf("the record did not pass: %v", err)
		}
	}
	reportRecords(b, b.N, cpu, 0)
}

// BenchmarkFilter3FieldsFullView is BenchmarkFilter3Fields on the whole
// view of each record, decoded in the loop.
func BenchmarkFilter3FieldsFullView(b *testing.B) { benchCopied(b, bench3Fields, true) }

// BenchmarkFilter3FieldsFullViewReset is BenchmarkFilter3FieldsReused on
// the whole view: decoded again each time into the memory of the previous
// view.
func BenchmarkFilter3FieldsFullViewReset(b *testing.B) {
	s := newStage(b, bench3Fields, nil)
	batch := &pipeline.Batch{Records: []pipeline.Record{benchRecord()}}
	ctx := context.Background()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		batch.Records[0].ResetView()
		batch.Records[0].View()
		if out, err := s.Process(ctx, batch); err != nil || out != batch {
			b.Fatalf("the record did not pass: %v", err)
		}
	}
	reportRecords(b, b.N, cpu, 0)
}

// BenchmarkFilter5Patterns: five patterns, the last matching, on the same
// value, fresh records decided from the parts the patterns read, read
// once for all five.
func BenchmarkFilter5Patterns(b *testing.B) { benchFresh(b, bench5Patterns) }

// BenchmarkFilter5PatternsFullView is BenchmarkFilter5Patterns on the
// whole view of each record, decoded once in the loop.
func BenchmarkFilter5PatternsFullView(b *testing.B) { benchCopied(b, bench5Patterns, true) }

// BenchmarkFilterExpression: value.amount > 100 && value.customer.country
// == "DE" on the same value: an expression reads the whole view, which
// it decodes.
func BenchmarkFilterExpression(b *testing.B) { benchCopied(b, benchExpression, false) }

// BenchmarkFilter3FieldsBatch: batches of 100 fresh records, kept until
// the batch is done as a pipe keeps them; ns/op is per batch, records/s
// per record.
func BenchmarkFilter3FieldsBatch(b *testing.B) {
	s := newStage(b, bench3Fields, nil)
	base := benchRecord()
	batch := &pipeline.Batch{Records: make([]pipeline.Record, 100)}
	ctx := context.Background()
	b.SetBytes(100 * int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		for i := range batch.Records {
			batch.Records[i] = base
		}
		if out, err := s.Process(ctx, batch); err != nil || out != batch {
			b.Fatalf("the records did not pass: %v", err)
		}
	}
	reportRecords(b, 100*b.N, cpu, 0)
}

// TestStageReadsOnlyWhatPatternsRead checks which way the stage decides,
// on which the benchmarks rest: from the parts patterns read, leaving the
// record without a view, when it has patterns alone; from the view when
// it has an expression, or when the record's view is decoded already.
func TestStageReadsOnlyWhatPatternsRead(t *testing.T) {
	ctx := context.Background()
	process := func(s interface {
		Process(context.Context, *pipeline.Batch) (*pipeline.Batch, error)
	}, r pipeline.Record) (pipeline.Record, bool) {
		t.Helper()
		in := &pipeline.Batch{Records: []pipeline.Record{r}}
		out, err := s.Process(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return in.Records[0], len(out.Records) == 1
	}
	patterns := newStage(t, bench3Fields, nil)
	r, pass := process(patterns, benchRecord())
	if !pass || r.HasView() {
		t.Errorf("patterns alone: pass %v, view decoded %v; want true, false", pass, r.HasView())
	}
	refund := benchRecord()
	refund.Value = []byte(strings.Replace(benchValue, `"PAID"`, `"REFUNDED"`, 1))
	if r, pass = process(patterns, refund); pass || r.HasView() {
		t.Errorf("patterns alone, a record that does not match: pass %v, view decoded %v; want false, false", pass, r.HasView())
	}
	broken := benchRecord()
	broken.Value = []byte(strings.Replace(benchValue, `"version":3`, `"version":3,`, 1))
	if _, pass = process(patterns, broken); pass {
		t.Error("a value that is not JSON passed a pattern on its fields")
	}

	expression := newStage(t, benchExpression, nil)
	if r, pass = process(expression, benchRecord()); !pass || !r.HasView() {
		t.Errorf("expression: pass %v, view decoded %v; want true, true", pass, r.HasView())
	}

	// A record whose view is decoded is decided from the view: the view
	// of the matching value, the bytes replaced after it was decoded.
	viewed := benchRecord()
	viewed.View()
	viewed.Value = refund.Value
	if _, pass = process(patterns, viewed); !pass {
		t.Error("a record with a decoded view was not decided from it")
	}
}
