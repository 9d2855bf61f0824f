package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestDevQuickStart runs `pipe dev` without a config: the built-in
// quick-start prints the demo orders as Lambda Kafka events, and a record
// put in with `pipe produce` shows up too.
func TestDevQuickStart(t *testing.T) {
	addr := freeAddr(t)
	dev := startProc(t, "pipe dev", nil, nil, pipeBin, "dev", "--listen", addr)
	waitFor(t, 60*time.Second, "the quick-start to print a batch", func() (bool, string) {
		return len(lines(dev.output())) > 0, "stderr: " + dev.errors()
	}, dev)

	first := lines(dev.output())[0]
	var ev events.KafkaEvent
	if err := json.Unmarshal([]byte(first), &ev); err != nil {
		t.Fatalf("first line is not a Kafka event: %v\n%s", err, first)
	}
	if ev.EventSource != "SelfManagedKafka" || ev.BootstrapServers != addr || len(ev.Records) == 0 {
		t.Fatalf("first event: eventSource %q, bootstrapServers %q (want %q), %d record lists",
			ev.EventSource, ev.BootstrapServers, addr, len(ev.Records))
	}
	for key, rs := range ev.Records {
		if !strings.HasPrefix(key, "orders-") || len(rs) == 0 {
			t.Fatalf("records key %q with %d records", key, len(rs))
		}
		v, err := base64.StdEncoding.DecodeString(rs[0].Value)
		var order map[string]any
		if err == nil {
			err = json.Unmarshal(v, &order)
		}
		if err != nil || order["orderId"] == nil {
			t.Fatalf("demo record value %q (%q) is not an order: %v", rs[0].Value, v, err)
		}
	}
	if _, err := decodeEnvelope([]byte(first)); err != nil {
		t.Fatalf("first event: %v", err)
	}

	value := fmt.Sprintf(`{"orderId":"e2e-%d","total":9.5}`, time.Now().UnixNano())
	_, stderr, code := runCmd(t, t.TempDir(), []byte(value+"\n"), pipeBin,
		"produce", "orders", "-b", addr, "--key", "k1", "--header", "h=v")
	if code != 0 || !strings.Contains(stderr, "produced 1 record") {
		t.Fatalf("pipe produce exited %d: %s", code, stderr)
	}
	var found *delivery
	waitFor(t, 60*time.Second, "the produced record on dev's stdout", func() (bool, string) {
		for _, l := range lines(dev.output()) {
			ds, err := decodeEnvelope([]byte(l))
			if err != nil {
				t.Fatalf("stdout line: %v\n%s", err, l)
			}
			for i, d := range ds {
				if v, _ := base64.StdEncoding.DecodeString(deref(d.rec.Value)); string(v) == value {
					found = &ds[i]
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%d lines so far", len(lines(dev.output())))
	}, dev)
	r := found.rec
	if r.Topic != "orders" || deref(r.Key) != base64.StdEncoding.EncodeToString([]byte("k1")) ||
		len(r.Headers) != 1 || !slices.Equal(r.Headers[0]["h"], []int8{'v'}) || r.TimestampType != "CREATE_TIME" {
		t.Fatalf("produced record arrived as %+v (key %q, headers %v)", r, deref(r.Key), r.Headers)
	}
	if age := time.Since(time.UnixMilli(r.Timestamp)); age < -time.Minute || age > time.Hour {
		t.Errorf("produced record's timestamp %d is %v old", r.Timestamp, age)
	}
	dev.stop(t)
}

// TestValidateAndVersion checks `pipe validate` on a bad and a good file
// and `pipe version`.
func TestValidateAndVersion(t *testing.T) {
	dir := t.TempDir()
	const secret = "s3cr3t-v4lue"
	t.Setenv("E2E_SECRET", secret)
	bad := `pipes:
  - name: bad
    source:
      kafka:
        bootstrapServers: 127.0.0.1:9092
        topics: [orders]
        batchSize: 0
        bogus: 1
    target:
      http:
        url: http://127.0.0.1:1/x
        headers: {X-Token: "${E2E_SECRET}"}
        timeout: "${E2E_SECRET}"
`
	good := strings.NewReplacer("        batchSize: 0\n", "", "        bogus: 1\n", "", `timeout: "${E2E_SECRET}"`, "timeout: 5s").Replace(bad)
	for name, content := range map[string]string{"bad.yaml": bad, "good.yaml": good} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, cmd := range []string{"validate", "run"} {
		stdout, stderr, code := runCmd(t, dir, nil, pipeBin, cmd, "-f", "bad.yaml")
		if code != 2 {
			t.Errorf("pipe %s -f bad.yaml exited %d, want 2\n%s%s", cmd, code, stdout, stderr)
		}
		// Every problem, each with file:line:column.
		for _, want := range []string{
			"bad.yaml:7:20: ", "batchSize",
			"bad.yaml:8:9: ", `"bogus"`,
			"bad.yaml:13:18: ", "timeout",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("pipe %s -f bad.yaml: output lacks %q:\n%s", cmd, want, stderr)
			}
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("pipe %s -f bad.yaml printed the value of a secret:\n%s%s", cmd, stdout, stderr)
		}
	}

	stdout, stderr, code := runCmd(t, dir, nil, pipeBin, "validate", "-f", "good.yaml")
	if code != 0 || !strings.Contains(stdout, "good.yaml: ok, 1 pipe(s)") {
		t.Errorf("pipe validate -f good.yaml exited %d:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Errorf("pipe validate -f good.yaml printed the value of a secret:\n%s%s", stdout, stderr)
	}

	stdout, stderr, code = runCmd(t, dir, nil, pipeBin, "version")
	if code != 0 || !strings.HasPrefix(stdout, "pipe ") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("pipe version exited %d, printed %q %q", code, stdout, stderr)
	}
}

// lines returns the complete lines of s.
func lines(s string) []string {
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
