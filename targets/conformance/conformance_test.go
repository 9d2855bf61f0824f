package conformance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/internal/testenv"
	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka" // the source of the test pipes
	_ "github.com/pipe-run/pipe/targets/eventbridge"
	_ "github.com/pipe-run/pipe/targets/http"
	_ "github.com/pipe-run/pipe/targets/kafka"
	_ "github.com/pipe-run/pipe/targets/lambda"
	_ "github.com/pipe-run/pipe/targets/sns"
	_ "github.com/pipe-run/pipe/targets/sqs"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// kind is one target of the suite.
type kind struct {
	name string
	// aws: the target uses the AWS SDK (awsEnv applies); fauxqs: its part
	// runs on fauxqs, started once for the kind.
	aws, fauxqs bool
	// start starts the part that plays the target.
	start func(t *testing.T, l *lab) *part
	// failures are the ways one record of a batch can fail; noFailure says
	// why there are none.
	failures  []failure
	noFailure string
	// hang starts a receiver that never answers.
	hang func(t *testing.T) *part
}

// failure is one way a record can fail.
type failure struct {
	name string
	// index is the record of mixedBatch that fails; want is what Deliver
	// must report failed: that record and, where the target keeps a
	// partition's order after this kind of failure, the later records of
	// its partition.
	index int
	want  []int
	// start starts a part on which record i of b fails (it may change the
	// record). heal, when not nil, makes the part take the record from then
	// on; nil means that it never will.
	start func(t *testing.T, l *lab, b *pipeline.Batch, i int) (p *part, heal func())
	// permanent: the error says that retrying cannot help; tooLarge: it
	// is a record too large (on-failure condition MaximumPayloadSizeExceeded).
	permanent, tooLarge bool
	// reorders: the later records of the partition were accepted before
	// the failed one is retried, as the target documents.
	reorders bool
}

// The records of mixedBatch: 0-3 are orders-0, 4-7 orders-1, 8-10
// payments-3 and 11-22 orders-2. A batch API (10 entries per call) sends
// 0-9 in its first call and 10-19 in its second.
var kinds = []kind{
	{
		name: "stdout", start: startStdout, hang: hangStdout,
		noFailure: "stdout writes a batch as one line: it has no per-record failure",
	},
	{
		name: "http", start: startHTTP, hang: hangHTTP,
		failures: []failure{
			// Record mode: a record that a retry may deliver stops its
			// partition; a permanent failure does not hold it back.
			{name: "503", index: 5, want: []int{5, 6, 7}, start: rejectHTTP(503, false)},
			{name: "400", index: 5, want: []int{5}, start: rejectHTTP(400, true), permanent: true},
		},
	},
	{
		name: "sqs", aws: true, fauxqs: true, start: startSQS, hang: hangSQS,
		failures: []failure{
			// A permanent failure does not hold back the partition.
			{name: "too large", index: 5, want: []int{5}, start: tooLarge(startSQS), permanent: true, tooLarge: true},
		},
	},
	{
		name: "sns", aws: true, fauxqs: true, start: startSNS, hang: hangSNS,
		failures: []failure{
			{name: "too large", index: 5, want: []int{5}, start: tooLarge(startSNS), permanent: true, tooLarge: true},
		},
	},
	{
		name: "eventbridge", aws: true, start: startEventBridge, hang: hangEventBridge,
		failures: []failure{
			// payments-3@8 fails in the first call; payments-3@9, in the
			// second call, waits for it.
			{name: "InternalFailure", index: 9, want: []int{9, 10}, start: rejectEntry("InternalFailure", false)},
			// orders-1@202 and @203 went in the same call as @201 and were
			// accepted: only @201 is retried (package doc).
			{name: "InternalFailure in the same call", index: 5, want: []int{5}, start: rejectEntry("InternalFailure", false), reorders: true},
			{name: "InvalidArgument", index: 5, want: []int{5}, start: rejectEntry("InvalidArgument", true), permanent: true},
			{name: "too large", index: 5, want: []int{5}, start: tooLarge(startEventBridge), permanent: true, tooLarge: true},
		},
	},
	{
		name: "lambda", aws: true, start: startLambda, hang: hangLambda,
		failures: []failure{
			{name: "batchItemFailures", index: 5, want: []int{5, 6, 7}, start: lambdaFails},
		},
	},
	{
		name: "kafka", start: startKafka, hang: hangKafka,
		failures: []failure{
			// A permanent failure does not hold back the partition: the
			// later records were produced.
			{name: "too large", index: 5, want: []int{5}, start: kafkaTooLarge, permanent: true, tooLarge: true},
		},
	},
}

// TestConformance runs every check on every target.
func TestConformance(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			if k.aws {
				awsEnv(t)
			}
			l := &lab{}
			if k.fauxqs {
				l.fq = testenv.StartFauxqs(t)
			}
			t.Run("deliver", func(t *testing.T) { checkDeliver(t, k, l) })
			t.Run("fail", func(t *testing.T) { checkFail(t, k, l) })
			t.Run("stop", func(t *testing.T) { checkStop(t, k, l) })
		})
	}
}

// TestEveryTargetKind: the table holds every target, so a new target
// cannot miss the suite: every registered kind, and every package under
// targets/ (named after its kind).
func TestEveryTargetKind(t *testing.T) {
	var names []string
	for _, k := range pipeline.Kinds(reflect.TypeFor[pipeline.TargetConfig]()) {
		names = append(names, k.Name)
	}
	dirs, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && d.Name() != "conformance" && !slices.Contains(names, d.Name()) {
			names = append(names, d.Name())
		}
	}
	var ours []string
	for _, k := range kinds {
		ours = append(ours, k.name)
	}
	slices.Sort(names)
	slices.Sort(ours)
	if !slices.Equal(names, ours) {
		t.Fatalf("registered target kinds %v, the suite checks %v", names, ours)
	}
}

// build builds the target of p from a pipes.yaml, through pipeline.Parse
// and the config's NewTarget.
func build(t *testing.T, p *part) pipeline.Target {
	t.Helper()
	var y strings.Builder
	y.WriteString("pipes:\n  - name: conformance\n    source:\n      kafka:\n        bootstrapServers: 127.0.0.1:9092\n        topics: [orders, payments]\n    target:\n")
	for _, line := range strings.Split(strings.TrimSuffix(p.yaml, "\n"), "\n") {
		y.WriteString("      " + line + "\n")
	}
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y.String(), err)
	}
	var tg pipeline.Target
	mk := func() {
		tg, err = cfg.Pipes[0].Target.NewTarget(pipeline.Env{Pipe: "conformance", Logger: testLogger()})
	}
	if p.around != nil {
		p.around(mk)
	} else {
		mk()
	}
	if err != nil {
		t.Fatalf("NewTarget: %v", err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func testLogger() *slog.Logger {
	if os.Getenv("PIPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// deliver calls Deliver with a minute to finish.
func deliver(t *testing.T, tg pipeline.Target, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return tg.Deliver(ctx, b)
}

// expectAll is the wire form of records as p's receiver gets them.
func expectAll(p *part, recs []pipeline.Record) []wire {
	var out []wire
	for i := range recs {
		out = append(out, expected(&recs[i], p.carries))
	}
	return out
}

// checkDeliver: every record of a mixed batch arrives, exactly once and
// byte for byte, and in partition order where the receiver keeps order.
func checkDeliver(t *testing.T, k kind, l *lab) {
	p := k.start(t, l)
	tg := build(t, p)
	b := mixedBatch()
	if err := deliver(t, tg, b); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := p.arrived(t, len(b.Records))
	sameRecords(t, got, expectAll(p, b.Records))
	if p.ordered {
		inOrder(t, got)
	}
	// A second batch goes the same way on the same target.
	second := mixedBatch()
	for i := range second.Records {
		second.Records[i].Offset += 1000
	}
	if err := deliver(t, tg, second); err != nil {
		t.Fatalf("second Deliver: %v", err)
	}
	if !p.carries.coords {
		// Without coordinates the two batches look alike.
		got = p.arrived(t, 2*len(b.Records))
		sameRecords(t, got, append(expectAll(p, b.Records), expectAll(p, b.Records)...))
		return
	}
	got = p.arrived(t, 2*len(b.Records))
	sameRecords(t, got, append(expectAll(p, b.Records), expectAll(p, second.Records)...))
	if p.ordered {
		inOrder(t, got)
	}
}

// failedOf returns the indexes an error says failed: its RetryOnly list,
// or all of the batch.
func failedOf(err error, n int) []int {
	if idx, ok := pipeline.RetryOnlyOf(err); ok {
		return idx
	}
	var all []int
	for i := range n {
		all = append(all, i)
	}
	return all
}

// checkFail: one record of a batch fails; Deliver reports exactly that one
// (and the later ones of its partition where the target keeps order) with
// the right permanence; the others arrived. Delivering the failed records
// again, as the runner does, delivers them once the receiver takes them,
// and fails permanently again when it never will.
func checkFail(t *testing.T, k kind, l *lab) {
	if len(k.failures) == 0 {
		t.Logf("no per-record failure: %s", k.noFailure)
		checkWriteFailure(t)
		return
	}
	for _, f := range k.failures {
		t.Run(f.name, func(t *testing.T) {
			b := mixedBatch()
			bad := &b.Records[f.index]
			p, heal := f.start(t, l, b, f.index)
			tg := build(t, p)
			want := f.want

			err := deliver(t, tg, b)
			idx, partial := pipeline.RetryOnlyOf(err)
			switch {
			case err == nil:
				t.Fatalf("Deliver returned nil; record %s should have failed", coords(bad))
			case !partial:
				t.Fatalf("Deliver's error is not pipeline.RetryOnly: %v", err)
			case !slices.Equal(idx, want):
				t.Fatalf("Deliver reported records %v failed, want %v: %v", idx, want, err)
			}
			t.Logf("Deliver: %v", err)
			if pipeline.IsPermanent(err) != f.permanent {
				t.Errorf("permanent = %v, want %v: %v", pipeline.IsPermanent(err), f.permanent, err)
			}
			if pipeline.IsTooLarge(err) != f.tooLarge {
				t.Errorf("too large = %v, want %v: %v", pipeline.IsTooLarge(err), f.tooLarge, err)
			}
			if msg := err.Error(); !strings.Contains(msg, bad.Topic) || !strings.Contains(msg, fmt.Sprint(bad.Offset)) {
				t.Errorf("the error does not name the failed record %s: %v", coords(bad), err)
			}

			// The records not reported failed arrived, exactly once; a
			// reported one may have arrived (the function saw the batch),
			// nothing else did.
			var ok []pipeline.Record
			for i := range b.Records {
				if !slices.Contains(want, i) {
					ok = append(ok, b.Records[i])
				}
			}
			first := p.arrived(t, len(ok))
			checkArrived(t, first, expectAll(p, ok), expectAll(p, b.Records))

			// The runner's retry: the failed records alone.
			rest := &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers}
			for _, i := range want {
				rest.Records = append(rest.Records, b.Records[i])
			}
			if heal == nil {
				err := deliver(t, tg, rest)
				if err == nil || !pipeline.IsPermanent(err) {
					t.Fatalf("retrying the failed records: %v, want a permanent error", err)
				}
				// The failed record is the first of rest; the others are
				// the later records of its partition.
				if got, w := failedOf(err, len(rest.Records)), failedOf(nil, len(rest.Records)); !slices.Equal(got, w) {
					t.Errorf("retrying: records %v failed, want all %v: %v", got, w, err)
				}
				return
			}
			heal()
			if err := deliver(t, tg, rest); err != nil {
				t.Fatalf("retrying the failed records once the receiver takes them: %v", err)
			}
			all := p.arrived(t, len(first)+len(rest.Records))
			// Every record arrived; those of the first attempt once, the
			// retried ones once more than they did in it.
			want2 := append(expectAll(p, ok), expectAll(p, rest.Records)...)
			for _, w := range first {
				for _, r := range expectAll(p, rest.Records) {
					if w.String() == r.String() {
						want2 = append(want2, w)
					}
				}
			}
			sameRecords(t, all, want2)
			if p.ordered && !f.reorders {
				inOrder(t, dedupe(all))
			}
		})
	}
}

// checkArrived checks that every record of must arrived exactly once and
// that everything that arrived is one of may, at most once.
func checkArrived(t *testing.T, got, must, may []wire) {
	t.Helper()
	g, m, a := counts(got), counts(must), counts(may)
	for k := range m {
		if g[k] != 1 {
			t.Errorf("received %d times, want once: %s", g[k], k)
		}
	}
	for k, n := range g {
		if a[k] == 0 {
			t.Errorf("received %d times, never sent: %s", n, k)
		} else if n > 1 {
			t.Errorf("received %d times: %s", n, k)
		}
	}
}

// dedupe keeps the last arrival of each record: the order a retry
// established.
func dedupe(ws []wire) []wire {
	last := map[string]int{}
	for i, w := range ws {
		last[w.Coords] = i
	}
	var out []wire
	for i, w := range ws {
		if last[w.Coords] == i {
			out = append(out, w)
		}
	}
	return out
}

// checkWriteFailure: a target without per-record failures (stdout) fails
// the whole batch when it cannot write, never a part of it.
func checkWriteFailure(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // nobody reads: a write fails with EPIPE
	defer w.Close()
	tg := build(t, &part{yaml: "stdout: {}\n", around: onStdout(w)})
	err = deliver(t, tg, mixedBatch())
	if err == nil {
		t.Fatal("Deliver returned nil though stdout cannot be written")
	}
	if idx, ok := pipeline.RetryOnlyOf(err); ok {
		t.Errorf("a failed write reported records %v failed, not the whole batch: %v", idx, err)
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("a failed write is permanent: %v", err)
	}
}

// promptly bounds how long Deliver may take to return once its context is
// done.
const promptly = 10 * time.Second

// checkStop: Deliver with a cancelled context returns an error at once; a
// Deliver in flight to a receiver that never answers returns an error soon
// after its context is cancelled; Close returns nil, twice.
func checkStop(t *testing.T, k kind, l *lab) {
	t.Run("cancelled", func(t *testing.T) {
		tg := build(t, k.start(t, l))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		errc := make(chan error, 1)
		go func() { errc <- tg.Deliver(ctx, mixedBatch()) }()
		select {
		case err := <-errc:
			if err == nil {
				t.Error("Deliver with a cancelled context returned nil")
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("a cancelled Deliver's error is permanent: %v", err)
			}
			t.Logf("Deliver: %v", err)
		case <-time.After(promptly):
			t.Fatalf("Deliver with a cancelled context did not return within %v", promptly)
		}
		checkClose(t, tg)
	})
	t.Run("in flight", func(t *testing.T) {
		p := k.hang(t)
		tg := build(t, p)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		b := mixedBatch()
		go func() { errc <- tg.Deliver(ctx, b) }()
		select {
		case <-p.inFlight:
		case err := <-errc:
			t.Fatalf("Deliver returned before the receiver answered anything: %v", err)
		case <-time.After(deadline):
			t.Fatalf("nothing reached the receiver within %v", deadline)
		}
		cancel()
		select {
		case err := <-errc:
			if err == nil {
				t.Error("Deliver returned nil, though the receiver never answered")
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("a cancelled Deliver's error is permanent: %v", err)
			}
			t.Logf("Deliver: %v", err)
		case <-time.After(promptly):
			t.Fatalf("Deliver did not return within %v of its context's cancellation", promptly)
		}
		checkClose(t, tg)
	})
}

// checkClose: Close returns nil, and a second Close is harmless.
func checkClose(t *testing.T, tg pipeline.Target) {
	t.Helper()
	if err := tg.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := tg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestHTTPBatchMode: the http target's default mode, one request per
// batch whose body is the envelope, delivers the mixed batch too.
func TestHTTPBatchMode(t *testing.T) {
	p := startHTTPBatch(t)
	tg := build(t, p)
	b := mixedBatch()
	if err := deliver(t, tg, b); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := p.arrived(t, len(b.Records))
	sameRecords(t, got, expectAll(p, b.Records))
	inOrder(t, got)
}
