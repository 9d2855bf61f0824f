// Package http is the `http` target: it POSTs each batch's envelope to a URL.
package http

import (
	"fmt"
	"net/url"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("http", "POSTs each batch's envelope, as JSON, to an HTTP endpoint.",
		func() *Config { return &Config{} })
}

// Config is the `target: {http: ...}` block.
type Config struct {
	URL     string            `yaml:"url" required:"true" doc:"The endpoint, http:// or https://. A 2xx answer is success; connection errors, timeouts, 429 and 5xx are retried with backoff (honouring Retry-After), blocking only the batch's partition."`
	Timeout time.Duration     `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one request, from connecting to reading the answer."`
	Headers map[string]string `yaml:"headers" doc:"Extra request headers. Values may use ${ENV} and ${file:/path}; they never appear in logs."`

	u *url.URL
}

// Validate parses the URL at load time.
func (c *Config) Validate() []pipeline.FieldProblem {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []pipeline.FieldProblem{{Field: "url", Msg: "must be an absolute http:// or https:// URL"}}
	}
	c.u = u
	for k := range c.Headers {
		if k == "" || !validHeaderName(k) {
			return []pipeline.FieldProblem{{Field: "headers", Msg: fmt.Sprintf("%q is not a valid header name", k)}}
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '"' || c == '(' || c == ')' || c == ',' || c == '/' ||
			c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' ||
			c == ']' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// NewTarget builds the target.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	return newTarget(c), nil
}
