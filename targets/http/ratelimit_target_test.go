package http_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	httptarget "github.com/pipe-run/pipe/targets/http"
)

// The rate limit spaces requests: counted on a fake clock, every request
// past the burst waits 1/perSecond.
func TestRateLimitedRequests(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, "url: "+rc.URL+"\nmode: record\nconcurrency: 1\nrateLimit: {perSecond: 5, burst: 2}")
	clock := newFakeClock()
	httptarget.SetClock(tg, clock.Now, clock.Sleep)
	var recs []pipeline.Record
	for o := range 12 {
		recs = append(recs, jrec(int32(o%3), int64(o), "k", "{}"))
	}
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.seen()); n != 12 {
		t.Fatalf("%d requests, want 12", n)
	}
	if got, want := clock.Sleeps(), slices.Repeat([]time.Duration{200 * time.Millisecond}, 10); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v (12 requests, a burst of 2, 5 per second)", got, want)
	}

	// Batch mode: one token per request.
	tg = build(t, "url: "+rc.URL+"\nrateLimit: {perSecond: 2}")
	clock = newFakeClock()
	httptarget.SetClock(tg, clock.Now, clock.Sleep)
	for range 4 {
		if err := deliver(t, tg, batchOf(recs...)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := clock.Sleeps(), slices.Repeat([]time.Duration{500 * time.Millisecond}, 3); !slices.Equal(got, want) {
		t.Errorf("batch mode waits %v, want %v", got, want)
	}
}

// A request waiting for its turn gives up when its context ends, and is
// never sent.
func TestRateLimitHonoursContext(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, "url: "+rc.URL+"\nrateLimit: {perSecond: 0.001}")
	if err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Deliver(ctx, batchOf(jrec(0, 1, "k", "{}"))) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the rate limit wait ignored the context")
	}
	if n := len(rc.seen()); n != 1 {
		t.Errorf("%d requests, want 1: the waiting one must not be sent", n)
	}
}
