package kafkaconn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// maxPEMFile bounds what a certificate or key file may hold.
const maxPEMFile = 1 << 20

// fileError is a problem with one of the TLS files; field is its YAML key.
type fileError struct {
	field string
	err   error
}

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

func asFileError(err error, target **fileError) bool { return errors.As(err, target) }

func readPEMFile(field, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &fileError{field, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, &fileError{field, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))}
	}
	if len(data) > maxPEMFile {
		return nil, &fileError{field, fmt.Errorf("%s is larger than %d bytes; it should hold PEM blocks", path, maxPEMFile)}
	}
	return data, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose message repeats the path.
func unwrapPath(err error) error {
	var pe interface{ Unwrap() error }
	if errors.As(err, &pe) {
		if inner := pe.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// loadCA reads a PEM bundle of CA certificates.
func loadCA(path string) (*x509.CertPool, error) {
	data, err := readPEMFile("caFile", path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, &fileError{"caFile", fmt.Errorf("%s: certificate %d does not parse: %v", path, n+1, err)}
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, &fileError{"caFile", fmt.Errorf("%s holds no PEM certificate (BEGIN CERTIFICATE)", path)}
	}
	return pool, nil
}

// loadKeyPair reads a certificate chain and its private key, decrypting the
// key with password when it is encrypted. It checks that the key matches the
// leaf certificate and that the leaf is valid at now.
func loadKeyPair(certFile, keyFile string, password pipeline.Secret, now time.Time) (tls.Certificate, error) {
	certPEM, err := readPEMFile("certFile", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return tls.Certificate{}, &fileError{"certFile", fmt.Errorf("%s holds no PEM certificate (BEGIN CERTIFICATE)", certFile)}
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return tls.Certificate{}, &fileError{"certFile", fmt.Errorf("%s: the first certificate does not parse: %v", certFile, err)}
	}
	switch {
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, &fileError{"certFile", fmt.Errorf("%s: the certificate (subject %s) expired on %s", certFile, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))}
	case now.Before(leaf.NotBefore):
		return tls.Certificate{}, &fileError{"certFile", fmt.Errorf("%s: the certificate (subject %s) is not valid before %s", certFile, leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	keyPEM, err := readPEMFile("keyFile", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := parseKey(keyPEM, password)
	if err != nil {
		return tls.Certificate{}, &fileError{"keyFile", fmt.Errorf("%s: %w", keyFile, err)}
	}
	if !publicKeyMatches(leaf.PublicKey, key) {
		return tls.Certificate{}, &fileError{"keyFile", fmt.Errorf("%s: the private key does not match the certificate in %s", keyFile, certFile)}
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// errKeyPassword is a key that did not decrypt with the password given.
var errKeyPassword = errors.New("the key does not decrypt with keyPassword (wrong password?)")

// parseKey finds the private key in a PEM file.
func parseKey(data []byte, password pipeline.Secret) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, legacy := b.Headers["DEK-Info"]; legacy {
			return nil, fmt.Errorf("the key is encrypted in the legacy OpenSSL format (Proc-Type header), which is insecure and not supported; convert it to encrypted PKCS#8 with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			if password != "" {
				return nil, errors.New("keyPassword is set but the key is not encrypted (BEGIN PRIVATE KEY)")
			}
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if password == "" {
				return nil, errors.New("the key is encrypted (BEGIN ENCRYPTED PRIVATE KEY); set keyPassword")
			}
			var der []byte
			der, err = decryptPKCS8(b.Bytes, []byte(password.Reveal()))
			if err == nil {
				key, err = x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					// Garbage that passed the padding check: a wrong password.
					err = errKeyPassword
				}
			}
		case "RSA PRIVATE KEY":
			if password != "" {
				return nil, errors.New("keyPassword is set but the key is not encrypted (BEGIN RSA PRIVATE KEY)")
			}
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			if password != "" {
				return nil, errors.New("keyPassword is set but the key is not encrypted (BEGIN EC PRIVATE KEY)")
			}
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			if errors.Is(err, errKeyPassword) || errors.Is(err, errUnsupportedPBE) {
				return nil, err
			}
			return nil, fmt.Errorf("the %s block does not parse: %v", b.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return signer, nil
	}
	return nil, errors.New("holds no PEM private key (BEGIN PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
}

func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return p.Equal(key.Public())
	case *ecdsa.PublicKey:
		return p.Equal(key.Public())
	case ed25519.PublicKey:
		return p.Equal(key.Public())
	}
	return false
}

// tlsConfig builds the client TLS config, reading the files again (they may
// have been rotated since the config was loaded).
func (t *TLS) tlsConfig(log *slog.Logger) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pool, err := loadCA(t.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile, t.KeyPassword, time.Now())
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.InsecureSkipVerify {
		tc.InsecureSkipVerify = true
		if log != nil {
			log.Warn("TLS CERTIFICATE VERIFICATION IS OFF (tls.insecureSkipVerify: true): the brokers' identity is not checked and anyone on the network path can read and change the traffic, credentials included; use it for tests only")
		}
	}
	return tc, nil
}

// readLeaf returns the first certificate of a PEM file, or nil.
func readLeaf(path string) *x509.Certificate {
	data, err := readPEMFile("certFile", path)
	if err != nil {
		return nil
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			c, _ := x509.ParseCertificate(b.Bytes)
			return c
		}
	}
}

// certSubject names a certificate for an error message.
func certSubject(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	s := c.Subject.String()
	if s == "" {
		s = "(empty subject)"
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		s += ", issuer " + c.Issuer.String()
	}
	return s
}
