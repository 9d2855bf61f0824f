package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/testenv"
)

// awsProcEnv is the environment of a pipe process that reaches emulators:
// a region, fake static credentials, no shared files or instance metadata,
// and AWS_ENDPOINT_URL on a closed port, so that only the endpoints of the
// config's aws: blocks reach anything.
func awsProcEnv(t *testing.T) []string {
	dir := t.TempDir()
	return []string{
		"AWS_REGION=" + testenv.FauxqsRegion,
		"AWS_ACCESS_KEY_ID=AKIDE2ETEST",
		"AWS_SECRET_ACCESS_KEY=e2e-secret-access-key",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=http://127.0.0.1:1",
	}
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKafkaEnrichLambdaToSQS runs the binary with a Lambda enrichment on
// the runtime interface emulator (the aws-lambda-go function of
// internal/testenv/lambdafn, enrich mode: values upper-cased, records keyed
// "drop" left out) and an SQS FIFO queue on fauxqs as the target, grouped
// by the record key and deduplicated by the record's coordinates. The
// queue receives exactly one message per record that was not dropped: its
// body is the record as JSON with the enriched value and every other field
// as in Kafka, its group and deduplication IDs are the key and the
// coordinates, and each group's messages come in offset order. The
// function saw every record, and every offset is committed.
func TestKafkaEnrichLambdaToSQS(t *testing.T) {
	b := startBroker(t)
	const topic, group = "e2e-enrich", "e2e-enrich-sqs"
	b.createTopic(t, topic)
	fn := testenv.StartLambda(t, testenv.LambdaOptions{Mode: "enrich"})
	fq := testenv.StartFauxqs(t)
	queue := fq.CreateQueue(t, "enriched.fifo", nil)

	// Five customers, each in a partition of its own, and records keyed
	// "drop" that the function leaves out; a tombstone, a text value and
	// headers with every kind of byte.
	var rs []*kgo.Record
	for i := range 60 {
		c := i % 5
		r := &kgo.Record{
			Partition: int32(c),
			Key:       []byte(fmt.Sprintf("customer-%d", c)),
			Value:     []byte(fmt.Sprintf(`{"orderId":%d,"customer":"customer-%d","item":"café au lait","note":"line\nbreak"}`, i, c)),
			Headers:   []kgo.RecordHeader{{Key: "source", Value: []byte("web")}, {Key: "bin", Value: []byte{0x00, 0xdc, 0xff}}},
		}
		switch {
		case i%11 == 3:
			r.Key = []byte("drop")
			r.Partition = 7
		case i == 17:
			r.Value = nil // a tombstone: nothing to upper-case, stays null
		case i == 23:
			r.Value = []byte("plain text order")
			r.Headers = nil
		}
		rs = append(rs, r)
	}
	truth := produceRecs(t, b, topic, rs)
	want := map[po]*rec{}
	for k, r := range truth {
		if string(r.key) != "drop" {
			want[k] = r
		}
	}

	cfg := writeConfig(t, fmt.Sprintf(`admin: {address: "127.0.0.1:0"}
pipes:
  - name: enrich-to-sqs
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        startingPosition: TRIM_HORIZON
        maximumBatchingWindow: 50ms
    enrichment:
      lambda:
        functionName: %s
        aws: {endpoint: %q}
    target:
      sqs:
        queueUrl: %s
        messageGroupId: $.key
        messageDeduplicationId: <$.topic>-<$.partition>-<$.offset>
        aws: {endpoint: %q}
`, b.addr, topic, group, testenv.LambdaFunction, fn.Endpoint, queue, fq.URL))
	p := startProc(t, "pipe", awsProcEnv(t), nil, pipeBin, "run", "-f", cfg)
	ends := b.endOffsets(t, topic)
	waitFor(t, 90*time.Second, "every offset committed", func() (bool, string) {
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	msgs := fq.Receive(t, queue, len(want), 30*time.Second)
	p.stop(t)

	if len(msgs) != len(want) {
		t.Errorf("%d messages, want %d (one per record not dropped)", len(msgs), len(want))
	}
	seen := map[po]bool{}
	lastOfGroup := map[string]int64{}
	for _, m := range msgs {
		body := aws.ToString(m.Body)
		var r envRecord
		if err := strictDecode([]byte(body), &r, "topic", "partition", "offset", "timestamp", "timestampType", "headers"); err != nil {
			t.Errorf("message body is not a record: %v\n%s", err, body)
			continue
		}
		k := po{r.Partition, r.Offset}
		w := want[k]
		switch {
		case r.Topic != topic || w == nil:
			t.Errorf("message of %s-%d@%d, which was not to be delivered: %s", r.Topic, r.Partition, r.Offset, body)
			continue
		case seen[k]:
			t.Errorf("record %v delivered twice", k)
		}
		seen[k] = true
		value := w.value
		if value != nil {
			value = bytes.ToUpper(value)
		}
		for _, msg := range []string{
			checkB64("key", r.Key, w.key),
			checkB64("value", r.Value, value),
			sameTime(r.Timestamp, r.TimestampType, w),
			sameHeaderList(r.Headers, w.headers),
		} {
			if msg != "" {
				t.Errorf("record %v: %s", k, msg)
			}
		}
		groupID, dedupID := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]
		if groupID != string(w.key) || dedupID != fmt.Sprintf("%s-%d-%d", topic, r.Partition, r.Offset) {
			t.Errorf("record %v: MessageGroupId %q, MessageDeduplicationId %q", k, groupID, dedupID)
		}
		if last, ok := lastOfGroup[groupID]; ok && r.Offset <= last {
			t.Errorf("group %s: offset %d received after %d", groupID, r.Offset, last)
		}
		lastOfGroup[groupID] = r.Offset
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("record %v: no message", k)
		}
	}

	// The function received every record, "drop" ones included.
	got := map[po]bool{}
	for _, ev := range fn.Events(t) {
		if ev.Event == nil {
			t.Fatalf("the function could not decode an event as events.KafkaEvent: %.200s", ev.Payload)
		}
		for _, recs := range ev.Event.Records {
			for _, r := range recs {
				got[po{int32(r.Partition), r.Offset}] = true
			}
		}
	}
	for k := range truth {
		if !got[k] {
			t.Errorf("record %v never reached the enrichment function", k)
		}
	}
	t.Logf("%d records, %d dropped by the function, %d messages in %d groups, %d invocations", len(truth), len(truth)-len(want), len(msgs), len(lastOfGroup), len(fn.Events(t)))
	checkQuietLog(t, p)
}

// checkQuietLog: a run where nothing fails logs no warning or error.
func checkQuietLog(t *testing.T, p *proc) {
	t.Helper()
	for _, line := range strings.Split(p.errors(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("log: %s", line)
		}
	}
}

// sameTime compares a record's timestamp and its type with the broker's.
func sameTime(ts int64, typ string, w *rec) string {
	if ts != w.ts || typ != w.tsType {
		return fmt.Sprintf("timestamp %d %s, want %d %s", ts, typ, w.ts, w.tsType)
	}
	return ""
}

// sameHeaderList compares an envelope record's headers with the broker's.
func sameHeaderList(got []map[string][]int8, want []kgo.RecordHeader) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d headers, want %d", len(got), len(want))
	}
	for i, h := range got {
		signed := make([]int8, len(want[i].Value))
		for j, c := range want[i].Value {
			signed[j] = int8(c)
		}
		if v, ok := h[want[i].Key]; len(h) != 1 || !ok || !slices.Equal(v, signed) {
			return fmt.Sprintf("header %d is %v, want {%q: %v}", i, h, want[i].Key, signed)
		}
	}
	return ""
}

// tokenServer is an OAuth2 token endpoint (client credentials grant,
// RFC 6749 section 4.4) that hands out one token and counts its requests.
type tokenServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	fetches  int
	problems []string
}

const (
	e2eClientID     = "pipe-e2e"
	e2eClientSecret = "s3cr3t-e2e-client-secret"
	e2eToken        = "tok-e2e-7f3a9c"
)

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		user, pass, basic := r.BasicAuth()
		ts.mu.Lock()
		ts.fetches++
		var bad []string
		if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
			bad = append(bad, fmt.Sprintf("%s %s", r.Method, r.URL.Path))
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			bad = append(bad, "Content-Type "+ct)
		}
		if err != nil || form.Get("grant_type") != "client_credentials" || form.Get("scope") != "orders.write" {
			bad = append(bad, fmt.Sprintf("form %q", body))
		}
		if !basic || user != e2eClientID || pass != e2eClientSecret {
			bad = append(bad, "client credentials not in the Authorization header")
		}
		ts.problems = append(ts.problems, bad...)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if len(bad) > 0 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, e2eToken)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

// orderAPI is the endpoint of the http target: POST /orders/<id>, keeping
// each request.
type orderAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []apiRequest
}

type apiRequest struct {
	method, path, auth, key, contentType string
	body                                 []byte
}

func newOrderAPI(t *testing.T) *orderAPI {
	a := &orderAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, apiRequest{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"),
			r.Header.Get("X-Order-Key"), r.Header.Get("Content-Type"), body})
		a.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+e2eToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *orderAPI) requests() []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// TestKafkaToHTTPWithOAuth2 runs the binary with the http target in record
// mode: an input template renders each record's body, a path parameter and
// a header come from the record, and the endpoint wants an OAuth2 bearer
// token from a client-credentials token endpoint, the client secret coming
// from the environment. The endpoint receives exactly one request per
// record, with the exact body the template gives (JSON escaping of quotes,
// backslashes and line breaks included), in offset order per partition;
// the token was fetched once and sent with every request; the secret
// appears nowhere in the log; every offset is committed.
func TestKafkaToHTTPWithOAuth2(t *testing.T) {
	b := startBroker(t)
	const topic, group = "e2e-oauth", "e2e-oauth-http"
	b.createTopic(t, topic)
	tokens := newTokenServer(t)
	api := newOrderAPI(t)

	names := []string{`Ann "the first"`, `back\slash`, "two\nlines", "Zoë ✓ 😀", "plain"}
	var rs []*kgo.Record
	for i := range 64 {
		rs = append(rs, &kgo.Record{
			Partition: int32(i % partitions),
			Key:       []byte(fmt.Sprintf("o-%d", i)),
			Value:     []byte(fmt.Sprintf(`{"orderId":%d,"customer":{"name":%q},"total":%d}`, 1000+i, names[i%len(names)], 10*i)),
		})
	}
	truth := produceRecs(t, b, topic, rs)

	cfg := writeConfig(t, fmt.Sprintf(`admin: {address: "127.0.0.1:0"}
pipes:
  - name: orders-api
    source:
      kafka:
        bootstrapServers: [%s]
        topics: [%s]
        consumerGroupId: %s
        startingPosition: TRIM_HORIZON
        maximumBatchingWindow: 50ms
    target:
      http:
        url: %s/orders/*
        method: POST
        pathParameterValues: [$.value.orderId]
        headerParameters:
          X-Order-Key: $.key
        inputTemplate: '{"id": <$.value.orderId>, "name": "<$.value.customer.name>", "total": <$.value.total>, "from": "<$.topic>/<$.partition>/<$.offset>", "pipe": "<aws.pipes.pipe-name>"}'
        auth:
          oauth2:
            tokenUrl: %s/oauth/token
            clientId: %s
            clientSecret: ${E2E_CLIENT_SECRET}
            scopes: [orders.write]
`, b.addr, topic, group, api.srv.URL, tokens.srv.URL, e2eClientID))
	p := startProc(t, "pipe", []string{"E2E_CLIENT_SECRET=" + e2eClientSecret}, nil, pipeBin, "run", "-f", cfg)
	ends := b.endOffsets(t, topic)
	waitFor(t, 60*time.Second, "every offset committed", func() (bool, string) {
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	p.stop(t)

	// The exact body of each record: strings escaped as JSON escapes them
	// (quote, backslash, line feed), other characters as they are.
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	want := map[string]po{} // body -> record
	for k, r := range truth {
		i, _ := strconv.Atoi(string(r.key[len("o-"):]))
		body := fmt.Sprintf(`{"id": %d, "name": "%s", "total": %d, "from": "%s/%d/%d", "pipe": "orders-api"}`,
			1000+i, esc.Replace(names[i%len(names)]), 10*i, topic, k.p, k.o)
		want[body] = k
	}

	reqs := api.requests()
	if len(reqs) != len(truth) {
		t.Errorf("%d requests, want %d (one per record)", len(reqs), len(truth))
	}
	seen := map[po]bool{}
	last := map[int32]int64{}
	for _, r := range reqs {
		k, ok := want[string(r.body)]
		if !ok {
			t.Errorf("unexpected body %q", r.body)
			continue
		}
		if seen[k] {
			t.Errorf("record %v sent twice", k)
		}
		seen[k] = true
		rc := truth[k]
		var id int
		fmt.Sscanf(string(r.body), `{"id": %d`, &id)
		if r.method != http.MethodPost || r.path != fmt.Sprintf("/orders/%d", id) || r.key != string(rc.key) || r.contentType != "application/json" {
			t.Errorf("record %v: %s %s, X-Order-Key %q, Content-Type %q", k, r.method, r.path, r.key, r.contentType)
		}
		if r.auth != "Bearer "+e2eToken {
			t.Errorf("record %v: Authorization %q, want the bearer token", k, r.auth)
		}
		if o, ok := last[k.p]; ok && k.o <= o {
			t.Errorf("partition %d: offset %d sent after %d", k.p, k.o, o)
		}
		last[k.p] = k.o
	}
	for k := range truth {
		if !seen[k] {
			t.Errorf("record %v: no request", k)
		}
	}
	t.Logf("%d records, %d requests", len(truth), len(reqs))
	checkQuietLog(t, p)
	tokens.mu.Lock()
	if tokens.fetches != 1 || len(tokens.problems) > 0 {
		t.Errorf("the token endpoint was called %d times, want once; problems: %q", tokens.fetches, tokens.problems)
	}
	tokens.mu.Unlock()
	for _, out := range []string{p.output(), p.errors()} {
		if strings.Contains(out, e2eClientSecret) || strings.Contains(out, e2eToken) {
			t.Errorf("the client secret or the token is in the output:\n%s", out)
		}
	}
	if base := base64.StdEncoding.EncodeToString([]byte(e2eClientID + ":" + e2eClientSecret)); strings.Contains(p.errors(), base) {
		t.Error("the encoded client credentials are in the log")
	}
}

// fencedBlocks returns the fenced code blocks of a Markdown file, each as
// its lines.
func fencedBlocks(t *testing.T, path string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if in {
				blocks = append(blocks, cur)
			}
			in, cur = !in, nil
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestEventBridgeExampleReadme runs the commands of
// examples/kafka-to-eventbridge/README.md from the repository root, as the
// README says, and compares what the binary prints and its exit status with
// the output the README shows (its `exit status N` line is go run's).
func TestEventBridgeExampleReadme(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	const dir = "examples/kafka-to-eventbridge"
	blocks := fencedBlocks(t, filepath.Join(root, dir, "README.md"))
	cfg, err := os.ReadFile(filepath.Join(root, dir, "pipes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(cfg, []byte("source: shop.orders"), []byte("source: aws.orders"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		command string // as the README's command block has it
		args    []string
	}{
		{"go run ./cmd/pipe validate -f " + dir + "/pipes.yaml", []string{"validate", "-f", dir + "/pipes.yaml"}},
		{"go run ./cmd/pipe test -f " + dir + "/pipes.yaml --topic orders " + dir + "/sample.jsonl",
			[]string{"test", "-f", dir + "/pipes.yaml", "--topic", "orders", dir + "/sample.jsonl"}},
		{"go run ./cmd/pipe validate -f /tmp/bad.yaml", []string{"validate", "-f", bad}},
	} {
		var want []string
		for i, b := range blocks {
			if i+1 < len(blocks) && slices.Contains(b, c.command) {
				want = blocks[i+1]
				break
			}
		}
		if want == nil {
			t.Errorf("the README has no output for %q", c.command)
			continue
		}
		wantCode := 0
		if n := len(want); n > 0 {
			if _, err := fmt.Sscanf(want[n-1], "exit status %d", &wantCode); err == nil {
				want = want[:n-1]
			}
		}
		stdout, stderr, code := runCmd(t, root, nil, pipeBin, c.args...)
		got := strings.Split(strings.TrimSuffix(stdout+strings.ReplaceAll(stderr, bad, "/tmp/bad.yaml"), "\n"), "\n")
		if code != wantCode || !slices.Equal(got, want) {
			t.Errorf("%s: exit status %d, output:\n%s\nthe README shows status %d and:\n%s", c.command, code, strings.Join(got, "\n"), wantCode, strings.Join(want, "\n"))
		}
	}
}
