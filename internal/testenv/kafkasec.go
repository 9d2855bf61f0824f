package testenv

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// PKI is a certificate authority made for a test: its certificate and key
// in memory and its certificate in a PEM file.
type PKI struct {
	Cert *x509.Certificate
	// CAFile is the CA certificate as PEM.
	CAFile string
	// Pool holds the CA certificate.
	Pool *x509.CertPool

	key *ecdsa.PrivateKey
	dir string
}

// Cert is a certificate issued by a PKI, with its key, in memory and in
// PEM files (the key unencrypted, PKCS#8).
type Cert struct {
	X509     *x509.Certificate
	TLS      tls.Certificate
	CertFile string
	KeyFile  string
	// KeyPEM is the PKCS#8 PEM of the key.
	KeyPEM []byte
}

// CertOpts shapes an issued certificate. The zero value is valid from an
// hour ago for a day, for 127.0.0.1, ::1 and localhost, usable by servers
// and clients.
type CertOpts struct {
	NotBefore, NotAfter time.Time
	// Hosts are the DNS names and IP addresses it is valid for.
	Hosts []string
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(time.Now().UnixNano() + serial.n)
}

// NewPKI makes a CA whose subject is CN=<name>, with files in a temporary
// directory removed when the test ends.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"pipe tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	p := &PKI{Cert: cert, key: key, dir: dir, Pool: x509.NewCertPool()}
	p.Pool.AddCert(cert)
	p.CAFile = filepath.Join(dir, "ca-"+safeName(name)+".pem")
	writeFile(t, p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

// Issue makes a certificate with subject CN=<cn> signed by the CA.
func (p *PKI) Issue(t testing.TB, cn string, o CertOpts) *Cert {
	t.Helper()
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if o.Hosts == nil {
		o.Hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"pipe tests"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pk8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cert{
		X509:   leaf,
		TLS:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}),
	}
	base := filepath.Join(p.dir, safeName(cn)+"-"+leaf.SerialNumber.String())
	c.CertFile, c.KeyFile = base+".crt", base+".key"
	writeFile(t, c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, c.KeyFile, c.KeyPEM)
	return c
}

// EncryptedKeyFile writes the certificate's key as encrypted PKCS#8 (PBES2:
// PBKDF2 with HMAC-SHA-256, AES-256-CBC, as `openssl pkcs8 -topk8` writes
// it) and returns the file's path.
func (c *Cert) EncryptedKeyFile(t testing.TB, password string) string {
	t.Helper()
	plain := pemBlock(t, c.KeyPEM)
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	const iter = 2048
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	data := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)
	type algo struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue `asn1:"optional"`
	}
	raw := func(v any) asn1.RawValue {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{FullBytes: b}
	}
	kdf := algo{OID: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}, Params: raw(struct {
		Salt []byte
		Iter int
		PRF  algo
	}{salt, iter, algo{OID: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, Params: asn1.NullRawValue}})}
	enc := algo{OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}, Params: raw(iv)}
	der, err := asn1.Marshal(struct {
		Alg  algo
		Data []byte
	}{algo{OID: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, Params: raw(struct{ KDF, Enc algo }{kdf, enc})}, data})
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSuffix(c.KeyFile, ".key") + "-encrypted.key"
	writeFile(t, path, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}))
	return path
}

func pemBlock(t testing.TB, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// SASLUser is a user of a SecureKafka broker: Mechanism is PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512.
type SASLUser struct {
	Mechanism, User, Pass string
}

// BrokerTLS is the TLS side of a SecureKafka broker.
type BrokerTLS struct {
	// Cert is the broker's certificate. Default: issued by CA for
	// 127.0.0.1, valid now.
	Cert *Cert
	// CA signs the default Cert; required when Cert is nil.
	CA *PKI
	// ClientCA, when set, makes the broker require a client certificate
	// signed by it (mTLS).
	ClientCA *PKI
}

// SecureKafka says how to start a broker with TLS and SASL.
type SecureKafka struct {
	// TLS, when set, makes the only listener a TLS one.
	TLS *BrokerTLS
	// Users, when set, turn SASL on. The broker answers a wrong password
	// or an unknown user with SASL_AUTHENTICATION_FAILED and Kafka's
	// message, as Kafka does (kfake on its own closes the connection). A
	// PLAIN superuser AdminUser/AdminPass is added for Cluster.Client.
	Users []SASLUser
	// Partitions of the seeded topics and of topics created on first use.
	Partitions int32
	Topics     []string
	// NoAutoCreate turns off creating topics on first use.
	NoAutoCreate bool
}

// The superuser of a SecureKafka broker with SASL, used by Cluster.Client.
const (
	AdminUser = "admin"
	AdminPass = "admin-secret"
)

// scramIterations is what kfake announces in its server-first message.
const scramIterations = 4096

// SecureCluster is a Cluster with TLS and/or SASL. Its Client and Admin
// trust the broker's CA, present a client certificate when the broker asks
// for one, and authenticate as the superuser.
type SecureCluster struct {
	*Cluster
	// AdminOpts are the connection options of Client (TLS, SASL), without
	// the seed broker.
	AdminOpts []kgo.Opt
}

// KafkaSecure starts a one-broker kfake cluster with TLS and/or SASL.
func KafkaSecure(t testing.TB, s SecureKafka) *SecureCluster {
	t.Helper()
	if s.Partitions == 0 {
		s.Partitions = 1
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(int(s.Partitions)),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxMessageBytes)}),
	}
	if !s.NoAutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if len(s.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(s.Partitions, s.Topics...))
	}
	var clientTLS *tls.Config
	if s.TLS != nil {
		cert := s.TLS.Cert
		if cert == nil {
			if s.TLS.CA == nil {
				t.Fatal("testenv: BrokerTLS needs Cert or CA")
			}
			cert = s.TLS.CA.Issue(t, "broker", CertOpts{})
		}
		server := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
		if s.TLS.ClientCA != nil {
			server.ClientAuth = tls.RequireAndVerifyClientCert
			server.ClientCAs = s.TLS.ClientCA.Pool
		}
		opts = append(opts, kfake.TLS(server))
		clientTLS = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		if s.TLS.CA != nil {
			clientTLS.RootCAs = s.TLS.CA.Pool
		} else {
			clientTLS.InsecureSkipVerify = true // a broker certificate of the test's own making
		}
		if s.TLS.ClientCA != nil {
			admin := s.TLS.ClientCA.Issue(t, "admin", CertOpts{})
			clientTLS.Certificates = []tls.Certificate{admin.TLS}
		}
	}
	var auth *saslAuth
	if len(s.Users) > 0 {
		auth = &saslAuth{users: map[string]map[string]string{}, salts: map[string][]byte{}, first: map[string]string{}}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("PLAIN", AdminUser, AdminPass))
		auth.add("PLAIN", AdminUser, AdminPass)
		for _, u := range s.Users {
			switch u.Mechanism {
			case "PLAIN":
				opts = append(opts, kfake.User("PLAIN", u.User, u.Pass))
			case "SCRAM-SHA-256", "SCRAM-SHA-512":
				// Added below with a salt the checker knows.
			default:
				t.Fatalf("testenv: unknown SASL mechanism %q", u.Mechanism)
			}
			auth.add(u.Mechanism, u.User, u.Pass)
		}
	}
	fake, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(fake.Close)
	if auth != nil {
		fake.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			return auth.check(req.(*kmsg.SASLAuthenticateRequest))
		})
	}
	addr := fake.ListenAddrs()[0]
	var conn []kgo.Opt
	if clientTLS != nil {
		conn = append(conn, kgo.DialTLSConfig(clientTLS))
	}
	if auth != nil {
		conn = append(conn, kgo.SASL(plain.Auth{User: AdminUser, Pass: AdminPass}.AsMechanism()))
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(MaxMessageBytes),
		kgo.MaxBufferedBytes(256 << 20),
	}, conn...)...)
	if err != nil {
		t.Fatalf("producer client: %v", err)
	}
	t.Cleanup(cl.Close)
	c := &SecureCluster{Cluster: &Cluster{Addr: addr, Client: cl, Admin: kadm.NewClient(cl), fake: fake}, AdminOpts: conn}
	if auth != nil {
		auth.upsertSCRAM(t, c.Admin)
	}
	return c
}

// Fake returns the kfake cluster, for ControlKey and friends.
func (c *SecureCluster) Fake() *kfake.Cluster { return c.fake }

// NewClient returns another client of the cluster connected as the
// superuser, with the options given, closed when the test ends.
func (c *SecureCluster) NewClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return c.Cluster.NewClient(t, append(append([]kgo.Opt{}, c.AdminOpts...), opts...)...)
}

// ReadAll reads every record of the topics, from the start up to the high
// watermarks taken when it is called, connected as the superuser.
func (c *SecureCluster) ReadAll(t testing.TB, topics ...string) []*kgo.Record {
	t.Helper()
	ends := c.HighWatermarks(t, topics...)
	cl := c.NewClient(t,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(MaxMessageBytes*2),
		kgo.FetchMaxPartitionBytes(MaxMessageBytes),
	)
	return readUntil(t, cl, topics, ends)
}

// readUntil polls cl until it has read every record below ends.
func readUntil(t testing.TB, cl *kgo.Client, topics []string, ends map[string]map[int32]int64) []*kgo.Record {
	t.Helper()
	want := map[string]map[int32]int64{}
	for topic, ps := range ends {
		for p, end := range ps {
			if end > 0 {
				if want[topic] == nil {
					want[topic] = map[int32]int64{}
				}
				want[topic][p] = end
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %v: got %d records, still waiting for %v", topics, len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("reading %s-%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset == end-1 {
				delete(want[r.Topic], r.Partition)
				if len(want[r.Topic]) == 0 {
					delete(want, r.Topic)
				}
			}
		})
	}
	return out
}

// saslAuth checks SASL credentials in front of kfake, so that a wrong
// password is answered with SASL_AUTHENTICATION_FAILED as Kafka does.
type saslAuth struct {
	mu    sync.Mutex
	users map[string]map[string]string // mechanism -> user -> password
	salts map[string][]byte            // "<mechanism>/<user>" -> salt
	first map[string]string            // SCRAM client nonce -> client-first-message-bare
}

func (a *saslAuth) add(mech, user, pass string) {
	if a.users[mech] == nil {
		a.users[mech] = map[string]string{}
	}
	a.users[mech][user] = pass
	if strings.HasPrefix(mech, "SCRAM") {
		salt := make([]byte, 16)
		rand.Read(salt)
		a.salts[mech+"/"+user] = salt
	}
}

func scramHash(mech string) func() hash.Hash {
	if mech == "SCRAM-SHA-512" {
		return sha512.New
	}
	return sha256.New
}

// upsertSCRAM gives kfake the SCRAM users with the salts the checker
// knows. A user of one SCRAM mechanism is given to kfake under both, so
// that kfake never closes the connection on its own: the checker answers a
// client that uses the other mechanism with SASL_AUTHENTICATION_FAILED.
func (a *saslAuth) upsertSCRAM(t testing.TB, adm *kadm.Client) {
	t.Helper()
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		m := kadm.ScramSha256
		if mech == "SCRAM-SHA-512" {
			m = kadm.ScramSha512
		}
		users := map[string]string{}
		for _, mm := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			for user, pass := range a.users[mm] {
				if _, own := a.users[mech][user]; !own || mm == mech {
					users[user] = pass
				}
			}
		}
		for user, pass := range users {
			a.mu.Lock()
			salt := a.salts[mech+"/"+user]
			if salt == nil {
				salt = make([]byte, 16)
				rand.Read(salt)
				a.salts[mech+"/"+user] = salt
			}
			a.mu.Unlock()
			h := scramHash(mech)
			salted, err := pbkdf2.Key(h, pass, salt, scramIterations, h().Size())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: m, Iterations: scramIterations, Salt: salt, SaltedPassword: salted}})
			cancel()
			if err == nil {
				err = res[user].Err
			}
			if err != nil {
				t.Fatalf("adding SCRAM user %s (%s): %v", user, mech, err)
			}
		}
	}
}

func failed(req *kmsg.SASLAuthenticateRequest, mech string) (kmsg.Response, error, bool) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
	resp.ErrorMessage = &msg
	return resp, nil, true
}

// check answers a SASLAuthenticate request that carries wrong credentials;
// it leaves the others to kfake (handled false).
func (a *saslAuth) check(req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	msg := req.SASLAuthBytes
	switch {
	case bytes.HasPrefix(msg, []byte("n,")): // SCRAM client-first
		bare := string(msg[bytes.IndexByte(msg[2:], ',')+3:])
		var user, nonce string
		for _, f := range strings.Split(bare, ",") {
			switch {
			case strings.HasPrefix(f, "n="):
				user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(f[2:])
			case strings.HasPrefix(f, "r="):
				nonce = f[2:]
			}
		}
		_, in256 := a.users["SCRAM-SHA-256"][user]
		_, in512 := a.users["SCRAM-SHA-512"][user]
		if !in256 && !in512 {
			return failed(req, "SCRAM")
		}
		a.first[nonce] = bare
		return nil, nil, false
	case bytes.HasPrefix(msg, []byte("c=")): // SCRAM client-final
		s := string(msg)
		i := strings.LastIndex(s, ",p=")
		if i < 0 {
			return failed(req, "SCRAM")
		}
		withoutProof, proof64 := s[:i], s[i+3:]
		proof, err := base64.StdEncoding.DecodeString(proof64)
		if err != nil {
			return failed(req, "SCRAM")
		}
		var full string
		for _, f := range strings.Split(withoutProof, ",") {
			if strings.HasPrefix(f, "r=") {
				full = f[2:]
			}
		}
		var bare, clientNonce string
		for n, b := range a.first {
			if strings.HasPrefix(full, n) {
				bare, clientNonce = b, n
				break
			}
		}
		delete(a.first, clientNonce)
		mech := "SCRAM-SHA-256"
		if len(proof) == sha512.Size {
			mech = "SCRAM-SHA-512"
		}
		var user string
		for _, f := range strings.Split(bare, ",") {
			if strings.HasPrefix(f, "n=") {
				user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(f[2:])
			}
		}
		pass, ok := a.users[mech][user]
		if bare == "" || !ok {
			return failed(req, mech)
		}
		h := scramHash(mech)
		salt := a.salts[mech+"/"+user]
		salted, _ := pbkdf2.Key(h, pass, salt, scramIterations, h().Size())
		serverFirst := fmt.Sprintf("r=%s,s=%s,i=%d", full, base64.StdEncoding.EncodeToString(salt), scramIterations)
		authMsg := bare + "," + serverFirst + "," + withoutProof
		mac := hmac.New(h, salted)
		mac.Write([]byte("Client Key"))
		clientKey := mac.Sum(nil)
		sh := h()
		sh.Write(clientKey)
		stored := sh.Sum(nil)
		mac = hmac.New(h, stored)
		mac.Write([]byte(authMsg))
		sig := mac.Sum(nil)
		want := make([]byte, len(clientKey))
		for i := range want {
			want[i] = clientKey[i] ^ sig[i]
		}
		if !hmac.Equal(want, proof) {
			return failed(req, mech)
		}
		return nil, nil, false
	default: // PLAIN: authzid \0 user \0 password
		parts := strings.SplitN(string(msg), "\x00", 3)
		if len(parts) != 3 {
			return failed(req, "PLAIN")
		}
		if pass, ok := a.users["PLAIN"][parts[1]]; !ok || pass != parts[2] {
			return failed(req, "PLAIN")
		}
		return nil, nil, false
	}
}

// SASLExchange is what a broker started by KafkaSASLExchange saw of one
// SASL authentication.
type SASLExchange struct {
	Mechanism string
	// Auth is the client's first (and, for OAUTHBEARER and AWS_MSK_IAM,
	// only) SaslAuthenticate message.
	Auth []byte
}

// KafkaSASLExchange starts a plaintext broker that accepts the SASL
// mechanisms kfake does not implement (OAUTHBEARER, AWS_MSK_IAM): check is
// called with each client's authentication message and answers it, as the
// server's reply bytes when ok, or as SASL_AUTHENTICATION_FAILED with
// errMsg. A client that skips SASL is served too: the broker records the
// exchange but does not enforce it.
func KafkaSASLExchange(t testing.TB, mechanism string, check func(auth []byte) (reply []byte, errMsg string)) (*Cluster, func() []SASLExchange) {
	t.Helper()
	c := Kafka(t, 1)
	var mu sync.Mutex
	var seen []SASLExchange
	c.fake.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.fake.KeepControl()
		r := req.(*kmsg.SASLHandshakeRequest)
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		if r.Mechanism != mechanism {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			resp.SupportedMechanisms = []string{mechanism}
		}
		return resp, nil, true
	})
	c.fake.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.fake.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		mu.Lock()
		seen = append(seen, SASLExchange{Mechanism: mechanism, Auth: bytes.Clone(r.SASLAuthBytes)})
		mu.Unlock()
		reply, errMsg := check(r.SASLAuthBytes)
		if errMsg != "" {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			resp.ErrorMessage = &errMsg
			return resp, nil, true
		}
		resp.SASLAuthBytes = reply
		return resp, nil, true
	})
	return c, func() []SASLExchange {
		mu.Lock()
		defer mu.Unlock()
		return append([]SASLExchange(nil), seen...)
	}
}
