package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	httptarget "github.com/pipe-run/pipe/targets/http"
)

// printKinds is a config for every component kind the binary registers,
// by the interface it is registered under. Each holds secrets the way a
// user would write them; {{dir}} stands for a directory of secret files.
var printKinds = map[reflect.Type]map[string]string{
	reflect.TypeFor[pipeline.SourceConfig](): {
		"kafka": `{bootstrapServers: "${PIPE_PRINT_BROKERS}", topics: [orders, refunds], consumerGroupId: shop, batchSize: 500, maximumBatchingWindow: 2s, partitionBuffer: 4MB,
          sasl: {mechanism: SCRAM-SHA-256, username: alice, password: "${PIPE_PRINT_KAFKA_PASSWORD}"}}`,
	},
	reflect.TypeFor[pipeline.EnrichmentConfig](): {
		"http":   `{url: "https://enrich.example.com/batch", timeout: 10s, headers: {Authorization: "Bearer ${PIPE_PRINT_ENRICH_TOKEN}", X-Tenant: Literal-tenant-7q}}`,
		"lambda": `{functionName: "arn:aws:lambda:eu-west-1:123456789012:function:enrich", qualifier: live, inputTemplate: '{"id": <$.value.id>}', aws: {endpoint: "http://127.0.0.1:1"}}`,
	},
	reflect.TypeFor[pipeline.TargetConfig](): {
		"eventbridge": `{eventBusName: orders, source: shop.orders, detailType: "<$.value.type>", resources: ["arn:aws:s3:::bucket"], aws: {region: eu-west-1, profile: prod}}`,
		"http": `{url: "https://hooks.example.com/*/orders", mode: record, pathParameterValues: ["$.value.tenant"], headerParameters: {X-Order: "$.value.id"},
          queryStringParameters: {source: kafka}, headers: {X-Signature: "sig=${file:{{dir}}/signature}"},
          auth: {apiKey: {name: X-Api-Key, value: Literal-api-key-9x}}, rateLimit: {perSecond: 2.5, burst: 5}, concurrency: 4}`,
		"kafka": `{bootstrapServers: [k1.example.com:9093], topic: "orders-<$.value.region>", key: $.value.customerId, compression: zstd, maxMessageBytes: 512KB,
          sasl: {mechanism: OAUTHBEARER, oauth: {tokenUrl: "https://idp.example.com/token", clientId: pipe, clientSecret: "${file:{{dir}}/oauth-secret}", scopes: [kafka]},
            extensions: {logicalCluster: lkc-1, identityPoolId: "${PIPE_PRINT_POOL}"}}}`,
		"lambda": `{functionName: orders, invocationType: FIRE_AND_FORGET, timeout: 1m, aws: {roleArn: "arn:aws:iam::123456789012:role/pipe", externalId: "${PIPE_PRINT_EXTERNAL_ID}"}}`,
		"sns":    `{topicArn: "arn:aws:sns:eu-west-1:123456789012:orders.fifo", messageGroupId: "$.value.customerId"}`,
		"sqs":    `{queueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders", inputTemplate: '{"order": <$.value>}', delaySeconds: 5}`,
		"stdout": `{}`,
	},
	reflect.TypeFor[pipeline.DestinationConfig](): {
		"file":  `{path: "{{dir}}/failed.jsonl", sync: false}`,
		"http":  `{url: "https://failures.example.com/", headers: {Authorization: "${file:{{dir}}/failure-token}", X-Literal: Literal-header-3v}}`,
		"kafka": `{topic: failed, bootstrapServers: [k2.example.com:9093], sasl: {mechanism: OAUTHBEARER, token: "${PIPE_PRINT_DLQ_TOKEN}"}}`,
		"sns":   `{topicArn: "arn:aws:sns:eu-west-1:123456789012:failed", payload: false}`,
		"sqs":   `{queueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/failed", maxMessageSize: 1MB}`,
	},
}

// printSecrets are the secret values printKinds refers to, by environment
// variable or file name.
var printSecrets = struct{ env, files map[string]string }{
	env: map[string]string{
		"PIPE_PRINT_BROKERS":        "10.1.1.1:9092,10.1.1.2:9092",
		"PIPE_PRINT_KAFKA_PASSWORD": "Kafka-pw-q81z",
		"PIPE_PRINT_ENRICH_TOKEN":   "Enrich-token-w3",
		"PIPE_PRINT_POOL":           "pool-Secret-77",
		"PIPE_PRINT_EXTERNAL_ID":    "External-id-k2p",
		"PIPE_PRINT_DLQ_TOKEN":      "Dlq-token-5rr",
	},
	files: map[string]string{
		"signature":     "Sig-file-m4\n",
		"oauth-secret":  "OAuth-file-secret-8u",
		"failure-token": "Failure-file-token-1c\n",
	},
}

// writePrintConfig writes a config using every kind of printKinds: one pipe
// per target, enrichments and destinations taken in turn, and the filter
// and transform on the first pipe.
func writePrintConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range printSecrets.env {
		t.Setenv(k, v)
	}
	for name, v := range printSecrets.files {
		writeFile(t, filepath.Join(dir, name), v)
	}
	sorted := func(iface reflect.Type) []string {
		var names []string
		for name := range printKinds[iface] {
			names = append(names, name)
		}
		sort.Strings(names)
		return names
	}
	kind := func(iface reflect.Type, name string) string {
		return fmt.Sprintf("{%s: %s}", name, strings.ReplaceAll(printKinds[iface][name], "{{dir}}", dir))
	}
	enrichments := sorted(reflect.TypeFor[pipeline.EnrichmentConfig]())
	destinations := sorted(reflect.TypeFor[pipeline.DestinationConfig]())
	var b strings.Builder
	b.WriteString("shutdownTimeout: 2m\nlogFormat: json\nadmin: {address: \"127.0.0.1:0\", unreadyOnStall: true}\npipes:\n")
	for i, target := range sorted(reflect.TypeFor[pipeline.TargetConfig]()) {
		fmt.Fprintf(&b, "  - name: to-%s\n    source: %s\n", target, kind(reflect.TypeFor[pipeline.SourceConfig](), "kafka"))
		if i == 0 {
			b.WriteString(`    filter:
      patterns:
        - value: {amount: [{numeric: [">", 100]}]}
        - '{"headers": {"source": [{"prefix": "web"}]}}'
      expression: value.amount < 1e6
    transform:
      expression: |
        {"id": value.id,
         "total": value.amount * 1.2}
`)
		}
		fmt.Fprintf(&b, "    enrichment: %s\n", kind(reflect.TypeFor[pipeline.EnrichmentConfig](), enrichments[i%len(enrichments)]))
		fmt.Fprintf(&b, "    target: %s\n", kind(reflect.TypeFor[pipeline.TargetConfig](), target))
		fmt.Fprintf(&b, "    onFailure: %s\n", kind(reflect.TypeFor[pipeline.DestinationConfig](), destinations[i%len(destinations)]))
		fmt.Fprintf(&b, "    maximumRetryAttempts: %d\n    bisectBatchOnError: true\n    logLevel: TRACE\n", i)
	}
	file := filepath.Join(dir, "pipes.yaml")
	writeFile(t, file, b.String())
	return file
}

// redacted is how a secret written in the file is printed.
const redacted = "<redacted>"

// TestPrintEveryKind runs `pipe validate --print` on a config that uses
// every kind the binary registers, with secrets from the environment and
// from files and some written in the file: the output names no secret
// value, and parsed with the same environment it is the same config.
func TestPrintEveryKind(t *testing.T) {
	for _, iface := range []reflect.Type{
		reflect.TypeFor[pipeline.SourceConfig](), reflect.TypeFor[pipeline.EnrichmentConfig](),
		reflect.TypeFor[pipeline.TargetConfig](), reflect.TypeFor[pipeline.DestinationConfig](),
	} {
		for _, k := range pipeline.Kinds(iface) {
			if _, ok := printKinds[iface][k.Name]; !ok {
				t.Errorf("%s kind %q is registered but has no config in printKinds: add one", iface.Name(), k.Name)
			}
		}
		if got, want := len(pipeline.Kinds(iface)), len(printKinds[iface]); got != want {
			t.Errorf("%s: %d kinds registered, %d in printKinds", iface.Name(), got, want)
		}
	}
	for _, slot := range []reflect.Type{reflect.TypeFor[pipeline.FilterConfig](), reflect.TypeFor[pipeline.TransformConfig]()} {
		if len(pipeline.Kinds(slot)) != 1 {
			t.Errorf("%s is not registered", slot.Name())
		}
	}

	file := writePrintConfig(t)
	want, err := pipeline.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runPipe(t, "validate", "--print", "-f", file)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stdout != string(pipeline.Print(want)) {
		t.Errorf("validate --print printed\n%s\nnot pipeline.Print's\n%s", stdout, pipeline.Print(want))
	}

	for _, v := range printSecrets.env {
		if strings.Contains(stdout, v) {
			t.Errorf("the value %q of an environment variable is printed", v)
		}
	}
	for _, v := range printSecrets.files {
		if strings.Contains(stdout, strings.TrimSpace(v)) {
			t.Errorf("the content %q of a secret file is printed", v)
		}
	}
	for _, literal := range []string{"Literal-api-key-9x", "Literal-header-3v", "Literal-tenant-7q"} {
		if strings.Contains(stdout, literal) {
			t.Errorf("the literal secret %q is printed", literal)
		}
	}
	input, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := strings.Count(stdout, redacted), strings.Count(string(input), "Literal-"); n != want {
		t.Errorf("%d values redacted, want the %d literal secrets", n, want)
	}

	got, err := pipeline.Parse(file, []byte(stdout))
	if err != nil {
		t.Fatalf("the printed config does not parse: %v\n%s", err, stdout)
	}
	// Literal secrets come back redacted; put them back to compare the rest.
	for i := range got.Pipes {
		if c, ok := got.Pipes[i].Target.(*httptarget.Config); ok {
			c.Auth.APIKey.Value = "Literal-api-key-9x"
		}
		if e := reflect.ValueOf(got.Pipes[i].Enrichment); e.IsValid() && !e.IsNil() {
			if h := e.Elem().FieldByName("Headers"); h.IsValid() && h.Len() > 0 {
				h.SetMapIndex(reflect.ValueOf("X-Tenant"), reflect.ValueOf(pipeline.Secret("Literal-tenant-7q")))
			}
		}
		if h := reflect.ValueOf(got.Pipes[i].OnFailure).Elem().FieldByName("Headers"); h.IsValid() {
			h.SetMapIndex(reflect.ValueOf("X-Literal"), reflect.ValueOf(pipeline.Secret("Literal-header-3v")))
		}
	}
	if d := testenv.ConfigDiff(want, got); d != "" {
		t.Errorf("the printed config reads back different: %s\n%s", d, stdout)
	}
	for _, kinds := range printKinds {
		for name := range kinds {
			if !strings.Contains(stdout, "\n      "+name+":\n") && !strings.Contains(stdout, "\n      "+name+": {}\n") {
				t.Errorf("kind %s is not written as {%s: ...}", name, name)
			}
		}
	}
}

// TestPrintInvalid: with --print, an invalid file prints its problems and
// no config.
func TestPrintInvalid(t *testing.T) {
	t.Setenv("PIPE_PRINT_SECRET", "Never-printed-4k")
	file := filepath.Join(t.TempDir(), "pipes.yaml")
	writeFile(t, file, "pipes:\n  - name: x\n    source: {kafka: {bootstrapServers: a:1, topics: t, batchSize: \"${PIPE_PRINT_SECRET}\"}}\n    target: {stdout: {}}\n")
	code, stdout, stderr := runPipe(t, "validate", "--print", "-f", file)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "batchSize: expected an integer, got the value of ${PIPE_PRINT_SECRET}") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "Never-printed") {
		t.Error("the secret is printed")
	}
}
