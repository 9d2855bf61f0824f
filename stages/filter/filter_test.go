package filter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newStage builds the filter stage of a pipe whose filter: block is
// filterBlock (indented by four spaces), logging to log when it is not nil.
func newStage(t testing.TB, filterBlock string, log *syncBuffer) *filter.Stage {
	t.Helper()
	fc := loadFilter(t, pipeYAML(filterBlock))
	env := pipeline.Env{Pipe: "p"}
	if log != nil {
		env.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := fc.NewStage(env)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.(*filter.Stage)
	if !ok {
		t.Fatalf("stage is %T", st)
	}
	return s
}

// batch makes a batch of records of topic orders, partition 2, offsets
// 100 on, one per value.
func batch(values ...string) *pipeline.Batch {
	b := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "127.0.0.1:9092"}
	for i, v := range values {
		b.Records = append(b.Records, pipeline.Record{
			Topic: "orders", Partition: 2, Offset: int64(100 + i),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     []byte(v),
			Headers:   []pipeline.Header{{Key: "source", Value: []byte("web")}, {Key: "n", Value: fmt.Appendf(nil, "%d", i)}},
		})
	}
	return b
}

func offsets(b *pipeline.Batch) []int64 {
	if b == nil {
		return nil
	}
	out := []int64{}
	for _, r := range b.Records {
		out = append(out, r.Offset)
	}
	return out
}

func amounts(ns ...int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf(`{"amount":%d,"country":"DE"}`, n))
	}
	return out
}

// TestProcessKeepsOrderAndTheBatch: the records that pass come out in
// their order, with the batch's envelope fields; the batch handed in is not
// changed, so processing it again (a retry) gives the same result.
func TestProcessKeepsOrderAndTheBatch(t *testing.T) {
	s := newStage(t, "    filter:\n      patterns: ['{\"value\": {\"amount\": [{\"numeric\": [\">\", 100]}]}}']\n", nil)
	for _, c := range []struct {
		amounts []int
		want    []int64
	}{
		{[]int{5, 500, 600, 7, 700}, []int64{101, 102, 104}},        // the first out
		{[]int{500, 5, 600, 700, 7}, []int64{100, 102, 103}},        // the last out
		{[]int{500, 600, 700, 800, 1}, []int64{100, 101, 102, 103}}, // only the last out
		{[]int{1, 2, 3}, []int64{}},                                 // all out
	} {
		b := batch(amounts(c.amounts...)...)
		before := pipeline.AppendEnvelope(nil, b)
		n := len(b.Records)
		for attempt := range 2 {
			out, err := s.Process(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(out); !slices.Equal(got, c.want) {
				t.Fatalf("amounts %v, attempt %d: offsets %v, want %v", c.amounts, attempt, got, c.want)
			}
			if out == b {
				t.Fatalf("amounts %v: the batch itself came back although records were filtered", c.amounts)
			}
			if out.EventSource != b.EventSource || out.BootstrapServers != b.BootstrapServers {
				t.Fatalf("envelope fields %q %q, want %q %q", out.EventSource, out.BootstrapServers, b.EventSource, b.BootstrapServers)
			}
			for i := range out.Records {
				r := &out.Records[i]
				orig := &b.Records[r.Offset-100]
				if r.Topic != orig.Topic || !r.Timestamp.Equal(orig.Timestamp) || !bytes.Equal(r.Key, orig.Key) ||
					!bytes.Equal(r.Value, orig.Value) || len(r.Headers) != len(orig.Headers) {
					t.Fatalf("record %d changed on its way: %+v", r.Offset, r)
				}
			}
			if len(b.Records) != n || !bytes.Equal(pipeline.AppendEnvelope(nil, b), before) {
				t.Fatalf("amounts %v: Process changed the batch it was given", c.amounts)
			}
			// The result is a batch of its own: changing it leaves the
			// input alone.
			for i := range out.Records {
				out.Records[i].Offset = -1
			}
			if !bytes.Equal(pipeline.AppendEnvelope(nil, b), before) {
				t.Fatalf("amounts %v: the result shares records with the input", c.amounts)
			}
		}
	}
}

// TestProcessReturnsTheBatchWhenAllPass: nothing filtered, nothing copied.
func TestProcessReturnsTheBatchWhenAllPass(t *testing.T) {
	s := newStage(t, "    filter:\n      patterns: ['{\"value\": {\"country\": [\"DE\"]}}']\n      expression: value.amount > 0\n", nil)
	b := batch(amounts(1, 2, 3)...)
	out, err := s.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if out != b {
		t.Fatalf("got a new batch %v, want the one handed in", offsets(out))
	}
	if s.Filtered() != 0 {
		t.Fatalf("Filtered = %d", s.Filtered())
	}
	// An empty batch stays empty.
	empty := &pipeline.Batch{}
	if out, err := s.Process(context.Background(), empty); err != nil || out == nil || len(out.Records) != 0 {
		t.Fatalf("empty batch: %v, %v", out, err)
	}
}

// TestFilteredCounter counts every record filtered out, across batches.
func TestFilteredCounter(t *testing.T) {
	s := newStage(t, "    filter:\n      expression: value.amount >= 10\n", nil)
	for _, ns := range [][]int{{1, 10, 2}, {20, 30}, {3, 4, 5, 6}, {}} {
		if _, err := s.Process(context.Background(), batch(amounts(ns...)...)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Filtered(); got != 6 {
		t.Fatalf("Filtered = %d, want 6", got)
	}
	if got := s.EvalErrors(); got != 0 {
		t.Fatalf("EvalErrors = %d, want 0", got)
	}
}

// TestPatternsAndExpression: patterns are ORed; an expression must hold as
// well.
func TestPatternsAndExpression(t *testing.T) {
	values := []string{
		`{"amount":500,"country":"DE","channel":"web"}`,  // 100
		`{"amount":50,"country":"DE","channel":"web"}`,   // 101
		`{"amount":50,"country":"FR","channel":"store"}`, // 102
		`{"amount":5000,"country":"FR","channel":"web"}`, // 103
		`{"amount":5,"country":"IT","channel":"store"}`,  // 104
		`plain text`, // 105
		`{"amount":700,"country":"DE","channel":"store"}`, // 106
	}
	cases := []struct {
		name, block string
		want        []int64
	}{
		{"one pattern", `
      patterns:
        - value: {country: [DE]}
`, []int64{100, 101, 106}},
		{"two patterns ORed", `
      patterns:
        - value: {country: [DE]}
        - '{"value": {"amount": [{"numeric": [">=", 1000]}]}}'
`, []int64{100, 101, 103, 106}},
		{"a pattern matching metadata ORed with one on the value", `
      patterns:
        - value: {channel: [store]}
        - offset: [{numeric: ["=", 105]}]
`, []int64{102, 104, 105, 106}},
		{"expression alone", `
      expression: value.channel == "web"
`, []int64{100, 101, 103}},
		{"patterns and expression", `
      patterns:
        - value: {country: [DE]}
        - value: {amount: [{numeric: [">=", 1000]}]}
      expression: value.channel == "web" && headers.source == "web"
`, []int64{100, 101, 103}},
		{"the expression sees what the pattern passed", `
      patterns:
        - value: {amount: [{numeric: [">", 100]}]}
      expression: value.country != "FR"
`, []int64{100, 106}},
		{"expression on a plain value", `
      expression: type(value) == "string" || value.amount > 600
`, []int64{103, 105, 106}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStage(t, "    filter:"+c.block, nil)
			b := batch(values...)
			out, err := s.Process(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(out); !slices.Equal(got, c.want) {
				t.Fatalf("offsets %v, want %v", got, c.want)
			}
			if got, want := s.Filtered(), int64(len(values)-len(c.want)); got != want {
				t.Fatalf("Filtered = %d, want %d", got, want)
			}
			// Explain agrees with Process on every record.
			for i := range b.Records {
				d := s.Explain(&b.Records[i])
				if d.Pass != slices.Contains(c.want, b.Records[i].Offset) {
					t.Errorf("Explain(offset %d) = %+v, Process disagrees", b.Records[i].Offset, d)
				}
			}
		})
	}
}

// TestExpressionErrors: a record the expression fails on is filtered out
// and counted; the first failure of each kind is logged at WARN, once,
// naming the record; later ones of the same kind are not logged.
func TestExpressionErrors(t *testing.T) {
	var log syncBuffer
	s := newStage(t, "    filter:\n      expression: value.items[2] == \"x\" && value.amount > 10\n", &log)
	values := []string{
		`{"items":[1,2,"x"],"amount":50}`,   // 100 passes
		`{"items":[1],"amount":50}`,         // 101 index out of range: 2 (array length is 1)
		`{"items":[1,2,"x"],"amount":"50"}`, // 102 string > int
		`{"items":[1,2],"amount":50}`,       // 103 index out of range again, another length
		`{"items":[1,2,"x"],"amount":"7"}`,  // 104 string > int again
		`{"items":[1,2,"x"],"amount":5}`,    // 105 false
	}
	var out *pipeline.Batch
	for range 3 {
		var err error
		out, err = s.Process(context.Background(), batch(values...))
		if err != nil {
			t.Fatalf("a failing expression failed the batch: %v", err)
		}
	}
	if got := offsets(out); !slices.Equal(got, []int64{100}) {
		t.Fatalf("offsets %v, want [100]", got)
	}
	if got := s.EvalErrors(); got != 3*4 {
		t.Fatalf("EvalErrors = %d, want 12", got)
	}
	if got := s.Filtered(); got != 3*5 {
		t.Fatalf("Filtered = %d, want 15", got)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2 (one per kind):\n%s", len(lines), log.String())
	}
	for i, want := range []struct{ offset, err string }{
		{"101", `error="index out of range: 2 (array length is 1)"`},
		{"102", `error="invalid operation: string > int"`},
	} {
		l := lines[i]
		for _, part := range []string{"level=WARN", "stage=filter", "topic=orders", "partition=2", "offset=" + want.offset, want.err, "filtered out"} {
			if !strings.Contains(l, part) {
				t.Errorf("log line %d lacks %q:\n%s", i+1, part, l)
			}
		}
	}
}

// TestExpressionErrorsLogOnceUnderConcurrency: partitions run their
// batches at the same time through one stage; a kind is still logged once
// and every record is counted.
func TestExpressionErrorsLogOnceUnderConcurrency(t *testing.T) {
	var log syncBuffer
	s := newStage(t, "    filter:\n      expression: value.amount > 10\n", &log)
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				b := batch(`{"amount":50}`, `{"amount":"x"}`, `{"amount":1}`)
				for i := range b.Records {
					b.Records[i].Partition = int32(w)
				}
				out, err := s.Process(context.Background(), b)
				if err != nil || len(out.Records) != 1 || out.Records[0].Offset != 100 {
					t.Errorf("worker %d: %v, %v", w, offsets(out), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := s.Filtered(); got != 2*workers*rounds {
		t.Errorf("Filtered = %d, want %d", got, 2*workers*rounds)
	}
	if got := s.EvalErrors(); got != workers*rounds {
		t.Errorf("EvalErrors = %d, want %d", got, workers*rounds)
	}
	if n := strings.Count(log.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines, want 1:\n%s", n, log.String())
	}
}

// TestViewDecodedOnce: patterns and expression read the record's view,
// decoded once and kept with the record. A view decoded before Process is
// the one both see: after the value bytes are swapped without ResetView,
// the filter still decides on the old value.
func TestViewDecodedOnce(t *testing.T) {
	s := newStage(t, "    filter:\n      patterns: ['{\"value\": {\"amount\": [500]}}']\n      expression: value.amount == 500 && rawValue == '{\"amount\":1}'\n", nil)
	b := batch(`{"amount":500}`)
	b.Records[0].View()
	b.Records[0].Value = []byte(`{"amount":1}`)
	out, err := s.Process(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 {
		t.Fatalf("filtered out: the pattern or the expression decoded the value again")
	}
	// A view decoded during Process stays with the record: a later View
	// costs nothing.
	b = batch(`{"amount":500}`)
	if _, err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(10, func() { b.Records[0].View() }); allocs != 0 {
		t.Fatalf("View after Process allocates %v times: the view was not kept", allocs)
	}
	if got := b.Records[0].View().Get("value").Get("amount"); got == nil || got.Num != 500 {
		t.Fatalf("kept view has amount %v", got)
	}
}

// TestExplain: why a record does not pass, in words.
func TestExplain(t *testing.T) {
	two := newStage(t, `    filter:
      patterns:
        - value: {amount: [{numeric: [">", 100]}]}
        - '{"value": {"country": ["FR"]}}'
      expression: value.channel == "web"
`, nil)
	one := newStage(t, "    filter:\n      patterns: ['{\"value\": {\"amount\": [{\"numeric\": [\">\", 100]}]}}']\n", nil)
	exprOnly := newStage(t, "    filter:\n      expression: value.amount > 100\n", nil)
	cases := []struct {
		s     *filter.Stage
		value string
		pass  bool
		why   string
		err   bool
	}{
		{two, `{"amount":500,"channel":"web"}`, true, "", false},
		{two, `{"amount":5,"country":"DE","channel":"web"}`, false,
			`no pattern matches: pattern 1: value.amount: 5 does not match [{"numeric":[">",100]}]; pattern 2: value.country: "DE" does not match ["FR"]`, false},
		{two, `{"amount":500,"channel":"store"}`, false, `expression is false: value.channel == "web"`, false},
		{one, `{"amount":5}`, false, `value.amount: 5 does not match [{"numeric":[">",100]}]`, false},
		{one, `{"total":5}`, false, `value.amount: missing does not match [{"numeric":[">",100]}]`, false},
		{exprOnly, `{"amount":"5"}`, false, "expression failed: invalid operation: string > int", true},
		{exprOnly, `{"amount":500}`, true, "", false},
	}
	for _, c := range cases {
		r := &batch(c.value).Records[0]
		d := c.s.Explain(r)
		if d.Pass != c.pass || d.Why != c.why || (d.Err != nil) != c.err {
			t.Errorf("Explain(%s) = {Pass: %v, Why: %q, Err: %v}\nwant {Pass: %v, Why: %q, Err set: %v}", c.value, d.Pass, d.Why, d.Err, c.pass, c.why, c.err)
		}
	}
	// Explain counts nothing and logs nothing: it is for people.
	if exprOnly.Filtered() != 0 || exprOnly.EvalErrors() != 0 {
		t.Errorf("Explain counted: Filtered %d, EvalErrors %d", exprOnly.Filtered(), exprOnly.EvalErrors())
	}
}
