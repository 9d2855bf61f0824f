package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenSource gets and caches OAuth2 access tokens with the client
// credentials grant. A token is fetched on first use, kept until shortly
// before it expires, and dropped when the endpoint answers 401 to it.
// Concurrent callers share one fetch.
type tokenSource struct {
	client *http.Client
	url    string
	where  string // the token URL without query or credentials, for errors
	form   string // the request body
	basic  string // the Authorization header, for header client authentication
	now    func() time.Time

	// sem is held by the one goroutine fetching a token; a channel, so
	// waiting for it honours the context.
	sem chan struct{}

	mu        sync.Mutex
	auth      string    // "Bearer <token>", "" when none is cached
	refreshAt time.Time // zero: no known expiry
}

func newTokenSource(o *OAuth2, client *http.Client) *tokenSource {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(o.Scopes) > 0 {
		form.Set("scope", strings.Join(o.Scopes, " "))
	}
	for k, v := range o.BodyParameters {
		form.Set(k, v.Reveal())
	}
	s := &tokenSource{
		client: client,
		url:    o.TokenURL,
		where:  o.u.Scheme + "://" + o.u.Host + o.u.Path,
		now:    time.Now,
		sem:    make(chan struct{}, 1),
	}
	if o.ClientAuthentication == "body" {
		form.Set("client_id", o.ClientID)
		form.Set("client_secret", o.ClientSecret.Reveal())
	} else {
		// RFC 6749 section 2.3.1: both form-encoded, then Basic.
		cred := url.QueryEscape(o.ClientID) + ":" + url.QueryEscape(o.ClientSecret.Reveal())
		s.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
	}
	s.form = form.Encode()
	return s
}

// cached returns the cached Authorization value if it is still fresh.
func (s *tokenSource) cached() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth != "" && (s.refreshAt.IsZero() || s.now().Before(s.refreshAt)) {
		return s.auth
	}
	return ""
}

// token returns the Authorization header value, fetching a token when none
// is cached or the cached one is about to expire.
func (s *tokenSource) token(ctx context.Context) (string, error) {
	if a := s.cached(); a != "" {
		return a, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.sem }()
	if a := s.cached(); a != "" {
		return a, nil // another caller fetched it meanwhile
	}
	auth, ttl, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.auth = auth
	s.refreshAt = time.Time{}
	if ttl > 0 {
		// Refresh a tenth of the lifetime early, at most a minute.
		s.refreshAt = s.now().Add(ttl - min(ttl/10, time.Minute))
	}
	s.mu.Unlock()
	return auth, nil
}

// invalidate drops auth if it is still the cached value: the endpoint
// refused it. A newer token fetched meanwhile is kept.
func (s *tokenSource) invalidate(auth string) {
	s.mu.Lock()
	if s.auth == auth {
		s.auth = ""
	}
	s.mu.Unlock()
}

// tokenError is a failed token request. Its message names the endpoint,
// the status and the OAuth error code, never a credential or a token.
type tokenError struct {
	msg   string
	after time.Duration
	err   error
}

func (e *tokenError) Error() string { return e.msg }
func (e *tokenError) Unwrap() error { return e.err }

func (s *tokenSource) fetch(ctx context.Context) (auth string, ttl time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(s.form))
	if err != nil {
		return "", 0, &tokenError{msg: fmt.Sprintf("fetching an OAuth2 token from %s: %v", s.where, redact(err))}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.basic != "" {
		req.Header.Set("Authorization", s.basic)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		inner := redact(err)
		return "", 0, &tokenError{msg: fmt.Sprintf("fetching an OAuth2 token from %s: %v", s.where, inner), err: inner}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return "", 0, &tokenError{msg: fmt.Sprintf("fetching an OAuth2 token from %s: reading the answer: %v", s.where, err), err: err}
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   any    `json:"expires_in"`
		Error       string `json:"error"`
	}
	jerr := json.Unmarshal(data, &answer)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("fetching an OAuth2 token from %s: status %d", s.where, resp.StatusCode)
		if jerr == nil && oauthErrorCode(answer.Error) {
			msg += " (" + answer.Error + ")"
		}
		e := &tokenError{msg: msg}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			e.after = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return "", 0, e
	}
	if jerr != nil || answer.AccessToken == "" {
		return "", 0, &tokenError{msg: fmt.Sprintf("fetching an OAuth2 token from %s: status %d but the answer holds no access_token", s.where, resp.StatusCode)}
	}
	if !validHeaderValue(answer.AccessToken) {
		return "", 0, &tokenError{msg: fmt.Sprintf("fetching an OAuth2 token from %s: the access_token holds characters a header cannot carry", s.where)}
	}
	switch v := answer.ExpiresIn.(type) {
	case float64:
		ttl = time.Duration(v * float64(time.Second))
	case string: // some servers quote it
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			ttl = time.Duration(f * float64(time.Second))
		}
	}
	if ttl < 0 {
		ttl = 0
	}
	return "Bearer " + answer.AccessToken, ttl, nil
}

// oauthErrorCode reports whether s looks like an RFC 6749 error code
// (invalid_client ...), which is safe to show.
func oauthErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isTokenError reports whether err came from the token endpoint.
func isTokenError(err error) (*tokenError, bool) {
	var te *tokenError
	ok := errors.As(err, &te)
	return te, ok
}
