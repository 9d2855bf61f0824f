// Package kafkaconn is how a Kafka client of pipe reaches its brokers: the
// `tls` and `sasl` settings shared by the Kafka source, the Kafka target and
// a Kafka on-failure destination, the franz-go options built from them, and
// the explanation of a failed connection in words an operator can act on.
//
// TLS uses the system roots or a CA bundle (which replaces them), an
// optional server name, and for mTLS a PEM certificate chain with its key:
// PKCS#8, PKCS#1, SEC 1, or encrypted PKCS#8. Encrypted keys are decrypted
// here with the standard library (PBES2: PBKDF2 with HMAC-SHA-1/2, AES-CBC or
// DES-EDE3-CBC), as `openssl pkcs8 -topk8` and Java's keytool write them;
// PBES1, PKCS#12 PBE and the legacy OpenSSL "Proc-Type: 4,ENCRYPTED" format
// are refused with the command that converts the key. insecureSkipVerify
// exists for tests and logs a warning whenever a client is built with it.
//
// SASL is franz-go's: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with a static
// token or with tokens from the OAuth 2.0 client credentials grant (cached
// until 80% of their lifetime, dropped when a broker rejects them), and
// AWS_MSK_IAM signed with credentials from the AWS SDK's default chain
// (internal/awscfg: profile, role to assume). MSK IAM signs for the region in
// the broker host name, else AWS_REGION.
//
// Secrets (passwords, the key password, tokens, the client secret) are
// pipeline.Secret: they print as <redacted>, and no error or message here
// holds one. Files are checked when the config loads (Validate: readable,
// PEM that parses, a key that decrypts and matches its certificate, a client
// certificate in its validity period) and read again each time options are
// built, so a rotated certificate is used by the next client.
//
// Explain turns a client error into a Failure: a Kind (authentication,
// tls-verification ...) and a Reason such as "authentication failed (SASL
// PLAIN, user alice)" or "TLS verification failed: certificate signed by
// unknown authority (subject CN=broker)", for a pipe's failed state.
package kafkaconn
