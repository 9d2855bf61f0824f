package http_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ca is a certificate authority made for one test.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate for the DNS names and IPs in hosts, for
// servers or (client true) clients.
func (c *ca) issue(t *testing.T, cn string, client bool, hosts ...string) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsServer starts an HTTPS endpoint with cert; clientCAs, when set, makes
// it require a client certificate they signed. It records the client
// certificate's common name.
func tlsServer(t *testing.T, cert tls.Certificate, clientCAs *ca) *tlsEndpoint {
	t.Helper()
	e := &tlsEndpoint{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			e.mu.Lock()
			e.client = r.TLS.PeerCertificates[0].Subject.CommonName
			e.mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCAs.cert)
		srv.TLS.ClientCAs = pool
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.Server = srv
	return e
}

type tlsEndpoint struct {
	*httptest.Server
	mu     sync.Mutex
	client string
}

func (e *tlsEndpoint) clientName() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.client
}

func TestTLSCustomCA(t *testing.T) {
	root := newCA(t, "test root")
	cert, _, _ := root.issue(t, "api", false, "127.0.0.1")
	srv := tlsServer(t, cert, nil)
	caFile := writeFile(t, "ca.pem", root.pem)

	err := deliver(t, build(t, "url: "+srv.URL+"/in"), batchOf(jrec(0, 0, "k", "{}")))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without caFile: %v, want a certificate error", err)
	}
	if err := deliver(t, build(t, "url: "+srv.URL+"/in\ntls: {caFile: "+caFile+"}"), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Errorf("with caFile: %v", err)
	}
}

func TestTLSServerName(t *testing.T) {
	root := newCA(t, "test root")
	cert, _, _ := root.issue(t, "api", false, "api.internal")
	srv := tlsServer(t, cert, nil)
	caFile := writeFile(t, "ca.pem", root.pem)

	err := deliver(t, build(t, "url: "+srv.URL+"\ntls: {caFile: "+caFile+"}"), batchOf(jrec(0, 0, "k", "{}")))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate for another name: %v, want a certificate error", err)
	}
	if err := deliver(t, build(t, "url: "+srv.URL+"\ntls: {caFile: "+caFile+", serverName: api.internal}"), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Errorf("with serverName: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	root := newCA(t, "server root")
	clients := newCA(t, "client root")
	cert, _, _ := root.issue(t, "api", false, "127.0.0.1")
	srv := tlsServer(t, cert, clients)
	caFile := writeFile(t, "ca.pem", root.pem)
	_, clientCert, clientKey := clients.issue(t, "pipe-orders", true)
	certFile, keyFile := writeFile(t, "client.pem", clientCert), writeFile(t, "client.key", clientKey)

	err := deliver(t, build(t, "url: "+srv.URL+"\ntls: {caFile: "+caFile+"}"), batchOf(jrec(0, 0, "k", "{}")))
	if err == nil {
		t.Error("a server that requires a client certificate accepted none")
	}
	block := fmt.Sprintf("url: %s\ntls: {caFile: %s, certFile: %s, keyFile: %s}", srv.URL, caFile, certFile, keyFile)
	if err := deliver(t, build(t, block), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
	if got := srv.clientName(); got != "pipe-orders" {
		t.Errorf("the server saw client %q, want pipe-orders", got)
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	root := newCA(t, "unknown root")
	cert, _, _ := root.issue(t, "api", false, "127.0.0.1")
	srv := tlsServer(t, cert, nil)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	tg := buildLogged(t, "url: "+srv.URL+"\ntls: {insecureSkipVerify: true}", logger)
	if err := deliver(t, tg, batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Errorf("insecureSkipVerify: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var line struct{ Level, Msg string }
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Level != "WARN" || !strings.Contains(line.Msg, "insecureSkipVerify") {
		t.Errorf("log %q, want one WARN line about insecureSkipVerify", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serverName applies to the API, not to an OAuth2 token endpoint on
// another host; the CA applies to both.
func TestTLSWithOAuth2(t *testing.T) {
	root := newCA(t, "root")
	apiCert, _, _ := root.issue(t, "api", false, "api.internal")
	tokCert, _, _ := root.issue(t, "auth", false, "127.0.0.1")
	api := tlsServer(t, apiCert, nil)
	tok := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"t1","expires_in":3600}`)
	}))
	tok.TLS = &tls.Config{Certificates: []tls.Certificate{tokCert}}
	tok.StartTLS()
	t.Cleanup(tok.Close)
	caFile := writeFile(t, "ca.pem", root.pem)
	block := fmt.Sprintf("url: %s\ntls: {caFile: %s, serverName: api.internal}\nauth: {oauth2: {tokenUrl: %s/token, clientId: c, clientSecret: s}}", api.URL, caFile, tok.URL)
	if err := deliver(t, build(t, block), batchOf(jrec(0, 0, "k", "{}"))); err != nil {
		t.Error(err)
	}
}

func TestTLSBadFiles(t *testing.T) {
	root := newCA(t, "root")
	_, certPEM, keyPEM := root.issue(t, "c", true)
	_, _, otherKey := root.issue(t, "d", true)
	garbage := writeFile(t, "garbage.pem", []byte("not a certificate\n"))
	cert, key, other := writeFile(t, "c.pem", certPEM), writeFile(t, "c.key", keyPEM), writeFile(t, "d.key", otherKey)
	for _, tc := range []struct{ block, want string }{
		{"tls: {caFile: " + garbage + "}", "tls.caFile: holds no PEM certificate"},
		{"tls: {certFile: " + garbage + ", keyFile: " + key + "}", "tls.certFile: not a usable certificate and key"},
		{"tls: {certFile: " + cert + ", keyFile: " + other + "}", "tls.certFile: not a usable certificate and key"},
		{"tls: {certFile: " + cert + ", keyFile: /nonexistent/k.pem}", "tls.keyFile: cannot read the file: no such file or directory"},
	} {
		got := loadErr(t, "url: https://h/\n"+tc.block)
		if !strings.Contains(got, tc.want) {
			t.Errorf("problems:\n%s\nwant %q", got, tc.want)
		}
		if strings.Contains(got, "PRIVATE KEY") || strings.Contains(got, string(keyPEM[30:60])) {
			t.Errorf("problems show key material:\n%s", got)
		}
	}
}

// A template that looks like JSON but is not is worth a warning: it is sent
// as text, unescaped.
func TestNotQuiteJSONTemplateWarns(t *testing.T) {
	for _, tc := range []struct {
		template string
		warn     bool
	}{
		{`{"id": <$.value.id>,}`, true},
		{`[<$.value.id> <$.key>]`, true},
		{`{"id": <$.value.id>}`, false},
		{`id=<$.value.id>`, false},
	} {
		var logs bytes.Buffer
		var mu sync.Mutex
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
		buildLogged(t, "url: http://127.0.0.1:1/\ninputTemplate: '"+tc.template+"'", logger)
		mu.Lock()
		got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "not valid JSON")
		mu.Unlock()
		if got != tc.warn {
			t.Errorf("template %s: warned %v, want %v (log %q)", tc.template, got, tc.warn, logs.String())
		}
	}
}
