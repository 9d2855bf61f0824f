package main

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

// The users of the brokers of TestConnectionSecurity, and secrets that
// no broker accepts. Every one of them is looked for in the logs and the
// admin responses of each run.
const (
	secAlicePass  = "alice-S3CRET-plain-6d2f"     // PLAIN alice
	secSamPass    = "sam-S3CRET-scram256-0b9e"    // SCRAM-SHA-256 sam
	secDavePass   = "dave-S3CRET-scram512-47ac"   // SCRAM-SHA-512 dave
	secBobPass    = "bob-S3CRET-plain-e51d"       // PLAIN bob, the other pipe's user
	secWrongPass  = "wrong-S3CRET-pass-93c0"      // nobody's password
	secMalloryPwd = "mallory-S3CRET-pass-2a7b"    // the password of a user the broker does not know
	secToken      = "token-S3CRET-oauthbearer-5e" // an OAUTHBEARER token
)

// secExpiredName is the name the broker of the expired-certificate case
// serves its expired certificate under (by SNI); other clients, which dial
// 127.0.0.1 without a server name, get a valid one.
const secExpiredName = "kafka-expired.test"

// secConn is how the pipe under test connects.
type secConn struct {
	// mech is the SASL mechanism ("" for none); user its user name.
	mech, user string
	// secret is the password (the token for OAUTHBEARER), read from a file
	// through ${file:...}.
	secret string
	// ca is the CA written to the pipe's tls.caFile; nil turns TLS off.
	ca         *testenv.PKI
	serverName string
}

// secBed is the broker and files of one case.
type secBed struct {
	kc        *testenv.Cluster
	brokerCA  *testenv.PKI
	otherCA   *testenv.PKI
	dir       string
	caFile    string // the pipe under test's tls.caFile
	secret    string // the file its secret is read from
	otherPass string // the file the other pipe's password is read from
	// expired is the certificate served for secExpiredName until renew.
	expired *testenv.Cert
	renew   func()
}

type secCase struct {
	name string
	// tls makes the broker listen with TLS only, its certificate signed by
	// the bed's brokerCA.
	tls bool
	// expired makes the broker serve an expired certificate for
	// secExpiredName; the fix renews it.
	expired bool
	conn    func(b *secBed) secConn
	// fix is what makes the connection work; nil when conn works already.
	// The files and pipes.yaml are rewritten to it and SIGHUP reloads,
	// except in the expired case, where the broker renews its certificate.
	fix func(b *secBed) secConn
	// reason is the documented reason; with prefix, the broker's message
	// follows it.
	reason func(b *secBed) string
	prefix bool
	// kind is the label of pipe_connection_failures_total.
	kind string
}

// TestConnectionSecurity runs two pipes in one `pipe run` against a broker
// with SASL users (and, in some cases, TLS): the pipe under test connects
// as each case says, the other one always correctly. Correct credentials
// deliver end to end. Wrong ones fail the pipe with the reason SECURITY.md
// documents while the other pipe runs and delivers; once the password
// file, the CA file or the user or mechanism in pipes.yaml is fixed and
// SIGHUP reloads (or the broker renews its expired certificate, which
// needs no reload), the pipe runs and delivers exactly the records
// produced meanwhile. No secret of the run is in its log or in /pipes,
// /readyz or /metrics.
func TestConnectionSecurity(t *testing.T) {
	plainAlice := func(pass string) func(*secBed) secConn {
		return func(*secBed) secConn { return secConn{mech: "PLAIN", user: "alice", secret: pass} }
	}
	as := func(mech, user, pass string) func(*secBed) secConn {
		return func(*secBed) secConn { return secConn{mech: mech, user: user, secret: pass} }
	}
	authFailed := func(mech, user string) func(*secBed) string {
		return func(*secBed) string { return "authentication failed (SASL " + mech + ", user " + user + "): " }
	}
	cases := []secCase{
		{name: "PLAIN", conn: plainAlice(secAlicePass)},
		{name: "SCRAM-SHA-256", conn: as("SCRAM-SHA-256", "sam", secSamPass)},
		{name: "SCRAM-SHA-512", conn: as("SCRAM-SHA-512", "dave", secDavePass)},
		{name: "TLS and SCRAM-SHA-512", tls: true, conn: func(b *secBed) secConn {
			return secConn{mech: "SCRAM-SHA-512", user: "dave", secret: secDavePass, ca: b.brokerCA}
		}},
		{
			name: "wrong password PLAIN", conn: plainAlice(secWrongPass), fix: plainAlice(secAlicePass),
			reason: authFailed("PLAIN", "alice"), prefix: true, kind: "authentication",
		},
		{
			name: "wrong password SCRAM-SHA-256", conn: as("SCRAM-SHA-256", "sam", secWrongPass), fix: as("SCRAM-SHA-256", "sam", secSamPass),
			reason: authFailed("SCRAM-SHA-256", "sam"), prefix: true, kind: "authentication",
		},
		{
			name: "wrong password SCRAM-SHA-512", conn: as("SCRAM-SHA-512", "dave", secWrongPass), fix: as("SCRAM-SHA-512", "dave", secDavePass),
			reason: authFailed("SCRAM-SHA-512", "dave"), prefix: true, kind: "authentication",
		},
		{
			name: "unknown user PLAIN", conn: as("PLAIN", "mallory", secMalloryPwd), fix: plainAlice(secAlicePass),
			reason: authFailed("PLAIN", "mallory"), prefix: true, kind: "authentication",
		},
		{
			name: "unknown user SCRAM-SHA-256", conn: as("SCRAM-SHA-256", "mallory", secMalloryPwd), fix: as("SCRAM-SHA-256", "sam", secSamPass),
			reason: authFailed("SCRAM-SHA-256", "mallory"), prefix: true, kind: "authentication",
		},
		{
			// A SCRAM-SHA-512 user configured as SCRAM-SHA-256: Kafka
			// answers it as a wrong password for that mechanism.
			name: "SCRAM-SHA-512 user as SCRAM-SHA-256", conn: as("SCRAM-SHA-256", "dave", secDavePass), fix: as("SCRAM-SHA-512", "dave", secDavePass),
			reason: authFailed("SCRAM-SHA-256", "dave"), prefix: true, kind: "authentication",
		},
		{
			name: "mechanism the broker does not enable",
			conn: func(*secBed) secConn { return secConn{mech: "OAUTHBEARER", secret: secToken} },
			fix:  plainAlice(secAlicePass),
			reason: func(*secBed) string {
				return "unsupported SASL mechanism: the brokers do not accept OAUTHBEARER"
			},
			kind: "sasl-mechanism",
		},
		{
			name: "untrusted CA", tls: true,
			conn: func(b *secBed) secConn {
				return secConn{mech: "PLAIN", user: "alice", secret: secAlicePass, ca: b.otherCA}
			},
			fix: func(b *secBed) secConn {
				return secConn{mech: "PLAIN", user: "alice", secret: secAlicePass, ca: b.brokerCA}
			},
			reason: func(b *secBed) string {
				return "TLS verification failed: certificate signed by unknown authority (subject CN=broker,O=pipe tests, issuer CN=Broker CA,O=pipe tests); the CA is not in tls.caFile " + b.caFile
			},
			kind: "tls-verification",
		},
		{
			name: "expired server certificate", tls: true, expired: true,
			conn: func(b *secBed) secConn {
				return secConn{mech: "PLAIN", user: "alice", secret: secAlicePass, ca: b.brokerCA, serverName: secExpiredName}
			},
			fix: func(b *secBed) secConn {
				return secConn{mech: "PLAIN", user: "alice", secret: secAlicePass, ca: b.brokerCA, serverName: secExpiredName}
			},
			reason: func(b *secBed) string {
				c := b.expired.X509
				return "TLS verification failed: certificate expired or not yet valid (subject " + c.Subject.String() + ", issuer " + c.Issuer.String() +
					", valid " + c.NotBefore.UTC().Format(time.RFC3339) + " to " + c.NotAfter.UTC().Format(time.RFC3339) + ")"
			},
			kind: "tls-verification",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runSecCase(t, c)
		})
	}
}

func runSecCase(t *testing.T, c secCase) {
	b := newSecBed(t, c)
	conn := c.conn(b)
	writeSecConn(t, b, conn)
	subject, other := newSink(t), newSink(t)
	writeConfig := func(conn secConn) string {
		return opsConfig(t, b.dir, "",
			kafkaPipe("other", b.kc.Addr, "other", "sec-other", httpTo(other, ""), secOtherLines(b, c.tls)...),
			kafkaPipe("subject", b.kc.Addr, "secure", "sec-subject", httpTo(subject, ""), secLines(b, conn)...))
	}
	file := writeConfig(conn)
	secrets := secSecrets()
	r := startOps(t, file, 0)

	var secureRecs, otherRecs []*kgo.Record
	produce := func(prefix string) {
		var rs []*kgo.Record
		for p := range int32(2) {
			rs = append(rs, testenv.Records("secure", p, 5, 8, prefix+"-s"+fmt.Sprint(p))...)
			rs = append(rs, testenv.Records("other", p, 5, 8, prefix+"-o"+fmt.Sprint(p))...)
		}
		b.kc.Produce(t, rs...)
		for _, rec := range rs {
			if rec.Topic == "secure" {
				secureRecs = append(secureRecs, rec)
			} else {
				otherRecs = append(otherRecs, rec)
			}
		}
	}
	var responses []string
	scrape := func() {
		for _, path := range []string{"/pipes", "/readyz", "/metrics"} {
			_, body := r.get(path)
			responses = append(responses, path+": "+body)
		}
	}
	produce("early")

	if c.fix == nil {
		eventually(t, 20*time.Second, "both pipes to run and deliver", func() (bool, string) {
			ps := r.pipes()
			okS, sd := deliveredExactly(subject, secureRecs)
			okO, od := deliveredExactly(other, otherRecs)
			return ps["subject"].State == pipeline.StateRunning && ps["other"].State == pipeline.StateRunning && okS && okO,
				fmt.Sprintf("subject %s %q (%s), other %s (%s)", ps["subject"].State, ps["subject"].Reason, sd, ps["other"].State, od)
		})
		if failed := r.logs.with(t, "pipe failed"); len(failed) > 0 {
			t.Errorf("a pipe failed with correct credentials: %v", failed)
		}
		for k, v := range r.metrics() {
			if strings.HasPrefix(k, "pipe_connection_failures_total{") && v != 0 {
				t.Errorf("%s = %v with correct credentials", k, v)
			}
		}
		scrape()
		r.stop()
		checkNoSecrets(t, secrets, r.logs.String(), responses)
		return
	}

	var failed pipeline.PipeReport
	eventually(t, 20*time.Second, "the pipe to fail and the other to deliver", func() (bool, string) {
		ps := r.pipes()
		failed = ps["subject"]
		ok, od := deliveredExactly(other, otherRecs)
		return failed.State == pipeline.StateFailed && ps["other"].State == pipeline.StateRunning && ok,
			fmt.Sprintf("subject %s %q, other %s (%s)", failed.State, failed.Reason, ps["other"].State, od)
	})
	want := c.reason(b)
	t.Logf("reason: %s", failed.Reason)
	if c.prefix {
		if !strings.HasPrefix(failed.Reason, want) || len(failed.Reason) == len(want) {
			t.Errorf("reason %q, want %q followed by the broker's message", failed.Reason, want)
		}
	} else if failed.Reason != want {
		t.Errorf("reason %q\nwant   %q", failed.Reason, want)
	}
	// A SIGHUP of a parallel case restarts a failed pipe (starting, then
	// failed again), hence the wait.
	eventually(t, 10*time.Second, "/readyz to name the failure", func() (bool, string) {
		code, body := r.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "pipe subject: failed: "+failed.Reason) && !strings.Contains(body, "pipe other"),
			fmt.Sprintf("%d %s", code, body)
	})
	if v := r.metrics()[series("pipe_connection_failures_total", "pipe", "subject", "kind", c.kind)]; v < 1 {
		t.Errorf("pipe_connection_failures_total{kind=%q} = %v while failed", c.kind, v)
	}
	for _, m := range r.logs.with(t, "pipe failed") {
		if m["pipe"] != "subject" || m["level"] != "ERROR" || m["reason"] != failed.Reason {
			t.Errorf("failure line %v", m)
		}
	}
	otherMember := r.pipes()["other"].Group.MemberID

	// Records produced while failed: the other pipe delivers its own, the
	// failed one nothing.
	produce("late")
	eventually(t, 20*time.Second, "the other pipe to deliver while this one is failed", func() (bool, string) {
		ok, od := deliveredExactly(other, otherRecs)
		return ok, od
	})
	if st := r.pipes()["subject"].State; st == pipeline.StateRunning {
		t.Fatalf("the pipe runs before its connection is fixed")
	}
	if n, _ := subject.count(); n != 0 {
		t.Fatalf("%d records delivered by a pipe that cannot connect", n)
	}
	scrape()

	fixed := c.fix(b)
	if b.renew != nil {
		// The broker renews its certificate: nothing changes on the
		// pipe's side, whose client keeps retrying and connects (a
		// parallel case's SIGHUP may restart it meanwhile, which changes
		// nothing either).
		b.renew()
	} else {
		writeSecConn(t, b, fixed)
		writeConfig(fixed)
		hup(t)
	}
	eventually(t, 30*time.Second, "the pipe to run and deliver every record", func() (bool, string) {
		p := r.pipes()["subject"]
		ok, sd := deliveredExactly(subject, secureRecs)
		return p.State == pipeline.StateRunning && ok, fmt.Sprintf("subject %s %q, %s", p.State, p.Reason, sd)
	})
	restarted := false
	for _, m := range r.logs.with(t, "config reloaded") {
		if changes, _ := m["changes"].(string); strings.Contains(changes, "restarted=subject") {
			restarted = true
			if strings.Contains(changes, "other") && !strings.Contains(changes, "unchanged=other") {
				t.Errorf("reload changes %q: the other pipe was touched", changes)
			}
		}
	}
	if !restarted && b.renew == nil {
		t.Errorf("no reload restarted the pipe")
	}
	ps := r.pipes()
	if ps["other"].State != pipeline.StateRunning || ps["other"].Group.MemberID != otherMember {
		t.Errorf("the other pipe: %s, member %s (was %s)", ps["other"].State, ps["other"].Group.MemberID, otherMember)
	}
	starts := 0
	for _, m := range r.logs.with(t, "pipe starting") {
		if m["pipe"] == "other" {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("the other pipe started %d times", starts)
	}
	if ok, od := deliveredExactly(other, otherRecs); !ok {
		t.Errorf("other pipe: %s", od)
	}
	if code, body := r.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the fix: %d %s", code, body)
	}
	scrape()
	r.stop()
	checkNoSecrets(t, secrets, r.logs.String(), responses)
}

// newSecBed starts the broker of a case and writes its files.
func newSecBed(t *testing.T, c secCase) *secBed {
	t.Helper()
	b := &secBed{dir: t.TempDir(), brokerCA: testenv.NewPKI(t, "Broker CA"), otherCA: testenv.NewPKI(t, "Other CA")}
	b.caFile = filepath.Join(b.dir, "subject-ca.pem")
	b.secret = filepath.Join(b.dir, "subject.secret")
	b.otherPass = filepath.Join(b.dir, "other.pass")
	replaceFile(t, b.otherPass, []byte(secBobPass+"\n"))
	if c.expired {
		b.kc, b.expired, b.renew = expiredBroker(t, b.brokerCA)
		return b
	}
	s := testenv.SecureKafka{Partitions: 2, Topics: []string{"secure", "other"}, Users: []testenv.SASLUser{
		{Mechanism: "PLAIN", User: "alice", Pass: secAlicePass},
		{Mechanism: "SCRAM-SHA-256", User: "sam", Pass: secSamPass},
		{Mechanism: "SCRAM-SHA-512", User: "dave", Pass: secDavePass},
		{Mechanism: "PLAIN", User: "bob", Pass: secBobPass},
	}}
	if c.tls {
		s.TLS = &testenv.BrokerTLS{CA: b.brokerCA}
	}
	b.kc = testenv.KafkaSecure(t, s).Cluster
	return b
}

// expiredBroker starts a TLS and SASL PLAIN broker (users alice and bob)
// whose certificate for secExpiredName expired a day ago; renew makes it
// serve a valid one. Connections without that server name get a valid
// certificate for 127.0.0.1.
func expiredBroker(t *testing.T, ca *testenv.PKI) (*testenv.Cluster, *testenv.Cert, func()) {
	t.Helper()
	valid := ca.Issue(t, "broker", testenv.CertOpts{})
	expired := ca.Issue(t, "broker", testenv.CertOpts{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour), Hosts: []string{secExpiredName}})
	renewed := ca.Issue(t, "broker", testenv.CertOpts{Hosts: []string{secExpiredName}})
	var named atomic.Pointer[tls.Certificate]
	named.Store(&expired.TLS)
	server := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == secExpiredName {
			return named.Load(), nil
		}
		return &valid.TLS, nil
	}}
	fake, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(2, "secure", "other"),
		kfake.TLS(server),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", testenv.AdminUser, testenv.AdminPass),
		kfake.User("PLAIN", "alice", secAlicePass),
		kfake.User("PLAIN", "bob", secBobPass),
	)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(fake.Close)
	addr := fake.ListenAddrs()[0]
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(plain.Auth{User: testenv.AdminUser, Pass: testenv.AdminPass}.AsMechanism()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatalf("producer client: %v", err)
	}
	t.Cleanup(cl.Close)
	return &testenv.Cluster{Addr: addr, Client: cl, Admin: kadm.NewClient(cl)}, expired, func() { named.Store(&renewed.TLS) }
}

// writeSecConn writes the secret file and the CA file of conn.
func writeSecConn(t *testing.T, b *secBed, conn secConn) {
	t.Helper()
	replaceFile(t, b.secret, []byte(conn.secret+"\n"))
	if conn.ca != nil {
		data, err := os.ReadFile(conn.ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		replaceFile(t, b.caFile, data)
	}
}

// secLines are the kafka lines of the pipe under test (kafkaPipe's extra).
func secLines(b *secBed, conn secConn) []string {
	var out []string
	switch conn.mech {
	case "":
	case "OAUTHBEARER":
		out = append(out, fmt.Sprintf(`kafka.sasl: {mechanism: OAUTHBEARER, token: "${file:%s}"}`, b.secret))
	default:
		out = append(out, fmt.Sprintf(`kafka.sasl: {mechanism: %s, username: %s, password: "${file:%s}"}`, conn.mech, conn.user, b.secret))
	}
	if conn.ca != nil {
		tlsLine := "kafka.tls: {caFile: " + b.caFile
		if conn.serverName != "" {
			tlsLine += ", serverName: " + conn.serverName
		}
		out = append(out, tlsLine+"}")
	}
	return out
}

// secOtherLines connect the other pipe as bob, trusting the broker's CA.
func secOtherLines(b *secBed, tlsOn bool) []string {
	out := []string{fmt.Sprintf(`kafka.sasl: {mechanism: PLAIN, username: bob, password: "${file:%s}"}`, b.otherPass)}
	if tlsOn {
		out = append(out, "kafka.tls: {caFile: "+b.brokerCA.CAFile+"}")
	}
	return out
}

// replaceFile writes data to path through a rename, so that a reload
// (which may come from another test's SIGHUP) never reads half a file.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// secSecrets are the secrets of TestConnectionSecurity, raw and base64.
func secSecrets() []string {
	raw := []string{secAlicePass, secSamPass, secDavePass, secBobPass, secWrongPass, secMalloryPwd, secToken, testenv.AdminPass}
	out := append([]string(nil), raw...)
	for _, s := range raw {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	return out
}

func checkNoSecrets(t *testing.T, secrets []string, logs string, responses []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("secret %.6s... is in the log", s)
		}
		for _, body := range responses {
			if strings.Contains(body, s) {
				path, _, _ := strings.Cut(body, ":")
				t.Errorf("secret %.6s... is in the answer of %s", s, path)
			}
		}
	}
}

// deliveredExactly reports whether s received exactly recs (by topic,
// partition and offset, each with its value; duplicates allowed), and
// what differs.
func deliveredExactly(s *sink, recs []*kgo.Record) (bool, string) {
	want := map[string]string{}
	for _, r := range recs {
		want[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = string(r.Value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var missingKeys, extra, wrong []string
	for k, v := range want {
		got, ok := s.values[k]
		switch {
		case !ok:
			missingKeys = append(missingKeys, k)
		case got != v:
			wrong = append(wrong, k)
		}
	}
	for k := range s.got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missingKeys)
	sort.Strings(extra)
	return len(missingKeys)+len(extra)+len(wrong) == 0,
		fmt.Sprintf("%d of %d delivered; missing %v, unexpected %v, wrong values %v", len(want)-len(missingKeys), len(want), clipList(missingKeys), extra, wrong)
}

func clipList(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], fmt.Sprintf("... %d more", len(s)-5))
	}
	return s
}
