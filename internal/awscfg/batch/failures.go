package batch

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pipe-run/pipe/pipeline"
)

// Failures collects the records of a batch that a batch API
// (SendMessageBatch, PublishBatch, PutEvents) did not accept, and builds the
// error that tells the runner which to retry. The zero value is ready; What
// names the call in the error ("sending to SQS queue orders").
//
// Order within a partition: once a record failed in a way that a retry may
// fix, the later records of its partition are not sent in this attempt
// (Blocked); they are retried after it. Records behind a permanent failure
// go on: retrying cannot deliver the failed record, so nothing is gained by
// holding them.
type Failures struct {
	What     string
	failed   []int
	retry    int
	tooLarge int
	notes    []string
	more     int
	reasons  map[int]string
	blocked  []partition
}

type partition struct {
	topic string
	part  int32
}

// maxNotes is how many failures the error describes one by one.
const maxNotes = 5

// Fail records that the record at index i of the batch failed. permanent
// says that sending it again cannot succeed. The message names the record.
func (f *Failures) Fail(i int, r *pipeline.Record, permanent bool, format string, args ...any) {
	f.failed = append(f.failed, i)
	if !permanent {
		f.retry++
		f.block(r)
	}
	if f.reasons != nil {
		f.reasons[i] = fmt.Sprintf(format, args...)
	}
	if len(f.notes) < maxNotes {
		f.notes = append(f.notes, RecordID(r)+": "+fmt.Sprintf(format, args...))
	} else {
		f.more++
	}
}

// KeepReasons makes the Failures remember why each record failed, for
// Reasons.
func (f *Failures) KeepReasons() { f.reasons = map[int]string{} }

// Reasons returns why each record failed, by index, once KeepReasons was
// called (records failed by Fail and TooLarge only).
func (f *Failures) Reasons() map[int]string { return f.reasons }

// TooLarge records that the record at index i is too large for the
// service: a permanent failure whose on-failure condition is
// MaximumPayloadSizeExceeded when it is the only kind in the batch.
func (f *Failures) TooLarge(i int, r *pipeline.Record, format string, args ...any) {
	f.tooLarge++
	f.Fail(i, r, true, format, args...)
}

// FailCall records that a whole call failed with err (already Classified):
// every record at the given indexes failed in the same way.
func (f *Failures) FailCall(idx []int, recs []pipeline.Record, err error) {
	permanent := pipeline.IsPermanent(err)
	f.failed = append(f.failed, idx...)
	if !permanent {
		f.retry += len(idx)
		for _, i := range idx {
			f.block(&recs[i])
		}
	}
	if len(f.notes) < maxNotes {
		f.notes = append(f.notes, fmt.Sprintf("%d records: %v", len(idx), err))
	} else {
		f.more += len(idx)
	}
}

// Skip records that the record at index i was not sent because an earlier
// record of its partition failed (it is Blocked), or because the attempt
// stopped; it is retried.
func (f *Failures) Skip(i int, r *pipeline.Record) {
	f.failed = append(f.failed, i)
	f.retry++
	f.block(r)
}

// Blocked reports whether an earlier record of r's partition failed in a way
// that a retry may fix, so r must wait for it.
func (f *Failures) Blocked(r *pipeline.Record) bool {
	for _, p := range f.blocked {
		if p.part == r.Partition && p.topic == r.Topic {
			return true
		}
	}
	return false
}

func (f *Failures) block(r *pipeline.Record) {
	if !f.Blocked(r) {
		f.blocked = append(f.blocked, partition{r.Topic, r.Partition})
	}
}

// Len returns the number of records that failed or were skipped.
func (f *Failures) Len() int { return len(f.failed) }

// Err returns nil when no record failed. Otherwise it returns an error
// wrapped with pipeline.RetryOnly listing the failed records, and with
// pipeline.Permanent when every failure is permanent (pipeline.TooLarge
// when every one is a record too large). A batch that mixes
// both is not permanent: the next attempt retries all of its failed
// records, the permanent ones fail again, and once only those are left the
// error is permanent. total is the number of records in the batch.
func (f *Failures) Err(total int) error {
	if len(f.failed) == 0 {
		return nil
	}
	slices.Sort(f.failed)
	f.failed = slices.Compact(f.failed)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d records failed", f.What, len(f.failed), total)
	if f.retry == 0 {
		b.WriteString(" permanently")
	}
	for i, n := range f.notes {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(n)
	}
	if f.more > 0 {
		fmt.Fprintf(&b, "; and %d more", f.more)
	}
	err := pipeline.RetryOnly(errors.New(b.String()), f.failed)
	switch {
	case f.retry > 0:
		return err
	case f.tooLarge == len(f.failed):
		return pipeline.TooLarge(err)
	}
	return pipeline.Permanent(err)
}

// RecordID names a record in errors and logs: topic/partition/offset.
func RecordID(r *pipeline.Record) string {
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}
