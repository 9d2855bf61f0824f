package pattern_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

// benchValue is a 1 KiB JSON order, the value the benchmarks decode and
// match.
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

const benchPattern = `{"value":{"status":["PAID"],"amount":[{"numeric":[">",100]}],"customer":{"country":["DE","FR"]}}}`

var benchPatterns = []string{
	`{"value":{"status":["REFUNDED"],"customer":{"tier":["platinum"]}}}`,
	`{"topic":["payments"],"value":{"amount":[{"numeric":[">",1000]}]}}`,
	`{"value":{"items":{"sku":["SKU-9999"],"qty":[{"numeric":[">=",1]}]}}}`,
	`{"value":{"source":{"ip":[{"cidr":"10.0.0.0/8"}]},"channel":[{"anything-but":["web"]}]}}`,
	benchPattern,
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

// cpuTime is the CPU time the process has used, all threads (the garbage
// collector's too) counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRecords reports records per second of wall time and per second of
// CPU time: the second is the throughput of one core, and holds steadier
// than the first when other processes share the machine.
func reportRecords(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if cpu := cpuTime() - cpuStart; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}

// BenchmarkMatch3Fields decodes the record (key and value) and matches one
// 3-field pattern: each iteration starts from a fresh Record whose view is
// unset, so decoding is inside the measured loop.
func BenchmarkMatch3Fields(b *testing.B) {
	if len(benchValue) < 1000 || len(benchValue) > 1100 {
		b.Fatalf("the value is %d bytes, not about 1 KiB", len(benchValue))
	}
	p := pattern.MustCompile(benchPattern)
	base := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r := base
		if !p.MatchRecord(&r) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkMatch3FieldsReset is BenchmarkMatch3Fields through one Record
// whose view is reset each iteration (Record.ResetView): the record is
// decoded again every time, into the memory of the previous view.
func BenchmarkMatch3FieldsReset(b *testing.B) {
	p := pattern.MustCompile(benchPattern)
	r := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r.ResetView()
		if !p.MatchRecord(&r) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkMatch5Patterns decodes the record once and matches a Set of five
// patterns, the last of which matches.
func BenchmarkMatch5Patterns(b *testing.B) {
	var ps []*pattern.Pattern
	for _, s := range benchPatterns {
		ps = append(ps, pattern.MustCompile(s))
	}
	set, err := pattern.NewSet(ps...)
	if err != nil {
		b.Fatal(err)
	}
	base := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r := base
		if !set.MatchRecord(&r) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkMatchDecoded matches the 3-field pattern against a view decoded
// beforehand: the cost of matching alone.
func BenchmarkMatchDecoded(b *testing.B) {
	p := pattern.MustCompile(benchPattern)
	r := benchRecord()
	root := r.View()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if !p.Match(root) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkMatch5PatternsDecoded matches the five patterns against a view
// decoded beforehand.
func BenchmarkMatch5PatternsDecoded(b *testing.B) {
	var ps []*pattern.Pattern
	for _, s := range benchPatterns {
		ps = append(ps, pattern.MustCompile(s))
	}
	set, err := pattern.NewSet(ps...)
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	root := r.View()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if !set.Match(root) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkView decodes the record alone: the cost of the view.
func BenchmarkView(b *testing.B) {
	base := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r := base
		if r.View().Get("value").Type != pipeline.TypeObject {
			b.Fatal("value is not an object")
		}
	}
	reportRecords(b, cpu)
}

// BenchmarkMatchSelected3Fields decides the record from the parts the
// 3-field pattern reads (Set.MatchSelected): the same record each time,
// never given a view, so nothing is decoded but those parts, and every
// byte of the value is checked.
func BenchmarkMatchSelected3Fields(b *testing.B) {
	set, err := pattern.NewSet(pattern.MustCompile(benchPattern))
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if !set.MatchSelected(&r) {
			b.Fatal("no match")
		}
	}
	if r.HasView() {
		b.Fatal("the record's view was decoded")
	}
	reportRecords(b, cpu)
}

// BenchmarkMatchSelected5Patterns is BenchmarkMatchSelected3Fields for
// the five patterns, the last of which matches: the parts all five read
// are decoded once.
func BenchmarkMatchSelected5Patterns(b *testing.B) {
	var ps []*pattern.Pattern
	for _, s := range benchPatterns {
		ps = append(ps, pattern.MustCompile(s))
	}
	set, err := pattern.NewSet(ps...)
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	b.SetBytes(int64(len(benchValue)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if !set.MatchSelected(&r) {
			b.Fatal("no match")
		}
	}
	reportRecords(b, cpu)
}
