package pipeline

import "testing"

// BenchmarkSelectValue selects three fields of the 1 KiB order.
func BenchmarkSelectValue(b *testing.B) {
	s := NewSelector([][]string{{"value", "status"}, {"value", "amount"}, {"value", "customer", "country"}})
	r := Record{Value: benchDoc}
	var sel Selection
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		if s.Select(&r, &sel).Fields[0].Value.Type != TypeObject {
			b.Fatal("not an object")
		}
	}
}

// BenchmarkSkipValue checks the 1 KiB order without decoding any of it.
func BenchmarkSkipValue(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		if end, ok := skipValue(benchDoc, 0, 0); !ok || end != len(benchDoc) {
			b.Fatal("not JSON")
		}
	}
}
