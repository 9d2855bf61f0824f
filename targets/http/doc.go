// Package http is the `http` target: it calls an HTTP endpoint as an
// EventBridge Pipes API destination does.
//
// # Modes
//
// In batch mode (the default) each batch is one request whose body is the
// batch envelope, Lambda's Kafka event, as application/json.
//
// In record mode (mode: record, or any inputTemplate) each record is one
// request. Its body is the inputTemplate rendered for the record (a JSON
// template is sent as application/json and stays valid JSON whatever the
// record holds; any other template as text/plain), or, without a template,
// the record as it appears in the envelope. The records of one partition
// are sent one after another in offset order; different partitions of a
// batch are sent at the same time, up to `concurrency`. Deliver returns
// pipeline.RetryOnly with the records to try again; the others are done.
// A record that fails permanently (a 4xx but 429, one that cannot be sent)
// does not hold back its partition: the later records are sent, and only
// the failed one is reported (pipeline.Permanent, or pipeline.TooLarge for
// a 413), so an on-failure destination gets that record alone. A record
// that fails in a way a retry may fix (a 5xx, a 429, a lost connection)
// stops its partition: it and the later records of its partition are
// reported, so the runner retries them in order.
//
// When one batch has both kinds, the target does what
// internal/awscfg/batch's Failures does for the AWS targets: RetryOnly lists
// every failed record and the records held back, and the error is
// retryable; the next attempt sends the permanently failed records again
// with the others, and once only they fail the error is permanent. The
// error is too large only when every failure is a 413, and carries the
// longest Retry-After.
//
// Sending a partition's records at the same time as the other partitions'
// pays off as soon as the endpoint takes time to answer: against a loopback
// endpoint answering in 1 ms, 100 records over 8 partitions go about 6
// times faster with concurrency 8 than one at a time (see the benchmarks).
//
// A template that looks like JSON but is not valid JSON (a trailing comma)
// is a text template: it is sent as text/plain and its values are not
// escaped, and the target logs a warning when it is built. GET, HEAD and
// OPTIONS requests have no body; an inputTemplate with them is a load
// error.
//
// # Parameters
//
// The url's path may hold * wildcards, filled in order by
// pathParameterValues (percent-encoded, so a value cannot add path
// segments), as an API destination's invocation endpoint is.
// headerParameters and queryStringParameters add headers and query
// parameters. Each value is static text, a template ("id-<$.value.id>")
// or a whole $.path read from the record: a string's text, another value's
// JSON text, nothing when the path is missing. A parameter that depends on
// the record has no single value for a batch, so batch mode rejects it when
// the file loads rather than picking one record's value. A record whose
// path parameter resolves to nothing, or whose header value would hold a
// line break, fails permanently (it is never sent). Host, Content-Length,
// Transfer-Encoding and the connection headers are the client's and cannot
// be set.
//
// # Answers
//
// A 2xx answer is success. Connection errors, timeouts, 429 and 5xx are
// retryable, with the Retry-After delay when the endpoint gives one; any
// other answer (other 4xx, 3xx) is permanent; a 413 is marked too large,
// so its on-failure record says MaximumPayloadSizeExceeded. Only 307 and 308 redirects are
// followed, since they repeat the method and the body; the fixed headers
// and auth headers are not sent on to another host or from https to http.
// At most 1 MiB of an answer is read, and an error shows at most its first
// 256 bytes. Errors name the endpoint without its query or credentials and
// never show header values. The target never retries on its own, except to
// send a request once more with a new OAuth2 token after a 401.
//
// Preview (for `pipe test`) renders the requests Deliver would make
// without sending them. It shows header and query parameters but never the
// fixed headers, the auth or the url's own query and credentials: secrets
// belong there.
//
// # Auth
//
// basic sets an Authorization header, apiKey a header of its name. oauth2
// uses the client-credentials grant: a token is fetched on first use,
// cached, refreshed a tenth of its lifetime (at most a minute) before
// expires_in runs out, and dropped when the endpoint answers 401 to it, in
// which case the request is sent once more with a new token. Concurrent
// requests share one token request. A failed token request is a retryable
// failure whose error names the token endpoint, the status and the OAuth
// error code (invalid_client ...), never a credential or token. Tokens are
// sent as "Bearer".
//
// # TLS
//
// tls.caFile adds roots to the system's, certFile and keyFile present a
// client certificate (mutual TLS), serverName overrides the name checked
// on the url's host. All but serverName apply to the OAuth2 token endpoint
// too. The files are read when the config loads, so `pipe validate`
// reports a missing or bad file. insecureSkipVerify logs a warning when the
// target is built.
//
// # Rate limit
//
// rateLimit is a token bucket shared by every request of the target
// (token requests excepted): perSecond tokens a second, up to burst saved.
// A request that finds none waits for its turn, blocking only its
// partition, and gives up when its context ends.
package http
