package kafkaconn

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
)

const testPassword = pipeline.Secret("test-password")

// TestKeyFormats loads every key format in testdata, written by OpenSSL,
// with its certificate: the formats read give a key that matches, the
// others a message that says what to do.
func TestKeyFormats(t *testing.T) {
	for _, tc := range []struct {
		key, cert string
		password  pipeline.Secret
		wantErr   string // "" = loads
	}{
		{"rsa-pkcs1.key", "rsa.crt", "", ""},
		{"rsa-pkcs8.key", "rsa.crt", "", ""},
		{"ec-sec1.key", "ec.crt", "", ""},
		{"rsa-aes256-sha256.key", "rsa.crt", testPassword, ""},
		{"rsa-aes128-sha1.key", "rsa.crt", testPassword, ""},
		{"ec-aes192-sha512.key", "ec.crt", testPassword, ""},
		{"ec-aes256-sha384.key", "ec.crt", testPassword, ""},
		{"ec-aes256-sha224.key", "ec.crt", testPassword, ""},
		{"ec-des3-sha1.key", "ec.crt", testPassword, ""},
		{"rsa-aes256-sha256.key", "rsa.crt", "wrong-password", "does not decrypt with keyPassword (wrong password?)"},
		{"ec-des3-sha1.key", "ec.crt", "wrong-password", "does not decrypt with keyPassword (wrong password?)"},
		{"rsa-aes256-sha256.key", "rsa.crt", "", "the key is encrypted (BEGIN ENCRYPTED PRIVATE KEY); set keyPassword"},
		{"rsa-pkcs8.key", "rsa.crt", testPassword, "keyPassword is set but the key is not encrypted"},
		{"rsa-pbes1.key", "rsa.crt", testPassword, "is not PBES2; re-encrypt the key with: openssl pkcs8 -topk8 -v2 aes-256-cbc"},
		{"rsa-scrypt.key", "rsa.crt", testPassword, "is not PBKDF2 (scrypt is not supported)"},
		{"rsa-legacy.key", "rsa.crt", testPassword, "legacy OpenSSL format (Proc-Type header)"},
		{"ec-sec1.key", "rsa.crt", "", "the private key does not match the certificate"},
		{"rsa-aes256-sha256.key", "ec.crt", testPassword, "the private key does not match the certificate"},
		{"rsa.crt", "rsa.crt", "", "holds no PEM private key"},
	} {
		t.Run(tc.key+"+"+tc.cert+"/"+string(tc.password), func(t *testing.T) {
			kp, err := loadKeyPair(filepath.Join("testdata", tc.cert), filepath.Join("testdata", tc.key), tc.password, time.Now())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("loading: %v", err)
				}
				switch kp.PrivateKey.(type) {
				case *rsa.PrivateKey, *ecdsa.PrivateKey:
				default:
					t.Fatalf("key type %T", kp.PrivateKey)
				}
				if kp.Leaf == nil || len(kp.Certificate) != 1 {
					t.Fatalf("certificate chain: %d certificates, leaf %v", len(kp.Certificate), kp.Leaf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), string(tc.password)) && tc.password != "" {
				t.Fatalf("the error holds the password: %v", err)
			}
		})
	}
}

// TestDecryptPKCS8Garbage: a broken or hostile ENCRYPTED PRIVATE KEY
// block is an error, never a panic or a long stall.
func TestDecryptPKCS8Garbage(t *testing.T) {
	data, err := os.ReadFile("testdata/rsa-aes256-sha256.key")
	if err != nil {
		t.Fatal(err)
	}
	der := pemBytes(t, data)
	for i := 0; i < len(der); i += 7 {
		c := append([]byte(nil), der...)
		c[i] ^= 0x5a
		decryptPKCS8(c, []byte(testPassword)) // must not panic
	}
	for n := 0; n < len(der); n += 13 {
		if _, err := decryptPKCS8(der[:n], []byte(testPassword)); err == nil {
			t.Fatalf("a key cut at %d bytes decrypted", n)
		}
	}
}

func pemBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

// TestTLSValidate runs the load-time checks on files made in the test.
func TestTLSValidate(t *testing.T) {
	pki := testenv.NewPKI(t, "Test CA")
	good := pki.Issue(t, "pipe-client", testenv.CertOpts{})
	expired := pki.Issue(t, "old-client", testenv.CertOpts{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	other := pki.Issue(t, "other", testenv.CertOpts{})
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name string
		tls  TLS
		want []pipeline.FieldProblem
	}{
		{"system roots", TLS{Enabled: true}, nil},
		{"ca", TLS{Enabled: true, CAFile: pki.CAFile}, nil},
		{"mtls", TLS{Enabled: true, CAFile: pki.CAFile, CertFile: good.CertFile, KeyFile: good.KeyFile}, nil},
		{"missing ca", TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")},
			[]pipeline.FieldProblem{{Field: "caFile", Msg: "cannot read " + filepath.Join(dir, "nope.pem") + ": no such file or directory"}}},
		{"ca not pem", TLS{Enabled: true, CAFile: notPEM},
			[]pipeline.FieldProblem{{Field: "caFile", Msg: notPEM + " holds no PEM certificate (BEGIN CERTIFICATE)"}}},
		{"cert without key", TLS{Enabled: true, CertFile: good.CertFile},
			[]pipeline.FieldProblem{{Field: "certFile", Msg: "needs keyFile"}}},
		{"key without cert", TLS{Enabled: true, KeyFile: good.KeyFile},
			[]pipeline.FieldProblem{{Field: "keyFile", Msg: "needs certFile"}}},
		{"password without key", TLS{Enabled: true, KeyPassword: "hunter2"},
			[]pipeline.FieldProblem{{Field: "keyPassword", Msg: "is only used with keyFile"}}},
		{"key of another cert", TLS{Enabled: true, CertFile: good.CertFile, KeyFile: other.KeyFile},
			[]pipeline.FieldProblem{{Field: "keyFile", Msg: other.KeyFile + ": the private key does not match the certificate in " + good.CertFile}}},
		{"expired cert", TLS{Enabled: true, CertFile: expired.CertFile, KeyFile: expired.KeyFile},
			[]pipeline.FieldProblem{{Field: "certFile", Msg: expired.CertFile + ": the certificate (subject CN=old-client,O=pipe tests) expired on " + expired.X509.NotAfter.UTC().Format(time.RFC3339)}}},
		{"cert file is a key", TLS{Enabled: true, CertFile: good.KeyFile, KeyFile: good.KeyFile},
			[]pipeline.FieldProblem{{Field: "certFile", Msg: good.KeyFile + " holds no PEM certificate (BEGIN CERTIFICATE)"}}},
		{"disabled: files not read", TLS{Enabled: false, CAFile: filepath.Join(dir, "nope.pem")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.tls.Validate()
			if len(got) != len(tc.want) {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("problem %d:\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzParseKey: any PEM input, encrypted or not, gives a key or an error,
// never a panic.
func FuzzParseKey(f *testing.F) {
	for _, name := range []string{"ec-aes192-sha512.key", "ec-des3-sha1.key", "rsa-pbes1.key", "rsa-scrypt.key", "ec-sec1.key"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "test-password")
		if b, _ := pem.Decode(data); b != nil {
			f.Add(b.Bytes, "test-password")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		// Mutated iteration counts would make each run take seconds.
		maxIterations = 5000
		parseKey(data, pipeline.Secret(password))
		b := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: data})
		parseKey(b, pipeline.Secret(password))
	})
}
