package kafkaconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	awsmsk "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pipe-run/pipe/internal/awscfg"
)

// mechanism builds the franz-go SASL mechanism of s.
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechPlain:
		return plain.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsMechanism(), nil
	case MechScram256:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha256Mechanism(), nil
	case MechScram512:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha512Mechanism(), nil
	case MechOAuthBearer:
		if s.OAuth == nil {
			return oauth.Auth{Token: s.Token.Reveal(), Extensions: s.Extensions}.AsMechanism(), nil
		}
		src := newTokenSource(s.OAuth)
		return &refreshingOAuth{src: src, inner: oauthMechanism(src, s.Extensions)}, nil
	case MechAWSMSKIAM:
		var c awscfg.Config
		if s.AWS != nil {
			c = *s.AWS
		}
		return newMSKIAM(c), nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", s.Mechanism)
}

// oauthMechanism is franz-go's OAUTHBEARER with tokens from src.
func oauthMechanism(src *tokenSource, extensions map[string]string) sasl.Mechanism {
	return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
		tok, err := src.token(ctx)
		if err != nil {
			return oauth.Auth{}, err
		}
		return oauth.Auth{Token: tok, Extensions: extensions}, nil
	})
}

// refreshingOAuth drops the cached token when the broker rejects it, so the
// next connection fetches a fresh one instead of repeating a revoked token.
type refreshingOAuth struct {
	src   *tokenSource
	inner sasl.Mechanism
}

func (m *refreshingOAuth) Name() string { return m.inner.Name() }

func (m *refreshingOAuth) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	sess, first, err := m.inner.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	return &forgetOnReject{sess, m.src}, first, nil
}

type forgetOnReject struct {
	sasl.Session
	src *tokenSource
}

func (s *forgetOnReject) Challenge(resp []byte) (bool, []byte, error) {
	if len(resp) > 0 {
		// RFC 7628 3.2.2: a non-empty server message is an error.
		s.src.forget()
	}
	return s.Session.Challenge(resp)
}

// TokenError is a failed OAuth token request. It names the endpoint and the
// server's answer, never the client secret.
type TokenError struct {
	URL    string // the token URL without its query
	Status int    // the HTTP status, 0 when there was no answer
	Detail string
}

func (e *TokenError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("OAuth token request to %s failed: %s", e.URL, e.Detail)
	}
	return fmt.Sprintf("OAuth token request to %s failed: status %d: %s", e.URL, e.Status, e.Detail)
}

// tokenSource fetches OAuth access tokens with the client credentials grant
// and caches each until 80% of its lifetime has passed.
type tokenSource struct {
	o      *OAuth
	client *http.Client
	where  string
	now    func() time.Time

	mu        sync.Mutex
	tok       string
	refreshAt time.Time
}

// defaultTokenLifetime is assumed when a token response has no expires_in.
const defaultTokenLifetime = 5 * time.Minute

// maxTokenResponse bounds the token endpoint's answer.
const maxTokenResponse = 1 << 20

func newTokenSource(o *OAuth) *tokenSource {
	where := o.TokenURL
	if u, err := url.Parse(o.TokenURL); err == nil {
		where = u.Scheme + "://" + u.Host + u.Path
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &tokenSource{
		o:      o,
		where:  where,
		client: &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirect},
		now:    time.Now,
	}
}

// noRedirect keeps the client secret from following a redirect elsewhere.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (s *tokenSource) forget() {
	s.mu.Lock()
	s.tok = ""
	s.mu.Unlock()
}

func (s *tokenSource) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && s.now().Before(s.refreshAt) {
		return s.tok, nil
	}
	tok, lifetime, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.tok = tok
	s.refreshAt = s.now().Add(lifetime * 4 / 5)
	return tok, nil
}

func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if sc := s.o.scopes(); len(sc) > 0 {
		form.Set("scope", strings.Join(sc, " "))
	}
	if s.o.ClientAuth == "body" {
		form.Set("client_id", s.o.ClientID)
		form.Set("client_secret", s.o.ClientSecret.Reveal())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &TokenError{URL: s.where, Detail: "bad token URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.o.ClientAuth != "body" {
		// RFC 6749 2.3.1: both parts form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(s.o.ClientID), url.QueryEscape(s.o.ClientSecret.Reveal()))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by TokenError
		}
		return "", 0, &TokenError{URL: s.where, Detail: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: "reading the answer: " + err.Error()}
	}
	if len(body) > maxTokenResponse {
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: "the answer is larger than 1 MB"}
	}
	var tr struct {
		AccessToken      string          `json:"access_token"`
		TokenType        string          `json:"token_type"`
		ExpiresIn        json.RawMessage `json:"expires_in"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		detail := http.StatusText(resp.StatusCode)
		if jerr == nil && tr.Error != "" {
			detail = clip(tr.Error, 100)
			if tr.ErrorDescription != "" {
				detail += ": " + clip(tr.ErrorDescription, 200)
			}
		}
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: detail}
	}
	if jerr != nil {
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: "the answer is not a JSON token response"}
	}
	if tr.AccessToken == "" {
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: "the answer has no access_token"}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, &TokenError{URL: s.where, Status: resp.StatusCode, Detail: fmt.Sprintf("token_type is %q, not Bearer", clip(tr.TokenType, 32))}
	}
	lifetime := defaultTokenLifetime
	if len(tr.ExpiresIn) > 0 {
		// Some servers send the number as a string.
		var secs json.Number
		if err := json.Unmarshal(tr.ExpiresIn, &secs); err != nil {
			var str string
			if json.Unmarshal(tr.ExpiresIn, &str) == nil {
				secs = json.Number(str)
			}
		}
		if n, err := secs.Int64(); err == nil && n > 0 {
			lifetime = time.Duration(n) * time.Second
		}
	}
	return tr.AccessToken, lifetime, nil
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// mskIAM signs AWS_MSK_IAM with credentials from the SDK's chain. The
// payload is franz-go's (the same fields as AWS's Java library); the
// signing region is the one in the broker host name, or AWS_REGION.
type mskIAM struct {
	cfg   awscfg.Config
	inner sasl.Mechanism

	mu    sync.Mutex
	creds map[string]credentialsRetriever // by region
	load  func(ctx context.Context, c awscfg.Config) (credentialsRetriever, error)
}

type credentialsRetriever interface {
	Retrieve(ctx context.Context) (awsCredentials, error)
}

type awsCredentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

type hostKey struct{}

func newMSKIAM(c awscfg.Config) *mskIAM {
	m := &mskIAM{cfg: c, creds: map[string]credentialsRetriever{}, load: loadAWSCredentials}
	m.inner = awsmsk.ManagedStreamingIAM(func(ctx context.Context) (awsmsk.Auth, error) {
		host, _ := ctx.Value(hostKey{}).(string)
		r, err := m.credentials(ctx, host)
		if err != nil {
			return awsmsk.Auth{}, err
		}
		creds, err := r.Retrieve(ctx)
		if err != nil {
			return awsmsk.Auth{}, &AWSCredentialsError{Err: err}
		}
		return awsmsk.Auth{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, SessionToken: creds.SessionToken, UserAgent: "pipe"}, nil
	})
	return m
}

// AWSCredentialsError is a failure to get AWS credentials for AWS_MSK_IAM.
type AWSCredentialsError struct{ Err error }

func (e *AWSCredentialsError) Error() string {
	return "getting AWS credentials for AWS_MSK_IAM: " + e.Err.Error()
}
func (e *AWSCredentialsError) Unwrap() error { return e.Err }

func (m *mskIAM) Name() string { return MechAWSMSKIAM }

func (m *mskIAM) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if hostRegion(h) == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		return nil, nil, fmt.Errorf("AWS_MSK_IAM: the broker host %s names no AWS region to sign for; set AWS_REGION", h)
	}
	return m.inner.Authenticate(context.WithValue(ctx, hostKey{}, h), host)
}

func (m *mskIAM) credentials(ctx context.Context, host string) (credentialsRetriever, error) {
	c := m.cfg
	if c.Region == "" {
		c.Region = hostRegion(host)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.creds[c.Region]; r != nil {
		return r, nil
	}
	r, err := m.load(ctx, c)
	if err != nil {
		return nil, &AWSCredentialsError{Err: err}
	}
	m.creds[c.Region] = r
	return r, nil
}

type sdkCredentials struct {
	retrieve func(ctx context.Context) (awsCredentials, error)
}

func (s sdkCredentials) Retrieve(ctx context.Context) (awsCredentials, error) { return s.retrieve(ctx) }

func loadAWSCredentials(ctx context.Context, c awscfg.Config) (credentialsRetriever, error) {
	cfg, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no AWS credentials found in the default chain")
	}
	return sdkCredentials{func(ctx context.Context) (awsCredentials, error) {
		cr, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return awsCredentials{}, err
		}
		return awsCredentials{cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken}, nil
	}}, nil
}

// awsHostSuffixes are the DNS suffixes of the AWS partitions' MSK endpoints.
var awsHostSuffixes = []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".amazonaws.eu", ".c2s.ic.gov", ".sc2s.sgov.gov"}

var regionLabel = regexp.MustCompile(`^[a-z]+(-[a-z0-9]+)+-\d+$`)

// hostRegion returns the region an AWS host name carries
// (b-1.c.x.c2.kafka.eu-west-1.amazonaws.com -> eu-west-1), or "".
func hostRegion(host string) string {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, suf := range awsHostSuffixes {
		if prefix, ok := strings.CutSuffix(name, suf); ok {
			labels := strings.Split(prefix, ".")
			for i := len(labels) - 1; i >= 0; i-- {
				if regionLabel.MatchString(labels[i]) {
					return labels[i]
				}
			}
		}
	}
	return ""
}
