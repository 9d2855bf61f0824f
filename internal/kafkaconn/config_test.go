package kafkaconn_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// connSource is a source kind with a connection block, so the tests decode
// YAML the way a component's config is decoded.
type connSource struct {
	Conn kafkaconn.Config `yaml:"connection"`
}

func (*connSource) NewSource(pipeline.Env) (pipeline.Source, error) { return nil, nil }

func init() {
	pipeline.RegisterSource("kafkaconn-test", "test", func() *connSource { return &connSource{} })
}

func parse(t *testing.T, conn string) (*kafkaconn.Config, error) {
	t.Helper()
	doc := "pipes:\n  - name: p\n    source:\n      kafkaconn-test:\n        connection:\n" + indent(conn, "          ") + "    target: {stdout: {}}\n"
	cfg, err := pipeline.Parse("pipes.yaml", []byte(doc))
	if err != nil {
		return nil, err
	}
	return &cfg.Pipes[0].Source.(*connSource).Conn, nil
}

func indent(s, by string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(by + l + "\n")
	}
	return b.String()
}

func TestDecode(t *testing.T) {
	pki := testenv.NewPKI(t, "Test CA")
	cert := pki.Issue(t, "pipe", testenv.CertOpts{})
	t.Setenv("PIPE_TEST_KAFKA_PASSWORD", "pa55-w0rd-secret")
	c, err := parse(t, `
tls:
  caFile: `+pki.CAFile+`
  certFile: `+cert.CertFile+`
  keyFile: `+cert.KeyFile+`
sasl:
  mechanism: SCRAM-SHA-512
  username: alice
  password: ${PIPE_TEST_KAFKA_PASSWORD}
`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled || c.TLS.InsecureSkipVerify || c.TLS.CAFile != pki.CAFile {
		t.Errorf("tls: %+v (a tls block is on by default)", c.TLS)
	}
	if c.SASL.Password.Reveal() != "pa55-w0rd-secret" || c.SASL.Username != "alice" {
		t.Errorf("sasl: %+v", c.SASL)
	}
	if got := c.Identity(); got != "SASL SCRAM-SHA-512, user alice; client certificate CN=pipe,O=pipe tests" {
		t.Errorf("identity %q", got)
	}
	c, err = parse(t, `
sasl:
  mechanism: OAUTHBEARER
  oauth: {tokenUrl: "https://idp.example.com/token", clientId: pipe, clientSecret: s, scopes: "kafka other"}
  extensions: {logicalCluster: lkc-1}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.SASL.OAuth.ClientAuth != "basic" || c.SASL.OAuth.Timeout.String() != "30s" || c.TLS != nil {
		t.Errorf("oauth defaults: %+v, tls %v", c.SASL.OAuth, c.TLS)
	}
}

// TestDecodeProblems: every mistake is reported at its place, and none
// of the messages holds a secret.
func TestDecodeProblems(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, conn string
		want       []string
	}{
		{"unknown mechanism", `
sasl: {mechanism: GSSAPI, username: a, password: b}`,
			[]string{`pipes.yaml:6:29: pipe "p": source.kafkaconn-test.connection.sasl.mechanism: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, AWS_MSK_IAM, got "GSSAPI"`}},
		{"plain without password", `
sasl: {mechanism: PLAIN, username: alice}`,
			[]string{`pipes.yaml:6:17: pipe "p": source.kafkaconn-test.connection.sasl.password: mechanism PLAIN needs password`}},
		{"scram with a token", `
sasl:
  mechanism: SCRAM-SHA-256
  username: alice
  password: hunter2-secret
  token: tok-secret`,
			[]string{`pipes.yaml:10:20: pipe "p": source.kafkaconn-test.connection.sasl.token: is not used with mechanism SCRAM-SHA-256`}},
		{"oauthbearer with nothing", `
sasl: {mechanism: OAUTHBEARER}`,
			[]string{`pipes.yaml:6:17: pipe "p": source.kafkaconn-test.connection.sasl: mechanism OAUTHBEARER needs token or oauth`}},
		{"oauthbearer with both", `
sasl:
  mechanism: OAUTHBEARER
  token: tok-secret
  oauth: {tokenUrl: "https://idp/t", clientId: c, clientSecret: cs-secret}`,
			[]string{`pipes.yaml:8:20: pipe "p": source.kafkaconn-test.connection.sasl.token: give token or oauth, not both`}},
		{"oauth over http", `
sasl:
  mechanism: OAUTHBEARER
  oauth: {tokenUrl: "http://idp.example.com/t", clientId: c, clientSecret: cs-secret}`,
			[]string{`pipes.yaml:8:31: pipe "p": source.kafkaconn-test.connection.sasl.oauth.tokenUrl: must be https:// (the client secret would travel in clear text); http:// is accepted on loopback addresses only`}},
		{"oauth missing secret", `
sasl:
  mechanism: OAUTHBEARER
  oauth: {tokenUrl: "https://idp/t", clientId: c}`,
			[]string{`pipes.yaml:8:20: pipe "p": source.kafkaconn-test.connection.sasl.oauth: missing required key "clientSecret"`}},
		{"bad extension", `
sasl:
  mechanism: OAUTHBEARER
  token: tok-secret
  extensions: {auth: x}`,
			[]string{`pipes.yaml:9:25: pipe "p": source.kafkaconn-test.connection.sasl.extensions: "auth" is not a valid SASL extension name (letters only, not auth)`}},
		{"msk iam with endpoint", `
sasl:
  mechanism: AWS_MSK_IAM
  aws: {region: eu-west-1, endpoint: "http://localhost:4566"}`,
			[]string{`pipes.yaml:8:18: pipe "p": source.kafkaconn-test.connection.sasl.aws: endpoint is not used by AWS_MSK_IAM (the brokers are the endpoint)`}},
		{"key password without key", `
tls:
  caFile: ` + missing + `
  keyPassword: key-secret`,
			[]string{
				`pipes.yaml:8:26: pipe "p": source.kafkaconn-test.connection.tls.keyPassword: is only used with keyFile`,
			}},
		{"missing ca file", `
tls: {caFile: ` + missing + `}`,
			[]string{`pipes.yaml:6:25: pipe "p": source.kafkaconn-test.connection.tls.caFile: cannot read ` + missing + `: no such file or directory`}},
		{"unknown key", `
tls: {caFlie: x}`,
			[]string{`pipes.yaml:6:17: pipe "p": source.kafkaconn-test.connection.tls.caFlie: unknown key "caFlie"; did you mean "caFile"?`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.conn)
			if err == nil {
				t.Fatalf("no problem reported, want %v", tc.want)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			for _, s := range []string{"hunter2-secret", "tok-secret", "cs-secret", "key-secret"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("a problem shows the secret %q: %v", s, err)
				}
			}
		})
	}
}

// TestSecretsRedacted: a config printed with %v or %+v shows no secret.
func TestSecretsRedacted(t *testing.T) {
	c := kafkaconn.Config{
		TLS: &kafkaconn.TLS{Enabled: true, KeyPassword: "key-secret"},
		SASL: &kafkaconn.SASL{Mechanism: "OAUTHBEARER", Password: "pw-secret", Token: "tok-secret",
			OAuth: &kafkaconn.OAuth{ClientSecret: "cs-secret"}},
	}
	for _, s := range []string{pretty(c.TLS), pretty(c.SASL), pretty(c.SASL.OAuth)} {
		for _, secret := range []string{"key-secret", "pw-secret", "tok-secret", "cs-secret"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows %s", s, secret)
			}
		}
	}
}

func pretty(v any) string { return fmt.Sprintf("%v %+v", v, v) }
