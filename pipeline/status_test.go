package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// clock is a settable time for a Status.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) add(d time.Duration)     { c.t = c.t.Add(d) }
func jsonLines(b *bytes.Buffer) []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }

func newTestStatus(stall time.Duration) (*Status, *clock, *bytes.Buffer) {
	var logs bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewStatus("p", NewLogger(&logs, "json", slog.LevelInfo), nil, stall)
	s.now = c.now
	return s, c, &logs
}

// A partition is stalled once it has had lag without committed progress
// for stallTimeout; waiting with no lag, or before anything was read, is
// not a stall. The stall and its end are logged once each.
func TestStallDetection(t *testing.T) {
	s, c, logs := newTestStatus(time.Minute)
	ps := s.Assign("orders", 0)
	ps.SetHighWatermark(0)
	c.add(10 * time.Minute) // idle, nothing to read
	s.check()
	if r := s.Snapshot(); r.Stalled != 0 || r.Parts[0].Lag != nil {
		t.Fatalf("idle partition: %+v", r.Parts[0])
	}
	ps.SetHighWatermark(10)
	ps.Polled(0, 10, 100)
	c.add(59 * time.Second)
	s.check()
	if r := s.Snapshot(); r.Stalled != 0 || *r.Parts[0].Lag != 10 {
		t.Fatalf("before stallTimeout: %+v", r.Parts[0])
	}
	ps.block(&Blocked{Offset: 0, Stage: "target", Reason: "503 Service Unavailable", Attempts: 7})
	c.add(2 * time.Second)
	s.check()
	s.check()
	r := s.Snapshot()
	if r.Stalled != 1 || !r.Parts[0].Stalled || r.Parts[0].Blocked == nil || r.Parts[0].Blocked.Reason != "503 Service Unavailable" {
		t.Fatalf("after stallTimeout: %+v", r.Parts[0])
	}
	ps.SetCommitted(5) // progress
	s.check()
	if r := s.Snapshot(); r.Stalled != 0 || *r.Parts[0].Lag != 5 || *r.Parts[0].CommittedOffset != 5 {
		t.Fatalf("after progress: %+v", r.Parts[0])
	}
	var stalls, recoveries int
	for _, l := range jsonLines(logs) {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		switch {
		case strings.HasPrefix(m["msg"].(string), "partition stalled"):
			stalls++
			if m["level"] != "WARN" || m["failingOffset"] != 0.0 || m["reason"] != "503 Service Unavailable" || m["lag"] != 10.0 {
				t.Errorf("stall line %v", m)
			}
		case strings.HasPrefix(m["msg"].(string), "partition progressing again"):
			recoveries++
		}
	}
	if stalls != 1 || recoveries != 1 {
		t.Errorf("%d stall and %d recovery lines, want 1 each:\n%s", stalls, recoveries, logs)
	}
}

// Failures are states: the first report of a reason is logged, repeats
// are not; a connection that works again recovers the pipe, to running
// when its group session held.
func TestFailedState(t *testing.T) {
	s, _, logs := newTestStatus(0)
	s.Running()
	for range 3 {
		s.Fail("authentication", "authentication failed (SASL PLAIN, user alice)")
	}
	if st, reason := s.State(); st != StateFailed || reason != "authentication failed (SASL PLAIN, user alice)" {
		t.Fatalf("state %s %q", st, reason)
	}
	if n := strings.Count(logs.String(), "pipe failed"); n != 1 {
		t.Errorf("%d failure lines, want 1", n)
	}
	s.Connected()
	if st, _ := s.State(); st != StateRunning {
		t.Fatalf("state %s after a connection, want running", st)
	}
	s.Left()
	s.Fail("tls-verification", "TLS verification failed")
	s.Connected()
	if st, _ := s.State(); st != StateStarting {
		t.Fatalf("state %s after a connection out of the group, want starting", st)
	}
	s.Running()
	if st, _ := s.State(); st != StateRunning {
		t.Fatalf("state %s after joining, want running", st)
	}
	s.SetState(StateStopping)
	s.Fail("unreachable", "broker unreachable")
	if st, _ := s.State(); st != StateStopping {
		t.Fatalf("a stopping pipe failed: %s", st)
	}
	if s.Snapshot().LastError.Message != "broker unreachable" {
		t.Errorf("last error %+v", s.Snapshot().LastError)
	}
}

// A pipe's level may be below or above the process's, and follows it when
// unset; TRACE is written as such.
func TestPipeLevels(t *testing.T) {
	var buf bytes.Buffer
	var process slog.LevelVar
	process.Set(slog.LevelInfo)
	logger := NewLogger(&buf, "text", &process)
	trace, off, inherit := &PipeLevel{}, &PipeLevel{}, &PipeLevel{}
	trace.Set("TRACE")
	off.Set("OFF")
	lt, lo, li := NewPipeLogger(logger, "t", trace), NewPipeLogger(logger, "o", off), NewPipeLogger(logger, "i", inherit)
	ctx := context.Background()
	lt.Log(ctx, LevelTrace, "trace line")
	lo.Error("off line")
	li.Debug("debug line")
	logger.Debug("process debug line")
	process.Set(slog.LevelDebug)
	li.Debug("debug line 2")
	out := buf.String()
	for _, want := range []string{"level=TRACE msg=\"trace line\" pipe=t", "msg=\"debug line 2\" pipe=i"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, not := range []string{"off line", "msg=\"debug line\"", "process debug line"} {
		if strings.Contains(out, not) {
			t.Errorf("%q logged:\n%s", not, out)
		}
	}
}

// The fingerprint of a pipe ignores how its YAML is written and the
// settings a reload applies in place, and sees everything else, values of
// references included.
func TestFingerprint(t *testing.T) {
	x := expander{lookupEnv: func(k string) (string, bool) { return map[string]string{"A": "1", "B": "2"}[k], true },
		readFile: func(string) ([]byte, error) { return nil, nil }}
	fp := func(y string) string {
		cfg, err := parse("f", []byte(y), x)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Pipes[0].Fingerprint()
	}
	base := fp("pipes:\n  - name: a\n    source: {kafka: {bootstrapServers: h:1, topics: [t]}}\n    target: {stdout: {}}\n")
	same := []string{
		"pipes:\n  - target: {stdout: {}}\n    name: a\n    source:\n      kafka:\n        topics: [t]\n        bootstrapServers: 'h:1'\n",
		"pipes:\n  - name: a\n    logLevel: TRACE\n    includeExecutionData: true\n    source: {kafka: {bootstrapServers: h:1, topics: [t]}}\n    target: {stdout: {}}\n",
	}
	for _, y := range same {
		if got := fp(y); got != base {
			t.Errorf("fingerprint changed for:\n%s", y)
		}
	}
	differ := []string{
		"pipes:\n  - name: a\n    source: {kafka: {bootstrapServers: h:1, topics: [t], batchSize: 5}}\n    target: {stdout: {}}\n",
		"pipes:\n  - name: a\n    source: {kafka: {bootstrapServers: h:1, topics: [t], clientId: '${A}'}}\n    target: {stdout: {}}\n",
	}
	seen := map[string]bool{base: true}
	for _, y := range differ {
		f := fp(y)
		if seen[f] {
			t.Errorf("fingerprint did not change for:\n%s", y)
		}
		seen[f] = true
	}
	a := fp("pipes:\n  - name: a\n    source: {kafka: {bootstrapServers: h:1, topics: [t], clientId: '${A}'}}\n    target: {stdout: {}}\n")
	b := fp("pipes:\n  - name: a\n    source: {kafka: {bootstrapServers: h:1, topics: [t], clientId: '${B}'}}\n    target: {stdout: {}}\n")
	if a == b {
		t.Error("references to different values have the same fingerprint")
	}
}
