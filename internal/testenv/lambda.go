package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// LambdaFunction is the function name the runtime interface emulator
// answers to: it serves /2015-03-31/functions/function/invocations only.
const LambdaFunction = "function"

// LambdaOptions choose the behaviour of the test function
// (internal/testenv/lambdafn).
type LambdaOptions struct {
	// Mode is echo (default), fail-keys, error, enrich or reply; see the
	// lambdafn package doc.
	Mode string
	// FailKeys are the record keys a fail-keys function reports in its
	// batchItemFailures.
	FailKeys []string
	// FailOnce makes a fail-keys function report each key only the first
	// time it sees it, so a retry succeeds.
	FailOnce bool
}

// Lambda is a running runtime interface emulator with the test function in
// it, behind a proxy that lets one invocation through at a time (the
// emulator crashes on concurrent invocations). It is stopped when the test
// ends.
type Lambda struct {
	// Endpoint is the URL to give the SDK as its Lambda endpoint (the proxy).
	Endpoint string

	record string
	reply  string

	mu   sync.Mutex // one invocation at a time; guards seen
	seen []LambdaRequest
}

// LambdaRequest is what the proxy saw of one invocation.
type LambdaRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// LambdaEvent is one event the function received.
type LambdaEvent struct {
	// Payload is the event byte for byte.
	Payload []byte
	// Event is the event as aws-lambda-go's events.KafkaEvent decoded it,
	// nil when it was not a JSON object that decodes.
	Event *events.KafkaEvent
}

var lambdaBuild struct {
	once    sync.Once
	rie, fn string
	err     error
}

// lambdaBinaries builds the emulator and the test function once per test
// process, into a directory named after the process. Directories left by
// processes that are gone are removed.
func lambdaBinaries() (rie, fn string, err error) {
	b := &lambdaBuild
	b.once.Do(func() {
		root := filepath.Join(os.TempDir(), "pipe-testenv-lambda")
		if entries, err := os.ReadDir(root); err == nil {
			for _, e := range entries {
				if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() && !alive(pid) {
					os.RemoveAll(filepath.Join(root, e.Name()))
				}
			}
		}
		dir := filepath.Join(root, strconv.Itoa(os.Getpid()))
		if b.err = os.MkdirAll(dir, 0o755); b.err != nil {
			return
		}
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			b.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		modDir := filepath.Dir(strings.TrimSpace(string(gomod)))
		for _, p := range []struct {
			out       *string
			name, pkg string
		}{
			{&b.rie, "aws-lambda-rie", "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"},
			{&b.fn, "lambdafn", "github.com/pipe-run/pipe/internal/testenv/lambdafn"},
		} {
			out := filepath.Join(dir, p.name)
			cmd := exec.Command("go", "build", "-o", out, p.pkg)
			cmd.Dir = modDir
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go build %s: %v\n%s", p.pkg, err, msg)
				return
			}
			*p.out = out
		}
	})
	return b.rie, b.fn, b.err
}

// alive reports whether a process with that id exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// fatalOrSkip fails the test under CI=true and skips it otherwise: a part
// that cannot be built or started must never let a CI run pass.
func fatalOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// StartLambda builds (once per process) and starts the runtime interface
// emulator running the test function with opts, waits until the function
// answers, and stops both when the test ends. With CI=true a failure to
// build or start is fatal; otherwise the test is skipped.
func StartLambda(t testing.TB, opts LambdaOptions) *Lambda {
	t.Helper()
	rie, fn, err := lambdaBinaries()
	if err != nil {
		fatalOrSkip(t, "building the Lambda runtime interface emulator and the test function: %v", err)
	}
	dir := t.TempDir()
	l := &Lambda{record: filepath.Join(dir, "events.jsonl"), reply: filepath.Join(dir, "reply")}
	if err := os.WriteFile(l.reply, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mode := opts.Mode
	if mode == "" {
		mode = "echo"
	}
	env := append(os.Environ(),
		"PIPE_FN_MODE="+mode,
		"PIPE_FN_RECORD="+l.record,
		"PIPE_FN_REPLY="+l.reply,
		"PIPE_FN_FAIL_KEYS="+strings.Join(opts.FailKeys, ","),
		"PIPE_FN_FAIL_ONCE="+strconv.FormatBool(opts.FailOnce),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
	)
	var addr string
	var lastErr error
	for range 3 { // the free ports may be taken between choosing and binding
		addr, lastErr = startEmulator(t, rie, fn, dir, env)
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		fatalOrSkip(t, "starting the Lambda runtime interface emulator: %v", lastErr)
	}
	target := "http://" + addr
	client := &http.Client{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen = append(l.seen, LambdaRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	l.Endpoint = proxy.URL
	return l
}

// startEmulator starts the emulator on two free loopback ports and waits
// until the function answers a ping. The process group is killed when the
// test ends.
func startEmulator(t testing.TB, rie, fn, dir string, env []string) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	var out syncBuffer
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		fn)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 10 * time.Second}
	url := "http://" + addr + "/2015-03-31/functions/function/invocations"
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("the emulator exited:\n%s", out.String())
		default:
		}
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"pipeTestenvPing":true}`))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == `"pong"` {
				break
			}
			stop()
			return "", fmt.Errorf("the function answered the ping with %d %q:\n%s", resp.StatusCode, body, out.String())
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("the emulator did not answer within 30s (%v):\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the port to open
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("Lambda runtime interface emulator output:\n%s", out.String())
		}
	})
	return addr, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Requests returns the invocations the proxy passed on, in order.
func (l *Lambda) Requests() []LambdaRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LambdaRequest(nil), l.seen...)
}

// Events returns the events the function received, in order.
func (l *Lambda) Events(t testing.TB) []LambdaEvent {
	t.Helper()
	l.mu.Lock() // no invocation is writing the file meanwhile
	defer l.mu.Unlock()
	f, err := os.Open(l.record)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []LambdaEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Payload string             `json:"payload"`
			Event   *events.KafkaEvent `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("the function's record file: %v", err)
		}
		out = append(out, LambdaEvent{Payload: []byte(line.Payload), Event: line.Event})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// SetReply sets what a reply-mode function answers from the next
// invocation on.
func (l *Lambda) SetReply(t testing.TB, reply []byte) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.WriteFile(l.reply, reply, 0o644); err != nil {
		t.Fatal(err)
	}
}

// LambdaAnswer is how a LambdaAPI answers one invocation. Status 0 is 200
// (202 for an Event invocation). A Status of 400 or more is answered as an
// AWS JSON error of type ErrorType with Body as its message; FunctionError
// sets X-Amz-Function-Error on a 200 answer.
type LambdaAnswer struct {
	Status        int
	Header        map[string]string
	ErrorType     string
	FunctionError string
	Body          string
}

// LambdaAPI is an HTTP server that answers as the Lambda Invoke API does,
// for the error semantics the emulator lacks: POST
// /2015-03-31/functions/<name>/invocations, the function's answer as the
// body, X-Amz-Function-Error for a function error, AWS JSON errors
// (X-Amzn-ErrorType) for throttling (429), payloads too large (413) ...
type LambdaAPI struct {
	// Endpoint is the URL to give the SDK as its Lambda endpoint.
	Endpoint string

	mu   sync.Mutex
	seen []LambdaRequest
}

// StartLambdaAPI starts a LambdaAPI whose answers answer decides; it is
// closed when the test ends. Requests to other paths get a 404
// ResourceNotFoundException.
func StartLambdaAPI(t testing.TB, answer func(LambdaRequest) LambdaAnswer) *LambdaAPI {
	t.Helper()
	api := &LambdaAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := LambdaRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body}
		api.mu.Lock()
		api.seen = append(api.seen, req)
		api.mu.Unlock()
		var a LambdaAnswer
		if r.Method != http.MethodPost || !strings.HasPrefix(req.Path, "/2015-03-31/functions/") || !strings.HasSuffix(req.Path, "/invocations") {
			a = LambdaAnswer{Status: http.StatusNotFound, ErrorType: "ResourceNotFoundException", Body: "Function not found: " + req.Path}
		} else {
			a = answer(req)
		}
		for k, v := range a.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Amzn-Requestid", "test-request")
		if a.Status >= 400 {
			w.Header().Set("X-Amzn-ErrorType", a.ErrorType)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.Status)
			msg, _ := json.Marshal(map[string]string{"Type": "User", "message": a.Body})
			w.Write(msg)
			return
		}
		if a.Status == 0 {
			a.Status = http.StatusOK
			if r.Header.Get("X-Amz-Invocation-Type") == "Event" {
				a.Status = http.StatusAccepted
			}
		}
		if a.FunctionError != "" {
			w.Header().Set("X-Amz-Function-Error", a.FunctionError)
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(a.Status)
		io.WriteString(w, a.Body)
	}))
	t.Cleanup(srv.Close)
	api.Endpoint = srv.URL
	return api
}

// Requests returns the invocations the server received, in order.
func (api *LambdaAPI) Requests() []LambdaRequest {
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([]LambdaRequest(nil), api.seen...)
}
