package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Stages are the values of the stage label, in the order a batch meets them.
var Stages = []string{"filter", "transform", "enrichment", "target", "onFailure"}

// Kinds of stage errors (the kind label of pipe_stage_errors_total).
const (
	KindError     = "error"     // any other failure
	KindThrottled = "throttled" // the receiver asked to slow down (429, Retry-After)
	KindTimeout   = "timeout"   // the call timed out
	KindPartial   = "partial"   // only some records failed
)

// States are the values of the state label of pipe_state.
var States = []string{"starting", "running", "stopping", "stopped", "failed"}

// Registry holds every metric of a process, in a Prometheus registry of its
// own (not the global default one), so that two in one process do not mix.
type Registry struct {
	reg *prometheus.Registry

	polled, polledBytes, filtered, delivered *prometheus.CounterVec
	filterErrors                             *prometheus.CounterVec
	failed, onFailure, onFailureErrors       *prometheus.CounterVec
	retries, bisects, batches                *prometheus.CounterVec
	stageErrors, connFailures                *prometheus.CounterVec
	batchRecords, stageDuration              *prometheus.HistogramVec
	batchDuration                            *prometheus.HistogramVec
	latency                                  *batchHistVec
	inflightBatches, inflightBytes, state    *prometheus.GaugeVec
	lag, highWatermark, committed            *prometheus.GaugeVec
	stalled, blocked                         *prometheus.GaugeVec
}

// New makes a registry with the pipe metrics and Go's runtime and process
// collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	pipe := []string{"pipe"}
	part := []string{"pipe", "topic", "partition"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		r.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		r.reg.MustRegister(v)
		return v
	}
	seconds := prometheus.ExponentialBuckets(0.001, 2.5, 12) // 1ms .. 60s
	r.polled = counter("pipe_records_polled_total", "Records read from the source.", pipe...)
	r.polledBytes = counter("pipe_records_polled_bytes_total", "Bytes of keys, values and headers read from the source.", pipe...)
	r.filtered = counter("pipe_records_filtered_total", "Records the filter dropped; they count as done.", pipe...)
	r.filterErrors = counter("pipe_filter_expression_errors_total", "Records the filter's expression failed to evaluate on (they are filtered out).", pipe...)
	r.delivered = counter("pipe_records_delivered_total", "Records the target accepted (after the filter and enrichment, which may change their number).", pipe...)
	r.failed = counter("pipe_records_failed_total", "Records of attempts that failed, by the stage that failed; a retried record counts again.", "pipe", "stage")
	r.onFailure = counter("pipe_records_sent_to_on_failure_total", "Records sent to the on-failure destination, by condition.", "pipe", "condition")
	r.onFailureErrors = counter("pipe_on_failure_errors_total", "Failed sends to the on-failure destination (each is retried).", pipe...)
	r.retries = counter("pipe_retries_total", "Retries of failed batches.", pipe...)
	r.bisects = counter("pipe_bisects_total", "Failed batches split in halves (bisectBatchOnError).", pipe...)
	r.batches = counter("pipe_batches_total", "Batches handed to the pipe by the source.", pipe...)
	r.stageErrors = counter("pipe_stage_errors_total", "Failed attempts of a stage, by kind: error, throttled, timeout, partial.", "pipe", "stage", "kind")
	r.connFailures = counter("pipe_connection_failures_total", "Failed connections to the source's brokers, by kind (authentication, tls-verification, unreachable ...).", "pipe", "kind")
	r.batchRecords = histogram("pipe_batch_records", "Records per batch handed to the pipe.",
		[]float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}, pipe...)
	r.stageDuration = histogram("pipe_stage_duration_seconds", "Duration of one call of a stage (filter, transform, enrichment, target), failed calls included.", seconds, "pipe", "stage")
	r.batchDuration = histogram("pipe_batch_duration_seconds", "Time from a batch handed to the pipe until it is done, retries included.", seconds, pipe...)
	r.latency = newBatchHistVec("pipe_record_latency_seconds", "Time from each record's Kafka timestamp until its batch is done (delivered, filtered out or sent to on-failure).",
		prometheus.ExponentialBuckets(0.005, 3, 14)) // 5ms .. 2.2h
	r.reg.MustRegister(r.latency)
	r.inflightBatches = gauge("pipe_inflight_batches", "Batches being processed.", pipe)
	r.inflightBytes = gauge("pipe_inflight_bytes", "Bytes of keys, values and headers of the batches being processed.", pipe)
	r.state = gauge("pipe_state", "1 for the pipe's current state (starting, running, stopping, stopped, failed), 0 for the others.", []string{"pipe", "state"})
	r.lag = gauge("pipe_offset_lag", "A partition's high watermark minus the group's committed offset (Lambda's OffsetLag).", part)
	r.highWatermark = gauge("pipe_partition_high_watermark", "A partition's high watermark: the offset of its next record.", part)
	r.committed = gauge("pipe_partition_committed_offset", "The group's committed offset of a partition: the next record to read.", part)
	r.stalled = gauge("pipe_partition_stalled", "1 when a partition has lag and its committed offset has not moved for stallTimeout.", part)
	r.blocked = gauge("pipe_partition_blocked", "1 while a partition's batch waits to be retried.", part)
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Gatherer is the registry to serve on /metrics.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Pipe returns the metrics of one pipe, curried once so that the hot path
// neither looks labels up nor allocates. The same name gives the same
// series, so a restarted pipe counts on.
func (r *Registry) Pipe(name string) *Pipe {
	p := &Pipe{
		r:               r,
		name:            name,
		Polled:          r.polled.WithLabelValues(name),
		PolledBytes:     r.polledBytes.WithLabelValues(name),
		Filtered:        r.filtered.WithLabelValues(name),
		FilterErrors:    r.filterErrors.WithLabelValues(name),
		Delivered:       r.delivered.WithLabelValues(name),
		OnFailureErrors: r.onFailureErrors.WithLabelValues(name),
		Retries:         r.retries.WithLabelValues(name),
		Bisects:         r.bisects.WithLabelValues(name),
		Batches:         r.batches.WithLabelValues(name),
		BatchRecords:    r.batchRecords.WithLabelValues(name),
		BatchDuration:   r.batchDuration.WithLabelValues(name),
		Latency:         r.latency.with(name),
		InflightBatches: r.inflightBatches.WithLabelValues(name),
		InflightBytes:   r.inflightBytes.WithLabelValues(name),
	}
	for _, s := range States {
		p.states = append(p.states, r.state.WithLabelValues(name, s))
	}
	return p
}

// RemovePipe deletes every series of a pipe that is gone.
func (r *Registry) RemovePipe(name string) {
	l := prometheus.Labels{"pipe": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		r.polled, r.polledBytes, r.filtered, r.filterErrors, r.delivered, r.failed, r.onFailure, r.onFailureErrors,
		r.retries, r.bisects, r.batches, r.stageErrors, r.connFailures, r.batchRecords, r.stageDuration,
		r.batchDuration, r.inflightBatches, r.inflightBytes, r.state, r.lag,
		r.highWatermark, r.committed, r.stalled, r.blocked,
	} {
		v.DeletePartialMatch(l)
	}
	r.latency.delete(name)
}

// Pipe is the metrics of one pipe.
type Pipe struct {
	r    *Registry
	name string

	Polled, PolledBytes, Filtered, Delivered prometheus.Counter
	FilterErrors                             prometheus.Counter
	OnFailureErrors, Retries, Bisects        prometheus.Counter
	Batches                                  prometheus.Counter
	BatchRecords, BatchDuration              prometheus.Observer
	Latency                                  *BatchHistogram
	InflightBatches, InflightBytes           prometheus.Gauge

	states []prometheus.Gauge
}

// SetState sets pipe_state: 1 for state, 0 for the others.
func (p *Pipe) SetState(state string) {
	for i, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		p.states[i].Set(v)
	}
}

// Stage returns the metrics of one stage of the pipe.
func (p *Pipe) Stage(stage string) *Stage {
	s := &Stage{
		Duration: p.r.stageDuration.WithLabelValues(p.name, stage),
		Failed:   p.r.failed.WithLabelValues(p.name, stage),
	}
	for i, k := range []string{KindError, KindThrottled, KindTimeout, KindPartial} {
		s.errors[i] = p.r.stageErrors.WithLabelValues(p.name, stage, k)
	}
	return s
}

// SentToOnFailure counts n records sent to the on-failure destination.
func (p *Pipe) SentToOnFailure(condition string, n int) {
	p.r.onFailure.WithLabelValues(p.name, condition).Add(float64(n))
}

// ConnectionFailed counts a failed connection of the given kind.
func (p *Pipe) ConnectionFailed(kind string) {
	p.r.connFailures.WithLabelValues(p.name, kind).Inc()
}

// Stage is the metrics of one stage of a pipe.
type Stage struct {
	Duration prometheus.Observer
	Failed   prometheus.Counter
	errors   [4]prometheus.Counter
}

// Error counts a failed attempt of the stage of the given kind.
func (s *Stage) Error(kind string) {
	i := 0
	switch kind {
	case KindThrottled:
		i = 1
	case KindTimeout:
		i = 2
	case KindPartial:
		i = 3
	}
	s.errors[i].Inc()
}

// Partition returns the metrics of one partition of the pipe.
func (p *Pipe) Partition(topic string, partition int32) *Partition {
	n := strconv.Itoa(int(partition))
	return &Partition{
		labels:        prometheus.Labels{"pipe": p.name, "topic": topic, "partition": n},
		r:             p.r,
		Lag:           p.r.lag.WithLabelValues(p.name, topic, n),
		HighWatermark: p.r.highWatermark.WithLabelValues(p.name, topic, n),
		Committed:     p.r.committed.WithLabelValues(p.name, topic, n),
		Stalled:       p.r.stalled.WithLabelValues(p.name, topic, n),
		Blocked:       p.r.blocked.WithLabelValues(p.name, topic, n),
	}
}

// Partition is the metrics of one assigned partition.
type Partition struct {
	labels prometheus.Labels
	r      *Registry

	Lag, HighWatermark, Committed, Stalled, Blocked prometheus.Gauge
}

// Remove deletes the partition's series once it is no longer assigned.
func (p *Partition) Remove() {
	for _, v := range []*prometheus.GaugeVec{p.r.lag, p.r.highWatermark, p.r.committed, p.r.stalled, p.r.blocked} {
		v.Delete(p.labels)
	}
}
