package kafkaconn_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// newClient builds a client of addr with c's options.
func newClient(t *testing.T, c *kafkaconn.Config, addr string, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := c.Opts(nil)
	if err != nil {
		t.Fatalf("Opts: %v", err)
	}
	cl, err := kgo.NewClient(append(append(opts, kgo.SeedBrokers(addr)), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces records with one client of c and consumes them back
// with another.
func roundTrip(t *testing.T, c *kafkaconn.Config, addr, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newClient(t, c, addr, kgo.AllowAutoTopicCreation())
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		f, _ := c.Explain(err)
		t.Fatalf("producing: %v (%s)", err, f)
	}
	cons := newClient(t, c, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < len(recs) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming: got %v", got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, ",") != "v0,v1,v2,v3,v4" {
		t.Fatalf("consumed %v", got)
	}
}

// failure pings the broker with c and explains the error.
func failure(t *testing.T, c *kafkaconn.Config, addr string) kafkaconn.Failure {
	t.Helper()
	cl := newClient(t, c, addr, kgo.DialTimeout(2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.Ping(ctx)
	if err == nil {
		t.Fatal("ping succeeded")
	}
	f, ok := c.Explain(err)
	if !ok {
		t.Fatalf("error not explained: %v (%T)", err, err)
	}
	noSecrets(t, c, err.Error(), f.Reason)
	return f
}

// noSecrets fails the test when a text shows one of c's secrets.
func noSecrets(t *testing.T, c *kafkaconn.Config, texts ...string) {
	t.Helper()
	var secrets []string
	if c.SASL != nil {
		secrets = append(secrets, c.SASL.Password.Reveal(), c.SASL.Token.Reveal())
	}
	if c.TLS != nil {
		secrets = append(secrets, c.TLS.KeyPassword.Reveal())
	}
	for _, s := range secrets {
		for _, text := range texts {
			if s != "" && strings.Contains(text, s) {
				t.Fatalf("%q shows a secret", text)
			}
		}
	}
}

var users = []testenv.SASLUser{
	{Mechanism: "PLAIN", User: "alice", Pass: "alice-secret-1"},
	{Mechanism: "SCRAM-SHA-256", User: "bob", Pass: "bob-secret-2"},
	{Mechanism: "SCRAM-SHA-512", User: "carol", Pass: "carol-secret-3"},
}

func saslConf(mech, user, pass string) *kafkaconn.SASL {
	return &kafkaconn.SASL{Mechanism: mech, Username: user, Password: pipeline.Secret(pass)}
}

// TestSASL: the right credentials produce and consume with each mechanism;
// wrong ones give the documented reason.
func TestSASL(t *testing.T) {
	k := testenv.KafkaSecure(t, testenv.SecureKafka{Users: users})
	for _, u := range users {
		t.Run(u.Mechanism, func(t *testing.T) {
			roundTrip(t, &kafkaconn.Config{SASL: saslConf(u.Mechanism, u.User, u.Pass)}, k.Addr, "t-"+u.User)
		})
	}
	for _, tc := range []struct {
		name string
		conf *kafkaconn.Config
		want kafkaconn.Failure
	}{
		{"plain wrong password", &kafkaconn.Config{SASL: saslConf("PLAIN", "alice", "wrong-secret")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL PLAIN, user alice): Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"}},
		{"plain unknown user", &kafkaconn.Config{SASL: saslConf("PLAIN", "mallory", "alice-secret-1")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL PLAIN, user mallory): Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"}},
		{"scram-256 wrong password", &kafkaconn.Config{SASL: saslConf("SCRAM-SHA-256", "bob", "wrong-secret")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-256, user bob): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"}},
		{"scram-512 wrong password", &kafkaconn.Config{SASL: saslConf("SCRAM-SHA-512", "carol", "wrong-secret")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-512, user carol): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"}},
		{"scram unknown user", &kafkaconn.Config{SASL: saslConf("SCRAM-SHA-512", "mallory", "carol-secret-3")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-512, user mallory): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM"}},
		{"scram user of the other hash", &kafkaconn.Config{SASL: saslConf("SCRAM-SHA-512", "bob", "bob-secret-2")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-512, user bob): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"}},
		{"plain user with scram", &kafkaconn.Config{SASL: saslConf("SCRAM-SHA-256", "alice", "alice-secret-1")},
			kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-256, user alice): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM"}},
		{"mechanism the broker does not accept", &kafkaconn.Config{SASL: &kafkaconn.SASL{Mechanism: "OAUTHBEARER", Token: "tok-secret"}},
			kafkaconn.Failure{Kind: kafkaconn.KindMechanism, Reason: "unsupported SASL mechanism: the brokers do not accept OAUTHBEARER"}},
		{"no sasl", &kafkaconn.Config{},
			kafkaconn.Failure{Kind: kafkaconn.KindClosed, Reason: "the broker closed the connection (no authentication): it probably requires SASL; add a sasl block"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure(t, tc.conf, k.Addr); got != tc.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestTLS: a trusted broker works over TLS and mTLS (with an encrypted
// key); an untrusted, expired or misnamed certificate and a missing client
// certificate each give the documented reason.
func TestTLS(t *testing.T) {
	ca := testenv.NewPKI(t, "Test CA")
	other := testenv.NewPKI(t, "Other CA")
	clients := testenv.NewPKI(t, "Client CA")
	plain := testenv.KafkaSecure(t, testenv.SecureKafka{TLS: &testenv.BrokerTLS{CA: ca}})
	expiredCert := ca.Issue(t, "old-broker", testenv.CertOpts{NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	expired := testenv.KafkaSecure(t, testenv.SecureKafka{TLS: &testenv.BrokerTLS{Cert: expiredCert}})
	named := testenv.KafkaSecure(t, testenv.SecureKafka{TLS: &testenv.BrokerTLS{Cert: ca.Issue(t, "kafka-1", testenv.CertOpts{Hosts: []string{"kafka-1.internal"}})}})
	mtls := testenv.KafkaSecure(t, testenv.SecureKafka{TLS: &testenv.BrokerTLS{CA: ca, ClientCA: clients}})
	client := clients.Issue(t, "pipe-client", testenv.CertOpts{})
	stranger := other.Issue(t, "stranger", testenv.CertOpts{})

	t.Run("trusted", func(t *testing.T) {
		roundTrip(t, &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile}}, plain.Addr, "t")
	})
	t.Run("server name", func(t *testing.T) {
		roundTrip(t, &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile, ServerName: "kafka-1.internal"}}, named.Addr, "t")
	})
	t.Run("mtls with encrypted key", func(t *testing.T) {
		key := client.EncryptedKeyFile(t, "key-secret")
		roundTrip(t, &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile, CertFile: client.CertFile, KeyFile: key, KeyPassword: "key-secret"}}, mtls.Addr, "t")
	})
	t.Run("insecure skip verify warns", func(t *testing.T) {
		var logs syncBuffer
		c := &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, InsecureSkipVerify: true}}
		if _, err := c.Opts(slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "TLS CERTIFICATE VERIFICATION IS OFF") {
			t.Fatalf("no warning logged: %q", logs.String())
		}
		roundTrip(t, c, expired.Addr, "t") // even an expired certificate passes
	})

	subject := func(c *testenv.Cert) string { return c.X509.Subject.String() + ", issuer CN=Test CA,O=pipe tests" }
	const brokerSubject = "CN=broker,O=pipe tests, issuer CN=Test CA,O=pipe tests"
	for _, tc := range []struct {
		name string
		conf *kafkaconn.Config
		addr string
		want kafkaconn.Failure
	}{
		{"untrusted ca", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: other.CAFile}}, plain.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSVerification, Reason: "TLS verification failed: certificate signed by unknown authority (subject " + brokerSubject + "); the CA is not in tls.caFile " + other.CAFile}},
		{"system roots", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true}}, plain.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSVerification, Reason: "TLS verification failed: certificate signed by unknown authority (subject " + brokerSubject + "); set tls.caFile to the CA that signs the brokers' certificates"}},
		{"expired certificate", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile}}, expired.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSVerification, Reason: "TLS verification failed: certificate expired or not yet valid (subject " + subject(expiredCert) + ", valid " +
				expiredCert.X509.NotBefore.UTC().Format(time.RFC3339) + " to " + expiredCert.X509.NotAfter.UTC().Format(time.RFC3339) + ")"}},
		{"wrong name", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile}}, named.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSVerification, Reason: "TLS verification failed: the certificate is not valid for 127.0.0.1 (subject CN=kafka-1,O=pipe tests, issuer CN=Test CA,O=pipe tests; valid for: kafka-1.internal); set tls.serverName if the brokers are reached by another name"}},
		{"no client certificate", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile}}, mtls.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSHandshake, Reason: "TLS handshake failed: the broker refused the connection (remote error: tls: certificate required); the broker requires a client certificate: set tls.certFile and tls.keyFile"}},
		{"client certificate of another ca", &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile}}, mtls.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindTLSHandshake, Reason: "TLS handshake failed: the broker refused the connection (remote error: tls: certificate required); the broker requires a client certificate signed by a CA it trusts, and the one in tls.certFile is not (client certificate CN=stranger,O=pipe tests)"}},
		{"plaintext to a tls listener", &kafkaconn.Config{}, plain.Addr,
			kafkaconn.Failure{Kind: kafkaconn.KindClosed, Reason: "the broker closed the connection at the first request (no authentication): it probably requires TLS; add a tls block"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure(t, tc.conf, tc.addr); got != tc.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}

	t.Run("tls to a plaintext listener", func(t *testing.T) {
		k := testenv.Kafka(t, 1)
		f := failure(t, &kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile}}, k.Addr)
		if f.Kind != kafkaconn.KindTLSHandshake && f.Kind != kafkaconn.KindClosed {
			t.Fatalf("got %+v", f)
		}
		if !strings.Contains(f.Reason, "plaintext listener") {
			t.Fatalf("reason %q does not say the listener is plaintext", f.Reason)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		f := failure(t, &kafkaconn.Config{}, addr)
		if f.Kind != kafkaconn.KindUnreachable || !strings.HasPrefix(f.Reason, "broker unreachable: dial tcp "+addr+": connect: connection refused") {
			t.Fatalf("got %+v", f)
		}
	})
}

// TestTLSAndSASL: SCRAM over mTLS end to end, and an authentication failure
// over TLS names both the user and the client certificate.
func TestTLSAndSASL(t *testing.T) {
	ca := testenv.NewPKI(t, "Test CA")
	k := testenv.KafkaSecure(t, testenv.SecureKafka{TLS: &testenv.BrokerTLS{CA: ca, ClientCA: ca}, Users: users})
	cert := ca.Issue(t, "pipe", testenv.CertOpts{})
	tlsConf := &kafkaconn.TLS{Enabled: true, CAFile: ca.CAFile, CertFile: cert.CertFile, KeyFile: cert.KeyFile}
	roundTrip(t, &kafkaconn.Config{TLS: tlsConf, SASL: saslConf("SCRAM-SHA-512", "carol", "carol-secret-3")}, k.Addr, "t")
	got := failure(t, &kafkaconn.Config{TLS: tlsConf, SASL: saslConf("SCRAM-SHA-256", "bob", "bad-secret")}, k.Addr)
	want := kafkaconn.Failure{Kind: kafkaconn.KindAuthentication, Reason: "authentication failed (SASL SCRAM-SHA-256, user bob; client certificate CN=pipe,O=pipe tests): Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"}
	if got != want {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
}

// TestWarnings: settings that expose credentials are logged.
func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		conf kafkaconn.Config
		want string
	}{
		{kafkaconn.Config{SASL: saslConf("PLAIN", "a", "b")}, "SASL PLAIN without TLS sends the password in clear text"},
		{kafkaconn.Config{SASL: &kafkaconn.SASL{Mechanism: "OAUTHBEARER", Token: "t"}}, "SASL OAUTHBEARER without TLS sends the token in clear text"},
		{kafkaconn.Config{SASL: &kafkaconn.SASL{Mechanism: "AWS_MSK_IAM"}}, "Amazon MSK accepts IAM authentication on its TLS listener only"},
		{kafkaconn.Config{SASL: saslConf("SCRAM-SHA-256", "a", "b")}, ""},
		{kafkaconn.Config{TLS: &kafkaconn.TLS{Enabled: true}, SASL: saslConf("PLAIN", "a", "b")}, ""},
	} {
		var logs syncBuffer
		if _, err := tc.conf.Opts(slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		if tc.want == "" && logs.String() != "" || !strings.Contains(logs.String(), tc.want) {
			t.Errorf("%+v: logged %q, want %q", tc.conf.SASL, logs.String(), tc.want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
