package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/destinations/file"
	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/pipeline"
)

// Every part of a per-record request comes from its record: method, path
// parameters (escaped), query string, headers and the rendered body.
func TestRecordRequests(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, fmt.Sprintf(`
url: %s/v1/customers/*/orders/*?src=pipe
method: PUT
inputTemplate: '{"id": <$.value.id>, "note": "<$.value.note>", "pipe": "<aws.pipes.pipe-name>", "tags": <$.value.tags>, "missing": <$.value.nope>}'
pathParameterValues: [$.value.customer, "o-<$.value.id>"]
headerParameters:
  X-Order-Id: $.value.id
  X-Where: "<$.topic>/<$.partition>/<$.offset>"
  X-Static: fixed value
queryStringParameters:
  key: $.key
  tag: a b&c
  missing: $.value.nope
headers:
  X-Api-Key: k-123
`, rc.URL))
	notes := []string{
		`he said "hi"` + "\nand left",
		`back\slash and </script> and unicode é 中 😀`,
		"tab\there",
	}
	var recs []pipeline.Record
	for i, note := range notes {
		v, _ := json.Marshal(map[string]any{"id": 7 + i, "customer": "acme/eu " + fmt.Sprint(i), "note": note, "tags": []string{"x", note}})
		recs = append(recs, jrec(0, int64(100+i), fmt.Sprintf("key-%d", i), string(v)))
	}
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	got := rc.seen()
	if len(got) != len(notes) {
		t.Fatalf("%d requests, want one per record (%d)", len(got), len(notes))
	}
	for i, s := range got { // one partition: in offset order
		id := 7 + i
		if s.method != http.MethodPut {
			t.Errorf("record %d: method %s", i, s.method)
		}
		if want := fmt.Sprintf("/v1/customers/acme%%2Feu%%20%d/orders/o-%d", i, id); s.rawPath != want {
			t.Errorf("record %d: path %s, want %s", i, s.rawPath, want)
		}
		wantQ := map[string][]string{"src": {"pipe"}, "key": {fmt.Sprintf("key-%d", i)}, "tag": {"a b&c"}, "missing": {""}}
		if !reflect.DeepEqual(map[string][]string(s.query), wantQ) {
			t.Errorf("record %d: query %q parsed as %v, want %v", i, s.rawQuery, s.query, wantQ)
		}
		for k, want := range map[string]string{
			"X-Order-Id": fmt.Sprint(id), "X-Where": fmt.Sprintf("orders/0/%d", 100+i), "X-Static": "fixed value",
			"X-Api-Key": "k-123", "Content-Type": "application/json",
		} {
			if got := s.header.Get(k); got != want {
				t.Errorf("record %d: header %s %q, want %q", i, k, got, want)
			}
		}
		var body map[string]any
		if err := json.Unmarshal(s.body, &body); err != nil {
			t.Fatalf("record %d: body is not JSON (%v): %s", i, err, s.body)
		}
		want := map[string]any{"id": float64(id), "note": notes[i], "pipe": "orders-api", "tags": []any{"x", notes[i]}, "missing": nil}
		if !reflect.DeepEqual(body, want) {
			t.Errorf("record %d: body %v, want %v", i, body, want)
		}
	}
}

// A value that is not JSON, or JSON that breaks out of its string, still
// renders a valid JSON body.
func TestTemplateStaysJSON(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, fmt.Sprintf(`
url: %s/in
inputTemplate: '{"v": "<$.value>", "raw": <$.value>, "k": "<$.key>", "event": <aws.pipes.event.json>}'
`, rc.URL))
	values := []string{
		`plain "quoted" text` + "\r\n\x00\x1f",
		`{"a": "x\"y", "b": [1, 2]}`,
		`"}, "injected": true, "x": {"`,
		"\xff\xfe not utf-8",
		``,
	}
	var recs []pipeline.Record
	for i, v := range values {
		recs = append(recs, jrec(1, int64(i), `"},{"`, v))
	}
	recs = append(recs, pipeline.Record{Topic: "orders", Partition: 1, Offset: 99}) // null key and value
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	got := rc.seen()
	if len(got) != len(recs) {
		t.Fatalf("%d requests, want %d", len(got), len(recs))
	}
	for i, s := range got {
		var body map[string]any
		if err := json.Unmarshal(s.body, &body); err != nil {
			t.Errorf("record %d: body is not valid JSON (%v): %q", i, err, s.body)
			continue
		}
		if _, bad := body["injected"]; bad {
			t.Errorf("record %d: the value broke out of its string: %s", i, s.body)
		}
		if len(body) != 4 {
			t.Errorf("record %d: body has keys %v, want v, raw, k, event", i, body)
		}
		if i < len(values) && i != 3 {
			// A JSON value is decoded: inside a string its JSON text is kept.
			if v, _ := body["v"].(string); !json.Valid([]byte(values[i])) && v != values[i] {
				t.Errorf("record %d: v = %q, want the value's text %q", i, v, values[i])
			}
		}
	}
}

func TestRecordContentType(t *testing.T) {
	for _, tc := range []struct {
		name, block, ctype, body string
	}{
		{"text template", `inputTemplate: 'Order <$.value.id> for <$.value.who>'`, "text/plain; charset=utf-8", `Order 5 for "Ann"`},
		{"bare value", `inputTemplate: '<$.value>'`, "text/plain; charset=utf-8", `{"id":5,"who":"\"Ann\""}`},
		{"static JSON", `inputTemplate: '{"ping": true}'`, "application/json", `{"ping": true}`},
		{"content type header wins", "inputTemplate: '<$.value.who>'\nheaders: {Content-Type: application/x-ann}", "application/x-ann", `"Ann"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRecorder(t, nil)
			tg := build(t, "url: "+rc.URL+"\n"+tc.block)
			if err := deliver(t, tg, batchOf(jrec(0, 1, "k", `{"id":5,"who":"\"Ann\""}`))); err != nil {
				t.Fatal(err)
			}
			s := rc.seen()[0]
			if got := s.header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if string(s.body) != tc.body {
				t.Errorf("body %q, want %q", s.body, tc.body)
			}
		})
	}
}

// mode: record without a template sends each record as it appears in the
// envelope; GET sends no body.
func TestRecordModeWithoutTemplate(t *testing.T) {
	rc := newRecorder(t, nil)
	recs := []pipeline.Record{jrec(0, 1, "a", `{"x":1}`), jrec(0, 2, "b", "not json")}
	if err := deliver(t, build(t, "url: "+rc.URL+"/r\nmode: record"), batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	got := rc.seen()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for i, s := range got {
		if want := pipeline.AppendRecord(nil, &recs[i]); string(s.body) != string(want) || s.method != http.MethodPost {
			t.Errorf("request %d: %s %s, want POST %s", i, s.method, s.body, want)
		}
	}

	rc = newRecorder(t, nil)
	tg := build(t, "url: "+rc.URL+"/lookup/*\nmethod: GET\nmode: record\npathParameterValues: [$.key]\nqueryStringParameters: {x: $.value.x}")
	if err := deliver(t, tg, batchOf(recs[0])); err != nil {
		t.Fatal(err)
	}
	s := rc.seen()[0]
	if s.method != http.MethodGet || len(s.body) != 0 || s.rawPath != "/lookup/a" || s.rawQuery != "x=1" || s.header.Get("Content-Type") != "" {
		t.Errorf("GET request: %s %s?%s Content-Type %q body %q", s.method, s.rawPath, s.rawQuery, s.header.Get("Content-Type"), s.body)
	}
}

// recordID names a record in request headers, for servers to tell them apart.
const recordID = `headerParameters: {X-Record: "<$.partition>/<$.offset>"}`

func idOf(s seen) (part, off int) {
	fmt.Sscanf(s.header.Get("X-Record"), "%d/%d", &part, &off)
	return
}

// A record that fails in a way a retry may fix stops its partition:
// RetryOnly lists it and the records after it in that partition; the other
// partitions are delivered.
func TestRecordFailureRetryOnly(t *testing.T) {
	// Three partitions of four records; partition 1 fails at offset 2.
	var recs []pipeline.Record
	for p := range 3 {
		for o := range 4 {
			recs = append(recs, jrec(int32(p), int64(o), "k", fmt.Sprintf(`{"n":%d}`, p*10+o)))
		}
	}
	rc := newRecorder(t, func(s seen, w http.ResponseWriter) int {
		if p, o := idOf(s); p == 1 && o == 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	tg := build(t, "url: "+rc.URL+"\nmode: record\n"+recordID)
	err := deliver(t, tg, batchOf(recs...))
	failed, ok := pipeline.RetryOnlyOf(err)
	if !ok {
		t.Fatalf("error %v carries no RetryOnly", err)
	}
	if want := []int{6, 7}; !slices.Equal(failed, want) {
		t.Errorf("RetryOnly %v, want %v (partition 1 from offset 2)", failed, want)
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("a 500 is permanent: %v", err)
	}
	if !strings.Contains(err.Error(), "2 of 12 records") || !strings.Contains(err.Error(), "orders-1 offset 2") || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("error %q does not say what failed", err)
	}
	sent := map[[2]int]int{}
	for _, s := range rc.seen() {
		p, o := idOf(s)
		sent[[2]int{p, o}]++
	}
	for p := range 3 {
		for o := range 4 {
			want := 1
			if p == 1 && o == 3 {
				want = 0 // never sent: it waits behind offset 2
			}
			if sent[[2]int{p, o}] != want {
				t.Errorf("partition %d offset %d sent %d times, want %d", p, o, sent[[2]int{p, o}], want)
			}
		}
	}
}

// A permanent failure is reported alone and its partition goes on; a
// retryable one holds back the rest of its partition. The error is
// permanent only when every failure is (too large when every one is a
// 413), and carries the longest Retry-After.
func TestRecordFailureClasses(t *testing.T) {
	// Three partitions of three records: index 3p+o is partition p,
	// offset o.
	for _, tc := range []struct {
		name       string
		status     map[int]int // index -> status
		retryAfter map[int]string
		permanent  bool
		tooLarge   bool
		after      time.Duration
		failed     []int
		unsent     []int // held back: never sent
	}{
		{name: "400 and 500", status: map[int]int{0: 400, 6: 500}, failed: []int{0, 6, 7, 8}, unsent: []int{7, 8}},
		{name: "400 and 404", status: map[int]int{0: 400, 7: 404}, permanent: true, failed: []int{0, 7}},
		{name: "400 twice in a partition", status: map[int]int{3: 400, 5: 400}, permanent: true, failed: []int{3, 5}},
		{name: "400 then 503 in a partition", status: map[int]int{3: 400, 4: 503}, failed: []int{3, 4, 5}, unsent: []int{5}},
		{name: "503 then 400 in a partition", status: map[int]int{3: 503, 4: 400}, failed: []int{3, 4, 5}, unsent: []int{4, 5}},
		{name: "429 and 503", status: map[int]int{3: 429, 6: 503}, retryAfter: map[int]string{3: "3", 6: "7"}, after: 7 * time.Second, failed: []int{3, 4, 5, 6, 7, 8}, unsent: []int{4, 5, 7, 8}},
		{name: "all", status: map[int]int{0: 502, 3: 502, 6: 502}, failed: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, unsent: []int{1, 2, 4, 5, 7, 8}},
		{name: "413 and 413", status: map[int]int{0: 413, 4: 413}, permanent: true, tooLarge: true, failed: []int{0, 4}},
		{name: "413 and 400", status: map[int]int{0: 413, 4: 400}, permanent: true, failed: []int{0, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRecorder(t, func(s seen, w http.ResponseWriter) int {
				p, o := idOf(s)
				i := 3*p + o
				if ra, ok := tc.retryAfter[i]; ok {
					w.Header().Set("Retry-After", ra)
				}
				if st, ok := tc.status[i]; ok {
					return st
				}
				return 200
			})
			tg := build(t, "url: "+rc.URL+"\nmode: record\n"+recordID)
			var recs []pipeline.Record
			for p := range 3 {
				for o := range 3 {
					recs = append(recs, jrec(int32(p), int64(o), "k", "{}"))
				}
			}
			err := deliver(t, tg, batchOf(recs...))
			failed, _ := pipeline.RetryOnlyOf(err)
			if !slices.Equal(failed, tc.failed) {
				t.Errorf("RetryOnly %v, want %v: %v", failed, tc.failed, err)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", got, tc.permanent, err)
			}
			if got := pipeline.RetryAfterOf(err); got != tc.after {
				t.Errorf("retry after %v, want %v", got, tc.after)
			}
			if got := pipeline.IsTooLarge(err); got != tc.tooLarge {
				t.Errorf("too large %v, want %v", got, tc.tooLarge)
			}
			sent := map[int]int{}
			for _, s := range rc.seen() {
				p, o := idOf(s)
				sent[3*p+o]++
			}
			for i := range recs {
				want := 1
				if slices.Contains(tc.unsent, i) {
					want = 0
				}
				if sent[i] != want {
					t.Errorf("record %d sent %d times, want %d", i, sent[i], want)
				}
			}
		})
	}
}

// Records that cannot be sent fail permanently without a request: an
// empty path parameter, a header value with a line break. The later
// records of their partition are sent.
func TestRecordCannotBeSent(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, "url: "+rc.URL+"/c/*\nmode: record\npathParameterValues: [$.value.c]\nheaderParameters: {X-Note: $.value.note}")
	recs := []pipeline.Record{
		jrec(0, 0, "k", `{"c":"ok","note":"fine"}`),
		jrec(0, 1, "k", `{"note":"no c"}`),
		jrec(0, 2, "k", `{"c":"ok","note":"after"}`),
		jrec(1, 0, "k", `{"c":"ok","note":"line\nbreak secret-note"}`),
		jrec(2, 0, "k", `{"c":"ok","note":"fine"}`),
	}
	err := deliver(t, tg, batchOf(recs...))
	failed, _ := pipeline.RetryOnlyOf(err)
	if !slices.Equal(failed, []int{1, 3}) || !pipeline.IsPermanent(err) {
		t.Errorf("RetryOnly %v permanent %v, want [1 3] permanent: %v", failed, pipeline.IsPermanent(err), err)
	}
	if len(rc.seen()) != 3 {
		t.Errorf("%d requests, want 3 (the records that could be sent)", len(rc.seen()))
	}
	noSecrets(t, err, "secret-note")
}

// Requests of different partitions overlap, those of one partition never
// do and come in offset order.
func TestRecordOrderWithinPartition(t *testing.T) {
	var mu sync.Mutex
	inFlight := map[int]int{}
	maxTotal, total := 0, 0
	var order = map[int][]int{}
	release := make(chan struct{})
	rc := newRecorder(t, func(s seen, w http.ResponseWriter) int {
		p, o := idOf(s)
		mu.Lock()
		inFlight[p]++
		total++
		maxTotal = max(maxTotal, total)
		bad := inFlight[p] > 1
		order[p] = append(order[p], o)
		n := total
		mu.Unlock()
		if bad {
			t.Errorf("partition %d has two requests in flight", p)
		}
		if n == 4 {
			close(release) // all four partitions are in flight at once
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		inFlight[p]--
		total--
		mu.Unlock()
		return 200
	})
	tg := build(t, "url: "+rc.URL+"\nmode: record\nconcurrency: 4\n"+recordID)
	var recs []pipeline.Record
	for p := range 4 {
		for o := range 5 {
			recs = append(recs, jrec(int32(p), int64(o), "k", "{}"))
		}
	}
	if err := deliver(t, tg, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	if maxTotal != 4 {
		t.Errorf("at most %d requests were in flight, want 4 (one per partition)", maxTotal)
	}
	for p := range 4 {
		if !slices.Equal(order[p], []int{0, 1, 2, 3, 4}) {
			t.Errorf("partition %d offsets arrived as %v", p, order[p])
		}
	}
}

// Through the runner: a record that fails once is retried with the rest
// of its partition, and each partition's records reach the endpoint in
// offset order, every one delivered.
func TestRecordRetriesThroughRunner(t *testing.T) {
	var mu sync.Mutex
	failedOnce := false
	delivered := map[int][]int{}
	rc := newRecorder(t, func(s seen, w http.ResponseWriter) int {
		p, o := idOf(s)
		mu.Lock()
		defer mu.Unlock()
		if p == 2 && o == 3 && !failedOnce {
			failedOnce = true
			return http.StatusServiceUnavailable
		}
		delivered[p] = append(delivered[p], o)
		return http.StatusOK
	})
	tg := build(t, "url: "+rc.URL+"\nmode: record\n"+recordID)
	var recs []pipeline.Record
	for p := range 3 {
		for o := range 6 {
			recs = append(recs, jrec(int32(p), int64(o), "k", "{}"))
		}
	}
	pipe := &pipeline.Pipe{Name: "orders-api", Target: tg, Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond},
		Logger: discardLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipe.Handle(ctx, batchOf(recs...)); err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		if !slices.Equal(delivered[p], []int{0, 1, 2, 3, 4, 5}) {
			t.Errorf("partition %d delivered %v, want every offset once, in order", p, delivered[p])
		}
	}
	if n := len(rc.seen()); n != 19 {
		t.Errorf("%d requests, want 18 + 1 failed", n)
	}
}

// Through the runner with an on-failure destination: a record the endpoint
// refuses for good is dead-lettered alone, with the status and condition of
// its answer; the later records of its partition are delivered, once and in
// order, not dead-lettered.
func TestRecordPermanentFailureToDestination(t *testing.T) {
	for _, tc := range []struct {
		status    int
		condition string
	}{
		{400, pipeline.RetryAttemptsExhausted},
		{413, pipeline.MaximumPayloadSizeExceeded},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			var mu sync.Mutex
			delivered := map[int][]int{}
			rc := newRecorder(t, func(s seen, w http.ResponseWriter) int {
				p, o := idOf(s)
				if p == 1 && o == 1 {
					return tc.status
				}
				mu.Lock()
				delivered[p] = append(delivered[p], o)
				mu.Unlock()
				return http.StatusOK
			})
			tg := build(t, "url: "+rc.URL+"\nmode: record\n"+recordID)
			path := filepath.Join(t.TempDir(), "failed.jsonl")
			dest, err := (&file.Config{Path: path}).NewDestination(pipeline.Env{Pipe: "orders-api"})
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			var recs []pipeline.Record
			for p := range 2 {
				for o := range 4 {
					recs = append(recs, jrec(int32(p), int64(o), "k", "{}"))
				}
			}
			pipe := &pipeline.Pipe{Name: "orders-api", Target: tg, OnFailure: dest, MaxRetries: 3,
				Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}, Logger: discardLogger()}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pipe.Handle(ctx, batchOf(recs...)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(delivered[0], []int{0, 1, 2, 3}) || !slices.Equal(delivered[1], []int{0, 2, 3}) {
				t.Errorf("delivered %v, want partition 0 whole and partition 1 but offset 1, each once in order", delivered)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d on-failure records, want 1:\n%s", len(lines), raw)
			}
			var rec struct {
				RequestContext struct {
					Condition string `json:"condition"`
				} `json:"requestContext"`
				ResponseContext *struct {
					StatusCode int `json:"statusCode"`
				} `json:"responseContext"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.RequestContext.Condition != tc.condition {
				t.Errorf("condition %q, want %q", rec.RequestContext.Condition, tc.condition)
			}
			if tc.status == 400 && (rec.ResponseContext == nil || rec.ResponseContext.StatusCode != 400) {
				t.Errorf("responseContext %+v, want statusCode 400", rec.ResponseContext)
			}
			b, err := pipeline.ParseFailureRecord([]byte(lines[0]))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Records) != 1 || b.Records[0].Partition != 1 || b.Records[0].Offset != 1 {
				t.Errorf("dead-lettered %d records, want only orders-1@1: %+v", len(b.Records), b.Records)
			}
			if n := pipe.Stats.DeadLettered.Load(); n != 1 {
				t.Errorf("%d records dead-lettered, want 1", n)
			}
		})
	}
}

func TestRecordCancelled(t *testing.T) {
	tg := build(t, "url: "+hanging(t).URL+"\nmode: record")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Deliver(ctx, batchOf(jrec(0, 0, "k", "{}"), jrec(1, 0, "k", "{}"))) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Deliver with a cancelled context: %v, want context.Canceled", err)
		}
		if failed, _ := pipeline.RetryOnlyOf(err); !slices.Equal(failed, []int{0, 1}) {
			t.Errorf("RetryOnly %v, want both records", failed)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Deliver ignored its context")
	}
}

// Batch mode: the static parameters apply, the batch envelope is the body.
func TestBatchModeParameters(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := build(t, fmt.Sprintf(`
url: %s/tenants/*/events?v=2
method: PATCH
pathParameterValues: [acme corp]
headerParameters: {X-Source: kafka}
queryStringParameters: {batch: "yes please"}
`, rc.URL))
	b := batchOf(jrec(0, 0, "k", "{}"), jrec(1, 5, "k", "{}"))
	if err := deliver(t, tg, b); err != nil {
		t.Fatal(err)
	}
	s := rc.seen()[0]
	if s.method != http.MethodPatch || s.rawPath != "/tenants/acme%20corp/events" || s.rawQuery != "v=2&batch=yes+please" ||
		s.header.Get("X-Source") != "kafka" || string(s.body) != string(pipeline.AppendEnvelope(nil, b)) {
		t.Errorf("got %s %s?%s X-Source %q body %.80s", s.method, s.rawPath, s.rawQuery, s.header.Get("X-Source"), s.body)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"url: http://h/a/*/b/*\npathParameterValues: [x]", "pathParameterValues: has 1 entries but the url's path has 2 * wildcards"},
		{"url: http://h/a\npathParameterValues: [x]", "has 1 entries but the url's path has 0 * wildcards"},
		{"url: http://h/a/*\npathParameterValues: [$.value.id]", "pathParameterValues[0]: depends on the record"},
		{"url: http://h/\nheaderParameters: {X-Id: $.value.id}", "headerParameters: depends on the record"},
		{"url: http://h/\nqueryStringParameters: {id: 'x<$.key>'}", "queryStringParameters: depends on the record"},
		{"url: http://h/\nmode: batch\ninputTemplate: '{}'", "inputTemplate: renders one body per record and needs mode: record"},
		{"url: http://h/\nmethod: GET\ninputTemplate: '{}'", "inputTemplate: is the request body, and a GET request has none"},
		{"url: http://h/\ninputTemplate: '<$.value'", "inputTemplate: at offset 0: unterminated placeholder"},
		{"url: http://h/\nmode: record\nheaderParameters: {X-Id: '$.value[x]'}", "headerParameters: X-Id: at offset"},
		{"url: http://h/\nheaders: {X-A: '1'}\nheaderParameters: {x-a: '2'}", `headerParameters: "x-a" is set in headers too`},
		{"url: http://h/\nheaders: {Authorization: 'x'}\nauth: {basic: {username: u, password: p}}", `headers: "Authorization" is set by auth`},
		{"url: http://u:p@h/\nauth: {basic: {username: u, password: p}}", "url: carries credentials and auth sets the Authorization header"},
		{"url: http://h/\nauth: {}", "auth: set exactly one of basic, apiKey, oauth2"},
		{"url: http://h/\nauth: {basic: {username: u, password: p}, apiKey: {name: X-Key, value: v}}", "auth: set exactly one of"},
		{"url: http://h/\nauth: {apiKey: {name: 'X Key', value: v}}", `auth.apiKey.name: "X Key" is not a valid header name`},
		{"url: http://h/\nauth: {basic: {username: 'a:b', password: p}}", "auth.basic.username: must not contain ':'"},
		{"url: http://h/\nauth: {oauth2: {tokenUrl: /token, clientId: c, clientSecret: s}}", "auth.oauth2.tokenUrl: must be an absolute http:// or https:// URL"},
		{"url: http://h/\nauth: {oauth2: {tokenUrl: http://a/t, clientId: c, clientSecret: s, bodyParameters: {scope: x}}}", `bodyParameters: "scope" is set by pipe`},
		{"url: http://h/\nauth: {oauth2: {tokenUrl: http://a/t, clientId: c}}", `auth.oauth2: missing required key "clientSecret"`},
		{"url: http://h/\nrateLimit: {perSecond: 0}", "rateLimit.perSecond: must be above 0"},
		{"url: http://h/\nrateLimit: {perSecond: 1, burst: 0}", "rateLimit.burst: must be between 1 and 100000"},
		{"url: http://h/\nmethod: TRACE", "method: must be one of POST, PUT, PATCH, DELETE, GET, HEAD, OPTIONS"},
		{"url: http://h/\nmode: each", "mode: must be one of batch, record"},
		{"url: http://h/\nconcurrency: 0", "concurrency: must be between 1 and 256"},
		{"url: http://h/\ntls: {insecureSkipVerify: true}", "tls: applies to https:// only, and the url is http://"},
		{"url: http://h/*\npathParameterValues: ['']", "pathParameterValues[0]: must not be empty"},
		{"url: https://h/\ntls: {caFile: /nonexistent/ca.pem}", "tls.caFile: cannot read the file: no such file or directory"},
		{"url: https://h/\ntls: {certFile: /nonexistent/c.pem}", "tls.certFile: needs keyFile too"},
		{"url: https://h/\ntls: {keyFile: /nonexistent/k.pem}", "tls.keyFile: needs certFile too"},
		{"url: https://h/\ntls: {certFile: /nonexistent/c.pem, keyFile: /nonexistent/k.pem}", "tls.certFile: cannot read the file"},
		{"url: http://*.h/", "url: a * is a path parameter and may appear in the path only"},
		{"url: http://h/\nheaders: {host: other}", `headers: "host" is set by the HTTP client`},
		{"url: http://h/\nheaderParameters: {Content-Length: '5'}", `headerParameters: "Content-Length" is set by the HTTP client`},
		{"url: http://h/\nheaders: {X-A: \"a\\nb\"}", `headers: the value of "X-A" holds a character`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := loadErr(t, tc.block); !strings.Contains(got, tc.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", got, tc.want)
			}
		})
	}
}

// Problems never show a secret value, even when it is what is wrong.
func TestConfigProblemsHideSecrets(t *testing.T) {
	t.Setenv("PIPE_TEST_KEY", "key-secret\nwith break")
	t.Setenv("PIPE_TEST_HDR", "hdr-secret\r\n")
	got := loadErr(t, "url: http://h/\nheaders: {X-A: '${PIPE_TEST_HDR}'}\nauth: {apiKey: {name: X-Key, value: '${PIPE_TEST_KEY}'}}")
	for _, s := range []string{"key-secret", "hdr-secret"} {
		if strings.Contains(got, s) {
			t.Errorf("problems show %q:\n%s", s, got)
		}
	}
	if !strings.Contains(got, "auth.apiKey.value") || !strings.Contains(got, "headers") {
		t.Errorf("problems do not name the fields:\n%s", got)
	}
}

// An endpoint that answers 200 before reading a large body: a record's
// body buffer is reused for the next record only once the transport let
// go of it. Run with -race.
func TestRecordEarlyAnswerLargeBodies(t *testing.T) {
	var mu sync.Mutex
	read := 0
	srv := newRecorder(t, nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Read") != "1" {
			return // 200 at once, the body unread
		}
		body, _ := io.ReadAll(r.Body)
		fill, _ := strconv.Atoi(r.Header.Get("X-Size"))
		if want := strings.Repeat(r.Header.Get("X-Fill"), fill); string(body) != want {
			t.Errorf("a body of %d bytes arrived changed: its buffer was reused while it was sent", len(body))
		}
		mu.Lock()
		read++
		mu.Unlock()
	})
	tg := build(t, "url: "+srv.URL+"\ninputTemplate: '<$.value>'\nconcurrency: 4\nheaderParameters: {X-Read: $.headers.read, X-Fill: $.headers.fill, X-Size: $.headers.size}")
	var recs []pipeline.Record
	for p := range 4 {
		for o := range 8 {
			fill, size := string(rune('A'+p*8+o)), 600_000+p*1000+o
			r := jrec(int32(p), int64(o), "k", strings.Repeat(fill, size))
			r.Headers = []pipeline.Header{{Key: "fill", Value: []byte(fill)}, {Key: "read", Value: []byte(fmt.Sprint(o % 2))}, {Key: "size", Value: []byte(fmt.Sprint(size))}}
			recs = append(recs, r)
		}
	}
	for range 3 {
		if err := deliver(t, tg, batchOf(recs...)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if read != 3*16 {
		t.Errorf("%d bodies read, want 48", read)
	}
}
