package filter_test

import (
	"context"
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
// of the CPU time the process used since cpuStart: the second is what one
// core does, and holds steadier when other processes share the machine.
func reportRecords(b *testing.B, records int, cpuStart time.Duration) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	if cpu := cpuTime() - cpuStart; cpu > 0 {
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

// benchFresh runs the filter on one record per iteration, a fresh copy of
// the same record as the source builds for each Kafka record: the view is
// decoded inside the loop, and the view of the previous record is garbage.
func benchFresh(b *testing.B, block string) {
	if len(benchValue) < 1000 || len(benchValue) > 1100 {
		b.Fatalf("the value is %d bytes, not about 1 KiB", len(benchValue))
	}
	s := newStage(b, block, nil)
	base := benchRecord()
	batch := &pipeline.Batch{Records: []pipeline.Record{base}}
	ctx := context.Background()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		batch.Records[0] = base
		out, err := s.Process(ctx, batch)
		if err != nil || out != batch {
			b.Fatalf("the record did not pass: %v", err)
		}
	}
	reportRecords(b, b.N, cpu)
}

// BenchmarkFilter3Fields: one 3-field pattern on a 1 KiB JSON value.
func BenchmarkFilter3Fields(b *testing.B) { benchFresh(b, bench3Fields) }

// BenchmarkFilter5Patterns: five patterns, the last matching, on the same
// value, decoded once.
func BenchmarkFilter5Patterns(b *testing.B) { benchFresh(b, bench5Patterns) }

// BenchmarkFilterExpression: value.amount > 100 && value.customer.country
// == "DE" on the same value.
func BenchmarkFilterExpression(b *testing.B) { benchFresh(b, benchExpression) }

// BenchmarkFilter3FieldsReset is BenchmarkFilter3Fields through one Record
// whose view is reset each iteration (Record.ResetView): decoded again
// each time, into the memory of the previous view.
func BenchmarkFilter3FieldsReset(b *testing.B) {
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
	reportRecords(b, b.N, cpu)
}

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
	reportRecords(b, 100*b.N, cpu)
}
