package http

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock that moves only when told or when slept on.
type stepClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
	fail   error // returned by Sleep instead of sleeping, when set
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testLimiter(perSecond float64, burst int) (*limiter, *stepClock) {
	c := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter(perSecond, burst)
	l.now, l.sleep = c.now, c.sleep
	return l, c
}

func TestLimiterBurstThenRate(t *testing.T) {
	l, c := testLimiter(10, 3)
	for i := range 13 {
		if err := l.wait(context.Background()); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
	}
	// Three go at once, then one every 100ms.
	want := slices.Repeat([]time.Duration{100 * time.Millisecond}, 10)
	if !slices.Equal(c.sleeps, want) {
		t.Errorf("sleeps %v, want %v", c.sleeps, want)
	}
	if el := c.now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); el != time.Second {
		t.Errorf("13 requests took %v, want 1s at 10/s with a burst of 3", el)
	}
}

// Requests that reserve at the same moment queue up behind each other.
func TestLimiterQueues(t *testing.T) {
	l, _ := testLimiter(4, 2)
	var got []time.Duration
	for range 5 {
		got = append(got, l.reserve())
	}
	want := []time.Duration{0, 0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

// A quiet spell refills the bucket up to the burst, no more.
func TestLimiterRefillCapped(t *testing.T) {
	l, c := testLimiter(2, 3)
	for range 3 {
		l.reserve()
	}
	c.advance(time.Hour)
	var got []time.Duration
	for range 4 {
		got = append(got, l.reserve())
	}
	if want := []time.Duration{0, 0, 0, 500 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("after an hour: waits %v, want %v", got, want)
	}
}

// A wait that gives up returns its token: the next request does not pay
// for it.
func TestLimiterCancelReturnsToken(t *testing.T) {
	l, c := testLimiter(1, 1)
	l.wait(context.Background())
	c.fail = context.Canceled
	if err := l.wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
	c.fail = nil
	if d := l.reserve(); d != time.Second {
		t.Errorf("after a cancelled wait the next waits %v, want 1s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}

func TestLimiterSlowRate(t *testing.T) {
	l, _ := testLimiter(0.5, 1)
	l.reserve()
	if d := l.reserve(); d != 2*time.Second {
		t.Errorf("0.5/s: second request waits %v, want 2s", d)
	}
}
