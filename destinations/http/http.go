// Package http is the `http` on-failure destination: each failure is POSTed
// as JSON, the on-failure record of Lambda with the error text and, unless
// turned off, the records under "payload". A 2xx answer stores it; anything
// else (including a redirect) fails the send, which the pipe retries while
// the partition waits.
package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterDestination("http", "POSTs each on-failure record, as JSON, to an HTTP endpoint.",
		func() *Config { return &Config{} })
}

// Config is the `onFailure: {http: ...}` block.
type Config struct {
	URL     string                     `yaml:"url" required:"true" doc:"The endpoint, http:// or https://. A 2xx answer stores the failure; anything else is retried, the partition waiting."`
	Timeout time.Duration              `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one request."`
	Headers map[string]pipeline.Secret `yaml:"headers" doc:"Extra request headers (an Authorization token ...). Never logged."`
	Payload bool                       `yaml:"payload" default:"true" doc:"Include the records, as a batch envelope, under payload."`

	u *url.URL
}

// Validate parses the URL.
func (c *Config) Validate() []pipeline.FieldProblem {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []pipeline.FieldProblem{{Field: "url", Msg: "must be an absolute http:// or https:// URL"}}
	}
	c.u = u
	return nil
}

// NewDestination builds the client; nothing is connected.
func (c *Config) NewDestination(env pipeline.Env) (pipeline.Destination, error) {
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v.Reveal())
	}
	h.Set("Content-Type", "application/json")
	return &destination{cfg: c, header: h, where: c.u.Scheme + "://" + c.u.Host + c.u.Path,
		client: &http.Client{Timeout: c.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

type destination struct {
	cfg    *Config
	header http.Header
	where  string
	client *http.Client
}

// statusError is a non-2xx answer.
type statusError struct {
	where string
	code  int
	body  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("POST %s: status %d: %s", e.where, e.code, e.body)
}

// Send POSTs the failure record.
func (d *destination) Send(ctx context.Context, f *pipeline.Failure) error {
	body := pipeline.AppendFailureRecord(nil, f, d.cfg.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", d.where, redact(err))
	}
	req.Header = d.header.Clone()
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", d.where, redact(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{where: d.where, code: resp.StatusCode, body: strings.TrimSpace(string(snippet))}
	}
	return nil
}

// redact drops the URL (which may hold credentials or a query) from a client
// error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s", ue.Err)
	}
	return err
}

// Close releases idle connections.
func (d *destination) Close() error {
	d.client.CloseIdleConnections()
	return nil
}
