package lambda_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // a source kind for the test configs
	_ "github.com/pipe-run/pipe/targets/lambda"
)

// awsEnv gives the SDK static credentials and a region, and keeps it away
// from the machine's AWS settings and instance metadata.
func awsEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test")
	t.Setenv("AWS_REGION", "us-east-1")
}

// config parses a pipes.yaml whose target is the lambda block given.
func config(t *testing.T, lines ...string) (*pipeline.Config, error) {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: test\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders]\n")
	y.WriteString("    target:\n      lambda:\n")
	for _, l := range lines {
		fmt.Fprintf(&y, "        %s\n", l)
	}
	return pipeline.Parse("pipes.yaml", []byte(y.String()))
}

// newTarget builds a lambda target from a pipes.yaml, so defaults and
// checks apply; endpoint is the Lambda API's URL, given as aws.endpoint
// when the lines have an aws: block, else as AWS_ENDPOINT_URL_LAMBDA.
func newTarget(t *testing.T, endpoint string, lines ...string) pipeline.Target {
	t.Helper()
	awsEnv(t)
	if i := slices.Index(lines, "aws:"); i >= 0 {
		lines = slices.Insert(slices.Clone(lines), i+1, "  endpoint: "+endpoint)
	} else {
		t.Setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)
	}
	cfg, err := config(t, lines...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	tg, err := cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// rec is a record of partition p of orders with key k and value v.
func rec(p int32, off int64, k, v string) pipeline.Record {
	return pipeline.Record{Topic: "orders", Partition: p, Offset: off,
		Timestamp: time.UnixMilli(1_700_000_000_000 + off), Key: []byte(k), Value: []byte(v),
		Headers: []pipeline.Header{{Key: "h", Value: []byte{0xdc, 'x'}}}}
}

func batch(recs ...pipeline.Record) *pipeline.Batch {
	return &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "b-1:9092,b-2:9092", Records: recs}
}

// envelopeRecords returns the coordinates of the records of an envelope,
// in envelope order. It finds them by their first fields, which
// AppendEnvelope writes first, rather than decoding megabytes of JSON.
func envelopeRecords(t *testing.T, body []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(body, []byte(`{"eventSource":`)) {
		t.Fatalf("not an envelope: %.200s", body)
	}
	var out []string
	for rest := body; ; {
		i := bytes.Index(rest, []byte(`{"topic":"`))
		if i < 0 {
			return out
		}
		rest = rest[i+len(`{"topic":"`):]
		var topic string
		var partition, offset int64
		end := bytes.Index(rest, []byte(`,"timestamp":`))
		if _, err := fmt.Sscanf(strings.NewReplacer(`","partition":`, " ", `,"offset":`, " ").Replace(string(rest[:max(end, 0)])), "%s %d %d", &topic, &partition, &offset); end < 0 || err != nil {
			t.Fatalf("a record of the envelope does not start with topic, partition, offset: %.100s", rest)
		}
		out = append(out, fmt.Sprintf("%s-%d/%d", topic, partition, offset))
	}
}

func coords(b *pipeline.Batch, idx ...int) []string {
	var out []string
	if idx == nil {
		for i := range b.Records {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		r := &b.Records[i]
		out = append(out, fmt.Sprintf("%s-%d/%d", r.Topic, r.Partition, r.Offset))
	}
	return out
}
