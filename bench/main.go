// Command bench measures the end-to-end throughput of the engine, Kafka ->
// HTTP, against a bare franz-go consumer on the same broker and data.
//
//	go run ./bench -n 500000 -repeat 3
//
// The parent process runs an in-process Kafka broker (kfake) and an HTTP
// endpoint, produces the records once, then runs each mode in a child process
// of its own (the same binary, re-executed) so the peak RSS of each mode can
// be read from the child's rusage. See bench/README.md.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	modePoll = "poll" // (a) bare group consumer, the ceiling
	modePipe = "pipe" // (b) the engine, Kafka -> HTTP
	modeJSON = "json" // (c) as (b), with a filter stage that decodes every value
	modeSkew = "skew" // (d) as (b), on a topic whose records all sit in one partition
)

var modeLabels = map[string]string{
	modePoll: "(a) bare poll",
	modePipe: "(b) pipe",
	modeJSON: "(c) pipe+json",
	modeSkew: "(d) pipe, skew",
}

// Goals, as fractions of the ceiling's rate, and the peak RSS limit.
const (
	goalPipe  = 0.25
	goalJSON  = 0.18
	goalRSSMB = 150
)

// hidden flags are those the parent passes to its children, and the
// profiling switch; the usage text leaves them out.
var hidden = map[string]bool{"mode": true, "broker": true, "topic": true, "group": true, "url": true,
	"cpuprofile": true, "allocprofile": true}

func main() {
	started := time.Now()
	var (
		n          = flag.Int("n", 500_000, "records to produce and consume in each run")
		valueSize  = flag.Int("value-size", 1024, "bytes per record value (a JSON object, at least 16)")
		partitions = flag.Int("partitions", 8, "partitions of the topic")
		repeat     = flag.Int("repeat", 1, "runs of each mode; the median rate is reported")
		batchSize  = flag.Int("batch-size", 100, "batchSize of the pipe (modes b and c)")
		modes      = flag.String("modes", "poll,pipe,json", "modes to run, comma-separated: poll (a), pipe (b), json (c), skew (d: as b, all records in one partition, the others empty)")
		partBuf    = flag.String("partition-buffer", "", "partitionBuffer of the pipe's source, like 2MB (default: the source's default)")
		decoder    = flag.String("decoder", "std", "how mode json decodes values: std (encoding/json into an any) or view (the engine's record view, pipeline.Record.View)")
		warmup     = flag.Int("warmup", 1, "uncounted runs of mode poll before the measured ones")
		timeout    = flag.Duration("timeout", 10*time.Minute, "limit for one run of one mode")

		mode      = flag.String("mode", "", "run one mode as a child process")
		broker    = flag.String("broker", "", "broker address, for a child")
		topic     = flag.String("topic", "bench", "topic, for a child")
		group     = flag.String("group", "", "consumer group id, for a child")
		url       = flag.String("url", "", "HTTP endpoint, for a child")
		cpuProf   = flag.String("cpuprofile", "", "parent: directory for the children's CPU and allocation profiles; child: CPU profile file")
		allocProf = flag.String("allocprofile", "", "child: allocation profile file")
	)
	flag.Usage = usage
	flag.Parse()
	if *mode != "" {
		os.Exit(runChild(childArgs{
			mode: *mode, broker: *broker, topic: *topic, group: *group, url: *url,
			n: *n, batchSize: *batchSize, partBuf: *partBuf, decoder: *decoder, timeout: *timeout, cpuProf: *cpuProf, allocProf: *allocProf,
		}, started))
	}
	cfg := config{n: *n, valueSize: *valueSize, partitions: *partitions, repeat: *repeat,
		batchSize: *batchSize, partBuf: *partBuf, decoder: *decoder, warmup: *warmup, timeout: *timeout, profDir: *cpuProf}
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if _, ok := modeLabels[m]; !ok {
			fmt.Fprintf(os.Stderr, "bench: unknown mode %q (want poll, pipe, json or skew)\n", m)
			os.Exit(2)
		}
		cfg.modes = append(cfg.modes, m)
	}
	if cfg.decoder != "std" && cfg.decoder != "view" {
		fmt.Fprintf(os.Stderr, "bench: -decoder %q: want std or view\n", cfg.decoder)
		os.Exit(2)
	}
	if cfg.n < 1 || cfg.valueSize < 16 || cfg.partitions < 1 || cfg.repeat < 1 || cfg.warmup < 0 || cfg.batchSize < 1 || cfg.batchSize > 10000 {
		fmt.Fprintln(os.Stderr, "bench: need -n >= 1, -value-size >= 16, -partitions >= 1, -repeat >= 1, -warmup >= 0, 1 <= -batch-size <= 10000")
		os.Exit(2)
	}
	if err := runParent(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	w := flag.CommandLine.Output()
	fmt.Fprintln(w, "Usage: go run ./bench [flags]")
	fmt.Fprintln(w, "Measures records/s of a bare consumer (a), the pipe Kafka -> HTTP (b) and the pipe with a JSON-decoding filter (c).")
	flag.VisitAll(func(f *flag.Flag) {
		if hidden[f.Name] {
			return
		}
		fmt.Fprintf(w, "  -%s\n\t%s (default %s)\n", f.Name, f.Usage, f.DefValue)
	})
}

type config struct {
	n, valueSize, partitions, repeat, batchSize, warmup int
	modes                                               []string
	decoder, partBuf                                    string
	timeout                                             time.Duration
	profDir                                             string
}

// run is one finished child.
type run struct {
	result
	rate      float64       // records/s over the window
	wall      time.Duration // child process, start to exit
	childCPU  time.Duration // user+sys of the child
	parentCPU time.Duration // user+sys of the parent (broker, HTTP endpoint) meanwhile
	otherCPU  time.Duration // CPU the rest of the machine used meanwhile
	posts     int64         // requests the endpoint answered
	postBytes int64         // body bytes the endpoint read
}

func runParent(cfg config) error {
	const topic, skewTopic = "bench", "bench-skew"
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(int32(cfg.partitions), topic, skewTopic),
	)
	if err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	var posts, postBytes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := io.Copy(io.Discard, r.Body)
		postBytes.Add(k)
		posts.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	partBuf := cfg.partBuf
	if partBuf == "" {
		partBuf = "default"
	}
	fmt.Printf("bench: %d records, %d B values (JSON), 16 B keys, 1 header; %d partitions on one kfake broker; batch size %d, window 0s, partition buffer %s; json decoder %s; %d run(s) per mode, GOMAXPROCS %s\n",
		cfg.n, cfg.valueSize, cfg.partitions, cfg.batchSize, partBuf, cfg.decoder, cfg.repeat, gomaxprocs())
	t := time.Now()
	if err := produce(addr, topic, int32(cfg.partitions), cfg.n, cfg.valueSize, false); err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	if slices.Contains(cfg.modes, modeSkew) {
		if err := produce(addr, skewTopic, int32(cfg.partitions), cfg.n, cfg.valueSize, true); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
	}
	fmt.Printf("produced in %s\n", time.Since(t).Round(time.Millisecond))

	self, err := os.Executable()
	if err != nil {
		return err
	}
	if cfg.profDir != "" {
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			return err
		}
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	one := func(m, name string) (run, error) {
		t := topic
		if m == modeSkew {
			t = skewTopic
		}
		args := []string{"-mode", m, "-broker", addr, "-topic", t,
			"-group", "bench-" + stamp + "-" + name, "-url", srv.URL,
			"-n", strconv.Itoa(cfg.n), "-batch-size", strconv.Itoa(cfg.batchSize), "-decoder", cfg.decoder, "-partition-buffer", cfg.partBuf,
			"-timeout", cfg.timeout.String()}
		if cfg.profDir != "" {
			base := filepath.Join(cfg.profDir, name)
			args = append(args, "-cpuprofile", base+".cpu.pprof", "-allocprofile", base+".allocs.pprof")
		}
		posts.Store(0)
		postBytes.Store(0)
		// The parent's own garbage (the broker's fetch responses) is
		// collected before a run, not during it.
		runtime.GC()
		stopProf, err := profileParent(cfg.profDir, name)
		if err != nil {
			return run{}, err
		}
		r, err := runOne(self, args)
		stopProf()
		r.posts, r.postBytes = posts.Load(), postBytes.Load()
		return r, err
	}
	// Warm-up: the broker's first reads of the log, and the parent's heap
	// growing to its working size, would otherwise slow the first run.
	for i := range cfg.warmup {
		r, err := one(modePoll, fmt.Sprintf("warmup-%d", i+1))
		if err != nil {
			return fmt.Errorf("warm-up run %d: %w", i+1, err)
		}
		fmt.Printf("  warm-up        run %d: %9.0f records/s (not counted)\n", i+1, r.rate)
	}
	runs := map[string][]run{}
	// Modes take turns, so a slow moment of the machine spreads over all.
	for i := range cfg.repeat {
		for _, m := range cfg.modes {
			r, err := one(m, fmt.Sprintf("%s-%d", m, i+1))
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", modeLabels[m], i+1, err)
			}
			runs[m] = append(runs[m], r)
			fmt.Printf("  %-14s run %d: %9.0f records/s, window %s, peak RSS %.1f MB, wall %s, cpu child %s + parent %s, other processes %.2f cores, to first record %s, shutdown %s\n",
				modeLabels[m], i+1, r.rate, time.Duration(r.Window).Round(time.Millisecond),
				float64(r.HWMKiB)/1024, r.wall.Round(time.Millisecond),
				r.childCPU.Round(time.Millisecond), r.parentCPU.Round(time.Millisecond),
				r.otherCPU.Seconds()/r.wall.Seconds(),
				time.Duration(r.ToFirst).Round(time.Millisecond), time.Duration(r.Shutdown).Round(time.Millisecond))
		}
	}
	report(os.Stdout, cfg, runs)
	return nil
}

// profileParent profiles the parent (broker and endpoint) while one child
// runs, into dir/<name>.parent.cpu.pprof; the returned function stops it.
func profileParent(dir, name string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, name+".parent.cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// runOne runs a child and collects its result and resource use.
func runOne(self string, args []string) (run, error) {
	var r run
	var out bytes.Buffer
	cmd := exec.Command(self, args...)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	before := selfCPU()
	busyBefore := machineBusy()
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	werr := cmd.Wait()
	r.wall = time.Since(t)
	r.parentCPU = selfCPU() - before
	busy := machineBusy() - busyBefore
	line := bytes.TrimSpace(out.Bytes())
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &r.result); err != nil {
		if werr != nil {
			return r, werr
		}
		return r, fmt.Errorf("reading the child's result %q: %w", line, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("child: %s", r.Error)
	}
	if werr != nil {
		return r, werr
	}
	r.childCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if busyBefore > 0 {
		r.otherCPU = max(0, busy-r.childCPU-r.parentCPU)
	}
	r.rate = float64(r.Records) / time.Duration(r.Window).Seconds()
	return r, nil
}

// machineBusy returns the CPU time all processes have used since boot, from
// /proc/stat (0 where there is none), so a run can tell how much of the
// machine other processes took.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ)
}

// userHZ is the unit of /proc/stat, USER_HZ, 100 on Linux.
const userHZ = 100

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gomaxprocs() string { return strconv.Itoa(runtime.GOMAXPROCS(0)) }

// median returns the run with the median rate (the lower middle one for an
// even count) and the largest peak RSS of all runs.
func median(rs []run) (run, int64) {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b run) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	var maxRSS int64
	for _, r := range rs {
		maxRSS = max(maxRSS, r.HWMKiB)
	}
	return s[(len(s)-1)/2], maxRSS
}

func report(w io.Writer, cfg config, runs map[string][]run) {
	fmt.Fprintf(w, "\n%-14s %12s %9s %7s %10s %9s %8s %9s %10s\n",
		"mode", "records/s", "MB/s", "vs (a)", "peak RSS", "window", "wall", "cpu/rec", "posts")
	var ceiling float64
	if rs := runs[modePoll]; len(rs) > 0 {
		m, _ := median(rs)
		ceiling = m.rate
	}
	ratios := map[string]float64{}
	rss := map[string]int64{}
	for _, mode := range cfg.modes {
		m, maxRSS := median(runs[mode])
		ratio := "-"
		if ceiling > 0 {
			ratios[mode] = m.rate / ceiling
			ratio = fmt.Sprintf("%.3f", ratios[mode])
		}
		rss[mode] = maxRSS
		cpu := float64(m.childCPU+m.parentCPU) / float64(m.Records)
		postsCol := "-"
		if m.posts > 0 {
			postsCol = strconv.FormatInt(m.posts, 10)
		}
		fmt.Fprintf(w, "%-14s %12.0f %9.1f %7s %7.1f MB %8.2fs %7.2fs %7.2fµs %10s\n",
			modeLabels[mode], m.rate, m.rate*float64(cfg.valueSize)/(1<<20), ratio,
			float64(maxRSS)/1024, time.Duration(m.Window).Seconds(), m.wall.Seconds(), cpu/1e3, postsCol)
	}
	fmt.Fprintln(w, "(records/s and window: first record handed over (polled, for a) to last record done; MB/s: values, 2^20 B;")
	fmt.Fprintln(w, " peak RSS: largest child VmHWM of the runs; wall: child process start to exit; cpu/rec: child + parent")
	fmt.Fprintln(w, " (broker, endpoint) CPU per record; figures of the median run by rate)")
	var worst float64
	for _, rs := range runs {
		for _, r := range rs {
			worst = max(worst, r.otherCPU.Seconds()/r.wall.Seconds())
		}
	}
	if worst > 0.1 {
		fmt.Fprintf(w, "warning: other processes used up to %.2f of the machine's %d cores during a run; rates are lower than on an idle machine\n",
			worst, runtime.NumCPU())
	}

	var goals []string
	ok := true
	check := func(mode string, goal float64) {
		r, have := ratios[mode]
		if !have {
			return
		}
		verdict := "ok"
		if r < goal {
			verdict, ok = "MISSED", false
		}
		goals = append(goals, fmt.Sprintf("%s %.3f >= %.2f of (a) %s", strings.Fields(modeLabels[mode])[0], r, goal, verdict))
	}
	check(modePipe, goalPipe)
	check(modeJSON, goalJSON)
	for _, mode := range []string{modePipe, modeJSON} {
		if k, have := rss[mode]; have {
			mb := float64(k) / 1024
			verdict := "ok"
			if mb > goalRSSMB {
				verdict, ok = "MISSED", false
			}
			goals = append(goals, fmt.Sprintf("%s peak RSS %.0f MB <= %d MB %s", strings.Fields(modeLabels[mode])[0], mb, goalRSSMB, verdict))
		}
	}
	if len(goals) > 0 {
		overall := "all goals met"
		if !ok {
			overall = "some goals missed"
		}
		fmt.Fprintf(w, "goals: %s; %s\n", strings.Join(goals, "; "), overall)
	}
}
