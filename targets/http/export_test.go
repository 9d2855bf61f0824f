package http

import (
	"context"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// SetClock replaces the clock of a target's rate limit and OAuth2 token
// cache.
func SetClock(tg pipeline.Target, now func() time.Time, sleep func(context.Context, time.Duration) error) {
	t := tg.(*target)
	if t.limit != nil {
		t.limit.now, t.limit.sleep = now, sleep
	}
	if t.tokens != nil {
		t.tokens.now = now
	}
}
