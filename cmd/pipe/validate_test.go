package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// runPipe runs the CLI with args as main does, and returns its exit code,
// standard output and standard error.
func runPipe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.Execute(); err != nil {
		code = exitCode(err)
		fmt.Fprintln(&errOut, "pipe:", err) // as main prints it
	}
	return code, out.String(), errOut.String()
}

func kinds(iface reflect.Type) string {
	var names []string
	for _, k := range pipeline.Kinds(iface) {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// TestValidateBadFile: every problem of a file with many goes to stderr,
// one per line in file order, and the exit code is 2.
func TestValidateBadFile(t *testing.T) {
	file := filepath.Join("..", "..", "pipeline", "testdata", "bad", "34-several-problems.yaml")
	wantData, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".want")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"testdata/bad/", filepath.ToSlash(filepath.Dir(file))+"/",
		"{{targets}}", kinds(reflect.TypeFor[pipeline.TargetConfig]()),
		"{{sources}}", kinds(reflect.TypeFor[pipeline.SourceConfig]()),
	).Replace(string(wantData))
	n := strings.Count(want, "\n")
	want += fmt.Sprintf("pipe: invalid config: %d problem(s)\n", n)

	code, stdout, stderr := runPipe(t, "validate", "-f", file)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if stdout != "" {
		t.Errorf("stdout: %q, want nothing", stdout)
	}
	if stderr != want {
		t.Errorf("stderr\n%s\nwant\n%s", stderr, want)
	}
}

func TestValidateMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pipes.yaml")
	code, stdout, stderr := runPipe(t, "validate", "--file", file)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "reading config: open "+file+": no such file or directory") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestValidateSecretNotPrinted: an invalid value that came from the
// environment is named by its reference on stderr, never printed.
func TestValidateSecretNotPrinted(t *testing.T) {
	t.Setenv("PIPE_TEST_HOOK_URL", "ftp://user:VerySecret123@example.com/")
	t.Setenv("PIPE_TEST_BATCH", "VerySecret456")
	file := filepath.Join(t.TempDir(), "pipes.yaml")
	writeFile(t, file, `pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: 127.0.0.1:9092
        topics: orders
        batchSize: ${PIPE_TEST_BATCH}
    target:
      http:
        url: ${PIPE_TEST_HOOK_URL}
`)
	code, stdout, stderr := runPipe(t, "validate", "-f", file)
	want := file + `:7:20: pipe "orders": source.kafka.batchSize: expected an integer, got the value of ${PIPE_TEST_BATCH}
` + file + `:10:14: pipe "orders": target.http.url: must be an absolute http:// or https:// URL
pipe: invalid config: 2 problem(s)
`
	if code != 2 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, stdout, stderr, want)
	}
	if strings.Contains(stdout+stderr, "VerySecret") {
		t.Errorf("a secret was printed:\n%s", stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestValidateGoodFileTouchesNoNetwork validates a config whose brokers and
// endpoint are a listening socket, a closed port and an address nothing
// answers: it succeeds, returns without waiting on any of them, and nothing
// connects to the listener.
func TestValidateGoodFileTouchesNoNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	writeFile(t, token, "t0ken\n")
	file := filepath.Join(dir, "pipes.yaml")
	writeFile(t, file, fmt.Sprintf(`pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: [%[1]s, %[2]s, 192.0.2.1:9092]
        topics: [orders]
        startingPosition: LATEST
    target:
      http:
        url: http://%[1]s/hook
        headers:
          Authorization: Bearer ${file:%[3]s}
  - name: audit
    source:
      kafka:
        bootstrapServers: "%[2]s,broker.invalid:9092"
        topics: audit
    target:
      stdout: {}
`, ln.Addr(), closedAddr, token))

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runPipe(t, "validate", "-f", file)
		done <- result{code, stdout, stderr}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		// A dial to 192.0.2.1 (TEST-NET-1) hangs until it times out.
		t.Fatal("validate did not return within 10s: it is waiting on the network")
	}
	if r.code != 0 || r.stdout != file+": ok, 2 pipe(s)\n" || r.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, %q, \"\"", r.code, r.stdout, r.stderr, file+": ok, 2 pipe(s)\n")
	}
	// A connection made during validate would wait in the listener's
	// backlog; there must be none.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err == nil {
		conn.Close()
		t.Fatal("validate connected to the broker/endpoint address")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("accept: %v", err)
	}
}

// TestValidateQuickStart checks the command on the repository's own
// pipes.yaml.
func TestValidateQuickStart(t *testing.T) {
	file := filepath.Join("..", "..", "pipes.yaml")
	code, stdout, stderr := runPipe(t, "validate", "-f", file)
	if code != 0 || !strings.HasPrefix(stdout, file+": ok, ") || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
