package http

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("http", "Calls an HTTP endpoint, as an EventBridge API destination: one request per batch with its envelope, or one per record with an input template; path, header and query parameters from the record; Basic, API key or OAuth2 client-credentials auth; TLS and a rate limit.",
		func() *Config { return &Config{} })
}

// Modes of delivery.
const (
	modeBatch  = "batch"
	modeRecord = "record"
)

// Config is the `target: {http: ...}` block.
type Config struct {
	URL     string                     `yaml:"url" required:"true" doc:"The endpoint, http:// or https://. Each * in its path is a path parameter, filled in order from pathParameterValues. A 2xx answer is success; connection errors, timeouts, 429 and 5xx are retried with backoff (honouring Retry-After), blocking only the failing partition; any other answer is a permanent failure. Only 307 and 308 redirects are followed."`
	Method  string                     `yaml:"method" default:"POST" enum:"POST,PUT,PATCH,DELETE,GET,HEAD,OPTIONS" doc:"The HTTP method. GET, HEAD and OPTIONS send no body."`
	Mode    string                     `yaml:"mode" enum:"batch,record" doc:"batch: one request per batch, whose body is the batch envelope (Lambda's Kafka event). record: one request per record, whose body is the rendered inputTemplate, or the record as it appears in the envelope when there is none; the records of a partition are sent one after another, in order, and different partitions at the same time. Default: record when inputTemplate is set, else batch."`
	Timeout time.Duration              `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one request, from connecting to reading the answer."`
	Headers map[string]pipeline.Secret `yaml:"headers" doc:"Extra request headers with fixed values. Values may use ${ENV} and ${file:/path}; they never appear in logs or errors."`

	InputTemplate         string            `yaml:"inputTemplate" doc:"The body of each request in record mode: an EventBridge Pipes input template (<$.value.orderId>, <aws.pipes.event.json> ...), rendered per record. A template that is JSON stays valid JSON whatever the record holds and is sent as application/json; any other template as text/plain. Setting it selects record mode."`
	PathParameterValues   []string          `yaml:"pathParameterValues" max:"100" doc:"One value per * in the url's path, in order: static text, a template, or a whole $.path read from the record. Values are percent-encoded; a value that resolves to nothing fails that record permanently."`
	HeaderParameters      map[string]string `yaml:"headerParameters" max:"100" doc:"Request headers whose values are static text, a template, or a whole $.path read from the record. pipe test shows them: put secrets in headers or auth."`
	QueryStringParameters map[string]string `yaml:"queryStringParameters" max:"100" doc:"Query parameters added to the url's own: static text, a template, or a whole $.path read from the record. Values are percent-encoded. pipe test shows them: put secrets in headers or auth."`

	Auth        *Auth      `yaml:"auth" doc:"Connection auth, one of: basic: {username, password}; apiKey: {name, value} (a request header); oauth2: {tokenUrl, clientId, clientSecret, scopes, bodyParameters, clientAuthentication} (client credentials: the token is fetched on first use, cached, refreshed before it expires and once when the endpoint answers 401)."`
	TLS         *TLS       `yaml:"tls" doc:"TLS settings for https://: caFile (PEM roots added to the system's), certFile and keyFile (a client certificate, PEM), serverName (the name to verify instead of the url's host), insecureSkipVerify (logs a warning)."`
	RateLimit   *RateLimit `yaml:"rateLimit" doc:"At most perSecond requests per second from this target, with bursts of up to burst requests (default 1). A request waits for its turn, blocking only its partition."`
	Concurrency int        `yaml:"concurrency" default:"8" min:"1" max:"256" doc:"In record mode, how many partitions of one batch send their records at the same time. A partition's records always go one after another."`

	u          *url.URL
	mode       string
	body       bool // the method sends a body
	tmpl       *pipeline.Template
	pathParts  []pathPart // the url's path split at its wildcards, when it has some
	pathParams []pipeline.Param
	headerPs   []headerParam
	queryPs    []queryParam
	dynamic    bool // some parameter depends on the record
}

// pathPart is a literal stretch of the url's path, escaped and unescaped.
type pathPart struct{ escaped, plain string }

type headerParam struct {
	name string // canonical
	p    pipeline.Param
}

type queryParam struct {
	key string // escaped
	p   pipeline.Param
}

// Auth is the `auth:` block: exactly one of its members.
type Auth struct {
	Basic  *BasicAuth  `yaml:"basic" doc:"HTTP Basic auth."`
	APIKey *APIKeyAuth `yaml:"apiKey" doc:"An API key sent as a request header."`
	OAuth2 *OAuth2     `yaml:"oauth2" doc:"OAuth 2.0 client credentials (RFC 6749 section 4.4)."`
}

// Validate checks that one kind of auth is set.
func (a *Auth) Validate() []pipeline.FieldProblem {
	n := 0
	for _, set := range []bool{a.Basic != nil, a.APIKey != nil, a.OAuth2 != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return []pipeline.FieldProblem{{Msg: "set exactly one of basic, apiKey, oauth2"}}
	}
	return nil
}

// BasicAuth is `auth: {basic: ...}`.
type BasicAuth struct {
	Username string          `yaml:"username" required:"true" doc:"The user name."`
	Password pipeline.Secret `yaml:"password" required:"true" doc:"The password; use ${ENV} or ${file:/path}."`
}

// Validate rejects a user name that Basic auth cannot carry.
func (b *BasicAuth) Validate() []pipeline.FieldProblem {
	if strings.Contains(b.Username, ":") {
		return []pipeline.FieldProblem{{Field: "username", Msg: "must not contain ':'"}}
	}
	return nil
}

// APIKeyAuth is `auth: {apiKey: ...}`.
type APIKeyAuth struct {
	Name  string          `yaml:"name" required:"true" doc:"The header that carries the key, such as X-Api-Key."`
	Value pipeline.Secret `yaml:"value" required:"true" doc:"The key; use ${ENV} or ${file:/path}."`
}

// Validate checks the header name and value.
func (k *APIKeyAuth) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	if !validHeaderName(k.Name) {
		ps = append(ps, pipeline.FieldProblem{Field: "name", Msg: fmt.Sprintf("%q is not a valid header name", k.Name)})
	}
	if !validHeaderValue(string(k.Value)) {
		ps = append(ps, pipeline.FieldProblem{Field: "value", Msg: "holds a character a header value cannot carry (a control character or a line break)"})
	}
	return ps
}

// OAuth2 is `auth: {oauth2: ...}`: the client-credentials grant.
type OAuth2 struct {
	TokenURL             string                     `yaml:"tokenUrl" required:"true" doc:"The token endpoint, http:// or https://."`
	ClientID             string                     `yaml:"clientId" required:"true" doc:"The client id."`
	ClientSecret         pipeline.Secret            `yaml:"clientSecret" required:"true" doc:"The client secret; use ${ENV} or ${file:/path}."`
	Scopes               []string                   `yaml:"scopes" doc:"Scopes asked for, sent space-separated as scope."`
	BodyParameters       map[string]pipeline.Secret `yaml:"bodyParameters" doc:"Extra form parameters of the token request (audience, resource ...)."`
	ClientAuthentication string                     `yaml:"clientAuthentication" default:"header" enum:"header,body" doc:"How the client id and secret are sent: header (HTTP Basic, as RFC 6749 prefers) or body (client_id and client_secret form parameters)."`

	u *url.URL
}

// Validate parses the token URL.
func (o *OAuth2) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	u, err := url.Parse(o.TokenURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps = append(ps, pipeline.FieldProblem{Field: "tokenUrl", Msg: "must be an absolute http:// or https:// URL"})
	} else {
		o.u = u
	}
	for k := range o.BodyParameters {
		switch k {
		case "grant_type", "scope", "client_id", "client_secret":
			ps = append(ps, pipeline.FieldProblem{Field: "bodyParameters", Msg: fmt.Sprintf("%q is set by pipe; use the fields for it", k)})
		}
	}
	return ps
}

// TLS is the `tls:` block.
type TLS struct {
	CAFile             string `yaml:"caFile" doc:"PEM file of root certificates trusted besides the system's."`
	CertFile           string `yaml:"certFile" doc:"PEM file of the client certificate (and its chain), for mutual TLS."`
	KeyFile            string `yaml:"keyFile" doc:"PEM file of the client certificate's private key."`
	ServerName         string `yaml:"serverName" doc:"The name the server's certificate is checked against (and sent as SNI), instead of the url's host."`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify" doc:"Accept any server certificate. Only for tests: anyone on the path can read and change the traffic. Logs a warning when the pipe starts."`

	config *tls.Config
}

// Validate reads the files, so a missing or bad certificate shows at load.
func (c *TLS) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			ps = append(ps, pipeline.FieldProblem{Field: "caFile", Msg: "cannot read the file: " + fileErr(err)})
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				ps = append(ps, pipeline.FieldProblem{Field: "caFile", Msg: "holds no PEM certificate"})
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				field := "certFile"
				if pe.Path == c.KeyFile {
					field = "keyFile"
				}
				ps = append(ps, pipeline.FieldProblem{Field: field, Msg: "cannot read the file: " + fileErr(err)})
			} else {
				// crypto/tls errors describe the PEM blocks, never their bytes.
				ps = append(ps, pipeline.FieldProblem{Field: "certFile", Msg: "not a usable certificate and key: " + err.Error()})
			}
		}
		cfg.Certificates = []tls.Certificate{cert}
	case c.CertFile != "":
		ps = append(ps, pipeline.FieldProblem{Field: "certFile", Msg: "needs keyFile too"})
	case c.KeyFile != "":
		ps = append(ps, pipeline.FieldProblem{Field: "keyFile", Msg: "needs certFile too"})
	}
	c.config = cfg
	return ps
}

func fileErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// RateLimit is the `rateLimit:` block.
type RateLimit struct {
	PerSecond float64 `yaml:"perSecond" required:"true" doc:"Requests per second, above 0 (0.5 is one request every two seconds)."`
	Burst     int     `yaml:"burst" default:"1" min:"1" max:"100000" doc:"Requests that may go at once after a quiet spell."`
}

// Validate checks the rate.
func (r *RateLimit) Validate() []pipeline.FieldProblem {
	if !(r.PerSecond > 0) || r.PerSecond > 1e6 || math.IsInf(r.PerSecond, 0) {
		return []pipeline.FieldProblem{{Field: "perSecond", Msg: "must be above 0 and at most 1000000"}}
	}
	return nil
}

// Validate parses the URL, compiles the template and the parameters, and
// checks the rules between fields, at load time.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "must be an absolute http:// or https:// URL")
		u = nil
	} else if strings.Contains(u.Host, "*") {
		add("url", "a * is a path parameter and may appear in the path only")
		u = nil
	}
	c.u = u

	c.body = c.Method != http.MethodGet && c.Method != http.MethodHead && c.Method != http.MethodOptions
	c.mode = c.Mode
	if c.mode == "" {
		c.mode = modeBatch
		if c.InputTemplate != "" {
			c.mode = modeRecord
		}
	}
	if c.InputTemplate != "" {
		switch {
		case c.mode == modeBatch:
			add("inputTemplate", "renders one body per record and needs mode: record (or no mode)")
		case !c.body:
			add("inputTemplate", "is the request body, and a %s request has none", c.Method)
		default:
			t, err := pipeline.ParseTemplate(c.InputTemplate)
			if err != nil {
				add("inputTemplate", "%v", err)
			}
			c.tmpl = t
		}
	}

	// Path parameters.
	c.pathParts, c.pathParams = nil, nil
	wildcards := 0
	if u != nil {
		escaped := u.EscapedPath()
		wildcards = strings.Count(escaped, "*")
		if wildcards > 0 {
			for _, seg := range strings.Split(escaped, "*") {
				plain, err := url.PathUnescape(seg)
				if err != nil {
					plain = seg
				}
				c.pathParts = append(c.pathParts, pathPart{escaped: seg, plain: plain})
			}
		}
	}
	if u != nil && wildcards != len(c.PathParameterValues) {
		add("pathParameterValues", "has %d entries but the url's path has %d * wildcards: give one value per *", len(c.PathParameterValues), wildcards)
	}
	for i, s := range c.PathParameterValues {
		p, err := pipeline.ParseParam(s)
		if err != nil {
			add(fmt.Sprintf("pathParameterValues[%d]", i), "%v", err)
			continue
		}
		if p.Static() && p.String() == "" {
			add(fmt.Sprintf("pathParameterValues[%d]", i), "must not be empty")
		}
		c.pathParams = append(c.pathParams, p)
	}

	// Headers: fixed ones, then parameters; a name may appear once.
	names := map[string]string{} // canonical name -> the field that sets it
	for _, k := range sortedKeys(c.Headers) {
		if k == "" || !validHeaderName(k) {
			add("headers", "%q is not a valid header name", k)
			continue
		}
		if reservedHeader(k) {
			add("headers", "%q is set by the HTTP client from the request; it cannot be set here", k)
			continue
		}
		if !validHeaderValue(c.Headers[k].Reveal()) {
			add("headers", "the value of %q holds a character a header value cannot carry (a control character or a line break)", k)
		}
		names[http.CanonicalHeaderKey(k)] = "headers"
	}
	c.headerPs = nil
	for _, k := range sortedKeys(c.HeaderParameters) {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case k == "" || !validHeaderName(k):
			add("headerParameters", "%q is not a valid header name", k)
			continue
		case reservedHeader(k):
			add("headerParameters", "%q is set by the HTTP client from the request; it cannot be set here", k)
			continue
		case names[ck] != "":
			add("headerParameters", "%q is set in headers too; set it once", k)
			continue
		}
		p, err := pipeline.ParseParam(c.HeaderParameters[k])
		if err != nil {
			add("headerParameters", "%s: %v", k, err)
			continue
		}
		if p.Static() && !validHeaderValue(p.String()) {
			add("headerParameters", "the value of %q holds a character a header value cannot carry (a control character or a line break)", k)
		}
		names[ck] = "headerParameters"
		c.headerPs = append(c.headerPs, headerParam{name: ck, p: p})
	}
	if a := c.Auth; a != nil {
		var set string
		switch {
		case a.APIKey != nil:
			set = http.CanonicalHeaderKey(a.APIKey.Name)
		case a.Basic != nil, a.OAuth2 != nil:
			set = "Authorization"
			if u != nil && u.User != nil {
				add("url", "carries credentials and auth sets the Authorization header; keep one")
			}
		}
		if f := names[set]; f != "" {
			add(f, "%q is set by auth; set it once", set)
		}
	}

	c.queryPs = nil
	for _, k := range sortedKeys(c.QueryStringParameters) {
		if k == "" {
			add("queryStringParameters", "a key must not be empty")
			continue
		}
		p, err := pipeline.ParseParam(c.QueryStringParameters[k])
		if err != nil {
			add("queryStringParameters", "%s: %v", k, err)
			continue
		}
		c.queryPs = append(c.queryPs, queryParam{key: url.QueryEscape(k), p: p})
	}

	// In batch mode a request carries many records: a parameter read from
	// a record has no single value.
	c.dynamic = false
	check := func(field string, p pipeline.Param) {
		if p.Static() {
			return
		}
		c.dynamic = true
		if c.mode == modeBatch {
			add(field, "depends on the record ($.path or a template), and a batch-mode request carries many records: set mode: record (or an inputTemplate) for one request per record, or use a fixed value")
		}
	}
	for i, p := range c.pathParams {
		check(fmt.Sprintf("pathParameterValues[%d]", i), p)
	}
	for _, h := range c.headerPs {
		check("headerParameters", h.p)
	}
	for _, q := range c.queryPs {
		check("queryStringParameters", q.p)
	}

	if c.TLS != nil && u != nil && u.Scheme != "https" && (c.Auth == nil || c.Auth.OAuth2 == nil || c.Auth.OAuth2.u == nil || c.Auth.OAuth2.u.Scheme != "https") {
		add("tls", "applies to https:// only, and the url is http://")
	}
	return ps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
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

// reservedHeader reports whether the client sets the header itself from
// the request (its host, its body framing, the connection).
func reservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Te", "Trailer", "Upgrade", "Keep-Alive", "Proxy-Connection":
		return true
	}
	return false
}

// validHeaderValue reports whether s can be sent as a header value: no
// control character but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// NewTarget builds the target. It touches no network.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	return newTarget(c, env)
}
