package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/pipe-run/pipe/pipeline"
)

type target struct {
	fn          *Function
	async       bool
	itemFailure bool
	// limit caps the envelope of one invocation.
	limit  int
	logger *slog.Logger
}

var _ pipeline.Target = (*target)(nil)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// What became of each record of a batch during one Deliver.
const (
	pending  uint8 = iota
	done           // the function took it
	retry          // failed, or not invoked after an earlier failure
	tooLarge       // too large on its own: a permanent failure
)

type partitionID struct {
	topic     string
	partition int32
}

// Deliver invokes the function with the batch's envelope, split into
// several invocations, in record order, when one envelope would pass the
// payload limit. See the package doc for what fails and what is retried.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	n := len(b.Records)
	if n == 0 {
		return nil
	}
	state := make([]uint8, n)
	var (
		blocked  map[partitionID]bool // partitions with a reported failure: their later records wait
		stopErr  error                // an invocation failed: the rest waits for the retry
		itemErr  error                // the first partial batch response
		refused  bool                 // Lambda answered 413 for a record on its own
		sub      = pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
		idx      []int // index in b of each record of sub
		limit    = t.limit
		overhead = pipeline.EnvelopeOverhead(b.EventSource, b.BootstrapServers) - 1
	)
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		*bp = buf[:0]
		bufPool.Put(bp)
	}()
	for i := 0; i < n && stopErr == nil; {
		// The next invocation: records in order, skipping the blocked
		// partitions and the records too large on their own, up to limit.
		sub.Records, idx = sub.Records[:0], idx[:0]
		size := overhead
		j := i
		for ; j < n; j++ {
			r := &b.Records[j]
			if blocked[partitionID{r.Topic, r.Partition}] {
				state[j] = retry
				continue
			}
			add := pipeline.RecordSize(r) + 1
			if len(sub.Records) == 0 || sub.Records[len(sub.Records)-1].Partition != r.Partition || sub.Records[len(sub.Records)-1].Topic != r.Topic {
				add += pipeline.PartitionOverhead(r.Topic, r.Partition) - 1
			}
			if len(sub.Records) == 0 {
				if size+add > t.limit {
					state[j] = tooLarge
					continue
				}
			} else if size+add > limit {
				break
			}
			sub.Records = append(sub.Records, *r)
			idx = append(idx, j)
			size += add
		}
		i = j
		if len(sub.Records) == 0 {
			continue
		}
		buf = pipeline.AppendEnvelope(buf[:0], &sub)
		resp, err := t.fn.Invoke(ctx, buf, t.async)
		switch {
		case errors.Is(err, ErrRequestTooLarge) && len(idx) > 1:
			// Lambda's limit is lower than ours: invoke with fewer records.
			limit = size / 2
			i = idx[0]
			continue
		case errors.Is(err, ErrRequestTooLarge):
			state[idx[0]] = tooLarge
			refused = true
			continue
		case err != nil:
			stopErr = err
		case t.itemFailure:
			failed, perr := itemFailures(resp, &sub)
			if perr != nil {
				stopErr = fmt.Errorf("lambda %s: %w", t.fn.name, perr)
				break
			}
			for _, k := range idx {
				state[k] = done
			}
			for _, f := range failed {
				r := &sub.Records[f]
				state[idx[f]] = retry
				if blocked == nil {
					blocked = map[partitionID]bool{}
				}
				blocked[partitionID{r.Topic, r.Partition}] = true
			}
			if len(failed) > 0 && itemErr == nil {
				r := &sub.Records[failed[0]]
				itemErr = fmt.Errorf("lambda %s reported failed records in its batchItemFailures, the first %s-%d offset %d; retrying them and the later records of their partitions",
					t.fn.name, r.Topic, r.Partition, r.Offset)
			}
			continue
		}
		if stopErr != nil {
			for k := idx[0]; k < n; k++ {
				if state[k] == pending {
					state[k] = retry
				}
			}
			break
		}
		for _, k := range idx {
			state[k] = done
		}
	}

	var failed, large []int
	for k, s := range state {
		switch s {
		case retry:
			failed = append(failed, k)
		case tooLarge:
			failed = append(failed, k)
			large = append(large, k)
		}
	}
	var err error
	switch {
	case stopErr != nil:
		err = stopErr
	case itemErr != nil:
		err = itemErr
	case len(large) > 0:
		err = pipeline.Permanent(t.oversized(b, large, refused))
	default:
		return nil
	}
	if len(failed) == n {
		return err
	}
	return pipeline.RetryOnly(err, failed)
}

// oversized names the records too large to invoke the function with.
func (t *target) oversized(b *pipeline.Batch, large []int, refused bool) error {
	var names []string
	for i, k := range large {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(large)-5))
			break
		}
		r := &b.Records[k]
		names = append(names, fmt.Sprintf("%s-%d offset %d", r.Topic, r.Partition, r.Offset))
	}
	why := fmt.Sprintf("its envelope alone passes the %d-byte payload limit", t.limit)
	if refused {
		why = "its envelope alone passes the payload limit, or Lambda refused it as too large (413)"
	}
	return fmt.Errorf("lambda %s: MaximumPayloadSizeExceeded: record %s: %s", t.fn.name, strings.Join(names, ", "), why)
}

func (t *target) Close() error { return nil }
