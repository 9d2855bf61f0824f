package metrics

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// maxBuckets bounds the buckets of a BatchHistogram, +Inf included.
const maxBuckets = 24

// BatchHistogram is a histogram fed a batch of observations at a time: a
// Tally buckets them on the caller's stack and Flush adds them with one
// atomic add per bucket used, so that observing every record of a batch
// costs a few comparisons per record instead of a Prometheus Observe.
type BatchHistogram struct {
	bounds  []float64
	counts  [maxBuckets]atomic.Uint64 // per bucket, not cumulative; the last used is +Inf
	sumBits atomic.Uint64
}

// Tally collects the observations of one batch.
type Tally struct {
	h      *BatchHistogram
	counts [maxBuckets]uint64
	sum    float64
}

// Tally starts a batch of observations.
func (h *BatchHistogram) Tally() Tally { return Tally{h: h} }

// Observe adds one observation.
func (t *Tally) Observe(v float64) {
	i := 0
	for i < len(t.h.bounds) && v > t.h.bounds[i] {
		i++
	}
	t.counts[i]++
	t.sum += v
}

// Flush adds the tally to its histogram.
func (t *Tally) Flush() {
	n := len(t.h.bounds) + 1
	for i := range n {
		if c := t.counts[i]; c > 0 {
			t.h.counts[i].Add(c)
		}
	}
	for {
		old := t.h.sumBits.Load()
		if t.h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+t.sum)) {
			return
		}
	}
}

// batchHistVec is a vector of BatchHistograms by pipe, collected as
// Prometheus histograms.
type batchHistVec struct {
	desc   *prometheus.Desc
	bounds []float64

	mu       sync.Mutex
	children map[string]*BatchHistogram
}

func newBatchHistVec(name, help string, bounds []float64) *batchHistVec {
	if len(bounds)+1 > maxBuckets {
		panic("metrics: too many buckets")
	}
	sort.Float64s(bounds)
	return &batchHistVec{desc: prometheus.NewDesc(name, help, []string{"pipe"}, nil), bounds: bounds,
		children: map[string]*BatchHistogram{}}
}

func (v *batchHistVec) with(pipe string) *BatchHistogram {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.children[pipe]
	if h == nil {
		h = &BatchHistogram{bounds: v.bounds}
		v.children[pipe] = h
	}
	return h
}

func (v *batchHistVec) delete(pipe string) {
	v.mu.Lock()
	delete(v.children, pipe)
	v.mu.Unlock()
}

func (v *batchHistVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *batchHistVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for pipe, h := range v.children {
		buckets := make(map[float64]uint64, len(v.bounds))
		var cum uint64
		for i, b := range v.bounds {
			cum += h.counts[i].Load()
			buckets[b] = cum
		}
		cum += h.counts[len(v.bounds)].Load()
		ch <- prometheus.MustNewConstHistogram(v.desc, cum, math.Float64frombits(h.sumBits.Load()), buckets, pipe)
	}
}
