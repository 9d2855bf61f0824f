package kafkaconn

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

// Config is how a Kafka client reaches its brokers: TLS and SASL. The zero
// Config is plaintext without authentication.
type Config struct {
	TLS  *TLS  `yaml:"tls" doc:"TLS to the brokers. Without it the connection is plaintext."`
	SASL *SASL `yaml:"sasl" doc:"SASL authentication. Without it the client does not authenticate."`
}

// TLS is the `tls` block.
type TLS struct {
	Enabled            bool            `yaml:"enabled" default:"true" doc:"Whether to use TLS; a tls block turns it on unless this is false."`
	CAFile             string          `yaml:"caFile" doc:"PEM file of the CA certificates that sign the brokers' certificates. It replaces the system roots. Default: the system roots."`
	CertFile           string          `yaml:"certFile" doc:"PEM file of the client certificate chain (leaf first), for mTLS. Needs keyFile."`
	KeyFile            string          `yaml:"keyFile" doc:"PEM file of the client certificate's private key: PKCS#8 (BEGIN PRIVATE KEY), encrypted PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY, PBES2 with PBKDF2 and AES-CBC or 3DES-CBC; needs keyPassword), PKCS#1 (BEGIN RSA PRIVATE KEY) or SEC 1 (BEGIN EC PRIVATE KEY)."`
	KeyPassword        pipeline.Secret `yaml:"keyPassword" doc:"Password of an encrypted keyFile. Use ${ENV} or ${file:/path}."`
	ServerName         string          `yaml:"serverName" doc:"Name the brokers' certificates are checked against. Default: the host of each broker address."`
	InsecureSkipVerify bool            `yaml:"insecureSkipVerify" default:"false" doc:"Accept any broker certificate without checking it. For tests only: anyone on the path can read and change the traffic. Logged as a warning."`
}

// Mechanisms are the SASL mechanisms supported.
var Mechanisms = []string{MechPlain, MechScram256, MechScram512, MechOAuthBearer, MechAWSMSKIAM}

// The SASL mechanism names, as brokers spell them.
const (
	MechPlain       = "PLAIN"
	MechScram256    = "SCRAM-SHA-256"
	MechScram512    = "SCRAM-SHA-512"
	MechOAuthBearer = "OAUTHBEARER"
	MechAWSMSKIAM   = "AWS_MSK_IAM"
)

// SASL is the `sasl` block.
type SASL struct {
	Mechanism  string            `yaml:"mechanism" required:"true" enum:"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER,AWS_MSK_IAM" doc:"SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (username and password), OAUTHBEARER (token or oauth), AWS_MSK_IAM (aws)."`
	Username   string            `yaml:"username" doc:"User name, for PLAIN and SCRAM. It is shown in connection errors."`
	Password   pipeline.Secret   `yaml:"password" doc:"Password, for PLAIN and SCRAM. Use ${ENV} or ${file:/path}."`
	Token      pipeline.Secret   `yaml:"token" doc:"A static OAUTHBEARER token (it is not refreshed). Use ${ENV} or ${file:/path}."`
	OAuth      *OAuth            `yaml:"oauth" doc:"For OAUTHBEARER: fetch tokens with the OAuth 2.0 client credentials grant, refreshed before they expire."`
	Extensions map[string]string `yaml:"extensions" doc:"OAUTHBEARER SASL extensions sent with the token (Confluent Cloud wants logicalCluster and identityPoolId)."`
	AWS        *awscfg.Config    `yaml:"aws" doc:"For AWS_MSK_IAM: where the AWS credentials come from (region, profile, roleArn ...). Credentials come from the SDK's default chain. The signature uses the region in the broker host name (b-1.x.kafka.<region>.amazonaws.com), else AWS_REGION."`
}

// OAuth is the `sasl.oauth` block: the client credentials grant (RFC 6749
// section 4.4).
type OAuth struct {
	TokenURL     string          `yaml:"tokenUrl" required:"true" doc:"The token endpoint, https:// (http:// only on a loopback address)."`
	ClientID     string          `yaml:"clientId" required:"true" doc:"OAuth client id."`
	ClientSecret pipeline.Secret `yaml:"clientSecret" required:"true" doc:"OAuth client secret. Use ${ENV} or ${file:/path}."`
	Scopes       []string        `yaml:"scopes" doc:"Scopes to ask for, as a list or one space-separated string."`
	ClientAuth   string          `yaml:"clientAuth" default:"basic" enum:"basic,body" doc:"How the client authenticates to the token endpoint: basic (HTTP Basic, RFC 6749's default) or body (client_id and client_secret form fields)."`
	Timeout      time.Duration   `yaml:"timeout" default:"30s" min:"1s" max:"5m" doc:"Limit for one token request."`
}

// Validate checks the files at load time: readable, parsable, a key that
// matches its certificate. Messages name files, never their contents or
// the key password.
func (t *TLS) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	if t.CertFile != "" && t.KeyFile == "" {
		ps = append(ps, pipeline.FieldProblem{Field: "certFile", Msg: "needs keyFile"})
	}
	if t.KeyFile != "" && t.CertFile == "" {
		ps = append(ps, pipeline.FieldProblem{Field: "keyFile", Msg: "needs certFile"})
	}
	if t.KeyPassword != "" && t.KeyFile == "" {
		ps = append(ps, pipeline.FieldProblem{Field: "keyPassword", Msg: "is only used with keyFile"})
	}
	if len(ps) > 0 || !t.Enabled {
		return ps
	}
	if t.CAFile != "" {
		if _, err := loadCA(t.CAFile); err != nil {
			ps = append(ps, pipeline.FieldProblem{Field: "caFile", Msg: err.Error()})
		}
	}
	if t.CertFile != "" {
		if _, err := loadKeyPair(t.CertFile, t.KeyFile, t.KeyPassword, time.Now()); err != nil {
			field := "certFile"
			var fe *fileError
			if asFileError(err, &fe) {
				field = fe.field
			}
			ps = append(ps, pipeline.FieldProblem{Field: field, Msg: err.Error()})
		}
	}
	return ps
}

// Validate checks that the mechanism has what it needs and nothing it
// ignores.
func (s *SASL) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	notFor := func(set bool, field string) {
		if set {
			add(field, "is not used with mechanism %s", s.Mechanism)
		}
	}
	switch s.Mechanism {
	case MechPlain, MechScram256, MechScram512:
		if s.Username == "" {
			add("username", "mechanism %s needs username", s.Mechanism)
		}
		if s.Password == "" {
			add("password", "mechanism %s needs password", s.Mechanism)
		}
		notFor(s.Token != "", "token")
		notFor(s.OAuth != nil, "oauth")
		notFor(len(s.Extensions) > 0, "extensions")
		notFor(s.AWS != nil, "aws")
	case MechOAuthBearer:
		switch {
		case s.Token == "" && s.OAuth == nil:
			add("", "mechanism OAUTHBEARER needs token or oauth")
		case s.Token != "" && s.OAuth != nil:
			add("token", "give token or oauth, not both")
		}
		notFor(s.Username != "", "username")
		notFor(s.Password != "", "password")
		notFor(s.AWS != nil, "aws")
		for k := range s.Extensions {
			if !validExtensionKey(k) || k == "auth" {
				add("extensions", "%q is not a valid SASL extension name (letters only, not auth)", k)
			}
		}
		for k, v := range s.Extensions {
			if strings.ContainsAny(v, "\x00\x01") {
				add("extensions", "the value of %q holds a control character", k)
			}
		}
	case MechAWSMSKIAM:
		notFor(s.Username != "", "username")
		notFor(s.Password != "", "password")
		notFor(s.Token != "", "token")
		notFor(s.OAuth != nil, "oauth")
		notFor(len(s.Extensions) > 0, "extensions")
		if s.AWS != nil && s.AWS.Endpoint != "" {
			add("aws", "endpoint is not used by AWS_MSK_IAM (the brokers are the endpoint)")
		}
	}
	return ps
}

// validExtensionKey follows RFC 7628: key = 1*(ALPHA).
func validExtensionKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Validate checks the token endpoint.
func (o *OAuth) Validate() []pipeline.FieldProblem {
	u, err := url.Parse(o.TokenURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return []pipeline.FieldProblem{{Field: "tokenUrl", Msg: "must be an absolute https:// URL"}}
	}
	if u.User != nil {
		return []pipeline.FieldProblem{{Field: "tokenUrl", Msg: "must not hold credentials; use clientId and clientSecret"}}
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return []pipeline.FieldProblem{{Field: "tokenUrl", Msg: "must be https:// (the client secret would travel in clear text); http:// is accepted on loopback addresses only"}}
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scopes splits space-separated entries.
func (o *OAuth) scopes() []string {
	var out []string
	for _, s := range o.Scopes {
		out = append(out, strings.Fields(s)...)
	}
	return out
}
