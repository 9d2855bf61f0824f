package main

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

const testPipes = `pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: 127.0.0.1:1
        topics: [orders]
    filter:
      patterns:
        - '{"value": {"type": ["order"]}}'
        - value:
            amount: [{numeric: [">", 1000]}]
      expression: value.country != "XX"
    transform:
      expression: '{"id": value.id, "total": value.amount * 2}'
    target:
      stdout: {}
  - name: other
    source:
      kafka:
        bootstrapServers: 127.0.0.1:1
        topics: [other]
    target:
      stdout: {}
`

// tempFile writes content to a new file named name and returns its path.
func tempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, content)
	return p
}

// TestPipeTestLines: plain values, one per line; each record's fate and why,
// the transformed values, the envelope the target would get, and exit 1
// because one record failed the transform.
func TestPipeTestLines(t *testing.T) {
	cfg := tempFile(t, "pipes.yaml", testPipes)
	in := tempFile(t, "in.jsonl", `{"type":"order","id":1,"amount":5,"country":"DE"}
{"type":"refund","id":2,"amount":5}

{"type":"refund","id":3,"amount":5000}
not json
{"type":"order","id":4,"amount":5,"country":"XX"}
{"type":"order","id":5,"amount":"x","country":"DE"}
`)
	code, stdout, stderr := runPipe(t, "test", "-f", cfg, "--pipe", "orders", "--topic", "orders", "-o", "json", in)
	if code != 1 {
		t.Errorf("exit code %d, want 1; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, "some records failed: 1 of 6") {
		t.Errorf("stderr %q", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{
		`{"topic":"orders","partition":0,"offset":0,"result":"passed","value":{"id":1,"total":10}}`,
		`{"topic":"orders","partition":0,"offset":1,"result":"filtered","why":"no pattern matches: pattern 1: value.type: \"refund\" does not match [\"order\"]; pattern 2: value.amount: 5 does not match [{\"numeric\":[\"\u003e\",1000]}]"}`,
		`{"topic":"orders","partition":0,"offset":2,"result":"passed","value":{"id":3,"total":10000}}`,
		`{"topic":"orders","partition":0,"offset":3,"result":"filtered","why":"no pattern matches: pattern 1: value.type: missing (value is a string, not an object) does not match [\"order\"]; pattern 2: value.amount: missing (value is a string, not an object) does not match [{\"numeric\":[\"\u003e\",1000]}]"}`,
		`{"topic":"orders","partition":0,"offset":4,"result":"filtered","why":"expression is false: value.country != \"XX\""}`,
		`{"topic":"orders","partition":0,"offset":5,"result":"error","why":"transform failed on orders-0 offset 5: invalid operation: string * int"}`,
	}
	if len(lines) != len(want)+2 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want)+2, stdout)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], w)
		}
	}
	var req struct {
		Request string          `json:"request"`
		Records []int           `json:"records"`
		Body    json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal([]byte(lines[len(want)]), &req); err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.ParseEnvelope(req.Body)
	if err != nil {
		t.Fatalf("target body is not an envelope: %v", err)
	}
	if len(b.Records) != 2 || string(b.Records[0].Value) != `{"id":1,"total":10}` || b.Records[1].Offset != 2 {
		t.Errorf("envelope records %+v", b.Records)
	}
	if lines[len(want)+1] != `{"notes":null,"summary":{"errors":1,"filtered":3,"passed":2,"records":6}}` {
		t.Errorf("summary %s", lines[len(want)+1])
	}
}

// TestPipeTestEnvelope: a Lambda-style envelope as input, text output, and
// exit 0 when every record was decided.
func TestPipeTestEnvelope(t *testing.T) {
	cfg := tempFile(t, "pipes.yaml", testPipes)
	v := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	env := `{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":{"orders-3":[
	  {"topic":"orders","partition":3,"offset":7,"timestamp":1,"timestampType":"CREATE_TIME","key":"` + v("k") + `","value":"` + v(`{"type":"order","id":9,"amount":1}`) + `","headers":[{"h":[104,105]}]},
	  {"topic":"orders","partition":3,"offset":8,"timestamp":1,"timestampType":"CREATE_TIME","value":"` + v(`{"type":"refund"}`) + `","headers":[]}]}}`
	in := tempFile(t, "env.json", env)
	code, stdout, stderr := runPipe(t, "test", "-f", cfg, "-p", "orders", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"orders-3@7  passed\n    value: {\"id\":9,\"total\":2}\n",
		"orders-3@8  filtered: no pattern matches: pattern 1: value.type: \"refund\" does not match [\"order\"]; pattern 2: value.amount: missing does not match [{\"numeric\":[\">\",1000]}]\n",
		"the target would receive:\n  the batch envelope (1 record(s))\n",
		"2 record(s): 1 passed, 1 filtered, 0 error(s)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestPipeTestRecordList: a JSON list of envelope records; a pipe with no
// stages passes everything.
func TestPipeTestRecordList(t *testing.T) {
	cfg := tempFile(t, "pipes.yaml", testPipes)
	in := tempFile(t, "list.json", `[{"topic":"other","partition":1,"offset":3,"value":"`+base64.StdEncoding.EncodeToString([]byte("plain text"))+`"}]`)
	code, stdout, stderr := runPipe(t, "test", "-f", cfg, "-p", "other", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "other-1@3  passed\n    value (text): \"plain text\"\n") {
		t.Errorf("output:\n%s", stdout)
	}
}

func TestPipeTestErrors(t *testing.T) {
	cfg := tempFile(t, "pipes.yaml", testPipes)
	in := tempFile(t, "in.jsonl", "{}\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"test", "-f", cfg, in}, 1, "has 2 pipes; say which with --pipe (orders, other)"},
		{[]string{"test", "-f", cfg, "-p", "nope", in}, 1, `has no pipe "nope" (it has: orders, other)`},
		{[]string{"test", "-f", cfg, "-p", "orders", tempFile(t, "bad.json", `[{"topic":"a"}]`)}, 1, "bad.json: record 0: no partition"},
		{[]string{"test", "-f", cfg, "-p", "orders", tempFile(t, "empty", "")}, 1, "empty: no records"},
		{[]string{"test", "-f", tempFile(t, "bad.yaml", "pipes: 3\n"), in}, 2, "invalid config"},
	} {
		code, _, stderr := runPipe(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args[1:], code, stderr, tc.code, tc.want)
		}
	}
}

// TestPipeTestNotSent: a record the target would fail before any call is
// named by its coordinates, not its place among the records that passed.
func TestPipeTestNotSent(t *testing.T) {
	cfg := tempFile(t, "pipes.yaml", `pipes:
  - name: orders
    source:
      kafka:
        bootstrapServers: 127.0.0.1:1
        topics: [orders]
    filter:
      patterns: ['{"value": {"type": ["order"]}}']
    target:
      http:
        url: http://127.0.0.1:1/c/*
        mode: record
        pathParameterValues: [$.value.c]
`)
	in := tempFile(t, "in.jsonl", `{"type":"refund","c":"a"}
{"type":"order","c":"b"}
{"type":"order"}
`)
	code, stdout, stderr := runPipe(t, "test", "-f", cfg, "--topic", "orders", in)
	if code != 1 || !strings.Contains(stderr, "some records failed: 1 of 3") {
		t.Errorf("exit code %d, stderr %q; want 1 and 1 of 3 failed", code, stderr)
	}
	want := "  POST http://127.0.0.1:1/c/* (1 record(s))\n    records: orders-0@2\n    error: path parameter 1 (pathParameterValues[0]) is empty\n"
	if !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}

	code, stdout, _ = runPipe(t, "test", "-f", cfg, "--topic", "orders", "-o", "json", in)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var req struct {
			Records     []int    `json:"records"`
			Coordinates []string `json:"coordinates"`
			Error       string   `json:"error"`
		}
		if json.Unmarshal([]byte(line), &req) != nil || req.Error == "" {
			continue
		}
		found = true
		if len(req.Records) != 1 || req.Records[0] != 1 || len(req.Coordinates) != 1 || req.Coordinates[0] != "orders-0@2" {
			t.Errorf("request not sent: %s, want records [1] and coordinates [orders-0@2]", line)
		}
	}
	if !found {
		t.Errorf("no request with an error:\n%s", stdout)
	}
}

// A request not sent for many records names the first ones and counts
// the rest.
func TestPrintTargetManyNotSent(t *testing.T) {
	var recs []pipeline.Record
	var idx []int
	for i := range 12 {
		recs = append(recs, pipeline.Record{Topic: "t", Partition: 3, Offset: int64(100 + i)})
		idx = append(idx, i)
	}
	var out strings.Builder
	reqs := []pipeline.Request{{Records: idx, Summary: "not sent: fails permanently", Err: "too large"}}
	if err := printTarget(&out, reqs, recs, nil, 12, 0, 12, false); err != nil {
		t.Fatal(err)
	}
	want := "    records: t-3@100, t-3@101, t-3@102, t-3@103, t-3@104, t-3@105, t-3@106, t-3@107, t-3@108, t-3@109 and 2 more\n    error: too large\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
