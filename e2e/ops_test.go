package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsLog reads the JSON log lines of a process whose msg starts with
// prefix.
func opsLog(t *testing.T, p *proc, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.errors()))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // a line being written
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// scrape reads /metrics: series -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestOpsBinary runs `pipe run --watch` as a process: /metrics counts what
// was produced, filtered and delivered and the lag falls to 0; a pipe added
// to the file starts while the first runs on; SIGHUP reloads; a broken file
// is rejected; SIGTERM ends the process cleanly.
func TestOpsBinary(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "ops-a")
	b.createTopic(t, "ops-b")
	sa, sb := newSink(t), newSink(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "pipes.yaml")
	pipeYAML := func(name, topic, url, extra string) string {
		return fmt.Sprintf(`  - name: %s
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        maximumBatchingWindow: 20ms
        commitInterval: 100ms
        sessionTimeout: 6s
    target: {http: {url: "%s", headers: {X-Run: "${RUN_ID}"}}}
%s`, name, b.addr, topic, "e2e-"+name, url, extra)
	}
	write := func(pipes ...string) {
		cfg := "logFormat: json\nshutdownTimeout: 5s\nadmin: {address: \"127.0.0.1:0\"}\npipes:\n" + strings.Join(pipes, "")
		tmp := cfgFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgFile); err != nil { // as an editor or a ConfigMap update does
			t.Fatal(err)
		}
	}
	pipeA := pipeYAML("ops-a", "ops-a", sa.url(), "    filter: {expression: 'int(value.n) % 2 == 0'}\n")
	write(pipeA)
	p := startProc(t, "pipe run", []string{"RUN_ID=ops"}, nil, pipeBin, "run", "--watch", "--watch-interval", "100ms", "-f", cfgFile)
	var base string
	waitFor(t, 30*time.Second, "the admin server", func() (bool, string) {
		for _, m := range opsLog(t, p, "admin server listening") {
			base = "http://" + m["address"].(string)
			return true, ""
		}
		return false, p.errors()
	}, p)

	produceWithFranz(t, b, "ops-a", "x", 200)
	waitFor(t, 30*time.Second, "100 records delivered and lag 0", func() (bool, string) {
		m := scrape(t, base)
		lag := 0.0
		n := 0
		for k, v := range m {
			if strings.HasPrefix(k, `pipe_offset_lag{`) {
				lag += v
				n++
			}
		}
		got := m[`pipe_records_delivered_total{pipe="ops-a"}`]
		return got == 100 && n == partitions && lag == 0, fmt.Sprintf("delivered %v, lag %v over %d partitions", got, lag, n)
	}, p)
	m := scrape(t, base)
	for k, want := range map[string]float64{
		`pipe_records_polled_total{pipe="ops-a"}`:    200,
		`pipe_records_filtered_total{pipe="ops-a"}`:  100,
		`pipe_records_delivered_total{pipe="ops-a"}`: 100,
		`pipe_state{pipe="ops-a",state="running"}`:   1,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if got := len(sa.seen); got != 100 {
		t.Errorf("sink got %d records, want 100", got)
	}

	// Add a pipe: the file watch reloads.
	write(pipeA, pipeYAML("ops-b", "ops-b", sb.url(), ""))
	waitFor(t, 30*time.Second, "the reload by --watch", func() (bool, string) {
		r := opsLog(t, p, "config reloaded")
		return len(r) == 1 && r[0]["changes"] == "added=ops-b unchanged=ops-a", fmt.Sprint(r)
	}, p)
	produceWithFranz(t, b, "ops-b", "y", 50)
	waitFor(t, 30*time.Second, "ops-b to deliver", func() (bool, string) {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		return len(sb.seen) == 50, fmt.Sprint(len(sb.seen))
	}, p)

	// SIGHUP with the same file: nothing restarts.
	p.signal(t, syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the reload by SIGHUP", func() (bool, string) {
		r := opsLog(t, p, "config reloaded")
		return len(r) == 2 && r[1]["changes"] == "unchanged=ops-a,ops-b", fmt.Sprint(r)
	}, p)

	// A broken file is rejected; the pipes run on.
	os.WriteFile(cfgFile, []byte("pipes:\n  - name: [\n"), 0o644)
	waitFor(t, 30*time.Second, "the broken file to be rejected", func() (bool, string) {
		return len(opsLog(t, p, "reload rejected")) == 1, ""
	}, p)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz %d after a rejected reload", resp.StatusCode)
	}
	if got := len(opsLog(t, p, "pipe starting")); got != 2 {
		t.Errorf("%d pipe starts, want 2", got)
	}
	p.stop(t)
	if got := len(opsLog(t, p, "pipe stopped")); got != 2 {
		t.Errorf("%d pipes stopped, want 2", got)
	}
}
