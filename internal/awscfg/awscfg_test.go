package awscfg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// isolate removes every AWS_ variable from the environment and points the
// shared config files at paths that do not exist, so the host's settings
// cannot leak into a test. The variables come back when the test ends.
func isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func retrieve(t *testing.T, cfg aws.Config) aws.Credentials {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("retrieving credentials: %v", err)
	}
	return creds
}

func TestValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want []string // "field: msg" fragments, in order
	}{
		{Config{}, nil},
		{Config{Endpoint: "http://127.0.0.1:4566", RoleARN: "arn:aws:iam::123456789012:role/x", ExternalID: "abc", SessionName: "s1"}, nil},
		{Config{Endpoint: "localhost:4566"}, []string{"endpoint: must be an absolute"}},
		{Config{Endpoint: "ftp://h"}, []string{"endpoint: must be an absolute"}},
		{Config{Endpoint: "https://user:pw@h"}, []string{"endpoint: must not hold credentials"}},
		{Config{ExternalID: "abc", SessionName: "s1"}, []string{"externalId: needs roleArn", "sessionName: needs roleArn"}},
	}
	for i, c := range cases {
		ps := c.cfg.Validate()
		var got []string
		for _, p := range ps {
			got = append(got, p.Field+": "+p.Msg)
		}
		if len(got) != len(c.want) {
			t.Errorf("case %d: got %q, want %q", i, got, c.want)
			continue
		}
		for j := range got {
			if !strings.HasPrefix(got[j], c.want[j]) {
				t.Errorf("case %d: problem %d is %q, want %q...", i, j, got[j], c.want[j])
			}
			if strings.Contains(got[j], "pw") {
				t.Errorf("case %d: problem %q shows the endpoint's password", i, got[j])
			}
		}
	}
}

func TestRegion(t *testing.T) {
	isolate(t)
	ctx := context.Background()
	if _, err := (&Config{}).Load(ctx); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("no region anywhere: got %v, want ErrNoRegion", err)
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := (&Config{}).Load(ctx)
	if err != nil || cfg.Region != "eu-west-1" {
		t.Fatalf("AWS_REGION: got %q, %v", cfg.Region, err)
	}
	cfg, err = (&Config{Region: "ap-south-2"}).Load(ctx)
	if err != nil || cfg.Region != "ap-south-2" {
		t.Fatalf("region setting over AWS_REGION: got %q, %v", cfg.Region, err)
	}
	t.Setenv("AWS_REGION", "not a region")
	if _, err := (&Config{}).Load(ctx); err == nil || !strings.Contains(err.Error(), "not a valid region") {
		t.Fatalf("bad AWS_REGION: got %v", err)
	}
}

func TestEnvironmentCredentials(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
	t.Setenv("AWS_SESSION_TOKEN", "token-env")
	cfg, err := (&Config{Region: "us-east-1"}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := retrieve(t, cfg)
	if c.AccessKeyID != "AKIDENV" || c.SecretAccessKey != "secret-env" || c.SessionToken != "token-env" {
		t.Fatalf("got %+v", c)
	}
}

func TestProfile(t *testing.T) {
	isolate(t)
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), "[default]\nregion = us-west-2\n\n[profile other]\nregion = eu-central-1\n")
	writeFile(t, os.Getenv("AWS_SHARED_CREDENTIALS_FILE"),
		"[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s2\n")
	ctx := context.Background()

	cfg, err := (&Config{}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := retrieve(t, cfg); cfg.Region != "us-west-2" || c.AccessKeyID != "AKIDDEFAULT" {
		t.Fatalf("default profile: region %q, key %q", cfg.Region, c.AccessKeyID)
	}

	// A profile named in the config wins over the environment's keys.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
	cfg, err = (&Config{Profile: "other"}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := retrieve(t, cfg); cfg.Region != "eu-central-1" || c.AccessKeyID != "AKIDOTHER" {
		t.Fatalf("profile other: region %q, key %q", cfg.Region, c.AccessKeyID)
	}
	// Without one, the environment's keys come first.
	cfg, err = (&Config{}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := retrieve(t, cfg); c.AccessKeyID != "AKIDENV" {
		t.Fatalf("no profile setting, keys in the environment: key %q", c.AccessKeyID)
	}
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")

	t.Setenv("AWS_PROFILE", "other")
	cfg, err = (&Config{}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := retrieve(t, cfg); c.AccessKeyID != "AKIDOTHER" {
		t.Fatalf("AWS_PROFILE=other: key %q", c.AccessKeyID)
	}

	if _, err := (&Config{Profile: "missing"}).Load(ctx); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("unknown profile: got %v", err)
	}
}

// imds is an EC2 instance metadata service (IMDSv2) that hands out role
// credentials, and counts the requests it gets.
func imds(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			fmt.Fprint(w, "imds-token")
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-token":
			http.Error(w, "", http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			fmt.Fprint(w, "instance-role")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/instance-role":
			fmt.Fprintf(w, `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"AKIDIMDS","SecretAccessKey":"secret-imds","Token":"token-imds","Expiration":%q}`,
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestInstanceMetadataIsLazy: with no other credentials the chain ends at
// the instance metadata service, which Load does not call; the first
// Retrieve does.
func TestInstanceMetadataIsLazy(t *testing.T) {
	isolate(t)
	srv, n := imds(t)
	os.Unsetenv("AWS_EC2_METADATA_DISABLED")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	cfg, err := (&Config{Region: "us-east-1"}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("Load made %d requests to the metadata service, want none", got)
	}
	c := retrieve(t, cfg)
	if c.AccessKeyID != "AKIDIMDS" || c.SessionToken != "token-imds" {
		t.Fatalf("got %+v", c)
	}
	before := n.Load()
	retrieve(t, cfg)
	if n.Load() != before {
		t.Fatal("credentials were fetched again instead of cached")
	}
}

// fakeSTS is an STS endpoint answering AssumeRole and AssumeRoleWithWebIdentity
// as the query API does. It records the forms and Authorization headers it
// got.
type fakeSTS struct {
	*httptest.Server
	mu    sync.Mutex
	forms []map[string]string
	auths []string
}

func newSTS(t *testing.T) *fakeSTS {
	s := &fakeSTS{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		s.mu.Lock()
		s.forms = append(s.forms, form)
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		action := form["Action"]
		if action != "AssumeRole" && action != "AssumeRoleWithWebIdentity" {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <%[1]sResult>
    <Credentials>
      <AccessKeyId>ASIAASSUMED</AccessKeyId>
      <SecretAccessKey>secret-assumed</SecretAccessKey>
      <SessionToken>token-assumed</SessionToken>
      <Expiration>%[2]s</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>%[3]s/%[4]s</Arn><AssumedRoleId>AROA:%[4]s</AssumedRoleId></AssumedRoleUser>
  </%[1]sResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</%[1]sResponse>`, action, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), form["RoleArn"], form["RoleSessionName"])
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeSTS) requests() ([]map[string]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.forms...), append([]string(nil), s.auths...)
}

// TestAssumeRole: the role is assumed with the default-chain credentials,
// on the STS endpoint that AWS_ENDPOINT_URL_STS names, with the external ID
// and session name; nothing is asked before the credentials are needed.
func TestAssumeRole(t *testing.T) {
	isolate(t)
	s := newSTS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-base")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL)
	role := "arn:aws:iam::123456789012:role/pipe-writer"
	for _, c := range []struct {
		cfg         Config
		session, id string
	}{
		{Config{Region: "eu-west-1", RoleARN: role, ExternalID: "ext-42", SessionName: "orders"}, "orders", "ext-42"},
		{Config{Region: "eu-west-1", RoleARN: role}, DefaultSessionName, ""},
	} {
		before, _ := s.requests()
		cfg, err := c.cfg.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if after, _ := s.requests(); len(after) != len(before) {
			t.Fatal("Load called STS")
		}
		creds := retrieve(t, cfg)
		if creds.AccessKeyID != "ASIAASSUMED" || creds.SessionToken != "token-assumed" {
			t.Fatalf("got %+v", creds)
		}
		forms, auths := s.requests()
		if len(forms) != len(before)+1 {
			t.Fatalf("%d STS requests, want 1", len(forms)-len(before))
		}
		f, auth := forms[len(forms)-1], auths[len(auths)-1]
		if f["Action"] != "AssumeRole" || f["RoleArn"] != role || f["RoleSessionName"] != c.session || f["ExternalId"] != c.id {
			t.Errorf("AssumeRole form %v", f)
		}
		if !strings.Contains(auth, "Credential=AKIDBASE/") || !strings.Contains(auth, "/eu-west-1/sts/") {
			t.Errorf("STS request not signed with the base credentials in the region: %q", auth)
		}
	}
}

// TestWebIdentity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (as on EKS)
// are part of the default chain.
func TestWebIdentity(t *testing.T) {
	isolate(t)
	s := newSTS(t)
	tok := filepath.Join(t.TempDir(), "token")
	writeFile(t, tok, "the-oidc-token")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok)
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/eks")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL)
	cfg, err := (&Config{Region: "us-east-1"}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := retrieve(t, cfg); c.AccessKeyID != "ASIAASSUMED" {
		t.Fatalf("got %+v", c)
	}
	forms, _ := s.requests()
	if len(forms) != 1 || forms[0]["Action"] != "AssumeRoleWithWebIdentity" || forms[0]["WebIdentityToken"] != "the-oidc-token" {
		t.Fatalf("STS got %v", forms)
	}
}

// recorder is an SQS endpoint that fails every call with a 500 and counts
// the calls.
type recorder struct {
	*httptest.Server
	n    atomic.Int32
	auth atomic.Value
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.n.Add(1)
		r.auth.Store(req.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"__type":"com.amazonaws.sqs#InternalError","message":"try again"}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func sqsCall(t *testing.T, c *Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if ep := c.BaseEndpoint(); ep != nil {
			o.BaseEndpoint = ep
		}
	})
	_, err = cl.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err == nil {
		t.Fatal("the call succeeded against a server that fails every call")
	}
	return err
}

// TestEndpoints: the component's endpoint wins over
// AWS_ENDPOINT_URL_<SERVICE>, which wins over AWS_ENDPOINT_URL; the clients
// do not retry on their own; errors hold no credentials.
func TestEndpoints(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENDPOINT")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "the-secret-key")
	t.Setenv("AWS_SESSION_TOKEN", "the-session-token")
	global, service, component := newRecorder(t), newRecorder(t), newRecorder(t)
	cfg := &Config{Region: "us-east-1"}

	t.Setenv("AWS_ENDPOINT_URL", global.URL)
	err := sqsCall(t, cfg)
	if global.n.Load() != 1 {
		t.Fatalf("AWS_ENDPOINT_URL: the endpoint got %d calls, want 1 (no retries)", global.n.Load())
	}
	for _, secret := range []string{"the-secret-key", "the-session-token"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows a credential: %v", err)
		}
	}
	if a, _ := global.auth.Load().(string); !strings.Contains(a, "Credential=AKIDENDPOINT/") {
		t.Fatalf("request not signed with the environment's credentials: %q", a)
	}

	t.Setenv("AWS_ENDPOINT_URL_SQS", service.URL)
	sqsCall(t, cfg)
	if service.n.Load() != 1 || global.n.Load() != 1 {
		t.Fatalf("AWS_ENDPOINT_URL_SQS: service endpoint %d calls, global %d", service.n.Load(), global.n.Load())
	}

	sqsCall(t, &Config{Region: "us-east-1", Endpoint: component.URL})
	if component.n.Load() != 1 || service.n.Load() != 1 || global.n.Load() != 1 {
		t.Fatalf("endpoint setting: component %d calls, service %d, global %d", component.n.Load(), service.n.Load(), global.n.Load())
	}

	// The environment's settings can be switched off; the component's stays.
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	sqsCall(t, &Config{Region: "us-east-1", Endpoint: component.URL})
	if component.n.Load() != 2 {
		t.Fatalf("endpoint setting with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: component %d calls, want 2", component.n.Load())
	}
}

// TestProfileEndpoint: an endpoint_url in the profile's services section
// is honoured too.
func TestProfileEndpoint(t *testing.T) {
	isolate(t)
	rec := newRecorder(t)
	writeFile(t, os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), "[local]\naws_access_key_id = AKID\naws_secret_access_key = s\n")
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"),
		"[profile local]\nregion = us-east-1\nservices = local-services\n\n[services local-services]\nsqs =\n  endpoint_url = "+rec.URL+"\n")
	err := sqsCall(t, &Config{Profile: "local"})
	if rec.n.Load() != 1 {
		t.Fatalf("the profile's endpoint got %d calls, want 1: %v", rec.n.Load(), err)
	}
}
