package metrics

import (
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// A batch histogram gathers as a Prometheus histogram: cumulative buckets,
// count and sum of every observation of every flushed tally; a removed
// pipe's series are gone.
func TestBatchHistogram(t *testing.T) {
	r := New()
	p := r.Pipe("orders")
	r.Pipe("other").Polled.Add(1)
	lat := p.Latency.Tally()
	for _, v := range []float64{0.001, 0.004, 0.006, 1, 100000} {
		lat.Observe(v)
	}
	lat.Flush()
	lat = p.Latency.Tally()
	lat.Observe(0.002)
	lat.Flush()
	fams, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() != "pipe_record_latency_seconds" {
			continue
		}
		if len(f.Metric) != 2 {
			t.Fatalf("%d series, want one per pipe", len(f.Metric))
		}
		for _, m := range f.Metric {
			if m.Label[0].GetValue() != "orders" {
				if m.GetHistogram().GetSampleCount() != 0 {
					t.Errorf("pipe %s has observations", m.Label[0].GetValue())
				}
				continue
			}
			found = true
			checkLatency(t, m.GetHistogram())
		}
	}
	if !found {
		t.Fatal("no pipe_record_latency_seconds for pipe orders")
	}
	r.RemovePipe("orders")
	fams, _ = r.Gatherer().Gather()
	for _, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "pipe" && l.GetValue() == "orders" {
					t.Errorf("%s still has pipe=orders", f.GetName())
				}
			}
		}
	}
}

func checkLatency(t *testing.T, h *dto.Histogram) {
	t.Helper()
	{
		if h.GetSampleCount() != 6 || math.Abs(h.GetSampleSum()-100001.013) > 1e-6 {
			t.Errorf("count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
		}
		want := map[float64]uint64{0.005: 3, 0.015: 4, 0.045: 4, 1.215: 5, 7971.615: 5}
		for _, b := range h.Bucket {
			if w, ok := want[float64(int(b.GetUpperBound()*1000+0.5))/1000]; ok && b.GetCumulativeCount() != w {
				t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
			}
		}
	}
}
