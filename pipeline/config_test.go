package pipeline_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/pipe-run/pipe/destinations/file"
	_ "github.com/pipe-run/pipe/destinations/kafka"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/sources/kafka"
	httptarget "github.com/pipe-run/pipe/targets/http"
	"github.com/pipe-run/pipe/targets/stdout"
)

// kindList is what problems print as the known kinds of an interface.
func kindList(iface reflect.Type) string {
	var names []string
	for _, k := range pipeline.Kinds(iface) {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// TestBadConfigs loads every testdata/bad/NN-name.yaml and compares the
// whole error with NN-name.want, written by hand: one problem per line,
// file:line:column: pipe "x": path: message, in file order. In .want files
// {{sources}} and {{targets}} stand for the registered kinds, which depend
// on what the test binary links.
func TestBadConfigs(t *testing.T) {
	for _, name := range []string{"PIPE_TEST_UNSET_BROKERS", "PIPE_TEST_UNSET_ID", "PIPE_TEST_UNSET_URL", "PIPE_TEST_UNSET_COST"} {
		if _, ok := os.LookupEnv(name); ok {
			t.Fatalf("%s is set in the environment; the bad configs expect it unset", name)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("only %d bad configs", len(files))
	}
	wants, _ := filepath.Glob(filepath.Join("testdata", "bad", "*.want"))
	if len(wants) != len(files) {
		t.Errorf("%d .yaml files but %d .want files", len(files), len(wants))
	}
	kinds := strings.NewReplacer(
		"{{sources}}", kindList(reflect.TypeFor[pipeline.SourceConfig]()),
		"{{targets}}", kindList(reflect.TypeFor[pipeline.TargetConfig]()),
		"{{destinations}}", kindList(reflect.TypeFor[pipeline.DestinationConfig]()))
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			wantData, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			want := kinds.Replace(string(wantData))
			cfg, err := pipeline.LoadFile(file)
			if err == nil {
				t.Fatalf("no error; config has %d pipes", len(cfg.Pipes))
			}
			if cfg != nil {
				t.Errorf("got a config along with the error")
			}
			var ps pipeline.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a list of problems: %v", err)
			}
			if got := err.Error() + "\n"; got != want {
				t.Errorf("problems differ\n--- got\n%s--- want\n%s", got, want)
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].Line < ps[i-1].Line || ps[i].Line == ps[i-1].Line && ps[i].Column < ps[i-1].Column {
					t.Errorf("problems out of file order: %v before %v", ps[i-1], ps[i])
				}
			}
			// The same bytes through Parse give the same problems.
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.Parse(file, data); err == nil || err.Error()+"\n" != want {
				t.Errorf("Parse and LoadFile disagree: %v", err)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := pipeline.LoadFile(filepath.Join(t.TempDir(), "pipes.yaml"))
	var ps pipeline.Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ps) {
		t.Fatalf("missing file: %v, want a not-exist error that is not a config problem", err)
	}
}

func parseOK(t *testing.T, yaml string) *pipeline.Config {
	t.Helper()
	cfg, err := pipeline.Parse("pipes.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("unexpected problems:\n%v", err)
	}
	return cfg
}

func kafkaOf(t *testing.T, p pipeline.PipeConfig) *kafka.Config {
	t.Helper()
	k, ok := p.Source.(*kafka.Config)
	if !ok {
		t.Fatalf("pipe %s: source is %T, want *kafka.Config", p.Name, p.Source)
	}
	return k
}

func httpOf(t *testing.T, p pipeline.PipeConfig) *httptarget.Config {
	t.Helper()
	h, ok := p.Target.(*httptarget.Config)
	if !ok {
		t.Fatalf("pipe %s: target is %T, want *http.Config", p.Name, p.Target)
	}
	return h
}

func TestDefaults(t *testing.T) {
	cfg := parseOK(t, `
pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: localhost:9092
        topics: orders
    target:
      http:
        url: http://localhost:8080/in
  - name: audit
    source: {kafka: {bootstrapServers: [localhost:9092], topics: [audit]}}
    target: {stdout: {}}
`)
	if cfg.File != "pipes.yaml" || cfg.ShutdownTimeout != 30*time.Second || cfg.LogLevel != "INFO" || cfg.LogFormat != "text" {
		t.Errorf("file settings: file %q shutdownTimeout %v logLevel %q logFormat %q", cfg.File, cfg.ShutdownTimeout, cfg.LogLevel, cfg.LogFormat)
	}
	if len(cfg.Pipes) != 2 {
		t.Fatalf("%d pipes", len(cfg.Pipes))
	}
	p := cfg.Pipes[0]
	if p.Name != "orders" || p.Description != "" || p.Line != 3 || p.Column != 5 {
		t.Errorf("pipe: name %q description %q at %d:%d, want orders \"\" at 3:5", p.Name, p.Description, p.Line, p.Column)
	}
	k := kafkaOf(t, p)
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"bootstrapServers", k.BootstrapServers, []string{"localhost:9092"}},
		{"brokers", k.Brokers(), []string{"localhost:9092"}},
		{"topics", k.Topics, []string{"orders"}},
		{"startingPosition", k.StartingPosition, "TRIM_HORIZON"},
		{"batchSize", k.BatchSize, 100},
		{"maximumBatchingWindow", k.MaximumBatchingWindow, 500 * time.Millisecond},
		{"maximumConcurrency", k.MaximumConcurrency, 16},
		{"partitionBuffer", k.PartitionBuffer, pipeline.Size(2 << 20)},
		{"commitInterval", k.CommitInterval, 5 * time.Second},
		{"clientId", k.ClientID, "pipe"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("kafka %s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if !k.StartingPositionTimestamp.IsZero() || k.ConsumerGroupID != "" {
		t.Errorf("timestamp %v group %q, want zero and empty", k.StartingPositionTimestamp, k.ConsumerGroupID)
	}
	h := httpOf(t, p)
	if h.URL != "http://localhost:8080/in" || h.Timeout != 30*time.Second || h.Headers != nil {
		t.Errorf("http: %+v", h)
	}
	if _, ok := cfg.Pipes[1].Target.(*stdout.Config); !ok {
		t.Errorf("second target is %T", cfg.Pipes[1].Target)
	}
	if p := cfg.Pipes[1]; p.Line != 11 || p.Column != 5 {
		t.Errorf("second pipe at %d:%d, want 11:5", p.Line, p.Column)
	}
}

func TestExplicitValues(t *testing.T) {
	cfg := parseOK(t, `
shutdownTimeout: 1m
logLevel: DEBUG
logFormat: json
pipes:
  - name: orders.v2_EU-1
    description: Orders to the warehouse
    source:
      kafka:
        bootstrapServers: ["b1:9092", "b2:9093"]
        topics: [orders, orders.retry]
        consumerGroupId: "team/orders:v2+eu=1@x.y*"
        startingPosition: AT_TIMESTAMP
        startingPositionTimestamp: 2024-03-01T12:30:00.250+01:00
        batchSize: 10000
        maximumBatchingWindow: 300s
        maximumConcurrency: 1
        partitionBuffer: 64KB
        commitInterval: 100ms
        clientId: orders-pipe
    target:
      http:
        url: https://example.com/hook?x=1
        timeout: 1ms
        headers:
          X-Team: orders
          Content-Language: "42"
`)
	if cfg.ShutdownTimeout != time.Minute || cfg.LogLevel != "DEBUG" || cfg.LogFormat != "json" {
		t.Errorf("file settings: %v %q %q", cfg.ShutdownTimeout, cfg.LogLevel, cfg.LogFormat)
	}
	p := cfg.Pipes[0]
	k := kafkaOf(t, p)
	ts := time.Date(2024, 3, 1, 11, 30, 0, 250e6, time.UTC)
	if p.Name != "orders.v2_EU-1" || p.Description != "Orders to the warehouse" ||
		!slices.Equal(k.Brokers(), []string{"b1:9092", "b2:9093"}) || !slices.Equal(k.Topics, []string{"orders", "orders.retry"}) ||
		k.ConsumerGroupID != "team/orders:v2+eu=1@x.y*" || k.StartingPosition != "AT_TIMESTAMP" || !k.StartingPositionTimestamp.Equal(ts) ||
		k.BatchSize != 10000 || k.MaximumBatchingWindow != 300*time.Second || k.MaximumConcurrency != 1 ||
		k.PartitionBuffer != 64<<10 || k.CommitInterval != 100*time.Millisecond || k.ClientID != "orders-pipe" {
		t.Errorf("pipe %q %q, kafka %+v", p.Name, p.Description, k)
	}
	h := httpOf(t, p)
	if h.URL != "https://example.com/hook?x=1" || h.Timeout != time.Millisecond ||
		!reflect.DeepEqual(h.Headers, map[string]pipeline.Secret{"X-Team": "orders", "Content-Language": "42"}) {
		t.Errorf("http %+v", h)
	}
}

func TestStringAsList(t *testing.T) {
	cfg := parseOK(t, `
pipes:
  - name: a
    source:
      kafka:
        bootstrapServers: "b1:9092,b2:9093, b3:9094"
        topics: orders
    target: {stdout: {}}
`)
	k := kafkaOf(t, cfg.Pipes[0])
	if !slices.Equal(k.Topics, []string{"orders"}) {
		t.Errorf("topics %q, want [orders]", k.Topics)
	}
	if !slices.Equal(k.BootstrapServers, []string{"b1:9092,b2:9093, b3:9094"}) {
		t.Errorf("bootstrapServers %q, want the string as one entry", k.BootstrapServers)
	}
	if !slices.Equal(k.Brokers(), []string{"b1:9092", "b2:9093", "b3:9094"}) {
		t.Errorf("brokers %q, want [b1:9092 b2:9093 b3:9094]", k.Brokers())
	}
}

func TestReferences(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("s3cr3t-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crlf := filepath.Join(dir, "crlf")
	if err := os.WriteFile(crlf, []byte("line1\nline2\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PIPE_TEST_BROKERS", "k1:9092,k2:9092")
	t.Setenv("PIPE_TEST_BATCH", "250")
	t.Setenv("PIPE_TEST_WINDOW", "2s")
	t.Setenv("PIPE_TEST_EMPTY", "")
	t.Setenv("PIPE_TEST_NESTED", "${PIPE_TEST_BATCH}")
	os.Unsetenv("PIPE_TEST_NOT_SET")
	cfg := parseOK(t, `
pipes:
  - name: orders
    description: costs $5, or $$5 written twice, ${PIPE_TEST_NESTED}
    source:
      kafka:
        bootstrapServers: ${PIPE_TEST_BROKERS}
        topics: orders
        batchSize: ${PIPE_TEST_BATCH}
        maximumBatchingWindow: ${PIPE_TEST_WINDOW}
        maximumConcurrency: ${PIPE_TEST_NOT_SET:-7}
        commitInterval: ${PIPE_TEST_EMPTY:-3s}
        clientId: "pipe-${PIPE_TEST_NOT_SET:-}$${HOME}"
    target:
      http:
        url: http://localhost:${PIPE_TEST_NOT_SET:-8080}/in
        headers:
          Authorization: Bearer ${file:`+secret+`}
          X-Empty: "[${PIPE_TEST_EMPTY}]"
  - name: lines
    description: ${file:`+crlf+`}
    source:
      kafka: {bootstrapServers: k:9092, topics: lines}
    target: {stdout: {}}
`)
	if got := cfg.Pipes[1].Description; got != "line1\nline2" {
		t.Errorf("description from a file %q, want its lines with one trailing CRLF dropped", got)
	}
	p := cfg.Pipes[0]
	if want := "costs $5, or $5 written twice, ${PIPE_TEST_BATCH}"; p.Description != want {
		t.Errorf("description %q, want %q (a lone $ kept, $$ a literal $, a value not expanded again)", p.Description, want)
	}
	k := kafkaOf(t, p)
	if !slices.Equal(k.Brokers(), []string{"k1:9092", "k2:9092"}) || k.BatchSize != 250 || k.MaximumBatchingWindow != 2*time.Second ||
		k.MaximumConcurrency != 7 || k.CommitInterval != 3*time.Second || k.ClientID != "pipe-${HOME}" {
		t.Errorf("kafka: brokers %q batchSize %d window %v concurrency %d commit %v clientId %q",
			k.Brokers(), k.BatchSize, k.MaximumBatchingWindow, k.MaximumConcurrency, k.CommitInterval, k.ClientID)
	}
	h := httpOf(t, p)
	want := map[string]pipeline.Secret{"Authorization": "Bearer s3cr3t-token", "X-Empty": "[]"}
	if h.URL != "http://localhost:8080/in" || !reflect.DeepEqual(h.Headers, want) {
		t.Errorf("http: url %q headers %q, want %q", h.URL, h.Headers, want)
	}
}

func TestAnchorsAndAliases(t *testing.T) {
	cfg := parseOK(t, `
pipes:
  - name: orders
    source:
      kafka: &cluster
        bootstrapServers: &brokers [b1:9092, b2:9092]
        topics: orders
        batchSize: &size 500
    target: &out
      http:
        url: http://localhost:8080/
        headers: &headers {X-Team: core}
  - name: payments
    source:
      kafka:
        bootstrapServers: *brokers
        topics: payments
        batchSize: *size
    target: *out
  - name: refunds
    source:
      kafka: *cluster
    target:
      http:
        url: http://localhost:9090/
        headers: *headers
`)
	if len(cfg.Pipes) != 3 {
		t.Fatalf("%d pipes", len(cfg.Pipes))
	}
	k1, k2, k3 := kafkaOf(t, cfg.Pipes[0]), kafkaOf(t, cfg.Pipes[1]), kafkaOf(t, cfg.Pipes[2])
	if !slices.Equal(k2.Brokers(), []string{"b1:9092", "b2:9092"}) || k2.BatchSize != 500 || !slices.Equal(k2.Topics, []string{"payments"}) {
		t.Errorf("payments kafka: %+v", k2)
	}
	if !slices.Equal(k3.Topics, []string{"orders"}) || k3.BatchSize != 500 || k3 == k1 {
		t.Errorf("refunds kafka: %+v (same struct as orders: %v)", k3, k3 == k1)
	}
	h1, h2, h3 := httpOf(t, cfg.Pipes[0]), httpOf(t, cfg.Pipes[1]), httpOf(t, cfg.Pipes[2])
	if h2.URL != h1.URL || h2.Headers["X-Team"] != "core" || h3.URL != "http://localhost:9090/" || h3.Headers["X-Team"] != "core" {
		t.Errorf("targets: %+v %+v %+v", h1, h2, h3)
	}
	if h1 == h2 {
		t.Errorf("an aliased target must be decoded into its own config, not shared")
	}
}

func TestDuplicateNameThroughAlias(t *testing.T) {
	_, err := pipeline.Parse("pipes.yaml", []byte(`
pipes:
  - &p
    name: orders
    source: {kafka: {bootstrapServers: "b:1", topics: t}}
    target: {stdout: {}}
  - *p
`))
	want := `pipes.yaml:7:5: pipe "orders": name: another pipe has the same name`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestSecretsNotShown feeds invalid values through ${ENV} and ${file:}:
// the problems name the reference, never the value.
func TestSecretsNotShown(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	if err := os.WriteFile(file, []byte("gopher://admin:file-secret-42@host/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"PIPE_TEST_BS":       "abc-secret-1",
		"PIPE_TEST_BIG":      "99999",
		"PIPE_TEST_URL":      "ftp://user:hunter2-secret-2@example.com/",
		"PIPE_TEST_WINDOW":   "secret-3s",
		"PIPE_TEST_POSITION": "SECRET_POSITION_4",
		"PIPE_TEST_GROUP":    "group with secret 5",
		"PIPE_TEST_SIZE":     "secret6MB",
		"PIPE_TEST_TS":       "secret-time-7",
		"PIPE_TEST_TOPIC":    "topic!secret8",
		"PIPE_TEST_NAME":     "pipe name secret 9",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	_, err := pipeline.Parse("pipes.yaml", []byte(`
pipes:
  - name: ${PIPE_TEST_NAME}
    source:
      kafka:
        bootstrapServers: localhost:9092
        topics: [orders, "${PIPE_TEST_TOPIC}"]
        batchSize: ${PIPE_TEST_BS}
        maximumConcurrency: ${PIPE_TEST_BIG}
        maximumBatchingWindow: ${PIPE_TEST_WINDOW}
        startingPosition: ${PIPE_TEST_POSITION}
        consumerGroupId: x-${PIPE_TEST_GROUP}
        partitionBuffer: ${PIPE_TEST_SIZE}
        startingPositionTimestamp: ${PIPE_TEST_TS}
    target:
      http:
        url: ${PIPE_TEST_URL}
  - name: by-file
    source: {kafka: {bootstrapServers: "localhost:9092", topics: t}}
    target:
      http:
        url: ${file:`+file+`}
`))
	if err == nil {
		t.Fatal("no problems")
	}
	text := err.Error()
	for name, v := range secrets {
		if strings.Contains(text, v) {
			t.Errorf("the value of %s (%q) appears in the problems:\n%s", name, v, text)
		}
	}
	for _, v := range []string{"file-secret-42", "hunter2"} {
		if strings.Contains(text, v) {
			t.Errorf("%q appears in the problems:\n%s", v, text)
		}
	}
	// Each bad value is still reported, by its reference.
	for _, want := range []string{
		"source.kafka.topics[1]: must be a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -), got the value of ${PIPE_TEST_TOPIC}",
		"source.kafka.batchSize: expected an integer, got the value of ${PIPE_TEST_BS}",
		"source.kafka.maximumConcurrency: must be between 1 and 1000, got the value of ${PIPE_TEST_BIG}",
		"source.kafka.maximumBatchingWindow: expected a duration like 500ms, 30s or 5m, got the value of ${PIPE_TEST_WINDOW}",
		"source.kafka.startingPosition: must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, got the value of ${PIPE_TEST_POSITION}",
		"source.kafka.consumerGroupId: must be 1 to 200 characters of a-z A-Z 0-9 - / * : _ + = . @, got the value of x-${PIPE_TEST_GROUP}",
		"source.kafka.partitionBuffer: expected a size like 512KB, 6MB or 1GB, got the value of ${PIPE_TEST_SIZE}",
		"source.kafka.startingPositionTimestamp: expected an RFC 3339 timestamp like 2026-01-02T15:04:05Z, got the value of ${PIPE_TEST_TS}",
		"name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -, got the value of ${PIPE_TEST_NAME}",
		"target.http.url: must be an absolute http:// or https:// URL",
		`pipes.yaml:22:14: pipe "by-file": target.http.url: must be an absolute http:// or https:// URL`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want pipeline.Size
	}{
		{"0", 0}, {"512", 512}, {"512B", 512}, {"64KB", 64 << 10}, {"6MB", 6 << 20}, {"6 MB", 6 << 20}, {"6mb", 6 << 20},
		{"1GB", 1 << 30}, {"1.5MB", 3 << 19}, {" 8MB ", 8 << 20},
	} {
		got, err := pipeline.ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "six MB", "6TB", "NaN", "NaNMB", "InfGB", "1e300GB", "6 M B"} {
		if got, err := pipeline.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, c := range []struct {
		in   pipeline.Size
		want string
	}{{0, "0B"}, {1023, "1023B"}, {1 << 10, "1KB"}, {6 << 20, "6MB"}, {3 << 19, "1536KB"}, {2 << 30, "2GB"}} {
		if got := c.in.String(); got != c.want {
			t.Errorf("Size(%d).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSecretString(t *testing.T) {
	s := pipeline.Secret("hunter2")
	if s.String() != "<redacted>" || s.Reveal() != "hunter2" {
		t.Fatalf("String %q Reveal %q", s.String(), s.Reveal())
	}
}
