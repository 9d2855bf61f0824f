package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The tests of this file inject faults into a pipe's target and on-failure
// destination and check, through the built binary: what was delivered
// (exactly, and in partition order), what was dead-lettered (field by
// field), what the process logged, and that the group's committed offsets
// never passed a record that was neither delivered nor dead-lettered.

// backoffFast keeps retries quick.
const backoffFast = "retryBackoff: {initial: 1ms, maximum: 10ms}"

// TestFailureTargetRecovers: the target answers 503 to its first calls.
// Each failed batch is retried whole, and once the target is back every
// record is delivered exactly once; nothing is dead-lettered.
func TestFailureTargetRecovers(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-recovers"
	b.createTopic(t, topic)
	truth := produceRecs(t, b, topic, keyedRecords(400, func(i int) string { return fmt.Sprintf("k-%d", i) }))
	ends := b.endOffsets(t, topic)

	const failFirst = 6
	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if c.n <= failFirst {
			return faultReply{status: http.StatusServiceUnavailable}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := t.TempDir() + "/failed.jsonl"
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, batchSize: 20, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq), policy: []string{backoffFast}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, fileDone(dlq)))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 60*time.Second, "every record to be delivered and committed", func() (bool, string) {
		if n := len(ft.deliveredSet()); n < len(truth) {
			return false, fmt.Sprintf("%d of %d delivered", n, len(truth))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	checkCounters(t, scrapeMetrics(t, adminAddr(t, p)), map[string]float64{"pipe_retries_total": failFirst, "pipe_bisects_total": 0,
		"pipe_records_sent_to_on_failure_total": 0, "pipe_records_delivered_total": float64(len(truth))})
	p.stop(t)
	w.check(t)

	calls := ft.snapshot()
	for _, c := range calls[:failFirst] {
		if c.status != http.StatusServiceUnavailable {
			t.Fatalf("call %d was answered %d, want 503", c.n, c.status)
		}
		// The same batch is tried again: a later call holds exactly its
		// records, and succeeds.
		retried := false
		for _, later := range calls[c.n:] {
			if slices.Equal(later.pos(), c.pos()) && later.status == http.StatusOK {
				retried = true
				break
			}
		}
		if !retried {
			t.Errorf("the batch of failed call %d (%v) was never delivered as it was", c.n, c.pos())
		}
	}
	checkDelivered(t, ft.delivered(), truth, topic, b.addr)
	if fs, err := readFailureFile(dlq); err != nil || len(fs) > 0 {
		t.Errorf("the on-failure file holds %d records (error %v), want none", len(fs), err)
	}
	lines := logLines(t, p)
	checkDeadLetterLogs(t, p, nil, topic)
	retries := logsWith(lines, msgRetrying)
	if len(retries) == 0 || len(retries) > failFirst {
		t.Errorf("%d retry warnings logged, want 1 to %d (one per failing batch)", len(retries), failFirst)
	}
	for _, l := range retries {
		if l["level"] != "WARN" || l["topic"] != topic || l["offsets"] == nil || l["partition"] == nil ||
			!strings.Contains(fmt.Sprint(l["error"]), "status 503") {
			t.Errorf("retry warning without level WARN, topic, partition, offsets and the error: %v", l)
		}
	}
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d calls, %d retry warnings, %v", len(calls), len(retries), time.Since(start).Round(time.Millisecond))
}

// TestFailureRejectedByKey: the target rejects (400) every batch that holds
// a record with a poison key. With bisectBatchOnError the poison records
// end alone in the on-failure file, each as one on-failure record, and all
// the others are delivered.
func TestFailureRejectedByKey(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-by-key"
	b.createTopic(t, topic)
	// Record i goes to partition i%8 at offset i/8: 5 and 13 are neighbours
	// in partition 5, 150 and 158 in partition 6; 399 is the last of
	// partition 7, 0 the first of partition 0.
	bad := map[int]bool{0: true, 5: true, 13: true, 42: true, 77: true, 150: true, 158: true, 233: true, 300: true, 399: true}
	truth := produceRecs(t, b, topic, keyedRecords(400, func(i int) string {
		if bad[i] {
			return fmt.Sprintf("poison-%d", i)
		}
		return fmt.Sprintf("k-%d", i)
	}))
	ends := b.endOffsets(t, topic)
	isPoison := func(k string) bool { return strings.HasPrefix(k, "poison-") }
	poison := pickByKey(truth, isPoison)
	good := except(truth, poison)

	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isPoison) {
			return faultReply{status: http.StatusBadRequest}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := t.TempDir() + "/failed.jsonl"
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq),
		policy:    []string{backoffFast, "bisectBatchOnError: true", "maximumRetryAttempts: 2"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, fileDone(dlq)))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 60*time.Second, "the good records delivered, the poison ones dead-lettered, all committed", func() (bool, string) {
		fs, err := readFailureFile(dlq)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ft.deliveredSet()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d of %d dead-lettered", n, len(good), len(fs), len(poison))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	m := scrapeMetrics(t, adminAddr(t, p))
	p.stop(t)
	w.check(t)

	// A 400 is permanent: no retries, only bisections.
	checkCounters(t, m, map[string]float64{"pipe_retries_total": 0, "pipe_bisects_total": float64(len(logsWith(logLines(t, p), msgBisect))),
		"pipe_records_sent_to_on_failure_total": float64(len(poison)), "pipe_records_delivered_total": float64(len(good))})
	checkDelivered(t, ft.delivered(), good, topic, b.addr)
	fs, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	checkFailureSet(t, fs, poison)
	for _, f := range fs {
		// 400 is permanent: the record alone is tried once, not retried.
		if solo := ft.solo(f.rec); len(solo) != 1 || solo[0].status != http.StatusBadRequest {
			t.Errorf("poison record %v was tried alone %d times (%+v), want once, answered 400", f.rec, len(solo), solo)
		}
	}
	checkFailures(t, fs, func(f *failureRec) failureWant {
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: 1, status: 400, stage: "target",
			errHas: []string{"POST " + ft.srv.URL + "/deliver", "status 400", "fault target says 400"},
			topic:  topic, bootstrap: b.addr, since: start}
	}, truth)
	checkDeadLetterLogs(t, p, fs, topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d calls, %v", len(ft.snapshot()), time.Since(start).Round(time.Millisecond))
}

// checkFailureSet checks that fs holds each record of want once and no
// other.
func checkFailureSet(t *testing.T, fs []*failureRec, want map[po]*rec) {
	t.Helper()
	got := failureSet(fs)
	for k := range want {
		if got[k] != 1 {
			t.Errorf("record %v is %d times in the on-failure destination, want once", k, got[k])
		}
	}
	for k, n := range got {
		if want[k] == nil {
			t.Errorf("record %v is %d times in the on-failure destination, want never", k, n)
		}
	}
}

// TestFailureTargetTimesOut: the target never answers for some keys; the
// request times out (timeout: 200ms), is retried maximumRetryAttempts
// times and the record is dead-lettered, while the rest is delivered.
func TestFailureTargetTimesOut(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-timeout"
	b.createTopic(t, topic)
	bad := map[int]bool{9: true, 58: true, 100: true} // partitions 1, 2, 4
	truth := produceRecs(t, b, topic, keyedRecords(200, func(i int) string {
		if bad[i] {
			return fmt.Sprintf("slow-%d", i)
		}
		return fmt.Sprintf("k-%d", i)
	}))
	ends := b.endOffsets(t, topic)
	isSlow := func(k string) bool { return strings.HasPrefix(k, "slow-") }
	slow := pickByKey(truth, isSlow)
	good := except(truth, slow)

	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isSlow) {
			return faultReply{hang: true}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := t.TempDir() + "/failed.jsonl"
	const retries = 2
	// At DEBUG the pipe logs every failed attempt, which the check of
	// duplicates below reads.
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), "timeout: 200ms"),
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq), logLevel: "DEBUG",
		policy: []string{backoffFast, "bisectBatchOnError: true", fmt.Sprintf("maximumRetryAttempts: %d", retries)}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, fileDone(dlq)))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 60*time.Second, "the good records delivered, the slow ones dead-lettered, all committed", func() (bool, string) {
		fs, err := readFailureFile(dlq)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ft.deliveredSet()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d of %d dead-lettered", n, len(good), len(fs), len(slow))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	m := scrapeMetrics(t, adminAddr(t, p))
	p.stop(t)
	w.check(t)

	// What the target answered after the pipe gave up on it does not count
	// as delivered.
	checkCounters(t, m, map[string]float64{"pipe_records_sent_to_on_failure_total": float64(len(slow)),
		"pipe_records_delivered_total": float64(len(good))})
	if n := m.sum("pipe_retries_total", "pipe", "faults"); n < float64(retries*len(slow)) {
		t.Errorf("pipe_retries_total is %v, want at least %d", n, retries*len(slow))
	}
	// A good batch may time out as well on a busy machine, after the
	// target answered it: the pipe then sends its records again, the
	// duplicates at-least-once allows. Each extra delivery of a record must
	// match an attempt covering it that the pipe logged as timed out.
	first, dups := firstDeliveries(ft.delivered())
	checkDelivered(t, first, good, topic, b.addr)
	timedOut := loggedFailures(logLines(t, p), "Timeout")
	for k, n := range dups {
		if n > timedOut[k] {
			t.Errorf("record %v was delivered %d more times, but the pipe logged only %d timed-out attempts covering it", k, n, timedOut[k])
		}
	}
	if len(dups) > 0 {
		t.Logf("%d records were delivered again after their batch timed out on the pipe's side", len(dups))
	}
	fs, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	checkFailureSet(t, fs, slow)
	for _, f := range fs {
		solo := ft.solo(f.rec)
		if len(solo) != retries+1 {
			t.Errorf("slow record %v was tried alone %d times, want %d (1 + maximumRetryAttempts)", f.rec, len(solo), retries+1)
		}
		for _, c := range solo {
			if c.status != 0 {
				t.Errorf("call %d for slow record %v was answered %d; the client should have given up", c.n, f.rec, c.status)
			}
		}
	}
	checkFailures(t, fs, func(f *failureRec) failureWant {
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: retries + 1, stage: "target",
			errHas: []string{"POST " + ft.srv.URL + "/deliver", "Timeout"}, topic: topic, bootstrap: b.addr, since: start}
	}, truth)
	checkDeadLetterLogs(t, p, fs, topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d calls, %v", len(ft.snapshot()), time.Since(start).Round(time.Millisecond))
}

// TestFailureRetryAfter: the target answers its first call 429 with
// Retry-After: 1. That batch is tried again no sooner than a second later
// (the backoff alone would retry after a few milliseconds), then delivered.
func TestFailureRetryAfter(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-retry-after"
	b.createTopic(t, topic)
	truth := produceRecs(t, b, topic, keyedRecords(160, func(i int) string { return fmt.Sprintf("k-%d", i) }))
	ends := b.endOffsets(t, topic)
	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if c.n == 1 {
			return faultReply{status: http.StatusTooManyRequests, retryAfter: "1"}
		}
		return faultReply{status: http.StatusOK}
	})
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		policy: []string{backoffFast}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 60*time.Second, "every record to be delivered and committed", func() (bool, string) {
		if n := len(ft.deliveredSet()); n < len(truth) {
			return false, fmt.Sprintf("%d of %d delivered", n, len(truth))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	checkCounters(t, scrapeMetrics(t, adminAddr(t, p)), map[string]float64{"pipe_retries_total": 1,
		"pipe_records_delivered_total": float64(len(truth))})
	p.stop(t)
	w.check(t)

	calls := ft.snapshot()
	first := calls[0]
	if first.status != http.StatusTooManyRequests {
		t.Fatalf("the first call was answered %d", first.status)
	}
	var retry *faultCall
	for i := range calls[1:] {
		c := &calls[1+i]
		if c.ds[0].rec.Partition == first.ds[0].rec.Partition {
			retry = c
			break
		}
	}
	if retry == nil {
		t.Fatalf("no call after the first for partition %d", first.ds[0].rec.Partition)
	}
	if !slices.Equal(retry.pos(), first.pos()) {
		t.Fatalf("the next call for partition %d holds %v, want the throttled batch %v again", first.ds[0].rec.Partition, retry.pos(), first.pos())
	}
	gap := retry.at.Sub(first.at)
	if gap < 900*time.Millisecond {
		t.Errorf("the throttled batch was tried again %v after the 429 with Retry-After: 1, want at least a second", gap)
	}
	if retry.status != http.StatusOK {
		t.Errorf("the retry was answered %d", retry.status)
	}
	checkDelivered(t, ft.delivered(), truth, topic, b.addr)
	lines := logLines(t, p)
	checkDeadLetterLogs(t, p, nil, topic)
	warned := logsWith(lines, msgRetrying)
	if len(warned) != 1 || warned[0]["retryIn"] != "1s" || warned[0]["level"] != "WARN" {
		t.Errorf("retry warnings %v, want one at WARN with retryIn 1s", warned)
	}
	checkAllCommitted(t, b, group, topic)
	t.Logf("retried after %v; %v", gap.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestFailureDestinationDown: the target rejects one record; the http
// on-failure destination answers 503 until the test has seen that the
// record's partition waits: its committed offset stays at or before the
// record and nothing after it is delivered, while the other partitions go
// on. Then the destination comes back, stores the failure once, and the
// partition moves on.
func TestFailureDestinationDown(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-dest-down"
	b.createTopic(t, topic)
	// Record 99 is partition 3, offset 12.
	truth := produceRecs(t, b, topic, keyedRecords(200, func(i int) string {
		if i == 99 {
			return "poison-99"
		}
		return fmt.Sprintf("k-%d", i)
	}))
	ends := b.endOffsets(t, topic)
	isPoison := func(k string) bool { return strings.HasPrefix(k, "poison-") }
	poison := pickByKey(truth, isPoison)
	bad := po{3, 12}
	if len(poison) != 1 || poison[bad] == nil {
		t.Fatalf("poison records %v, want only %v", sortedPOs(poison), bad)
	}
	good := except(truth, poison)

	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isPoison) {
			return faultReply{status: http.StatusBadRequest}
		}
		return faultReply{status: http.StatusOK}
	})
	dest := newDestServer(t, true)
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{http: {url: "%s", timeout: 2s}}`, dest.url()),
		policy:    []string{"retryBackoff: {initial: 1ms, maximum: 20ms}", "bisectBatchOnError: true", "maximumRetryAttempts: 2"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, dest.storedSet))
	p := startPipe(t, cfg, "run-1")

	const minRefused = 5
	waiting := 0 // samples of the group's offsets taken while the destination refused
	waitFor(t, 60*time.Second, "the destination to refuse the failure while the other partitions finish", func() (bool, string) {
		refused, _ := dest.counts()
		c, err := b.tryCommitted(group, topic)
		if err != nil || refused == 0 {
			return false, fmt.Sprintf("%d refused, committed %v (error %v)", refused, c, err)
		}
		if c[bad.p] > bad.o {
			t.Fatalf("partition %d committed offset %d while the on-failure destination refused record %v", bad.p, c[bad.p], bad)
		}
		waiting++
		for p, end := range ends {
			if p != bad.p && c[p] != end {
				return false, fmt.Sprintf("committed %v, end offsets %v", c, ends)
			}
		}
		return refused >= minRefused && waiting >= 5, fmt.Sprintf("%d refused, %d samples", refused, waiting)
	}, p, b.proc)
	for _, d := range ft.delivered() {
		if d.rec.Partition == bad.p && d.rec.Offset > bad.o {
			t.Fatalf("record %d@%d was delivered while record %v waited for the on-failure destination", d.rec.Partition, d.rec.Offset, bad)
		}
	}
	// The partition's wait shows on /pipes.
	addr := adminAddr(t, p)
	for _, pr := range partitionsOf(t, addr) {
		bl := pr.Blocked
		switch {
		case pr.Partition != bad.p && bl != nil:
			t.Errorf("/pipes shows partition %d blocked: %+v", pr.Partition, *bl)
		case pr.Partition == bad.p && (bl == nil || bl.Offset != bad.o || bl.Stage != "onFailure" || !strings.Contains(bl.Reason, "503")):
			t.Errorf("/pipes shows partition %d as %+v, want it blocked on retry at offset %d, stage onFailure, with the 503", bad.p, pr, bad.o)
		}
	}
	upAt := time.Now()
	dest.setUp()
	waitFor(t, 60*time.Second, "the failure to be stored and every partition committed", func() (bool, string) {
		_, stored := dest.counts()
		if n := len(ft.deliveredSet()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d stored", n, len(good), stored)
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	m := scrapeMetrics(t, addr)
	p.stop(t)
	w.check(t)

	checkDelivered(t, ft.delivered(), good, topic, b.addr)
	for _, c := range ft.snapshot() {
		// Calls holding the record are the bisection isolating it; none
		// may go past it before it is stored.
		if c.ds[0].rec.Partition == bad.p && c.ds[0].rec.Offset > bad.o && c.at.Before(upAt) {
			t.Errorf("call %d sent partition %d offsets %v before the on-failure destination stored record %v", c.n, bad.p, c.pos(), bad)
		}
	}
	dest.mu.Lock()
	refused, stored, bodies := dest.refused, dest.stored, dest.bodies
	dest.mu.Unlock()
	checkFailureSet(t, stored, poison)
	checkCounters(t, m, map[string]float64{"pipe_on_failure_errors_total": float64(refused),
		"pipe_records_sent_to_on_failure_total": 1, "pipe_records_delivered_total": float64(len(good))})
	for i, body := range bodies {
		// The pipe sends the same on-failure record until it is stored.
		if string(body) != string(bodies[0]) {
			t.Errorf("POST %d to the destination differs from the first:\n%s\n%s", i+1, body, bodies[0])
			break
		}
	}
	checkFailures(t, stored, func(f *failureRec) failureWant {
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: 1, status: 400, stage: "target",
			errHas: []string{"status 400"}, topic: topic, bootstrap: b.addr, since: start}
	}, truth)
	checkDeadLetterLogs(t, p, stored, topic)
	downs := logsWith(logLines(t, p), msgDestFailed)
	if len(downs) != 1 || downs[0]["level"] != "ERROR" || downs[0]["offsets"] != "12-12" ||
		downs[0]["partition"] != float64(3) || !strings.Contains(fmt.Sprint(downs[0]["error"]), "status 503") {
		t.Errorf("destination failures logged: %v, want one ERROR for partition 3 offsets 12-12 with the 503", downs)
	}
	checkAllCommitted(t, b, group, topic)
	t.Logf("the destination refused %d POSTs; %v", refused, time.Since(start).Round(time.Millisecond))
}

// TestFailurePoisonAtScale: 10,000 records of which 25 are poison (the
// target answers 500 for any batch holding one). With bisect and 3
// retries, exactly the 25 end on the Kafka on-failure topic, one message
// each, keyed and with the failure in headers; the 9,975 others are
// delivered in order, and the group's lag ends at 0.
func TestFailurePoisonAtScale(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, failedTopic, group = "orders", "orders-failed", "e2e-fail-scale"
	b.createTopic(t, topic)
	b.createTopic(t, failedTopic)
	bad := map[int]bool{}
	for k := range 25 {
		bad[397*k+11] = true
	}
	truth := produceRecs(t, b, topic, keyedRecords(10000, func(i int) string {
		if bad[i] {
			return fmt.Sprintf("poison-%d", i)
		}
		return fmt.Sprintf("k-%d", i)
	}))
	ends := b.endOffsets(t, topic)
	isPoison := func(k string) bool { return strings.HasPrefix(k, "poison-") }
	poison := pickByKey(truth, isPoison)
	good := except(truth, poison)
	if len(poison) != 25 || len(good) != 9975 {
		t.Fatalf("%d poison and %d good records", len(poison), len(good))
	}

	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isPoison) {
			return faultReply{status: http.StatusInternalServerError}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := readDLQ(t, b, failedTopic)
	const retries = 3
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{kafka: {topic: %s}}`, failedTopic),
		policy:    []string{backoffFast, "bisectBatchOnError: true", fmt.Sprintf("maximumRetryAttempts: %d", retries)}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, dlq.synced))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 90*time.Second, "9,975 records delivered, 25 dead-lettered, lag 0", func() (bool, string) {
		if n, d := len(ft.deliveredSet()), len(dlq.records()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d of %d dead-lettered", n, len(good), d, len(poison))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	m := scrapeMetrics(t, adminAddr(t, p))
	p.stop(t)
	w.check(t)

	checkCounters(t, m, map[string]float64{"pipe_retries_total": float64(retries * len(poison)),
		"pipe_bisects_total":                    float64(len(logsWith(logLines(t, p), msgBisect))),
		"pipe_records_sent_to_on_failure_total": float64(len(poison)), "pipe_records_delivered_total": float64(len(good))})
	checkDelivered(t, ft.delivered(), good, topic, b.addr)
	dlq.synced() // read the topic up to its end
	msgs := dlq.records()
	var fs []*failureRec
	for _, m := range msgs {
		f, err := parseFailure(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
		r := truth[f.rec]
		if r == nil {
			t.Fatalf("on-failure message for unknown record %v", f.rec)
		}
		if !sameBytes(m.Key, r.key) {
			t.Errorf("on-failure message of %v is keyed %q, want the record's key %q", f.rec, m.Key, r.key)
		}
		wantHeaders := []kgo.RecordHeader{
			{Key: "pipe-pipe", Value: []byte("faults")},
			{Key: "pipe-condition", Value: []byte("RetryAttemptsExhausted")},
			{Key: "pipe-stage", Value: []byte("target")},
			{Key: "pipe-attempts", Value: []byte(strconv.Itoa(retries + 1))},
			{Key: "pipe-topic", Value: []byte(topic)},
			{Key: "pipe-partition", Value: []byte(strconv.Itoa(int(f.rec.p)))},
			{Key: "pipe-offset", Value: []byte(strconv.FormatInt(f.rec.o, 10))},
			{Key: "pipe-error", Value: []byte(f.ErrorMessage)},
		}
		if !sameHeaders(m.Headers, wantHeaders) {
			t.Errorf("on-failure message of %v has headers %q, want %q", f.rec, m.Headers, wantHeaders)
		}
		if n := len(ft.solo(f.rec)); n != retries+1 {
			t.Errorf("poison record %v was tried alone %d times, want %d", f.rec, n, retries+1)
		}
	}
	checkFailures(t, fs, func(f *failureRec) failureWant {
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: retries + 1, status: 500, stage: "target",
			errHas: []string{"status 500"}, topic: topic, bootstrap: b.addr, since: start}
	}, truth)
	checkFailureSet(t, fs, poison)
	checkDeadLetterLogs(t, p, fs, topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d calls for 10,000 records; %v", len(ft.snapshot()), time.Since(start).Round(time.Millisecond))
}

// TestFailureSIGKILLDuringRetries: the target fails every batch from
// offset 40 on (503) and rejects poison records (400, at offsets 10, 40 and
// 70 of each partition). The first process is killed while it retries
// offset 41; a second one resumes from the committed offsets, and once the
// target recovers every record ends delivered or dead-lettered. Records
// below the offsets committed at the kill are done exactly once; the
// others at most once per process.
func TestFailureSIGKILLDuringRetries(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-sigkill"
	b.createTopic(t, topic)
	truth := produceRecs(t, b, topic, keyedRecords(800, func(i int) string {
		if o := i / partitions; o == 10 || o == 40 || o == 70 {
			return fmt.Sprintf("poison-%d", i)
		}
		return fmt.Sprintf("k-%d", i)
	}))
	ends := b.endOffsets(t, topic)
	isPoison := func(k string) bool { return strings.HasPrefix(k, "poison-") }
	poison := pickByKey(truth, isPoison)
	good := except(truth, poison)

	var failing atomic.Bool
	failing.Store(true)
	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isPoison) {
			return faultReply{status: http.StatusBadRequest}
		}
		if failing.Load() && c.ds[len(c.ds)-1].rec.Offset >= 40 {
			return faultReply{status: http.StatusServiceUnavailable}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := t.TempDir() + "/failed.jsonl"
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, batchSize: 20, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq),
		policy:    []string{"retryBackoff: {initial: 1ms, maximum: 20ms}", "bisectBatchOnError: true", "maximumRetryAttempts: 10000"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, fileDone(dlq)))

	// stuck reports whether run has tried offset 41 of every partition
	// alone at least 3 times: the partitions wait in retries.
	stuck := func(run string) (bool, string) {
		n := map[int32]int{}
		for _, c := range ft.snapshot() {
			if c.run == run && len(c.ds) == 1 && c.ds[0].rec.Offset == 41 && c.status == http.StatusServiceUnavailable {
				n[c.ds[0].rec.Partition]++
			}
		}
		for p := int32(0); p < partitions; p++ {
			if n[p] < 3 {
				return false, fmt.Sprintf("%s retried offset 41 alone %v times per partition", run, n)
			}
		}
		return true, ""
	}
	p1 := startPipe(t, cfg, "run-1")
	var memberID string
	waitFor(t, 60*time.Second, "run-1 to retry offset 41 of every partition, with offsets committed past 20", func() (bool, string) {
		if ok, status := stuck("run-1"); !ok {
			return false, status
		}
		c, err := b.tryCommitted(group, topic)
		if err != nil {
			return false, err.Error()
		}
		for p := int32(0); p < partitions; p++ {
			if c[p] <= 20 {
				return false, fmt.Sprintf("committed %v", c)
			}
		}
		_, ms, err := b.groupInfo(group, topic)
		for _, m := range ms {
			if m.clientID == "run-1" {
				memberID = m.id
			}
		}
		return memberID != "", fmt.Sprintf("group members %+v, error %v", ms, err)
	}, p1, b.proc)
	p1.kill(t)
	atKill := b.committed(t, group, topic)
	fs1, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		if atKill[p] <= 20 || atKill[p] > 41 {
			t.Fatalf("partition %d: committed %d when run-1 was killed, want 21 to 41", p, atKill[p])
		}
	}
	t.Logf("killed run-1 while it retried; committed %v, %d records dead-lettered", atKill, len(fs1))
	b.evict(t, group, memberID)

	p2 := startPipe(t, cfg, "run-2")
	waitFor(t, 60*time.Second, "run-2 to retry offset 41 of every partition", func() (bool, string) {
		return stuck("run-2")
	}, p2, b.proc)
	failing.Store(false)
	waitFor(t, 60*time.Second, "every record delivered or dead-lettered, all committed", func() (bool, string) {
		fs, err := readFailureFile(dlq)
		if err != nil {
			t.Fatal(err)
		}
		if n, d := len(ft.deliveredSet()), len(failureSet(fs)); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d of %d dead-lettered", n, len(good), d, len(poison))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p2, b.proc)
	p2.stop(t)
	w.check(t)

	fs, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	delivered := ft.deliveredSet()
	failed := failureSet(fs)
	// Per run: each record at most once, in partition order.
	ds := ft.delivered()
	checkOrder(t, ds)
	perRun := map[string]map[po]int{}
	for _, d := range ds {
		if perRun[d.run] == nil {
			perRun[d.run] = map[po]int{}
		}
		perRun[d.run][po{d.rec.Partition, d.rec.Offset}]++
	}
	for _, part := range [][]*failureRec{fs[:len(fs1)], fs[len(fs1):]} {
		for k, n := range failureSet(part) {
			if n > 1 {
				t.Errorf("one process dead-lettered %v %d times", k, n)
			}
		}
	}
	dups := 0
	for k := range truth {
		n := delivered[k] + failed[k]
		switch {
		case poison[k] != nil && delivered[k] > 0:
			t.Errorf("poison record %v was delivered", k)
		case good[k] != nil && failed[k] > 0:
			t.Errorf("record %v was dead-lettered", k)
		case n == 0:
			t.Errorf("record %v was lost: neither delivered nor dead-lettered", k)
		case k.o < atKill[k.p] && n != 1:
			t.Errorf("record %v, below the offset %d committed before the kill, was done %d times", k, atKill[k.p], n)
		case n > 2:
			t.Errorf("record %v was done %d times by two processes", k, n)
		}
		for run, m := range perRun {
			if m[k] > 1 {
				t.Errorf("%s delivered %v %d times", run, k, m[k])
			}
		}
		if n > 1 {
			dups++
		}
	}
	// Run-2 resumed each partition at its committed offset.
	firstOf := map[int32]int64{}
	for _, c := range ft.snapshot() {
		if _, ok := firstOf[c.ds[0].rec.Partition]; c.run == "run-2" && !ok {
			firstOf[c.ds[0].rec.Partition] = c.ds[0].rec.Offset
		}
	}
	for p := int32(0); p < partitions; p++ {
		if firstOf[p] != atKill[p] {
			t.Errorf("partition %d: run-2 started at offset %d, want the committed offset %d", p, firstOf[p], atKill[p])
		}
		// Offset 40 was dead-lettered by run-1; unless the batch that held
		// it ended there, it was not committed, and run-2 dead-letters it
		// again: the duplicate that at-least-once allows.
		if k, want := (po{p, 40}), 1+boolInt(atKill[p] <= 40); failed[k] != want {
			t.Errorf("record %v was dead-lettered %d times, want %d (committed offset at the kill: %d)", k, failed[k], want, atKill[p])
		}
	}
	checkFailures(t, fs, func(f *failureRec) failureWant {
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: 1, status: 400, stage: "target",
			errHas: []string{"status 400"}, topic: topic, bootstrap: b.addr, since: start}
	}, truth)
	checkDeadLetterLogs(t, p1, fs[:len(fs1)], topic)
	checkDeadLetterLogs(t, p2, fs[len(fs1):], topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d records done twice (all at or above the offsets committed at the kill); %v", dups, time.Since(start).Round(time.Millisecond))
}

// TestFailureInTransform: the transform expression fails on some records
// (a division by zero whose result is not JSON, a string function on a
// number). Those records are dead-lettered as read, with stage
// "transform"; the others are delivered transformed.
func TestFailureInTransform(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-transform"
	b.createTopic(t, topic)
	rs := make([]*kgo.Record, 200)
	for i := range rs {
		key, div, name := fmt.Sprintf("k-%d", i), strconv.Itoa(1+i%4), fmt.Sprintf(`"item %d"`, i)
		switch i % 23 {
		case 4:
			key, div = fmt.Sprintf("bad-div-%d", i), "0"
		case 17:
			key, name = fmt.Sprintf("bad-type-%d", i), strconv.Itoa(i)
		}
		rs[i] = &kgo.Record{Partition: int32(i % partitions), Key: []byte(key),
			Value: []byte(fmt.Sprintf(`{"n":%d,"div":%s,"name":%s}`, i, div, name))}
	}
	truth := produceRecs(t, b, topic, rs)
	ends := b.endOffsets(t, topic)
	isBad := func(k string) bool { return strings.HasPrefix(k, "bad-") }
	bad := pickByKey(truth, isBad)
	good := except(truth, bad)
	// What the target must receive: each good value transformed.
	transformed := map[po]*rec{}
	for k, r := range good {
		var v struct {
			N    float64 `json:"n"`
			Div  float64 `json:"div"`
			Name string  `json:"name"`
		}
		if err := json.Unmarshal(r.value, &v); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(map[string]any{"id": v.N, "per": 100 / v.Div, "name": strings.ToUpper(v.Name)})
		c := *r
		c.value = out
		transformed[k] = &c
	}

	ft := newFaultTarget(t, func(c *faultCall) faultReply { return faultReply{status: http.StatusOK} })
	dlq := t.TempDir() + "/failed.jsonl"
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		transform: `{"id": value.n, "per": 100 / value.div, "name": upper(value.name)}`,
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq),
		policy:    []string{backoffFast, "bisectBatchOnError: true", "maximumRetryAttempts: 2"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, fileDone(dlq)))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 60*time.Second, "the good records delivered, the bad ones dead-lettered, all committed", func() (bool, string) {
		fs, err := readFailureFile(dlq)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ft.deliveredSet()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d of %d dead-lettered", n, len(good), len(fs), len(bad))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	checkCounters(t, scrapeMetrics(t, adminAddr(t, p)), map[string]float64{"pipe_retries_total": 0,
		"pipe_records_sent_to_on_failure_total": float64(len(bad)), "pipe_records_delivered_total": float64(len(good))})
	p.stop(t)
	w.check(t)

	checkDelivered(t, ft.delivered(), transformed, topic, b.addr)
	fs, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	checkFailureSet(t, fs, bad)
	// The payload is the record as read, not as transformed.
	checkFailures(t, fs, func(f *failureRec) failureWant {
		why := "result is not JSON" // 100 / 0 is +Inf
		if strings.HasPrefix(string(truth[f.rec].key), "bad-type-") {
			why = "string"
		}
		return failureWant{target: ft.url(), condition: "RetryAttemptsExhausted", attempts: 1, stage: "transform",
			errHas: []string{fmt.Sprintf("transform failed on %s-%d offset %d", topic, f.rec.p, f.rec.o), why},
			topic:  topic, bootstrap: b.addr, since: start}
	}, truth)
	// A record that fails the transform never reaches the target.
	for _, c := range ft.snapshot() {
		if anyKey(&c, isBad) {
			t.Errorf("call %d held a record the transform failed on: %v", c.n, c.pos())
		}
	}
	checkDeadLetterLogs(t, p, fs, topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("%d dead-lettered, %v", len(fs), time.Since(start).Round(time.Millisecond))
}

// firstDeliveries splits deliveries into the first of each record, in
// arrival order, and how many more times each record came.
func firstDeliveries(ds []delivery) (first []delivery, again map[po]int) {
	seen := map[po]bool{}
	again = map[po]int{}
	for _, d := range ds {
		k := po{d.rec.Partition, d.rec.Offset}
		if seen[k] {
			again[k]++
			continue
		}
		seen[k] = true
		first = append(first, d)
	}
	return first, again
}

// loggedFailures counts, per record, the failed attempts the pipe logged
// (bisections, retries at WARN and DEBUG, dead-letterings) whose error says
// why.
func loggedFailures(lines []map[string]any, why string) map[po]int {
	m := map[po]int{}
	for _, l := range lines {
		switch l["msg"] {
		case msgBisect, msgRetrying, "batch failed again", msgDeadLettered:
		default:
			continue
		}
		if !strings.Contains(fmt.Sprint(l["error"]), why) {
			continue
		}
		part, _ := l["partition"].(float64)
		var lo, hi int64
		if _, err := fmt.Sscanf(fmt.Sprint(l["offsets"]), "%d-%d", &lo, &hi); err != nil {
			continue
		}
		for o := lo; o <= hi; o++ {
			m[po{int32(part), o}]++
		}
	}
	return m
}

// TestFailureRecordAgeAfterPartialFailure: a target in record mode fails
// one record for good (503) after the transform; the record passes
// maximumRecordAge while it is retried and goes to the on-failure file as
// RecordAgeExceeded. The file must hold the record as the pipe read it, as
// it does for exhausted retries, so that a redrive runs the transform
// again on the original value, not on its output.
func TestFailureRecordAgeAfterPartialFailure(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, group = "orders", "e2e-fail-age"
	b.createTopic(t, topic)
	// The records turn 60s old (maximumRecordAge) six seconds from now:
	// fresh when first tried, expired while the stuck one is retried.
	born := time.Now().Add(-60*time.Second + 6*time.Second)
	rs := keyedRecords(4*partitions, func(i int) string {
		if i == 3*partitions { // the last record of partition 0
			return "stuck"
		}
		return fmt.Sprintf("k-%d", i)
	})
	for _, r := range rs {
		r.Timestamp = born
	}
	truth := produceRecs(t, b, topic, rs)
	ends := b.endOffsets(t, topic)
	stuck := po{0, 3}
	if string(truth[stuck].key) != "stuck" {
		t.Fatalf("record %v is keyed %q", stuck, truth[stuck].key)
	}

	type attempt struct {
		at    time.Time
		k     po
		value []byte
	}
	var (
		mu        sync.Mutex
		attempts  []attempt
		delivered = map[po]int{}
		problems  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var er envRecord
		err := strictDecode(body, &er, "topic", "partition", "offset", "timestamp", "timestampType", "headers")
		var value []byte
		if err == nil && er.Value != nil {
			value, err = base64.StdEncoding.DecodeString(*er.Value)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%v: %s", err, body))
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		k := po{er.Partition, er.Offset}
		attempts = append(attempts, attempt{time.Now(), k, value})
		if k == stuck {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		delivered[k]++
	}))
	t.Cleanup(srv.Close)
	deliveredSet := func() map[po]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(delivered)
	}

	dlq := t.TempDir() + "/failed.jsonl"
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group,
		target:    fmt.Sprintf(`{http: {url: "%s/record", mode: record}}`, srv.URL),
		transform: `{"n": value.n, "transformed": true}`,
		onFailure: fmt.Sprintf(`{file: {path: "%s"}}`, dlq),
		policy:    []string{"retryBackoff: {initial: 1ms, maximum: 50ms}", "maximumRetryAttempts: 10000", "maximumRecordAge: 60s"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(deliveredSet, fileDone(dlq)))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 30*time.Second, "the stuck record to expire into the on-failure file, all committed", func() (bool, string) {
		fs, err := readFailureFile(dlq)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(deliveredSet()); n < len(truth)-1 {
			return false, fmt.Sprintf("%d of %d delivered, %d dead-lettered", n, len(truth)-1, len(fs))
		}
		return allCommitted(t, b, group, topic, ends)
	}, p, b.proc)
	p.stop(t)
	w.check(t)

	mu.Lock()
	defer mu.Unlock()
	for _, pr := range problems {
		t.Errorf("target: %s", pr)
	}
	tries := 0
	for _, a := range attempts {
		if a.k == stuck {
			tries++
			if a.at.Sub(born) >= time.Minute+2*time.Second { // checked before the attempt; allow for the trip
				t.Errorf("record %v was sent to the target at age %v, past maximumRecordAge", stuck, a.at.Sub(born))
			}
			if !strings.Contains(string(a.value), `"transformed":true`) {
				t.Errorf("the target got %s, not the transformed value", a.value)
			}
		}
	}
	if tries == 0 {
		t.Fatalf("record %v was never tried: it expired before the first attempt, so this test proves nothing (a slow start?)", stuck)
	}
	for k := range truth {
		if k != stuck && delivered[k] != 1 {
			t.Errorf("record %v was delivered %d times", k, delivered[k])
		}
	}
	fs, err := readFailureFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	checkFailureSet(t, fs, map[po]*rec{stuck: truth[stuck]})
	checkFailures(t, fs, func(f *failureRec) failureWant {
		return failureWant{target: srv.URL + "/record", condition: "RecordAgeExceeded", attempts: tries, topic: topic, bootstrap: b.addr, since: start}
	}, truth)
	checkDeadLetterLogs(t, p, fs, topic)
	checkAllCommitted(t, b, group, topic)
	t.Logf("record %v was tried %d times before it expired; %v", stuck, tries, time.Since(start).Round(time.Millisecond))
}

// TestFailureDeadLetterTooLargeForTopic: the target rejects a record of
// 800 kB, within the broker's 1 MB message limit. Its on-failure record
// carries it base64-encoded, over that limit, so the Kafka on-failure topic
// refuses it. Retrying the same message cannot succeed: the partition must
// not wait for ever (the "never stall for ever by accident"); the
// failure must reach the topic, without the payload if need be, naming the
// record so it can be found in the source topic.
func TestFailureDeadLetterTooLargeForTopic(t *testing.T) {
	start := time.Now()
	b := startBroker(t)
	const topic, failedTopic, group = "orders", "orders-failed", "e2e-fail-too-large"
	b.createTopic(t, topic)
	b.createTopic(t, failedTopic)
	rs := keyedRecords(3*partitions, func(i int) string { return fmt.Sprintf("k-%d", i) })
	big := rs[partitions+2] // partition 2, offset 1
	big.Key = []byte("big-poison")
	rng := rand.New(rand.NewPCG(1, 2))
	big.Value = make([]byte, 800_000)
	for i := range big.Value {
		big.Value[i] = byte(rng.UintN(256))
	}
	truth := produceRecs(t, b, topic, rs)
	ends := b.endOffsets(t, topic)
	bad := po{2, 1}
	isPoison := func(k string) bool { return k == "big-poison" }
	poison := pickByKey(truth, isPoison)
	if len(poison) != 1 || poison[bad] == nil {
		t.Fatalf("poison records %v, want only %v", sortedPOs(poison), bad)
	}
	good := except(truth, poison)

	ft := newFaultTarget(t, func(c *faultCall) faultReply {
		if anyKey(c, isPoison) {
			return faultReply{status: http.StatusBadRequest}
		}
		return faultReply{status: http.StatusOK}
	})
	dlq := readDLQ(t, b, failedTopic)
	cfg := faultPipe{brokers: b.addr, topic: topic, group: group, target: httpTarget(ft.url(), ""),
		onFailure: fmt.Sprintf(`{kafka: {topic: %s}}`, failedTopic),
		policy:    []string{backoffFast, "bisectBatchOnError: true", "maximumRetryAttempts: 2"}}.write(t)
	w := watchCommits(t, b, group, topic, doneUnion(ft.deliveredSet, dlq.synced))
	p := startPipe(t, cfg, "run-1")
	waitFor(t, 15*time.Second, "the big record's failure on the on-failure topic and every partition committed", func() (bool, string) {
		status := ""
		if downs := logsWith(logLines(t, p), msgDestFailed); len(downs) > 0 {
			status = fmt.Sprintf("; the pipe logged: %v", downs[0]["error"])
		}
		if n, d := len(ft.deliveredSet()), len(dlq.records()); n < len(good) {
			return false, fmt.Sprintf("%d of %d delivered, %d on the on-failure topic%s", n, len(good), d, status)
		}
		ok, s := allCommitted(t, b, group, topic, ends)
		return ok, s + status
	}, p, b.proc)
	p.stop(t)
	w.check(t)

	checkDelivered(t, ft.delivered(), good, topic, b.addr)
	dlq.synced() // read the topic up to its end
	msgs := dlq.records()
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the on-failure topic, want 1", len(msgs))
	}
	m := msgs[0]
	if string(m.Key) != "big-poison" {
		t.Errorf("the on-failure message is keyed %q, want big-poison", m.Key)
	}
	want := map[string]string{"pipe-partition": "2", "pipe-offset": "1", "pipe-topic": topic, "pipe-condition": "RetryAttemptsExhausted"}
	for _, h := range m.Headers {
		if v, ok := want[h.Key]; ok && v == string(h.Value) {
			delete(want, h.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("the on-failure message lacks the headers %v: %q", want, m.Headers)
	}
	var rec struct {
		KafkaBatchInfo struct {
			RecordsInfo map[string]struct {
				FirstRecordOffset string `json:"firstRecordOffset"`
			} `json:"recordsInfo"`
		} `json:"KafkaBatchInfo"`
	}
	if err := json.Unmarshal(m.Value, &rec); err != nil || rec.KafkaBatchInfo.RecordsInfo[topic+"-2"].FirstRecordOffset != "1" {
		t.Errorf("the on-failure message does not name %s-2 offset 1 (%v): %.300s", topic, err, m.Value)
	}
	checkAllCommitted(t, b, group, topic)
	t.Logf("%v", time.Since(start).Round(time.Millisecond))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
