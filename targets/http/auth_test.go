package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	httptarget "github.com/pipe-run/pipe/targets/http"
)

const (
	clientID     = "pipe-client"
	clientSecret = "cl1ent-s3cret/+=&"
)

// authServer is an OAuth2 token endpoint (client credentials) and an API
// that accepts only the tokens it issued, until they expire on clock.
type authServer struct {
	token, api *httptest.Server
	clock      *fakeClock

	mu        sync.Mutex
	ttl       time.Duration // expires_in of new tokens; 0 leaves it out
	fail      int           // when set, the token endpoint answers this status
	failBody  string
	issued    map[string]time.Time // token -> expiry
	revoked   map[string]bool
	refuseAll bool
	forms     []url.Values
	basic     [][2]string // client id and secret of each token request, from Basic auth
	apiSeen   []string    // the Authorization header of each API request
	apiCodes  []int
}

func newAuthServer(t *testing.T, ttl time.Duration) *authServer {
	s := &authServer{clock: newFakeClock(), ttl: ttl, issued: map[string]time.Time{}, revoked: map[string]bool{}}
	s.token = httptest.NewServer(http.HandlerFunc(s.serveToken))
	s.api = httptest.NewServer(http.HandlerFunc(s.serveAPI))
	t.Cleanup(s.token.Close)
	t.Cleanup(s.api.Close)
	return s
}

func (s *authServer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forms = append(s.forms, r.PostForm)
	id, secret, _ := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	s.basic = append(s.basic, [2]string{id, secret})
	if s.fail != 0 {
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(s.fail)
		fmt.Fprint(w, s.failBody)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.PostForm.Get("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
		return
	}
	tok := fmt.Sprintf("tok-%d-%d", len(s.forms), time.Now().UnixNano())
	s.issued[tok] = s.clock.Now().Add(s.ttl)
	answer := map[string]any{"access_token": tok, "token_type": "Bearer"}
	if s.ttl > 0 {
		answer["expires_in"] = s.ttl.Seconds()
	}
	json.NewEncoder(w).Encode(answer)
}

func (s *authServer) serveAPI(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	exp, ok := s.issued[tok]
	valid := ok && !s.revoked[tok] && !s.refuseAll && (s.ttl == 0 || s.clock.Now().Before(exp))
	code := http.StatusOK
	if !valid {
		code = http.StatusUnauthorized
	}
	s.apiSeen = append(s.apiSeen, auth)
	s.apiCodes = append(s.apiCodes, code)
	s.mu.Unlock()
	w.WriteHeader(code)
}

func (s *authServer) tokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.forms)
}

func (s *authServer) apiRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.apiSeen...)
}

// target builds an OAuth2 target on the API with the server's clock.
func (s *authServer) target(t *testing.T, extra string) pipeline.Target {
	t.Setenv("PIPE_TEST_CLIENT_SECRET", clientSecret)
	tg := build(t, fmt.Sprintf(`
url: %s/api
auth:
  oauth2:
    tokenUrl: %s/oauth/token
    clientId: %s
    clientSecret: ${PIPE_TEST_CLIENT_SECRET}
%s`, s.api.URL, s.token.URL, clientID, extra))
	httptarget.SetClock(tg, s.clock.Now, s.clock.Sleep)
	return tg
}

func TestOAuth2TokenCachedAndRefreshed(t *testing.T) {
	s := newAuthServer(t, 100*time.Second)
	tg := s.target(t, "    scopes: [orders.write, audit]\n    bodyParameters: {audience: 'https://api.example'}")
	for range 3 {
		if err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}"))); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.tokenRequests(); n != 1 {
		t.Fatalf("%d token requests for three deliveries, want 1 (cached)", n)
	}
	// The request: client credentials by Basic auth, scopes, extra parameters.
	s.mu.Lock()
	form, basic := s.forms[0], s.basic[0]
	s.mu.Unlock()
	want := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.write audit"}, "audience": {"https://api.example"}}
	if form.Encode() != want.Encode() {
		t.Errorf("token request form %v, want %v", form, want)
	}
	if basic != [2]string{clientID, clientSecret} {
		t.Errorf("token request Basic auth %q, want the client id and secret", basic)
	}

	// 85s on the token is still fresh; at 95s it is within a tenth of its
	// lifetime of expiring and is replaced before use.
	s.clock.Advance(85 * time.Second)
	if err := deliver(t, tg, batchOf(jrec(0, 1, "k", "{}"))); err != nil || s.tokenRequests() != 1 {
		t.Fatalf("at 85s: %v, %d token requests, want the cached token", err, s.tokenRequests())
	}
	s.clock.Advance(10 * time.Second)
	if err := deliver(t, tg, batchOf(jrec(0, 2, "k", "{}"))); err != nil {
		t.Fatal(err)
	}
	if n := s.tokenRequests(); n != 2 {
		t.Errorf("%d token requests after 95s, want 2 (refreshed before expiry)", n)
	}
	api := s.apiRequests()
	if len(api) != 5 || api[0] != api[3] || api[3] == api[4] {
		t.Errorf("API saw %d requests with tokens %q: want 4 with the first token and 1 with a new one", len(api), api)
	}
	s.mu.Lock()
	for i, c := range s.apiCodes {
		if c != http.StatusOK {
			t.Errorf("API request %d answered %d: an expired token was used", i, c)
		}
	}
	s.mu.Unlock()
}

func TestOAuth2ClientCredentialsInBody(t *testing.T) {
	s := newAuthServer(t, time.Hour)
	tg := s.target(t, "    clientAuthentication: body")
	if err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.forms[0]; f.Get("client_id") != clientID || f.Get("client_secret") != clientSecret || s.basic[0] != [2]string{} {
		t.Errorf("form %v, Basic %q: want the credentials in the form only", f, s.basic[0])
	}
}

// A 401 from the API drops the token: one new token, the request sent once
// more. A second 401 is a permanent failure, with no third try.
func TestOAuth2RefreshOnceOn401(t *testing.T) {
	s := newAuthServer(t, 0) // no expires_in: kept until refused
	tg := s.target(t, "")
	if err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	for tok := range s.issued {
		s.revoked[tok] = true
	}
	s.mu.Unlock()
	if err := deliver(t, tg, batchOf(jrec(0, 1, "k", "{}"))); err != nil {
		t.Fatalf("after a revoked token: %v, want success with a new token", err)
	}
	if n, api := s.tokenRequests(), s.apiRequests(); n != 2 || len(api) != 3 {
		t.Fatalf("%d token requests, %d API requests; want 2 and 3 (one refused, sent again)", n, len(api))
	}

	// The API refuses every token from now on.
	s.mu.Lock()
	s.refuseAll = true
	s.mu.Unlock()
	err := deliver(t, tg, batchOf(jrec(0, 2, "k", "{}")))
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("a refused fresh token: %v, want a permanent 401", err)
	}
	if n, api := s.tokenRequests(), s.apiRequests(); n != 3 || len(api) != 5 {
		t.Errorf("%d token requests, %d API requests; want 3 and 5 (exactly one refresh)", n, len(api))
	}
	noSecrets(t, err, clientSecret, "tok-")
}

// Concurrent requests share one token request, and one refresh when they
// are all refused.
func TestOAuth2ConcurrentRequestsShareToken(t *testing.T) {
	s := newAuthServer(t, 0)
	tg := s.target(t, "mode: record\nconcurrency: 8")
	var recs []pipeline.Record
	for p := range 8 {
		for o := range 3 {
			recs = append(recs, jrec(int32(p), int64(o), "k", "{}"))
		}
	}
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	if n := s.tokenRequests(); n != 1 {
		t.Errorf("%d token requests for 8 concurrent partitions, want 1", n)
	}
	s.mu.Lock()
	for tok := range s.issued {
		s.revoked[tok] = true
	}
	s.mu.Unlock()
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	if n := s.tokenRequests(); n != 2 {
		t.Errorf("%d token requests after the token was revoked under 8 concurrent partitions, want 2", n)
	}
}

func TestOAuth2TokenEndpointErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
		after      time.Duration
	}{
		{name: "invalid client", status: 401, body: `{"error":"invalid_client","error_description":"secret ` + clientSecret + ` is wrong"}`, want: "status 401 (invalid_client)"},
		{name: "unavailable", status: 503, body: "down for " + clientSecret, want: "status 503", after: 4 * time.Second},
		{name: "no token", status: 200, body: `{"token":"` + clientSecret + `"}`, want: "holds no access_token"},
		{name: "not JSON", status: 200, body: clientSecret, want: "holds no access_token"},
		{name: "bad error code", status: 400, body: `{"error":"` + clientSecret + `"}`, want: "status 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAuthServer(t, time.Hour)
			s.fail, s.failBody = tc.status, tc.body
			if tc.status == 200 {
				s.token.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, tc.body) })
			}
			tg := s.target(t, "")
			err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}")))
			if err == nil {
				t.Fatal("no error")
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("a token endpoint failure is permanent: %v", err)
			}
			if !strings.Contains(err.Error(), "fetching an OAuth2 token from "+s.token.URL+"/oauth/token") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name the token endpoint and %q", err, tc.want)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.after {
				t.Errorf("retry after %v, want %v", got, tc.after)
			}
			noSecrets(t, err, clientSecret, "is wrong")
			if n := len(s.apiRequests()); n != 0 {
				t.Errorf("the API got %d requests without a token", n)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		t.Setenv("PIPE_TEST_CLIENT_SECRET", clientSecret)
		tg := build(t, fmt.Sprintf(`
url: http://%s/api
auth: {oauth2: {tokenUrl: 'http://%s/token?key=%s', clientId: c, clientSecret: '${PIPE_TEST_CLIENT_SECRET}'}}`, closedAddr(t), closedAddr(t), "query-secret"))
		err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}")))
		noSecrets(t, err, clientSecret, "query-secret")
		if pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "fetching an OAuth2 token") {
			t.Errorf("error %v, want a retryable token failure", err)
		}
	})
}

func TestBasicAndAPIKeyAuth(t *testing.T) {
	t.Setenv("PIPE_TEST_PASS", "b4sic-pass")
	t.Setenv("PIPE_TEST_KEY", "ap1-key")
	rc := newRecorder(t, func(s seen, w http.ResponseWriter) int { return 500 })
	tg := build(t, "url: "+rc.URL+"\nauth: {basic: {username: svc, password: '${PIPE_TEST_PASS}'}}")
	err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}")))
	noSecrets(t, err, "b4sic-pass", "svc:")
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header = rc.seen()[0].header
	if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "b4sic-pass" {
		t.Errorf("Basic auth %q %q %v", u, p, ok)
	}

	rc = newRecorder(t, func(s seen, w http.ResponseWriter) int { return 403 })
	tg = build(t, "url: "+rc.URL+"\nmode: record\nauth: {apiKey: {name: x-api-key, value: '${PIPE_TEST_KEY}'}}")
	err = deliver(t, tg, batchOf(jrec(0, 0, "k", "{}")))
	noSecrets(t, err, "ap1-key")
	if got := rc.seen()[0].header.Get("X-Api-Key"); got != "ap1-key" {
		t.Errorf("X-Api-Key %q", got)
	}
}

// A 307 to another host does not carry the secret headers along; one to
// the same host does.
func TestRedirectKeepsSecretsHome(t *testing.T) {
	t.Setenv("PIPE_TEST_KEY", "ap1-key")
	other := newRecorder(t, nil)
	home := newRecorder(t, func(s seen, w http.ResponseWriter) int {
		if s.rawPath == "/away" {
			w.Header().Set("Location", other.URL+"/there")
			return http.StatusTemporaryRedirect
		}
		if s.rawPath == "/stay" {
			w.Header().Set("Location", "/here")
			return http.StatusPermanentRedirect
		}
		return http.StatusOK
	})
	block := "auth: {apiKey: {name: X-Api-Key, value: '${PIPE_TEST_KEY}'}}\nheaders: {X-Team-Token: team-secret}\nheaderParameters: {X-Plain: visible}"
	for _, path := range []string{"/away", "/stay"} {
		if err := deliver(t, build(t, "url: "+home.URL+path+"\n"+block), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	there := other.seen()
	if len(there) != 1 || there[0].header.Get("X-Api-Key") != "" || there[0].header.Get("X-Team-Token") != "" {
		t.Errorf("the other host saw %d requests, headers %v: want one without the secret headers", len(there), there)
	}
	if len(there) == 1 && (there[0].header.Get("X-Plain") != "visible" || string(there[0].body) != string(pipeline.AppendEnvelope(nil, batchOf(jrec(0, 0, "k", "{}"))))) {
		t.Errorf("the other host lost the plain header or the body: %v", there[0])
	}
	var here *seen
	for _, s := range home.seen() {
		if s.rawPath == "/here" {
			here = &s
		}
	}
	if here == nil || here.header.Get("X-Api-Key") != "ap1-key" || here.header.Get("X-Team-Token") != "team-secret" {
		t.Errorf("a same-host redirect lost the auth headers: %v", here)
	}
}
