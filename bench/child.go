package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka"
	_ "github.com/pipe-run/pipe/targets/http"
)

// childArgs is what the parent passes to a child process.
type childArgs struct {
	mode      string
	broker    string
	topic     string
	group     string
	url       string
	n         int
	batchSize int
	partBuf   string // partitionBuffer, "" for the default
	decoder   string
	timeout   time.Duration
	cpuProf   string // file for the CPU profile, if any
	allocProf string // file for the allocation profile, if any
}

// result is what a child reports on stdout, as one JSON line.
type result struct {
	Mode     string `json:"mode"`
	Records  int64  `json:"records"`
	ToFirst  int64  `json:"toFirstNs"`  // process start to the first record
	Window   int64  `json:"windowNs"`   // first record to the last record done
	Shutdown int64  `json:"shutdownNs"` // last record done to the consumer closed
	HWMKiB   int64  `json:"hwmKiB"`     // VmHWM of /proc/self/status at exit
	Error    string `json:"error,omitempty"`
}

// runChild runs one mode and prints its result.
func runChild(a childArgs, started time.Time) int {
	stopProf := func() {}
	if a.cpuProf != "" {
		f, err := os.Create(a.cpuProf)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			return 1
		}
		stopProf = func() { pprof.StopCPUProfile(); f.Close() }
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	var (
		res result
		err error
	)
	switch a.mode {
	case modePoll:
		res, err = runPoll(ctx, a, started)
	case modePipe, modeJSON, modeSkew:
		res, err = runPipe(ctx, a, started)
	default:
		err = fmt.Errorf("unknown mode %q", a.mode)
	}
	stopProf()
	if a.allocProf != "" {
		if perr := writeAllocs(a.allocProf); perr != nil && err == nil {
			err = perr
		}
	}
	res.Mode = a.mode
	res.HWMKiB = peakRSS()
	if err == nil && res.Records < int64(a.n) {
		err = fmt.Errorf("got %d of %d records", res.Records, a.n)
	}
	if err != nil {
		res.Error = err.Error()
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err != nil {
		return 1
	}
	return 0
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// runPoll is the ceiling: a bare group consumer that polls and counts.
func runPoll(ctx context.Context, a childArgs, started time.Time) (result, error) {
	var res result
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(a.broker),
		kgo.ConsumerGroup(a.group),
		kgo.ConsumeTopics(a.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	var first, last time.Time
	var count int64
	for count < int64(a.n) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			cl.Close()
			res.Records = count
			return res, fmt.Errorf("timed out after %d of %d records", count, a.n)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetching %s-%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			cl.Close()
			return res, ferr
		}
		k := fs.NumRecords()
		if k > 0 && first.IsZero() {
			first = time.Now()
		}
		count += int64(k)
	}
	last = time.Now()
	cl.Close()
	res.Records = count
	res.ToFirst = int64(first.Sub(started))
	res.Window = int64(last.Sub(first))
	res.Shutdown = int64(time.Since(last))
	return res, nil
}

// runPipe runs the engine, Kafka -> HTTP, with the JSON-decoding stand-in
// filter in modeJSON.
func runPipe(ctx context.Context, a childArgs, started time.Time) (result, error) {
	var res result
	doc := fmt.Sprintf(`shutdownTimeout: 30s
logLevel: WARN
pipes:
  - name: bench
    source:
      kafka:
        bootstrapServers: %s
        topics: [%s]
        consumerGroupId: %s
        startingPosition: TRIM_HORIZON
        batchSize: %d
        maximumBatchingWindow: 0s
%s    target:
      http:
        url: %s
`, a.broker, a.topic, a.group, a.batchSize, partitionBuffer(a.partBuf), a.url)
	cfg, err := pipeline.Parse("bench.yaml", []byte(doc))
	if err != nil {
		return res, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pipes, err := pipeline.Build(cfg, logger)
	if err != nil {
		return res, err
	}
	p := pipes[0]
	var js *jsonStage
	if a.mode == modeJSON {
		js = &jsonStage{view: a.decoder == "view"}
		p.Stages = append(p.Stages, js)
	}
	ts := &timedSource{Source: p.Source}
	p.Source = ts
	ct := &countingTarget{Target: p.Target, want: int64(a.n), done: make(chan struct{})}
	p.Target = ct

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(runCtx) }()

	select {
	case <-ct.done:
	case err := <-runErr:
		res.Records = ct.count.Load()
		if err == nil {
			err = errors.New("pipe stopped early")
		}
		return res, err
	case <-ctx.Done():
		stop()
		<-runErr
		res.Records = ct.count.Load()
		return res, fmt.Errorf("timed out after %d of %d records", res.Records, a.n)
	}
	stop()
	err = <-runErr
	res.Records = ct.count.Load()
	first := ts.firstAt()
	res.ToFirst = int64(first.Sub(started))
	res.Window = int64(ct.last.Sub(first))
	res.Shutdown = int64(time.Since(ct.last))
	if err == nil && js != nil {
		if bad := js.bad.Load(); bad > 0 {
			err = fmt.Errorf("%d values were not valid JSON: %v", bad, js.firstErr())
		} else if js.seen.Load() < int64(a.n) {
			err = fmt.Errorf("the filter saw %d of %d records", js.seen.Load(), a.n)
		}
	}
	return res, err
}

func partitionBuffer(size string) string {
	if size == "" {
		return ""
	}
	return "        partitionBuffer: " + size + "\n"
}

// timedSource notes when the first batch is handed to the pipe.
type timedSource struct {
	pipeline.Source
	once  sync.Once
	first atomic.Int64 // UnixNano
}

func (s *timedSource) Run(ctx context.Context, h pipeline.Handler) error {
	return s.Source.Run(ctx, pipeline.HandlerFunc(func(ctx context.Context, b *pipeline.Batch) error {
		s.once.Do(func() { s.first.Store(time.Now().UnixNano()) })
		return h.Handle(ctx, b)
	}))
}

func (s *timedSource) firstAt() time.Time { return time.Unix(0, s.first.Load()) }

// countingTarget counts delivered records and signals once want were.
type countingTarget struct {
	pipeline.Target
	want  int64
	count atomic.Int64
	done  chan struct{}
	last  time.Time
	once  sync.Once
}

func (t *countingTarget) Deliver(ctx context.Context, b *pipeline.Batch) error {
	if err := t.Target.Deliver(ctx, b); err != nil {
		return err
	}
	if t.count.Add(int64(len(b.Records))) >= t.want {
		t.once.Do(func() {
			t.last = time.Now()
			close(t.done)
		})
	}
	return nil
}

// jsonStage stands in for a filter that needs the values: it decodes every
// value as JSON and keeps every record. It decodes with encoding/json into
// an any, or, with view, through the record view the engine's filters read
// (pipeline.Record.View).
type jsonStage struct {
	view bool
	seen atomic.Int64
	bad  atomic.Int64
	mu   sync.Mutex
	err  error
}

var _ pipeline.Stage = (*jsonStage)(nil)

func (s *jsonStage) Process(_ context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	for i := range b.Records {
		if s.view {
			if v := b.Records[i].View().Get("value"); v == nil || v.Type != pipeline.TypeObject {
				s.bad.Add(1)
			}
			continue
		}
		var v any
		if err := json.Unmarshal(b.Records[i].Value, &v); err != nil {
			s.bad.Add(1)
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
			continue
		}
		if _, ok := v.(map[string]any); !ok {
			s.bad.Add(1)
		}
	}
	s.seen.Add(int64(len(b.Records)))
	return b, nil
}

func (s *jsonStage) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// peakRSS returns the process's peak resident set size in KiB, VmHWM of
// /proc/self/status, or 0 where there is none.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			k, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return k
		}
	}
	return 0
}
