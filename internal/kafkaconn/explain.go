package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kind sorts connection failures. Its values are stable and short, fit for
// a state field or a metric label.
type Kind string

// The kinds of connection failures.
const (
	// KindAuthentication: the brokers rejected the SASL credentials.
	KindAuthentication Kind = "authentication"
	// KindMechanism: the brokers do not accept the SASL mechanism.
	KindMechanism Kind = "sasl-mechanism"
	// KindTLSVerification: the brokers' certificate did not verify.
	KindTLSVerification Kind = "tls-verification"
	// KindTLSHandshake: the TLS handshake failed otherwise (the broker
	// rejected the client certificate, or does not speak TLS).
	KindTLSHandshake Kind = "tls-handshake"
	// KindAuthorization: authenticated, but not allowed (ACLs).
	KindAuthorization Kind = "authorization"
	// KindCredentials: the credentials could not be obtained (OAuth token
	// endpoint, AWS credential chain).
	KindCredentials Kind = "credentials"
	// KindUnreachable: no connection (refused, no route, DNS, timeout).
	KindUnreachable Kind = "unreachable"
	// KindClosed: the broker closed the connection without an answer, as
	// brokers do when TLS or SASL is missing or wrong.
	KindClosed Kind = "connection-closed"
)

// Failure is a connection failure explained for an operator.
type Failure struct {
	Kind Kind
	// Reason says what failed and what identifies it: "authentication
	// failed (SASL PLAIN, user alice)", "TLS verification failed:
	// certificate signed by unknown authority (subject CN=broker, issuer
	// CN=Other CA)". It holds no secret.
	Reason string
}

func (f Failure) String() string { return f.Reason }

var timeNow = time.Now

// Explain classifies an error from a client built with c's options. ok is
// false when err is not a connection or security failure (a produce or
// fetch error, a cancelled context): the caller handles it as before.
func (c *Config) Explain(err error) (f Failure, ok bool) {
	if err == nil {
		return Failure{}, false
	}
	who := c.Identity()
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		token     *TokenError
		awsErr    *AWSCredentialsError
		firstEOF  *kgo.ErrFirstReadEOF
		dnsErr    *net.DNSError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA):
		return Failure{KindTLSVerification, "TLS verification failed: certificate signed by unknown authority (subject " + certSubject(unknownCA.Cert) + ")" + c.caHint()}, true
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			return Failure{KindTLSVerification, "TLS verification failed: certificate expired or not yet valid (subject " + certSubject(invalid.Cert) + ", valid " +
				invalid.Cert.NotBefore.UTC().Format(time.RFC3339) + " to " + invalid.Cert.NotAfter.UTC().Format(time.RFC3339) + ")"}, true
		default:
			return Failure{KindTLSVerification, "TLS verification failed: " + invalid.Error() + " (subject " + certSubject(invalid.Cert) + ")"}, true
		}
	case errors.As(err, &hostname):
		names := strings.Join(hostname.Certificate.DNSNames, ", ")
		for _, ip := range hostname.Certificate.IPAddresses {
			if names != "" {
				names += ", "
			}
			names += ip.String()
		}
		if names == "" {
			names = "none"
		}
		return Failure{KindTLSVerification, fmt.Sprintf("TLS verification failed: the certificate is not valid for %s (subject %s; valid for: %s); set tls.serverName if the brokers are reached by another name",
			hostname.Host, certSubject(hostname.Certificate), names)}, true
	case errors.As(err, &verify):
		subject := ""
		if len(verify.UnverifiedCertificates) > 0 {
			subject = " (subject " + certSubject(verify.UnverifiedCertificates[0]) + ")"
		}
		return Failure{KindTLSVerification, "TLS verification failed: " + verify.Err.Error() + subject}, true
	case errors.As(err, &header):
		return Failure{KindTLSHandshake, "TLS handshake failed: the broker did not answer in TLS; is this a plaintext listener?"}, true
	case isRemoteTLSAlert(err):
		alert := remoteAlert(err)
		reason := "TLS handshake failed: the broker refused the connection (" + alert + ")"
		switch {
		case strings.Contains(alert, "certificate required") && c.TLSEnabled() && c.TLS.CertFile != "":
			// Go sends no certificate when the broker's list of
			// acceptable CAs does not hold its issuer.
			reason += "; the broker requires a client certificate signed by a CA it trusts, and the one in tls.certFile is not (" + who + ")"
		case strings.Contains(alert, "certificate required"):
			reason += "; the broker requires a client certificate: set tls.certFile and tls.keyFile"
		case strings.Contains(alert, "expired"):
			reason = "TLS handshake failed: the broker rejected the client certificate: certificate expired (" + who + ")"
		case strings.Contains(alert, "certificate"):
			reason += "; the broker rejected the client certificate (" + who + ")"
		}
		return Failure{KindTLSHandshake, reason}, true
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		reason := "authentication failed (" + who + ")"
		if msg := brokerMessage(err, kerr.SaslAuthenticationFailed); msg != "" {
			reason += ": " + msg
		}
		return Failure{KindAuthentication, reason}, true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		mech := "none"
		if c != nil && c.SASL != nil {
			mech = c.SASL.Mechanism
		}
		return Failure{KindMechanism, "unsupported SASL mechanism: the brokers do not accept " + mech}, true
	case errors.Is(err, kerr.IllegalSaslState):
		return Failure{KindMechanism, "SASL handshake failed: the broker reported an illegal SASL state (" + who + ")"}, true
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		var ke *kerr.Error
		errors.As(err, &ke)
		return Failure{KindAuthorization, "not authorized (" + who + "): " + ke.Message + ": " + ke.Description}, true
	case errors.As(err, &token):
		return Failure{KindCredentials, token.Error()}, true
	case errors.As(err, &awsErr):
		return Failure{KindCredentials, awsErr.Error()}, true
	case errors.As(err, &firstEOF):
		return Failure{KindClosed, c.closedReason(firstEOF.Error())}, true
	case c != nil && c.SASL != nil && errors.Is(err, io.EOF) && !errors.As(err, &opErr):
		// A broker that cannot say SASL_AUTHENTICATION_FAILED (old Kafka,
		// some proxies) closes the connection instead.
		return Failure{KindClosed, c.closedReason("")}, true
	case c.TLSEnabled() && errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &opErr) && strings.Contains(err.Error(), "unable to dial"):
		// The TCP connection was made; the TLS handshake got no answer.
		return Failure{KindTLSHandshake, "TLS handshake timed out: the broker did not answer in TLS; is this a plaintext listener?"}, true
	case errors.As(err, &dnsErr):
		return Failure{KindUnreachable, "broker unreachable: cannot resolve " + dnsErr.Name + ": " + dnsErr.Err}, true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return Failure{KindUnreachable, "broker unreachable: " + opErr.Error()}, true
	}
	return Failure{}, false
}

func (c *Config) caHint() string {
	if c.TLSEnabled() && c.TLS.CAFile != "" {
		return "; the CA is not in tls.caFile " + c.TLS.CAFile
	}
	return "; set tls.caFile to the CA that signs the brokers' certificates"
}

// closedReason explains a connection the broker closed without an answer.
// hint is franz-go's guess (ErrFirstReadEOF), which says at which step.
func (c *Config) closedReason(hint string) string {
	who := " (" + c.Identity() + ")"
	switch {
	case strings.Contains(hint, "requires TLS") && !c.TLSEnabled():
		return "the broker closed the connection at the first request" + who + ": it probably requires TLS; add a tls block"
	case strings.Contains(hint, "using TLS when the broker is not"):
		return "the broker closed the connection during the TLS handshake" + who + ": is it a plaintext listener?"
	case strings.Contains(hint, "SASL is required") && (c == nil || c.SASL == nil):
		return "the broker closed the connection" + who + ": it probably requires SASL; add a sasl block"
	case c != nil && c.SASL != nil:
		return "the broker closed the connection during SASL authentication" + who + ": wrong credentials or mechanism?"
	}
	return "the broker closed the connection before answering" + who + ": does it need TLS or SASL?"
}

// brokerMessage is the message a broker sent with an error code, if any.
func brokerMessage(err, code error) string {
	msg := err.Error()
	i := strings.Index(msg, code.Error()+": ")
	if i < 0 {
		return ""
	}
	return clip(msg[i+len(code.Error())+2:], 300)
}

// isRemoteTLSAlert reports a TLS alert sent by the broker. The standard
// library reports it as a *net.OpError with Op "remote error".
func isRemoteTLSAlert(err error) bool {
	var op *net.OpError
	var alert tls.AlertError
	return errors.As(err, &alert) || errors.As(err, &op) && op.Op == "remote error"
}

func remoteAlert(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return "remote error: " + op.Err.Error()
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return alert.Error()
	}
	return err.Error()
}
