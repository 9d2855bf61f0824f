package kafkaconn

import (
	"crypto/tls"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Opts returns the franz-go options that connect with c's TLS and SASL
// settings: kgo.DialTLSConfig and kgo.SASL. It reads the certificate and
// key files (so a rotated file is picked up by the next client) and touches
// no network. It logs a warning for settings that expose traffic or
// credentials: insecureSkipVerify, and SASL PLAIN or OAUTHBEARER without
// TLS. log may be nil.
func (c *Config) Opts(log *slog.Logger) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tlsOn := c.TLSEnabled()
	if tlsOn {
		tc, err := c.TLS.tlsConfig(log)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
		if !tlsOn && log != nil {
			switch c.SASL.Mechanism {
			case MechPlain:
				log.Warn("SASL PLAIN without TLS sends the password in clear text; add a tls block")
			case MechOAuthBearer:
				log.Warn("SASL OAUTHBEARER without TLS sends the token in clear text; add a tls block")
			case MechAWSMSKIAM:
				log.Warn("SASL AWS_MSK_IAM without TLS: Amazon MSK accepts IAM authentication on its TLS listener only (port 9098)")
			}
		}
	}
	return opts, nil
}

// TLSEnabled reports whether connections use TLS.
func (c *Config) TLSEnabled() bool { return c != nil && c.TLS != nil && c.TLS.Enabled }

// TLSConfig returns the client TLS config, or nil when TLS is off. It is
// what Opts dials with, for a component that connects to the brokers by
// other means.
func (c *Config) TLSConfig(log *slog.Logger) (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	return c.TLS.tlsConfig(log)
}

// Identity names who the client is to the brokers, for messages: "SASL
// PLAIN, user alice", "SASL OAUTHBEARER, client id pipe",
// "client certificate CN=pipe" or "no authentication". It holds no secret.
func (c *Config) Identity() string {
	var id string
	if c != nil && c.SASL != nil {
		s := c.SASL
		id = "SASL " + s.Mechanism
		switch s.Mechanism {
		case MechPlain, MechScram256, MechScram512:
			id += ", user " + s.Username
		case MechOAuthBearer:
			if s.OAuth != nil {
				id += ", client id " + s.OAuth.ClientID
			} else {
				id += ", static token"
			}
		case MechAWSMSKIAM:
			if s.AWS != nil && s.AWS.RoleARN != "" {
				id += ", role " + s.AWS.RoleARN
			}
		}
	}
	if c.TLSEnabled() && c.TLS.CertFile != "" {
		cert := "client certificate " + c.TLS.CertFile
		if leaf := readLeaf(c.TLS.CertFile); leaf != nil {
			cert = "client certificate " + leaf.Subject.String()
		}
		if id != "" {
			id += "; "
		}
		id += cert
	}
	if id == "" {
		return "no authentication"
	}
	return id
}
