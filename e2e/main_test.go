package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	// pipeBin is the pipe binary built for this run.
	pipeBin string
	// kcatPath is kcat's path, or "" when it is not installed.
	kcatPath string
	// inCI is CI=true: a missing tool is then a failure, never a skip.
	inCI = os.Getenv("CI") == "true"
	// raceBuild is set by race_test.go when the tests run with -race; the
	// binary is then built with the race detector too.
	raceBuild bool
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root (go env GOMOD: %q, %v)\n", gomod, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "pipe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pipeBin = filepath.Join(dir, "pipe")
	args := []string{"build", "-o", pipeBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/pipe")...)
	build.Dir = filepath.Dir(gomod)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building ./cmd/pipe:", err)
		return 1
	}
	if kcatPath, err = exec.LookPath("kcat"); err != nil {
		kcatPath = ""
		if inCI {
			fmt.Fprintln(os.Stderr, "e2e: kcat is not installed and CI=true: install it (apt-get install -y kcat; test.sh does)")
			return 1
		}
	}
	return m.Run()
}

// needKcat stops a test that needs kcat when it is missing: a failure under
// CI=true, a skip otherwise.
func needKcat(t *testing.T) {
	t.Helper()
	if kcatPath != "" {
		return
	}
	if inCI {
		t.Fatal("kcat is not installed (apt-get install -y kcat)")
	}
	t.Skip("kcat is not installed (apt-get install -y kcat); with CI=true this is a failure")
}

// proc is a child process whose output goes to files in a temp dir. It is
// killed when the test ends, and its output is printed if the test failed.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout string // file paths
	stderr string
	done   chan struct{}
}

// startProc starts bin with args; env is added to the test's environment.
func startProc(t *testing.T, name string, env []string, stdin io.Reader, bin string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		name:   name,
		stdout: filepath.Join(dir, "stdout"),
		stderr: filepath.Join(dir, "stderr"),
		done:   make(chan struct{}),
	}
	outf, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout, p.cmd.Stderr = outf, errf
	err = p.cmd.Start()
	outf.Close()
	errf.Close()
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.errors(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race", name)
		}
		if t.Failed() {
			p.dump(t)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: sending %v: %v", p.name, sig, err)
	}
}

// wait waits for the process to exit and returns its state.
func (p *proc) wait(t *testing.T, d time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
		return nil
	}
}

// stop sends SIGTERM and checks that the process exits with status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if st := p.wait(t, 60*time.Second); st.ExitCode() != 0 {
		t.Fatalf("%s exited with %v after SIGTERM, want status 0", p.name, st)
	}
}

// kill sends SIGKILL and checks that the signal is what ended the process.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	st := p.wait(t, 30*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v before it could be killed", p.name, st)
	}
}

func (p *proc) output() string { b, _ := os.ReadFile(p.stdout); return string(b) }
func (p *proc) errors() string { b, _ := os.ReadFile(p.stderr); return string(b) }

// dump prints the end of the process's output.
func (p *proc) dump(t *testing.T) {
	const max = 32 << 10
	for _, f := range []struct{ name, path string }{{"stdout", p.stdout}, {"stderr", p.stderr}} {
		b, _ := os.ReadFile(f.path)
		if len(b) == 0 {
			continue
		}
		if len(b) > max {
			b = append([]byte("...\n"), b[len(b)-max:]...)
		}
		t.Logf("----- %s %s (%v) -----\n%s", p.name, f.name, p.cmd.Args, b)
	}
}

// runCmd runs a command to completion (within a minute) and returns its
// output and exit status.
func runCmd(t *testing.T, dir string, stdin []byte, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %s: %v\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// waitFor polls cond until it holds, failing the test after d. cond also
// returns a status that the failure message shows. If a process of alive
// exits meanwhile, the test fails at once.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string), alive ...*proc) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, status := cond()
		if ok {
			return
		}
		for _, p := range alive {
			if p.exited() {
				t.Fatalf("waiting for %s: %s exited (%v); %s", what, p.name, p.cmd.ProcessState, status)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not done after %v; %s", what, d, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
