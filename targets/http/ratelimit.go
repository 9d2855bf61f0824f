package http

import (
	"context"
	"sync"
	"time"

	"github.com/pipe-run/pipe/internal/backoff"
)

// limiter is a token bucket: it holds up to burst tokens, gains rate tokens
// per second, and each request takes one. A request that finds the bucket
// empty reserves the next token and waits for it, so waiting requests are
// served in the order they came, at the rate. Waits honour the context; a
// request that gives up returns its reservation.
type limiter struct {
	rate  float64 // tokens per second
	burst float64

	// now and sleep are the clock; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64 // may go below 0: reservations of waiting requests
	last   time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: perSecond, burst: float64(burst), tokens: float64(burst), now: time.Now, sleep: backoff.Sleep}
}

// reserve takes a token and returns how long to wait before using it.
func (l *limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		if el := now.Sub(l.last); el > 0 {
			l.tokens = min(l.burst, l.tokens+el.Seconds()*l.rate)
		}
	}
	if now.After(l.last) {
		l.last = now
	}
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// cancel gives back a reserved token that will not be used.
func (l *limiter) cancel() {
	l.mu.Lock()
	l.tokens = min(l.burst, l.tokens+1)
	l.mu.Unlock()
}

// wait blocks until the caller may send a request, or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := l.reserve()
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		l.cancel()
		return err
	}
	return nil
}
