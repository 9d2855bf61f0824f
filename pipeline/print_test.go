package pipeline_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/pipe-run/pipe/destinations/file"
	_ "github.com/pipe-run/pipe/destinations/http"
	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/sources/kafka"
	_ "github.com/pipe-run/pipe/stages/filter"
	_ "github.com/pipe-run/pipe/stages/transform"
	httptarget "github.com/pipe-run/pipe/targets/http"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// roundTrip prints cfg, parses the output as the same file and returns the
// output and the config read back.
func roundTrip(t *testing.T, cfg *pipeline.Config) (string, *pipeline.Config) {
	t.Helper()
	out := pipeline.Print(cfg)
	back, err := pipeline.Parse(cfg.File, out)
	if err != nil {
		t.Fatalf("the printed config does not parse: %v\n%s", err, out)
	}
	if again := pipeline.Print(back); string(again) != string(out) {
		t.Errorf("printing the config read back gives another text:\n%s\nfirst:\n%s", again, out)
	}
	return string(out), back
}

// TestPrintSecrets prints a config whose secrets come from the environment
// and from files, next to a secret written in the file and references
// inside text: no secret value is printed, references are printed as
// written, and the output reads back as the same config.
func TestPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"PIPE_PRINT_KAFKA_PASSWORD": "Kafka-pw-1x9",
		"PIPE_PRINT_TOKEN":          "Tok-7q2w-env",
		"PIPE_PRINT_BROKERS":        "b1.internal:9093,b2.internal:9093",
		"PIPE_PRINT_BATCH":          "250",
		"PIPE_PRINT_EMPTY":          "",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	fileSecrets := map[string]string{
		"client-secret": "File-secret-83kd\n",
		"api-key":       "File-key-2mz",
		"body-param":    "File-param-0pq",
	}
	for name, v := range fileSecrets {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const literal = "Literal-pw-5tg"
	file := filepath.Join(dir, "pipes.yaml")
	src := fmt.Sprintf(`logLevel: WARN
pipes:
  - name: orders
    description: costs $$5 and $${NOT_A_REFERENCE}
    source:
      kafka:
        bootstrapServers: ${PIPE_PRINT_BROKERS}
        topics: [orders, "refunds"]
        batchSize: ${PIPE_PRINT_BATCH}
        maximumBatchingWindow: 1500ms
        partitionBuffer: 640KB
        sasl:
          mechanism: SCRAM-SHA-512
          username: alice
          password: ${PIPE_PRINT_KAFKA_PASSWORD}
    filter:
      patterns:
        - {"value": {"amount": [{"numeric": [">", 100]}]}}
        - '{"key": ["vip"]}'
      expression: |
        value.amount > 100 &&
          headers["source"] == "web"
    transform:
      expression: '{"id": value.orderId, "total": value.amount * 1.2}'
    target:
      http:
        url: https://hooks.example.com/orders
        mode: record
        headers:
          X-Api-Token: Bearer ${PIPE_PRINT_TOKEN}
          X-Static: plain text
          X-Default: ${PIPE_PRINT_UNSET:-fallback}
          X-Empty: ${PIPE_PRINT_EMPTY}
        auth:
          oauth2:
            tokenUrl: https://idp.example.com/token
            clientId: pipe
            clientSecret: ${file:%[1]s/client-secret}
            bodyParameters:
              audience: orders-api
              resource: ${file:%[1]s/body-param}
              escaped: "pa$$word"
    onFailure:
      http:
        url: https://hooks.example.com/failed
        headers:
          Authorization: Bearer ${file:%[1]s/api-key}
    maximumRecordAge: 1h30m
  - name: audit
    source:
      kafka:
        bootstrapServers: 127.0.0.1:9092
        topics: audit
        sasl:
          mechanism: PLAIN
          username: bob
          password: %[2]s
    target:
      stdout: {}
`, dir, literal)
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, back := roundTrip(t, cfg)

	// Literal secrets cannot come back: they are printed redacted.
	body := back.Pipes[0].Target.(*httptarget.Config).Auth.OAuth2.BodyParameters
	sasl := back.Pipes[1].Source.(*kafka.Config).SASL
	for _, s := range []*pipeline.Secret{&sasl.Password, ptr(body["audience"]), ptr(body["escaped"])} {
		if *s != redacted {
			t.Errorf("a literal secret read back as %q, want %q", s.Reveal(), redacted)
		}
	}
	sasl.Password = literal
	body["audience"], body["escaped"] = "orders-api", "pa$word"
	// Header values are secrets too.
	back.Pipes[0].Target.(*httptarget.Config).Headers["X-Static"] = "plain text"
	if d := testenv.ConfigDiff(cfg, back); d != "" {
		t.Errorf("the config read back differs: %s\n%s", d, out)
	}

	for _, v := range secrets {
		if v != "" && strings.Contains(out, v) {
			t.Errorf("the value %q of an environment variable is printed:\n%s", v, out)
		}
	}
	for _, v := range fileSecrets {
		if strings.Contains(out, strings.TrimSuffix(v, "\n")) {
			t.Errorf("the content %q of a secret file is printed:\n%s", v, out)
		}
	}
	if strings.Contains(out, literal) || strings.Contains(out, "pa$word") {
		t.Errorf("a literal secret is printed:\n%s", out)
	}
	for _, want := range []string{
		"\n        bootstrapServers: ['${PIPE_PRINT_BROKERS}']\n",
		"\n        batchSize: ${PIPE_PRINT_BATCH}\n",
		"\n          password: ${PIPE_PRINT_KAFKA_PASSWORD}\n",
		"\n          X-Api-Token: Bearer ${PIPE_PRINT_TOKEN}\n",
		"\n          X-Default: ${PIPE_PRINT_UNSET:-fallback}\n",
		"\n          X-Empty: ${PIPE_PRINT_EMPTY}\n",
		"\n            clientSecret: ${file:" + dir + "/client-secret}\n",
		"\n              resource: ${file:" + dir + "/body-param}\n",
		"\n              escaped: <redacted>\n",
		"\n          Authorization: Bearer ${file:" + dir + "/api-key}\n",
		"\n          password: <redacted>\n",
		"\n    description: costs $$5 and $${NOT_A_REFERENCE}\n",
		"\n        - {\"value\": {\"amount\": [{\"numeric\": [\">\", 100]}]}}\n",
		"\n        - '{\"key\": [\"vip\"]}'\n",
		"\n      expression: |\n        value.amount > 100 &&\n          headers[\"source\"] == \"web\"\n",
		"\n    maximumRecordAge: 1h30m\n",
		"\n        maximumBatchingWindow: 1.5s\n",
		"\n        partitionBuffer: 640KB\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// redacted is how a secret written in the file is printed.
const redacted = "<redacted>"

func ptr[T any](v T) *T { return &v }

// TestPrintGolden prints a small file as a whole.
func TestPrintGolden(t *testing.T) {
	t.Setenv("PIPE_PRINT_HOOK_TOKEN", "hook-token-value")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "user"), []byte("svc-orders\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pipes.yaml")
	src := strings.ReplaceAll(`# Orders to the webhook.
admin: {address: "127.0.0.1:0"}
pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: [kafka-1:9092, kafka-2:9092]
        topics: orders
        startingPosition: LATEST
    filter:
      patterns: ['{"value": {"status": ["paid"]}}']
    target:
      http:
        url: https://hooks.example.com/orders
        timeout: 2m
        headers: {X-Token: "${PIPE_PRINT_HOOK_TOKEN}"}
        auth:
          basic: {username: "${file:{{dir}}/user}", password: hunter2}
    onFailure: {file: {path: failed.jsonl}}
`, "{{dir}}", dir)
	want := strings.ReplaceAll(`shutdownTimeout: 30s
logLevel: INFO
logFormat: text
admin:
  enabled: true
  address: 127.0.0.1:0
pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: ['kafka-1:9092', 'kafka-2:9092']
        topics: [orders]
        startingPosition: LATEST
        batchSize: 100
        maximumBatchingWindow: 500ms
        maximumConcurrency: 16
        partitionBuffer: 2MB
        commitInterval: 5s
        sessionTimeout: 45s
        clientId: pipe
    filter:
      patterns: ['{"value": {"status": ["paid"]}}']
    target:
      http:
        url: https://hooks.example.com/orders
        method: POST
        timeout: 2m
        headers:
          X-Token: ${PIPE_PRINT_HOOK_TOKEN}
        auth:
          basic:
            username: ${file:{{dir}}/user}
            password: <redacted>
        concurrency: 8
    maximumRetryAttempts: -1
    maximumRecordAge: -1
    retryBackoff:
      initial: 200ms
      maximum: 30s
    onFailure:
      file:
        path: failed.jsonl
        sync: true
    stallTimeout: 5m
`, "{{dir}}", dir)
	cfg, err := pipeline.Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(pipeline.Print(cfg)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestPrintBuiltConfig prints a config built in code, not read from a file:
// there are no references to print, values that would read as one are
// escaped, and kinds are found by their config type.
func TestPrintBuiltConfig(t *testing.T) {
	cfg := &pipeline.Config{
		File:            "built.yaml",
		ShutdownTimeout: 90 * time.Second,
		LogLevel:        "INFO",
		LogFormat:       "json",
		Admin:           pipeline.AdminConfig{Address: "127.0.0.1:9100"},
		Pipes: []pipeline.PipeConfig{{
			Name:                 "built",
			Description:          "price in $$ or ${CURRENCY}, $ alone",
			Source:               &kafka.Config{BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}, StartingPosition: "TRIM_HORIZON", BatchSize: 5, MaximumConcurrency: 1, PartitionBuffer: 64 << 10, CommitInterval: time.Second, SessionTimeout: 10 * time.Second, ClientID: "c"},
			Target:               &httptarget.Config{URL: "http://127.0.0.1:1/x", Method: "PUT", Timeout: time.Second, Concurrency: 1, Auth: &httptarget.Auth{APIKey: &httptarget.APIKeyAuth{Name: "X-Key", Value: "built-secret"}}},
			MaximumRetryAttempts: -1,
			MaximumRecordAge:     -1,
			RetryBackoff:         pipeline.RetryBackoff{Initial: time.Millisecond, Maximum: time.Hour},
			StallTimeout:         0,
		}},
	}
	out := string(pipeline.Print(cfg))
	for _, want := range []string{
		"shutdownTimeout: 1m30s\n",
		"\n  enabled: false\n",
		"\n    description: price in $$$$ or $${CURRENCY}, $$ alone\n",
		"\n    stallTimeout: 0s\n",
		"\n    target:\n      http:\n",
		"\n            value: <redacted>\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "built-secret") {
		t.Errorf("the secret is printed:\n%s", out)
	}
	back, err := pipeline.Parse("built.yaml", []byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if back.Pipes[0].Description != cfg.Pipes[0].Description || back.Pipes[0].StallTimeout != 0 || back.ShutdownTimeout != cfg.ShutdownTimeout || back.Admin.Enabled {
		t.Errorf("read back as %+v\n%s", back.Pipes[0], out)
	}
	if _, ok := back.Pipes[0].Target.(*httptarget.Config); !ok {
		t.Errorf("target read back as %T", back.Pipes[0].Target)
	}
}

// TestConfigDiff checks the comparison the round trips rely on: it sees a
// change in a compiled pattern or expression, not only in plain settings.
func TestConfigDiff(t *testing.T) {
	const base = `pipes:
  - name: p
    source: {kafka: {bootstrapServers: 127.0.0.1:9092, topics: t}}
    filter:
      patterns: ['{"value": {"n": [1]}}']
      expression: value.n > 1
    transform: {expression: value.n * 2}
    target: {stdout: {}}
`
	a, err := pipeline.Parse("a.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	same, err := pipeline.Parse("b.yaml", []byte("# moved\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if d := testenv.ConfigDiff(a, same); d != "" {
		t.Errorf("the same settings differ: %s", d)
	}
	for _, change := range [][2]string{
		{`"n": [1]`, `"n": [2]`},
		{"value.n > 1", "value.n > 2"},
		{"value.n * 2", "value.n * 3"},
		{"topics: t", "topics: u"},
	} {
		b, err := pipeline.Parse("a.yaml", []byte(strings.Replace(base, change[0], change[1], 1)))
		if err != nil {
			t.Fatal(err)
		}
		if d := testenv.ConfigDiff(a, b); d == "" {
			t.Errorf("%s -> %s: no difference seen", change[0], change[1])
		}
	}
}
