// Package http is the `http` enrichment: it POSTs each batch (its envelope,
// or the records rendered by inputTemplate) to an HTTP endpoint and replaces
// the batch with the answer's body, as package stages/enrich describes.
//
// Status codes are read as by the http target: 2xx is success (the body is
// the answer); connection errors, timeouts, 429 and 5xx are retried by the
// runner, after the Retry-After delay when there is one; any other answer
// (a 4xx, a redirect other than 307 and 308) is a permanent failure. A body
// above 6 MB, or one that breaks the contract, fails the batch.
package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/enrich"
)

func init() {
	pipeline.RegisterEnrichment("http", "POSTs each batch to an HTTP endpoint and replaces the batch with the answer.",
		func() *Config { return &Config{} })
}

// Config is the `enrichment: {http: ...}` block.
type Config struct {
	URL           string                     `yaml:"url" required:"true" doc:"The endpoint, http:// or https://, that receives each batch in a POST. A 2xx answer's body replaces the batch; connection errors, timeouts, 429 and 5xx are retried with backoff (honouring Retry-After); any other answer is a permanent failure. Only 307 and 308 redirects are followed."`
	Timeout       time.Duration              `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one request, from connecting to reading the answer."`
	Headers       map[string]pipeline.Secret `yaml:"headers" doc:"Extra request headers. Values may use ${ENV} and ${file:/path}; they never appear in logs or errors, and are not sent on a redirect to another host."`
	InputTemplate string                     `yaml:"inputTemplate" doc:"An EventBridge Pipes input template (<$.value.orderId>, <aws.pipes.event.json> ...) rendered per record: the endpoint then receives a JSON array of the renderings (a JSON template's as it is, any other's as a JSON string) instead of the batch envelope."`

	u    *url.URL
	tmpl *pipeline.Template
}

// Validate parses the URL, the header names and the template.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps = append(ps, pipeline.FieldProblem{Field: "url", Msg: "must be an absolute http:// or https:// URL"})
	}
	c.u = u
	for k, v := range c.Headers {
		if !token(k) {
			ps = append(ps, pipeline.FieldProblem{Field: "headers", Msg: fmt.Sprintf("%q is not a valid header name", k)})
		}
		if strings.ContainsAny(v.Reveal(), "\r\n\x00") {
			ps = append(ps, pipeline.FieldProblem{Field: "headers", Msg: fmt.Sprintf("the value of %q holds a line break or NUL", k)})
		}
	}
	t, p := enrich.ParseInputTemplate(c.InputTemplate)
	if p != nil {
		ps = append(ps, *p)
	}
	c.tmpl = t
	return ps
}

// token reports whether s is an HTTP token (RFC 9110), as a header name
// must be.
func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// NewStage builds the stage; it touches no network.
func (c *Config) NewStage(env pipeline.Env) (pipeline.Stage, error) {
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v.Reveal())
	}
	h.Set("Content-Type", "application/json")
	cl := &caller{
		url:    c.u,
		where:  "POST " + c.u.Scheme + "://" + c.u.Host + c.u.Path,
		header: h,
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cl.client = &http.Client{Transport: tr, Timeout: c.Timeout, CheckRedirect: cl.checkRedirect}
	return enrich.NewStage(env, cl, c.tmpl, cl.where), nil
}

type caller struct {
	url    *url.URL
	where  string // the endpoint in errors, without its query or credentials
	header http.Header
	client *http.Client
}

// checkRedirect follows only 307 and 308, which repeat the POST with its
// body; the configured headers are not sent to another host.
func (c *caller) checkRedirect(req *http.Request, via []*http.Request) error {
	if req.Response == nil || req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if first := via[0].URL; req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		for k := range c.header {
			if k != "Content-Type" {
				req.Header.Del(k)
			}
		}
	}
	return nil
}

// Call POSTs the request and returns the body of a 2xx answer.
func (c *caller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("%s: %w", c.where, redact(err)))
	}
	req.Header = c.header.Clone()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		answer, err := io.ReadAll(io.LimitReader(resp.Body, enrich.MaxResponseSize+1))
		if err != nil {
			return nil, fmt.Errorf("%s: reading the answer: %w", c.where, redact(err))
		}
		if len(answer) > enrich.MaxResponseSize {
			return nil, fmt.Errorf("%s: the answer passes the %d-byte limit", c.where, enrich.MaxResponseSize)
		}
		return answer, nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	err = &statusError{fmt.Errorf("%s: status %d: %s", c.where, resp.StatusCode, strings.TrimSpace(string(snippet))), resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		if d := retryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			return nil, pipeline.RetryAfter(err, d)
		}
		return nil, err
	}
	return nil, pipeline.Permanent(err)
}

// statusError is an answer other than 2xx; its status goes to the
// on-failure record.
type statusError struct {
	error
	status int
}

func (e *statusError) Unwrap() error   { return e.error }
func (e *statusError) StatusCode() int { return e.status }

var _ pipeline.StatusCoder = (*statusError)(nil)

// redact strips the URL from a client error: it may hold credentials or
// tokens in its query; the caller names the endpoint instead.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
