package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/pipeline"
)

// partition buffers one assigned partition's fetched records and runs its
// worker, which cuts them into batches.
type partition struct {
	s         *source
	cl        *kgo.Client
	topic     string
	partition int32

	status *pipeline.PartitionStatus

	ctx    context.Context // in-flight batches run under it
	cancel context.CancelFunc
	quit   chan struct{} // closed when the partition leaves this member
	done   chan struct{} // closed when the worker has exited
	wake   chan struct{} // a record arrived

	mu     sync.Mutex
	chunks []chunk // fetched and not yet finished, in offset order
	head   int     // records of chunks[0] already finished
	bytes  int
	paused bool
	epoch  int32 // leader epoch of the last record taken

	// Reused between batches: a batch is done before the next one starts.
	records []pipeline.Record
	headers []pipeline.Header
	batch   pipeline.Batch
	// sizeHeaders is scratch space for recordSize.
	sizeHeaders []pipeline.Header
}

// chunk is records that arrived together.
type chunk struct {
	recs []*kgo.Record
	at   time.Time
}

// recordOverhead is counted per buffered record besides its key, value and
// headers, so many tiny records also fill the buffer.
const recordOverhead = 64

func newPartition(s *source, cl *kgo.Client, topic string, n int32) *partition {
	ctx, cancel := context.WithCancel(s.hardCtx)
	return &partition{
		s: s, cl: cl, topic: topic, partition: n,
		ctx: ctx, cancel: cancel,
		quit: make(chan struct{}),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),

		status: s.status.Assign(topic, n),
		batch: pipeline.Batch{
			EventSource:      pipeline.EventSourceSelfManagedKafka,
			BootstrapServers: s.bootstrap,
		},
	}
}

func bufferedSize(r *kgo.Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// push buffers fetched records and pauses fetching the partition when its
// buffer is full.
func (p *partition) push(recs []*kgo.Record, now time.Time) {
	n := 0
	for _, r := range recs {
		n += bufferedSize(r)
	}
	p.status.Polled(recs[0].Offset, len(recs), n-recordOverhead*len(recs))
	p.mu.Lock()
	p.chunks = append(p.chunks, chunk{recs: recs, at: now})
	p.bytes += n
	if p.bytes >= int(p.s.cfg.PartitionBuffer) && !p.paused {
		// Pause and resume happen under p.mu so they cannot cross.
		p.paused = true
		p.cl.PauseFetchPartitions(map[string][]int32{p.topic: {p.partition}})
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop makes the worker exit after its in-flight batch; lost partitions
// cancel that batch too.
func (p *partition) stop(lost bool) {
	close(p.quit)
	if lost {
		p.cancel()
	}
}

func (p *partition) work() {
	defer close(p.done)
	defer p.cancel()
	for {
		if !p.fill() {
			return
		}
		select {
		case p.s.sem <- struct{}{}:
		case <-p.quit:
			return
		case <-p.s.stopping:
			return
		}
		if p.leaving() {
			// Both were ready and select chose the semaphore.
			<-p.s.sem
			return
		}
		err := p.s.handler.Handle(p.ctx, &p.batch)
		<-p.s.sem
		if err != nil {
			// Only a cancelled context ends a batch unfinished: it stays
			// uncommitted and is delivered again.
			if p.ctx.Err() == nil {
				p.s.log.Error("batch ended unfinished without being cancelled; the partition stops here and its records are delivered again after a restart or rebalance",
					"topic", p.topic, "partition", p.partition, "error", err)
			}
			return
		}
		last := p.batch.Records[len(p.batch.Records)-1]
		p.s.markDone(p, last.Offset+1, p.epoch)
		p.release()
	}
}

// fill waits for the next batch to be ready and puts it in p.batch. It
// returns false when the worker must stop. The batching window opens when the
// batch's first record arrived; the batch closes when full, when the window
// passes, when its envelope would pass 6 MB, or when the partition buffer is
// full.
func (p *partition) fill() bool {
	cfg := p.s.cfg
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// Records only join the buffer while filling, so the count of those
	// that go into the batch grows from where the last wake left it.
	count, size := 0, p.emptySize()
	for {
		if p.leaving() {
			return false
		}
		var full bool
		var opened time.Time
		p.mu.Lock()
		count, size, full = p.scanLocked(count, size)
		if count > 0 {
			opened = p.chunks[0].at
		}
		// A paused partition gets no more records before this batch
		// is done: waiting for the window would only stall it.
		full = full || p.paused
		p.mu.Unlock()
		var wait <-chan time.Time
		if count > 0 {
			left := cfg.MaximumBatchingWindow - time.Since(opened)
			if full || left <= 0 {
				p.take()
				return true
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			wait = timer.C
		}
		select {
		case <-p.wake:
		case <-wait:
		case <-p.quit:
			return false
		case <-p.s.stopping:
			return false
		}
	}
}

// leaving reports whether the partition is being revoked or the source is
// stopping: no new batch may start then.
func (p *partition) leaving() bool {
	select {
	case <-p.quit:
		return true
	case <-p.s.stopping:
		return true
	default:
		return false
	}
}

// emptySize is the envelope size of a batch of this partition before its
// first record.
func (p *partition) emptySize() int {
	return pipeline.EnvelopeOverhead(p.batch.EventSource, p.batch.BootstrapServers) +
		pipeline.PartitionOverhead(p.topic, p.partition) - 1 // no comma before the only partition
}

// scanLocked goes on counting the buffered records that go into the next
// batch, from count of them whose envelope is size bytes. It returns the new
// count and size, and whether the batch can take no more records: it holds
// batchSize records, or the next record would take its envelope past 6 MB
// (a record too large on its own fills a batch alone). take cuts the same
// batch.
func (p *partition) scanLocked(count, size int) (int, int, bool) {
	limit := p.s.cfg.BatchSize
	skip := p.head + count
	for _, c := range p.chunks {
		if skip >= len(c.recs) {
			skip -= len(c.recs)
			continue
		}
		for _, r := range c.recs[skip:] {
			if count == limit {
				return count, size, true
			}
			add := p.recordSize(r)
			if count > 0 {
				add++ // comma
				if size+add > pipeline.MaxPayloadSize {
					return count, size, true
				}
			}
			count++
			size += add
			if size > pipeline.MaxPayloadSize {
				return count, size, true
			}
		}
		skip = 0
	}
	return count, size, count == limit
}

// recordSize is the size of r in the envelope.
func (p *partition) recordSize(r *kgo.Record) int {
	p.sizeHeaders = p.sizeHeaders[:0]
	for _, h := range r.Headers {
		p.sizeHeaders = append(p.sizeHeaders, pipeline.Header{Key: h.Key, Value: h.Value})
	}
	rec := pipeline.Record{
		Topic:         r.Topic,
		Partition:     r.Partition,
		Offset:        r.Offset,
		Timestamp:     r.Timestamp,
		TimestampType: pipeline.TimestampType(r.Attrs.TimestampType()),
		Key:           r.Key,
		Value:         r.Value,
		Headers:       p.sizeHeaders,
	}
	return pipeline.RecordSize(&rec)
}

// take copies up to batchSize buffered records, within the payload cap, into
// p.batch. They stay buffered (and counted) until release.
func (p *partition) take() {
	cfg := p.s.cfg
	p.records = p.records[:0]
	p.headers = p.headers[:0]
	size := p.emptySize()
	p.mu.Lock()
	defer p.mu.Unlock()
	head := p.head
outer:
	for _, c := range p.chunks {
		for _, r := range c.recs[head:] {
			if len(p.records) == cfg.BatchSize {
				break outer
			}
			p.records = append(p.records, pipeline.Record{
				Topic:         r.Topic,
				Partition:     r.Partition,
				Offset:        r.Offset,
				Timestamp:     r.Timestamp,
				TimestampType: pipeline.TimestampType(r.Attrs.TimestampType()),
				Key:           r.Key,
				Value:         r.Value,
			})
			rec := &p.records[len(p.records)-1]
			if len(r.Headers) > 0 {
				// Earlier records keep pointing into the old array if
				// append moves it; its contents stay valid.
				start := len(p.headers)
				for _, h := range r.Headers {
					p.headers = append(p.headers, pipeline.Header{Key: h.Key, Value: h.Value})
				}
				rec.Headers = p.headers[start:len(p.headers):len(p.headers)]
			}
			add := pipeline.RecordSize(rec)
			if len(p.records) > 1 {
				add++ // comma
			}
			if size+add > pipeline.MaxPayloadSize && len(p.records) > 1 {
				p.records = p.records[:len(p.records)-1]
				break outer
			}
			size += add
			p.epoch = r.LeaderEpoch
		}
		head = 0
	}
	p.batch.Records = p.records
	if len(p.records) == 1 && size > pipeline.MaxPayloadSize {
		r := &p.records[0]
		p.s.log.Warn("record alone is larger than the 6 MB payload cap; delivering it on its own",
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "size", size)
	}
}

// release drops the records of the finished batch from the buffer and
// resumes fetching once the buffer is below half its limit.
func (p *partition) release() {
	n := len(p.batch.Records)
	p.mu.Lock()
	for n > 0 {
		c := &p.chunks[0]
		k := min(n, len(c.recs)-p.head)
		for _, r := range c.recs[p.head : p.head+k] {
			p.bytes -= bufferedSize(r)
		}
		n -= k
		p.head += k
		if p.head == len(c.recs) {
			p.chunks[0] = chunk{}
			p.chunks = p.chunks[1:]
			p.head = 0
		}
	}
	if p.paused && p.bytes < int(p.s.cfg.PartitionBuffer)/2 {
		p.paused = false
		p.cl.ResumeFetchPartitions(map[string][]int32{p.topic: {p.partition}})
	}
	p.mu.Unlock()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// kgoLogger sends franz-go's warnings and errors to the pipe's log.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelWarn
	if level == kgo.LogLevelError {
		l = slog.LevelError
	}
	k.l.Log(context.Background(), l, "kafka client: "+msg, keyvals...)
}

// errorLog logs a repeating error once per interval.
type errorLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (e *errorLog) warn(l *slog.Logger, msg string, kv ...any) {
	key := msg
	for _, v := range kv {
		if err, ok := v.(error); ok {
			key += err.Error()
		}
	}
	e.mu.Lock()
	if e.last == nil {
		e.last = map[string]time.Time{}
	}
	now := time.Now()
	skip := now.Sub(e.last[key]) < time.Minute
	if !skip {
		e.last[key] = now
	}
	e.mu.Unlock()
	if !skip {
		l.Warn(msg, kv...)
	}
}
