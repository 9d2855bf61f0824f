package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

const (
	// maxResponse caps what is read of an answer.
	maxResponse = 1 << 20
	// maxSnippet caps the part of a failed answer shown in an error.
	maxSnippet = 256
)

type target struct {
	cfg    *Config
	client *http.Client
	// where names the endpoint in errors: the method and the url without
	// its query or credentials (and with its * wildcards).
	where string
	// header holds the headers every request carries: content type, the
	// fixed headers, the static header parameters and Basic or API key auth.
	header http.Header
	// query is the url's query with the static parameters appended.
	query string
	// base is the url with the static path and query parameters.
	base url.URL
	// dynPath is set when a path parameter is read from the record.
	dynPath bool
	// dynQuery are the query parameters read from the record.
	dynQuery []queryParam
	// dynHeader are the header parameters read from the record.
	dynHeader []headerParam
	// secret are the headers not sent on to another host on a redirect.
	secret []string
	tokens *tokenSource // OAuth2, or nil
	limit  *limiter     // or nil
	tctx   pipeline.TemplateContext
}

var (
	_ pipeline.Target    = (*target)(nil)
	_ pipeline.Previewer = (*target)(nil)
	_ pipeline.Describer = (*target)(nil)
)

func newTarget(c *Config, env pipeline.Env) (*target, error) {
	if c.u == nil {
		if ps := c.Validate(); len(ps) > 0 {
			return nil, fmt.Errorf("%s: %s", ps[0].Field, ps[0].Msg)
		}
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var tlsConf *tls.Config
	if c.TLS != nil {
		if c.TLS.config == nil {
			if ps := c.TLS.Validate(); len(ps) > 0 {
				return nil, fmt.Errorf("tls.%s: %s", ps[0].Field, ps[0].Msg)
			}
		}
		tlsConf = c.TLS.config
		if c.TLS.InsecureSkipVerify {
			logger.Warn("http target: tls.insecureSkipVerify is set: server certificates are NOT verified; anyone on the network path can read and change the traffic, credentials included")
		}
	}
	if c.tmpl != nil && !c.tmpl.JSON() {
		if s := strings.TrimSpace(c.InputTemplate); strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
			logger.Warn("http target: inputTemplate looks like JSON but is not valid JSON (a trailing comma? an unquoted key?): it is sent as text/plain, and values are not escaped for JSON")
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf.Clone()
	}
	t := &target{
		cfg:   c,
		where: c.Method + " " + c.u.Scheme + "://" + c.u.Host + c.u.EscapedPath(),
		tctx:  pipeline.NewTemplateContext(env.Pipe),
	}
	t.client = &http.Client{Transport: tr, Timeout: c.Timeout, CheckRedirect: t.checkRedirect}

	h := http.Header{}
	if c.body {
		switch {
		case c.tmpl != nil && !c.tmpl.JSON():
			h.Set("Content-Type", "text/plain; charset=utf-8")
		default:
			h.Set("Content-Type", "application/json")
		}
	}
	for k, v := range c.Headers {
		h.Set(k, v.Reveal())
		t.secret = append(t.secret, http.CanonicalHeaderKey(k))
	}
	for _, hp := range c.headerPs {
		if hp.p.Static() {
			h.Set(hp.name, hp.p.String())
		} else {
			t.dynHeader = append(t.dynHeader, hp)
		}
	}
	if a := c.Auth; a != nil {
		switch {
		case a.Basic != nil:
			cred := a.Basic.Username + ":" + a.Basic.Password.Reveal()
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
		case a.APIKey != nil:
			h.Set(a.APIKey.Name, a.APIKey.Value.Reveal())
			t.secret = append(t.secret, http.CanonicalHeaderKey(a.APIKey.Name))
		case a.OAuth2 != nil:
			ttr := http.DefaultTransport.(*http.Transport).Clone()
			if tlsConf != nil {
				// The token endpoint is often another host: the server
				// name applies to the url's host only.
				ttr.TLSClientConfig = tlsConf.Clone()
				ttr.TLSClientConfig.ServerName = ""
			}
			t.tokens = newTokenSource(a.OAuth2, &http.Client{Transport: ttr, Timeout: c.Timeout, CheckRedirect: onlyRepeatable})
		}
	}
	t.secret = append(t.secret, "Authorization")
	t.header = h

	var q strings.Builder
	q.WriteString(c.u.RawQuery)
	for _, qp := range c.queryPs {
		if !qp.p.Static() {
			t.dynQuery = append(t.dynQuery, qp)
			continue
		}
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(qp.key)
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(qp.p.String()))
	}
	t.query = q.String()
	t.base = *c.u
	t.base.RawQuery = t.query
	for _, p := range c.pathParams {
		t.dynPath = t.dynPath || !p.Static()
	}
	if len(c.pathParams) > 0 && !t.dynPath {
		// Static path parameters: the path is the same for every request.
		x := exchanges.Get().(*exchange)
		t.base.Path, t.base.RawPath, _ = t.fillPath(x, nil, nil)
		x.release()
	}
	if rl := c.RateLimit; rl != nil {
		t.limit = newLimiter(rl.PerSecond, rl.Burst)
	}
	return t, nil
}

// checkRedirect follows only 307 and 308, which repeat the request with its
// method and body. A 301, 302 or 303 would turn a POST into a GET without
// the records, whose success must not count as delivered: the 3xx answer
// is returned instead, a permanent failure. Secret headers are not sent on
// to another host, or from https to http.
func (t *target) checkRedirect(req *http.Request, via []*http.Request) error {
	if err := onlyRepeatable(req, via); err != nil {
		return err
	}
	if first := via[0].URL; req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		for _, k := range t.secret {
			req.Header.Del(k)
		}
	}
	return nil
}

func onlyRepeatable(req *http.Request, via []*http.Request) error {
	if req.Response == nil || req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// Deliver sends the batch: one request with its envelope in batch mode, one
// request per record in record mode.
func (t *target) Deliver(ctx context.Context, b *pipeline.Batch) error {
	if t.cfg.mode == modeRecord {
		return t.deliverRecords(ctx, b)
	}
	x := exchanges.Get().(*exchange)
	defer x.release()
	payload := x.buf[:0]
	if t.cfg.body {
		payload = pipeline.AppendEnvelope(payload, b)
	}
	x.buf = payload
	u := t.base
	if f := t.send(ctx, x, &u, t.header.Clone(), payload, nil); f != nil {
		return f.wrap()
	}
	return nil
}

// failure is why one request failed, before it is wrapped for the runner.
// statusError is an answer that was not 2xx; its status goes into the
// on-failure record's responseContext.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() error   { return e.err }
func (e *statusError) StatusCode() int { return e.code }

type failure struct {
	err       error
	permanent bool
	tooLarge  bool // 413: permanent, and the on-failure condition says so
	after     time.Duration
}

func (f *failure) wrap() error {
	err := f.err
	switch {
	case f.tooLarge:
		err = pipeline.TooLarge(err)
	case f.permanent:
		err = pipeline.Permanent(err)
	}
	if f.after > 0 {
		err = pipeline.RetryAfter(err, f.after)
	}
	return err
}

// send makes one request (two when an OAuth2 token was refused and a new
// one is fetched) and classifies the answer. rec names the record in
// errors, nil for a batch.
func (t *target) send(ctx context.Context, x *exchange, u *url.URL, h http.Header, payload []byte, rec *pipeline.Record) *failure {
	fail := func(format string, args ...any) error {
		prefix := t.where
		if rec != nil {
			prefix += fmt.Sprintf(": record %s-%d offset %d", rec.Topic, rec.Partition, rec.Offset)
		}
		return fmt.Errorf(prefix+": "+format, args...)
	}
	for attempt := 0; ; attempt++ {
		if t.limit != nil {
			if err := t.limit.wait(ctx); err != nil {
				return &failure{err: fail("waiting for the rate limit: %w", err)}
			}
		}
		var auth string
		if t.tokens != nil {
			var err error
			if auth, err = t.tokens.token(ctx); err != nil {
				f := &failure{err: fail("%w", err)}
				if te, ok := isTokenError(err); ok {
					f.after = te.after
				}
				return f
			}
			h["Authorization"] = []string{auth}
		}
		a, err := t.exchange(ctx, x, u, h, payload)
		if err != nil {
			return &failure{err: fail("%w", redact(err))}
		}
		switch {
		case a.status >= 200 && a.status <= 299:
			return nil
		case a.status == http.StatusUnauthorized && t.tokens != nil && attempt == 0:
			// The token expired early or was revoked: fetch a new one and
			// try once more.
			t.tokens.invalidate(auth)
			continue
		}
		f := &failure{err: &statusError{code: a.status, err: fail("status %d: %s", a.status, strings.TrimSpace(string(a.snippet)))}}
		if a.status == http.StatusTooManyRequests || a.status >= 500 {
			f.after = retryAfter(a.retryAfter, time.Now())
		} else {
			f.permanent = true
			f.tooLarge = a.status == http.StatusRequestEntityTooLarge
		}
		return f
	}
}

// answer is what send needs of a response, read and closed.
type answer struct {
	status     int
	retryAfter string
	snippet    []byte // the start of a failed answer's body
}

// exchange sends one request and reads its answer. When it returns, the
// transport is done with payload.
func (t *target) exchange(ctx context.Context, x *exchange, u *url.URL, h http.Header, payload []byte) (answer, error) {
	req := (&http.Request{
		Method:     t.cfg.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}).WithContext(ctx)
	tracked := len(payload) > 0
	if tracked {
		x.payload = payload
		x.body.Reset(payload)
		x.body.closed.Store(false)
		x.wg.Add(1)
		req.Body = &x.body
		req.ContentLength = int64(len(payload))
		req.GetBody = x.getBody
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if tracked {
			x.wg.Wait()
		}
		return answer{}, err
	}
	a := answer{status: resp.StatusCode}
	if a.status >= 200 && a.status <= 299 {
		// Read the answer (up to the cap) so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	} else {
		n, _ := io.ReadFull(resp.Body, x.snippet[:])
		a.snippet = x.snippet[:n]
		a.retryAfter = resp.Header.Get("Retry-After")
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	}
	resp.Body.Close()
	if tracked {
		// The transport may close the body after Do returns (an endpoint
		// that answers before reading it): payload is not reused before.
		x.wg.Wait()
	}
	return a, nil
}

// exchange is the reusable state of one request at a time: the body and
// its buffer, and scratch space.
type exchange struct {
	wg      sync.WaitGroup
	body    trackedBody
	payload []byte
	getBody func() (io.ReadCloser, error)
	buf     []byte // the payload
	scratch []byte // parameters
	snippet [maxSnippet]byte
}

var exchanges = sync.Pool{New: func() any {
	x := &exchange{buf: make([]byte, 0, 4<<10)}
	x.body.wg = &x.wg
	x.getBody = x.replay
	return x
}}

func (x *exchange) release() {
	x.payload = nil
	if cap(x.buf) > 8<<20 {
		x.buf = nil // not worth keeping
	}
	exchanges.Put(x)
}

// replay gives a redirect its own copy of the body: the client does not
// always close the bodies it gets from GetBody.
func (x *exchange) replay() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(bytes.Clone(x.payload))), nil
}

// trackedBody is a request body whose Close is awaited before its bytes are
// reused.
type trackedBody struct {
	bytes.Reader
	closed atomic.Bool
	wg     *sync.WaitGroup
}

func (b *trackedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.wg.Done()
	}
	return nil
}

// lane is the records of one partition in a batch, sent in order.
type lane struct {
	runs [][2]int // index ranges of b.Records, in order
	// fails are the lane's failed records in order: the permanent failures,
	// then the retryable failure that stopped the lane, if one did.
	fails []laneFail
	// stopAt is the position in the lane of the retryable failure that
	// stopped it, -1 if none.
	stopAt int
}

// laneFail is one failed record: its index in b.Records and why.
type laneFail struct {
	i int
	f *failure
}

func (l *lane) each(fn func(i int) bool) {
	for _, r := range l.runs {
		for i := r[0]; i < r[1]; i++ {
			if !fn(i) {
				return
			}
		}
	}
}

// lanes splits the batch's records by partition, keeping their order.
func lanes(recs []pipeline.Record) []lane {
	var ls []lane
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].Partition == recs[start].Partition && recs[end].Topic == recs[start].Topic {
			end++
		}
		found := false
		for k := range ls {
			if f := &recs[ls[k].runs[0][0]]; f.Partition == recs[start].Partition && f.Topic == recs[start].Topic {
				ls[k].runs = append(ls[k].runs, [2]int{start, end})
				found = true
				break
			}
		}
		if !found {
			ls = append(ls, lane{runs: [][2]int{{start, end}}, stopAt: -1})
		}
		start = end
	}
	return ls
}

// deliverRecords sends one request per record: the partitions at the same
// time (up to the concurrency setting), each partition's records one after
// another. A record that failed permanently is reported alone and its
// partition goes on; a retryable failure stops its partition: it and the
// records after it are reported. The others are done.
func (t *target) deliverRecords(ctx context.Context, b *pipeline.Batch) error {
	ls := lanes(b.Records)
	if len(ls) == 0 {
		return nil
	}
	tctx := t.tctx
	workers := min(t.cfg.Concurrency, len(ls))
	if workers <= 1 {
		x := exchanges.Get().(*exchange)
		for k := range ls {
			t.runLane(ctx, x, b, &ls[k], &tctx)
		}
		x.release()
	} else {
		var next atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := exchanges.Get().(*exchange)
				defer x.release()
				for {
					k := int(next.Add(1)) - 1
					if k >= len(ls) {
						return
					}
					t.runLane(ctx, x, b, &ls[k], &tctx)
				}
			}()
		}
		wg.Wait()
	}
	return outcome(b, ls)
}

// outcome builds deliverRecords' error from the lanes' failures, as
// internal/awscfg/batch's Failures does for the AWS targets: RetryOnly
// lists every failed record and the records held back behind a retryable
// failure. The error is permanent when every failure is permanent (too
// large when every one is a 413); when retryable failures are among them
// it is retryable, and the permanent ones are tried again with them until
// only they are left. It carries the longest Retry-After and wraps the
// error of the first failed record.
func outcome(b *pipeline.Batch, ls []lane) error {
	var failed []int
	var first *laneFail
	nfail, held, tooLarge := 0, 0, 0
	retryable := false
	var after time.Duration
	for k := range ls {
		l := &ls[k]
		for j := range l.fails {
			lf := &l.fails[j]
			if first == nil || lf.i < first.i {
				first = lf
			}
			nfail++
			if lf.f.tooLarge {
				tooLarge++
			}
			after = max(after, lf.f.after)
			if lf.f.permanent {
				failed = append(failed, lf.i)
			}
		}
		if l.stopAt < 0 {
			continue
		}
		retryable = true
		pos := 0
		l.each(func(i int) bool {
			if pos >= l.stopAt {
				failed = append(failed, i)
			}
			pos++
			return true
		})
		held += pos - l.stopAt - 1
	}
	if first == nil {
		return nil
	}
	slices.Sort(failed)
	what := fmt.Sprintf("%d failed", nfail)
	if held > 0 {
		what += fmt.Sprintf(", %d held back behind a failure that a retry may fix", held)
	}
	err := fmt.Errorf("%d of %d records not delivered (%s); first: %w", len(failed), len(b.Records), what, first.f.err)
	// Permanent only when no lane stopped at a retryable failure.
	f := failure{err: err, after: after, permanent: !retryable, tooLarge: !retryable && tooLarge == nfail}
	return pipeline.RetryOnly(f.wrap(), failed)
}

// runLane sends a partition's records in order. A permanent failure is
// noted and the next record sent; a retryable one stops the lane.
func (t *target) runLane(ctx context.Context, x *exchange, b *pipeline.Batch, l *lane, tctx *pipeline.TemplateContext) {
	pos := 0
	l.each(func(i int) bool {
		if f := t.sendRecord(ctx, x, &b.Records[i], tctx); f != nil {
			l.fails = append(l.fails, laneFail{i: i, f: f})
			if !f.permanent {
				l.stopAt = pos
				return false
			}
		}
		pos++
		return true
	})
}

// sendRecord renders a record's request and sends it.
func (t *target) sendRecord(ctx context.Context, x *exchange, rec *pipeline.Record, tctx *pipeline.TemplateContext) *failure {
	var p prepared
	if why := t.prepare(x, rec, tctx, &p); why != "" {
		return &failure{permanent: true, err: fmt.Errorf("%s: record %s-%d offset %d: %s", t.where, rec.Topic, rec.Partition, rec.Offset, why)}
	}
	return t.send(ctx, x, &p.u, p.header, p.payload, rec)
}

// prepared is a record's request, ready to send.
type prepared struct {
	u       url.URL
	header  http.Header
	payload []byte // x.buf
}

// prepare renders rec's request into p. It returns why the record cannot
// be sent, or "".
func (t *target) prepare(x *exchange, rec *pipeline.Record, tctx *pipeline.TemplateContext, p *prepared) string {
	c := t.cfg
	payload := x.buf[:0]
	if c.body {
		if c.tmpl != nil {
			payload = c.tmpl.Render(payload, rec, tctx)
		} else {
			payload = pipeline.AppendRecord(payload, rec)
		}
	}
	x.buf = payload
	p.payload = payload

	p.u = t.base
	if t.dynPath {
		var k int
		if p.u.Path, p.u.RawPath, k = t.fillPath(x, rec, tctx); k >= 0 {
			return fmt.Sprintf("path parameter %d (pathParameterValues[%d]) is empty", k+1, k)
		}
	}
	if len(t.dynQuery) > 0 {
		q := x.scratch[:0]
		q = append(q, t.query...)
		for _, qp := range t.dynQuery {
			if len(q) > 0 {
				q = append(q, '&')
			}
			q = append(q, qp.key...)
			q = append(q, '=')
			start := len(q)
			q = qp.p.Append(q, rec, tctx)
			// Escape in place through a copy of the value.
			v := url.QueryEscape(string(q[start:]))
			q = append(q[:start], v...)
		}
		p.u.RawQuery = string(q)
		x.scratch = q[:0]
	}
	p.header = t.header.Clone()
	for _, hp := range t.dynHeader {
		x.scratch = hp.p.Append(x.scratch[:0], rec, tctx)
		if !validHeaderValue(string(x.scratch)) {
			return fmt.Sprintf("header %s: the value read from the record holds a line break or another control character", hp.name)
		}
		p.header[hp.name] = []string{string(x.scratch)}
	}
	return ""
}

// Preview says what Deliver would send, for `pipe test`: the requests
// with their method, url path, header and query parameters and body, and
// the records that would fail before any call. The fixed headers, auth and
// the url's own query are left out: they may hold secrets.
func (t *target) Preview(b *pipeline.Batch, tctx *pipeline.TemplateContext) []pipeline.Request {
	c := t.cfg
	x := &exchange{}
	attrs := func(p *prepared) map[string]string {
		a := map[string]string{}
		if ct := p.header.Get("Content-Type"); ct != "" {
			a["header Content-Type"] = ct
		}
		for _, hp := range c.headerPs {
			a["header "+hp.name] = p.header.Get(hp.name)
		}
		q, _ := url.ParseQuery(p.u.RawQuery)
		for _, qp := range c.queryPs {
			k, _ := url.QueryUnescape(qp.key)
			a["query "+k] = q.Get(k)
		}
		return a
	}
	summary := func(p *prepared) string {
		return c.Method + " " + p.u.Scheme + "://" + p.u.Host + p.u.EscapedPath()
	}
	if c.mode == modeBatch {
		all := make([]int, len(b.Records))
		for i := range all {
			all[i] = i
		}
		p := prepared{u: t.base, header: t.header}
		var body []byte
		if c.body {
			body = pipeline.AppendEnvelope(nil, b)
		}
		return []pipeline.Request{{Records: all, Summary: summary(&p), Attributes: attrs(&p), Body: body}}
	}
	reqs := make([]pipeline.Request, 0, len(b.Records))
	for i := range b.Records {
		var p prepared
		r := pipeline.Request{Records: []int{i}}
		if why := t.prepare(x, &b.Records[i], tctx, &p); why != "" {
			r.Summary, r.Err = t.where, why
		} else {
			r.Summary, r.Attributes, r.Body = summary(&p), attrs(&p), bytes.Clone(p.payload)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// fillPath returns the url's path with its wildcards filled for rec,
// unescaped and escaped. empty is the index of a parameter that resolved
// to nothing, else -1.
func (t *target) fillPath(x *exchange, rec *pipeline.Record, tctx *pipeline.TemplateContext) (plain, escaped string, empty int) {
	c := t.cfg
	var p, e strings.Builder
	for k, part := range c.pathParts {
		p.WriteString(part.plain)
		e.WriteString(part.escaped)
		if k < len(c.pathParams) {
			x.scratch = c.pathParams[k].Append(x.scratch[:0], rec, tctx)
			if len(x.scratch) == 0 {
				return "", "", k
			}
			p.Write(x.scratch)
			e.WriteString(url.PathEscape(string(x.scratch)))
		}
	}
	return p.String(), e.String(), -1
}

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
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Describe names the target in on-failure records: the url without its
// query or credentials.
func (t *target) Describe() string { return t.where[len(t.cfg.Method)+1:] }

func (t *target) Close() error {
	t.client.CloseIdleConnections()
	if t.tokens != nil {
		t.tokens.client.CloseIdleConnections()
	}
	return nil
}
