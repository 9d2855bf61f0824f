package pipeline

import (
	"errors"
	"time"
)

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the same records cannot succeed
// (a 4xx answer, a validation error). nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError carries a minimum delay asked for by the receiver (an HTTP
// Retry-After header, for example).
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err with the minimum delay before the next attempt.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// RetryAfterOf returns the delay carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after
	}
	return 0
}

// partialError says that only some records of a delivered batch failed.
type partialError struct {
	err    error
	failed []int
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// RetryOnly wraps a target's error to say that only the records at the given
// indexes of the delivered batch's Records failed: those are retried, the
// others are done. Indexes must be ascending. A target that honours a partial
// batch response (a Lambda's batchItemFailures) lists the failed records and
// every later record of the same partition, so that a partition's records
// are never delivered out of order. nil stays nil.
func RetryOnly(err error, failed []int) error {
	if err == nil {
		return nil
	}
	return &partialError{err: err, failed: failed}
}

// RetryOnlyOf returns the failed indexes carried by err; ok is false when err
// covers the whole batch.
func RetryOnlyOf(err error) (failed []int, ok bool) {
	var p *partialError
	if errors.As(err, &p) {
		return p.failed, true
	}
	return nil, false
}
