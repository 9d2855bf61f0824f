package http_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// No error shows a secret, whatever failed and however the secrets were
// given: credentials or a token in the url, fixed headers, query
// parameters, Basic, API key or OAuth2 auth (client secret and the tokens
// issued), in batch and record mode.
func TestNoSecretsInAnyError(t *testing.T) {
	t.Setenv("PIPE_TEST_HDR", "hdr-s3cret")
	t.Setenv("PIPE_TEST_PASS", "pass-s3cret")
	t.Setenv("PIPE_TEST_KEY", "key-s3cret")
	t.Setenv("PIPE_TEST_CLIENT_SECRET", clientSecret)
	secrets := []string{"url-s3cret", "query-s3cret", "hdr-s3cret", "param-s3cret", "pass-s3cret", "key-s3cret", clientSecret, "tok-"}

	tokens := newAuthServer(t, time.Hour)
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(status.Close)
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(loop.Close)
	hosts := map[string]string{
		"status":        status.Listener.Addr().String(),
		"refused":       closedAddr(t),
		"timeout":       hanging(t).Listener.Addr().String(),
		"redirect loop": loop.Listener.Addr().String(),
	}
	auths := map[string]string{
		"url credentials": "",
		"basic":           "auth: {basic: {username: svc, password: '${PIPE_TEST_PASS}'}}",
		"api key":         "auth: {apiKey: {name: X-Key, value: '${PIPE_TEST_KEY}'}}",
		"oauth2":          "auth: {oauth2: {tokenUrl: '" + tokens.token.URL + "/oauth/token', clientId: c, clientSecret: '${PIPE_TEST_CLIENT_SECRET}'}}",
	}
	for failure, host := range hosts {
		for auth, block := range auths {
			for _, mode := range []string{"batch", "record"} {
				t.Run(failure+"/"+auth+"/"+mode, func(t *testing.T) {
					userinfo := ""
					if block == "" {
						userinfo = "svc:url-s3cret@"
					}
					cfg := fmt.Sprintf("url: http://%s%s/hook?token=query-s3cret\nmode: %s\ntimeout: 200ms\nheaders: {X-Team: '${PIPE_TEST_HDR}'}\nqueryStringParameters: {sig: param-s3cret}\n%s",
						userinfo, host, mode, block)
					err := deliver(t, build(t, cfg), batchOf(jrec(0, 0, "k", `{"a":1}`), jrec(1, 0, "k", `{"a":2}`)))
					noSecrets(t, err, secrets...)
					if !strings.Contains(err.Error(), "/hook") {
						t.Errorf("error %q does not name the endpoint", err)
					}
				})
			}
		}
	}
}

// An answer is read up to 1 MiB: an endless 2xx answer still counts as
// delivered, and a failed answer shows 256 bytes at most.
func TestAnswerCaps(t *testing.T) {
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	for _, mode := range []string{"batch", "record"} {
		if err := deliver(t, build(t, "url: "+endless.URL+"\ntimeout: 20s\nmode: "+mode), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
			t.Errorf("%s mode, an endless 200 answer: %v, want success after reading 1 MiB", mode, err)
		}
	}

	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "START"+strings.Repeat("y", 100<<10)+"END")
	}))
	t.Cleanup(big.Close)
	err := deliver(t, build(t, "url: "+big.URL), batchOf(jrec(0, 0, "k", "{}")))
	if err == nil || !strings.Contains(err.Error(), "START") || strings.Contains(err.Error(), "END") || len(err.Error()) > 256+200 {
		t.Errorf("a 100 KiB error answer gave an error of %d bytes, want its first 256 bytes only", len(fmt.Sprint(err)))
	}
}
