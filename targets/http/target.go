package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

type target struct {
	cfg    *Config
	client *http.Client
	// where names the endpoint in errors without its query or credentials.
	where  string
	header http.Header
}

var _ pipeline.Target = (*target)(nil)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func newTarget(c *Config) *target {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	return &target{
		cfg:    c,
		client: &http.Client{Transport: tr, Timeout: c.Timeout, CheckRedirect: keepPost},
		where:  c.u.Scheme + "://" + c.u.Host + c.u.Path,
		header: h,
	}
}

func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	bp := bufPool.Get().(*[]byte)
	body := pipeline.AppendEnvelope((*bp)[:0], b)
	defer func() {
		*bp = body[:0]
		bufPool.Put(bp)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("POST %s: %w", t.where, redact(err)))
	}
	req.Header = t.header.Clone()
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", t.where, redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	err = fmt.Errorf("POST %s: status %d: %s", t.where, resp.StatusCode, strings.TrimSpace(string(snippet)))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if d := retryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			return pipeline.RetryAfter(err, d)
		}
		return err
	default:
		return pipeline.Permanent(err)
	}
}

// keepPost follows only redirects that repeat the POST with its body (307,
// 308). A 301, 302 or 303 would turn it into a GET without the batch, whose
// success must not count as delivered: the 3xx answer is returned instead.
func keepPost(req *http.Request, via []*http.Request) error {
	if req.Method != http.MethodPost {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// redact strips the URL from a client error: it may hold credentials or
// tokens in its query; the caller names the endpoint instead.
func redact(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

func (t *target) Close() error {
	t.client.CloseIdleConnections()
	return nil
}
