package kafkaconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/internal/testenv"
)

// tokenServer is an OAuth token endpoint: it checks the client credentials
// grant and hands out tok-1, tok-2 ... valid for expiresIn.
type tokenServer struct {
	*httptest.Server
	hits      atomic.Int32
	expiresIn any
	mu        sync.Mutex
	forms     []url.Values
	auths     []string
	status    int // answer with this status and an OAuth error when set
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{expiresIn: 3600}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		ts.mu.Lock()
		ts.forms = append(ts.forms, r.PostForm)
		ts.auths = append(ts.auths, r.Header.Get("Authorization"))
		status := ts.status
		ts.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/token" || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
			return
		}
		n := ts.hits.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": ts.expiresIn})
	}))
	t.Cleanup(ts.Close)
	return ts
}

func oauthConf(ts *tokenServer) *OAuth {
	return &OAuth{TokenURL: ts.URL + "/token", ClientID: "pipe client", ClientSecret: "cs-secret:1", Scopes: []string{"kafka", "read write"}, ClientAuth: "basic", Timeout: 5 * time.Second}
}

// TestOAuthBearerExchange: through a broker over TCP, the client sends the
// token from the endpoint with the extensions, byte for byte as RFC 7628
// section 3.1 writes it, and produces.
func TestOAuthBearerExchange(t *testing.T) {
	ts := newTokenServer(t)
	k, seen := testenv.KafkaSASLExchange(t, MechOAuthBearer, func(auth []byte) ([]byte, string) {
		if !strings.Contains(string(auth), "auth=Bearer tok-") {
			return nil, "bad token"
		}
		return nil, ""
	})
	c := &Config{SASL: &SASL{Mechanism: MechOAuthBearer, OAuth: oauthConf(ts), Extensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}}}
	opts, err := c.Opts(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(k.Addr), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	ex := seen()
	if len(ex) == 0 {
		t.Fatal("the broker saw no SASL exchange")
	}
	want := "n,,\x01auth=Bearer tok-1\x01identityPoolId=pool-2\x01logicalCluster=lkc-1\x01\x01"
	for _, e := range ex {
		if string(e.Auth) != want {
			t.Fatalf("client message %q, want %q", e.Auth, want)
		}
	}
	if n := ts.hits.Load(); n != 1 {
		t.Fatalf("%d token requests for %d connections, want 1 (the token is cached)", n, len(ex))
	}
	ts.mu.Lock()
	form, auth := ts.forms[0], ts.auths[0]
	ts.mu.Unlock()
	// RFC 6749 2.3.1: id and secret are form-encoded, then Basic.
	if want := "Basic " + basic("pipe+client", "cs-secret%3A1"); auth != want {
		t.Errorf("Authorization %q, want %q", auth, want)
	}
	if form.Get("scope") != "kafka read write" || form.Has("client_secret") {
		t.Errorf("form %v", form)
	}

	// A static token is sent as it is.
	c = &Config{SASL: &SASL{Mechanism: MechOAuthBearer, Token: "static-tok"}}
	m, _ := c.SASL.mechanism()
	_, first, err := m.Authenticate(ctx, k.Addr)
	if err != nil || string(first) != "n,,\x01auth=Bearer static-tok\x01\x01" {
		t.Fatalf("static token: %q, %v", first, err)
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "http://x", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestOAuthRefresh: a token is reused until 80% of its lifetime has passed,
// then replaced; a token the broker rejects is dropped at once.
func TestOAuthRefresh(t *testing.T) {
	ts := newTokenServer(t)
	ts.expiresIn = "100" // some servers send a string
	src := newTokenSource(oauthConf(ts))
	now := time.Unix(1_700_000_000, 0)
	src.now = func() time.Time { return now }
	ctx := context.Background()
	get := func() string {
		t.Helper()
		tok, err := src.token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if tok := get(); tok != "tok-1" {
		t.Fatalf("first token %q", tok)
	}
	now = now.Add(79 * time.Second)
	if tok := get(); tok != "tok-1" {
		t.Fatalf("at 79%% of its life: %q, want the cached tok-1", tok)
	}
	now = now.Add(2 * time.Second)
	if tok := get(); tok != "tok-2" {
		t.Fatalf("at 81%% of its life: %q, want a new token", tok)
	}

	// The mechanism: the broker answers tok-2 with an error (RFC 7628
	// 3.2.2); the next authentication fetches tok-3.
	mech := &refreshingOAuth{src: src, inner: oauthMechanism(src, nil)}
	sess, first, err := mech.Authenticate(ctx, "b:9092")
	if err != nil || !strings.Contains(string(first), "auth=Bearer tok-2\x01") {
		t.Fatalf("first message %q, %v", first, err)
	}
	done, reply, err := sess.Challenge([]byte(`{"status":"invalid_token"}`))
	if done || string(reply) != "\x01" || err != nil {
		t.Fatalf("answer to the server's error: %v %q %v", done, reply, err)
	}
	_, first, _ = mech.Authenticate(ctx, "b:9092")
	if !strings.Contains(string(first), "auth=Bearer tok-3\x01") {
		t.Fatalf("after a rejection: %q, want tok-3", first)
	}
}

// TestOAuthErrors: token endpoint failures are explained without the
// client secret, and a client sees them when it connects.
func TestOAuthErrors(t *testing.T) {
	ts := newTokenServer(t)
	ts.status = http.StatusUnauthorized
	o := oauthConf(ts)
	o.ClientAuth = "body"
	c := &Config{SASL: &SASL{Mechanism: MechOAuthBearer, OAuth: o}}
	k, _ := testenv.KafkaSASLExchange(t, MechOAuthBearer, func([]byte) ([]byte, string) { return nil, "" })
	opts, _ := c.Opts(nil)
	cl, _ := kgo.NewClient(append(opts, kgo.SeedBrokers(k.Addr))...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.Ping(ctx)
	f, ok := c.Explain(err)
	want := Failure{KindCredentials, "OAuth token request to " + ts.URL + "/token failed: status 401: invalid_client: client authentication failed"}
	if !ok || f != want {
		t.Fatalf("explained %v as %+v, want %+v", err, f, want)
	}
	ts.mu.Lock()
	form, auth := ts.forms[0], ts.auths[0]
	ts.mu.Unlock()
	if auth != "" || form.Get("client_id") != "pipe client" || form.Get("client_secret") != "cs-secret:1" {
		t.Fatalf("clientAuth body: Authorization %q, form %v", auth, form)
	}

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"not json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") }, "status 200: the answer is not a JSON token response"},
		{"no token", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"token_type":"Bearer"}`) }, "status 200: the answer has no access_token"},
		{"mac token", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"access_token":"x","token_type":"mac"}`) }, `status 200: token_type is "mac", not Bearer`},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere/", http.StatusFound)
		}, "status 302: Found"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "cs-secret:1", 500) }, "status 500: Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			o := oauthConf(ts)
			o.TokenURL = srv.URL + "/token?tenant=x"
			_, err := newTokenSource(o).token(ctx)
			var te *TokenError
			if !errors.As(err, &te) || err.Error() != "OAuth token request to "+srv.URL+"/token failed: "+tc.want {
				t.Fatalf("got %v", err)
			}
			if strings.Contains(err.Error(), "cs-secret") {
				t.Fatalf("the error holds the client secret: %v", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		o := oauthConf(ts)
		o.TokenURL = srv.URL + "/token"
		_, err := newTokenSource(o).token(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), "OAuth token request to "+srv.URL+"/token failed: dial tcp") {
			t.Fatalf("got %v", err)
		}
	})
}

// isolateAWS removes every AWS_ variable and points the shared files at
// nothing, so the host's settings cannot leak into a test.
func isolateAWS(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestMSKIAM: the signed payload a broker receives over TCP carries the
// fields of AWS's MSK IAM library, and its signature equals the AWS SDK's
// own SigV4 presigning of the same request with the same credentials.
func TestMSKIAM(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "session/token+1=")
	t.Setenv("AWS_REGION", "eu-west-1")
	k, seen := testenv.KafkaSASLExchange(t, MechAWSMSKIAM, func(auth []byte) ([]byte, string) {
		return []byte(`{"version":"2020_10_22","request-id":"r-1"}`), ""
	})
	c := &Config{SASL: &SASL{Mechanism: MechAWSMSKIAM, AWS: &awscfg.Config{}}}
	opts, err := c.Opts(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(append(opts, kgo.SeedBrokers(k.Addr), kgo.AllowAutoTopicCreation())...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	ex := seen()
	if len(ex) == 0 {
		t.Fatal("no SASL exchange")
	}
	var p map[string]string
	if err := json.Unmarshal(ex[0].Auth, &p); err != nil {
		t.Fatalf("payload %q: %v", ex[0].Auth, err)
	}
	ts, err := time.Parse("20060102T150405Z", p["x-amz-date"])
	if err != nil || time.Since(ts) > time.Minute || time.Since(ts) < -time.Minute {
		t.Fatalf("x-amz-date %q: %v", p["x-amz-date"], err)
	}
	fixed := map[string]string{
		"version":              "2020_10_22",
		"host":                 "127.0.0.1",
		"user-agent":           "pipe",
		"action":               "kafka-cluster:Connect",
		"x-amz-algorithm":      "AWS4-HMAC-SHA256",
		"x-amz-credential":     "AKIDEXAMPLE/" + ts.Format("20060102") + "/eu-west-1/kafka-cluster/aws4_request",
		"x-amz-expires":        "900",
		"x-amz-signedheaders":  "host",
		"x-amz-security-token": "session/token+1=",
	}
	for key, want := range fixed {
		if p[key] != want {
			t.Errorf("%s = %q, want %q", key, p[key], want)
		}
	}
	if len(p) != len(fixed)+2 {
		t.Errorf("payload has %d fields, want %d: %v", len(p), len(fixed)+2, p)
	}
	// The SDK's presigner signs GET https://host/?Action=...&X-Amz-Expires=900.
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1/?Action=kafka-cluster%3AConnect&X-Amz-Expires=900", nil)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "session/token+1="},
		req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "kafka-cluster", "eu-west-1", ts)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	if want := u.Query().Get("X-Amz-Signature"); p["x-amz-signature"] != want || want == "" {
		t.Errorf("signature %q, the SDK signs %q", p["x-amz-signature"], want)
	}
	if strings.Contains(string(ex[0].Auth), "wJalrXUtnFEMI") {
		t.Error("the payload holds the secret key")
	}
}

// TestMSKIAMRegion: the region comes from the broker host name; a host
// without one needs AWS_REGION, and says so.
func TestMSKIAMRegion(t *testing.T) {
	for host, want := range map[string]string{
		"b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com":                 "eu-west-1",
		"b-2.orders.abc123.kafka.us-gov-west-1.amazonaws.com":                "us-gov-west-1",
		"vpce-0123-abcd.kafka.ap-southeast-2.vpce.amazonaws.com":             "ap-southeast-2",
		"boot-abc.c1.kafka-serverless.cn-north-1.amazonaws.com.cn":           "cn-north-1",
		"B-1.ORDERS.KAFKA.US-EAST-1.AMAZONAWS.COM.":                          "us-east-1",
		"kafka.internal.example.com":                                         "",
		"127.0.0.1":                                                          "",
		"b-1.kafka.eu-west-1.amazonaws.com.evil.example":                     "",
		"b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com.amazonaws.com":   "eu-west-1",
		"b-1.orders.abc123.c2.kafka.notaregion.amazonaws.com":                "",
		"b-1.orders.abc123.c2.kafka.eu-central-2.api.aws":                    "eu-central-2",
		"b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098-not-a-host": "",
	} {
		if got := hostRegion(host); got != want {
			t.Errorf("hostRegion(%q) = %q, want %q", host, got, want)
		}
	}
	isolateAWS(t)
	m := newMSKIAM(awscfg.Config{})
	if _, _, err := m.Authenticate(context.Background(), "kafka.internal:9098"); err == nil || err.Error() != "AWS_MSK_IAM: the broker host kafka.internal names no AWS region to sign for; set AWS_REGION" {
		t.Fatalf("got %v", err)
	}
	// No credentials anywhere: the error says so, and Explain sorts it.
	_, _, err := m.Authenticate(context.Background(), "b-1.x.kafka.eu-west-1.amazonaws.com:9098")
	c := &Config{SASL: &SASL{Mechanism: MechAWSMSKIAM}}
	f, ok := c.Explain(err)
	if !ok || f.Kind != KindCredentials || !strings.HasPrefix(f.Reason, "getting AWS credentials for AWS_MSK_IAM: ") {
		t.Fatalf("no credentials: %v explained as %+v", err, f)
	}
}
