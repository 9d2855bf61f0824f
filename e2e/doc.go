// Package e2e holds the end-to-end tests: they build the pipe binary, start
// an embedded broker as a separate process (`pipe dev --broker-only`), feed it
// with kcat and franz-go, run `pipe run` against an HTTP sink, and check what
// arrived, what was committed and how the processes ended. Run them with
// `go test ./e2e/`; the tests need kcat (apt-get install kcat).
package e2e
