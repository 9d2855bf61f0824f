package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pipe-run/pipe/internal/awscfg/batch"
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

var (
	_ pipeline.Target    = (*target)(nil)
	_ pipeline.Describer = (*target)(nil)
	_ pipeline.Previewer = (*target)(nil)
)

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
		blocked map[partitionID]bool // partitions with a reported failure: their later records wait
		stopErr error                // an invocation failed: the rest waits for the retry
		itemErr error                // the first partial batch response
		refused error                // Lambda's 413 answer for a record on its own
		sub     = pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
		idx     []int // index in b of each record of sub
		limit   = t.limit
	)
	for i := 0; i < n && stopErr == nil; {
		var size int
		i, size, idx = t.next(b, i, limit, state, blocked, &sub, idx)
		if len(sub.Records) == 0 {
			continue
		}
		// A new buffer for each invocation: the SDK's transport may still
		// read the request after Invoke returned (an early answer).
		payload := pipeline.AppendEnvelope(make([]byte, 0, size), &sub)
		resp, err := t.fn.Invoke(ctx, payload, t.async)
		switch {
		case errors.Is(err, ErrRequestTooLarge) && len(idx) > 1:
			// Lambda's limit is lower than ours: invoke with fewer records.
			limit = size / 2
			i = idx[0]
			continue
		case errors.Is(err, ErrRequestTooLarge):
			state[idx[0]] = tooLarge
			refused = err
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
				itemErr = fmt.Errorf("lambda %s reported failed records in its batchItemFailures, the first %s; retrying them and the later records of their partitions",
					t.fn.name, batch.RecordID(r))
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
		err = pipeline.TooLarge(t.oversized(b, large, refused))
	default:
		return nil
	}
	if len(failed) == n && stopErr != nil {
		// No record was delivered: the batch failed as a whole, and the
		// runner may run the stages again. A partial batch response naming
		// every record still retries the target only.
		return err
	}
	return pipeline.RetryOnly(err, failed)
}

// next collects in sub the records of the next invocation from index i
// on: in order, leaving out those of blocked partitions (marked retry) and
// those too large on their own (marked tooLarge), while the envelope stays
// within limit. It returns the index after the last record looked at, the
// envelope's size and the index in b of each record of sub.
func (t *target) next(b *pipeline.Batch, i, limit int, state []uint8, blocked map[partitionID]bool, sub *pipeline.Batch, idx []int) (int, int, []int) {
	sub.Records, idx = sub.Records[:0], idx[:0]
	size := pipeline.EnvelopeOverhead(b.EventSource, b.BootstrapServers) - 1
	j := i
	for ; j < len(b.Records); j++ {
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
	return j, size, idx
}

// Preview returns the invocations Deliver would make for b when every one
// succeeds; records too large on their own are in none.
func (t *target) Preview(b *pipeline.Batch, _ *pipeline.TemplateContext) []pipeline.Request {
	invocation := "RequestResponse"
	if t.async {
		invocation = "Event"
	}
	attrs := map[string]string{"FunctionName": t.fn.name.Name, "InvocationType": invocation}
	if t.fn.name.Qualifier != "" {
		attrs["Qualifier"] = t.fn.name.Qualifier
	}
	state := make([]uint8, len(b.Records))
	sub := pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
	var reqs []pipeline.Request
	for i := 0; i < len(b.Records); {
		var idx []int
		i, _, idx = t.next(b, i, t.limit, state, nil, &sub, nil)
		if len(idx) > 0 {
			reqs = append(reqs, pipeline.Request{Records: idx, Summary: "Invoke " + t.fn.name.String(),
				Attributes: attrs, Body: pipeline.AppendEnvelope(nil, &sub)})
		}
	}
	return reqs
}

// oversized names the records too large to invoke the function with.
func (t *target) oversized(b *pipeline.Batch, large []int, refused error) error {
	var names []string
	for i, k := range large {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(large)-5))
			break
		}
		r := &b.Records[k]
		names = append(names, batch.RecordID(r))
	}
	what := fmt.Sprintf("lambda %s: record %s too large", t.fn.name, strings.Join(names, ", "))
	if refused != nil {
		return fmt.Errorf("%s: its envelope alone passes the %d-byte payload limit, or Lambda refused it: %w", what, t.limit, refused)
	}
	return fmt.Errorf("%s: its envelope alone passes the %d-byte payload limit", what, t.limit)
}

// Describe names the function in on-failure records.
func (t *target) Describe() string { return t.fn.name.String() }

func (t *target) Close() error { return nil }
