package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter"
	"github.com/pipe-run/pipe/stages/transform"
)

// errRecordsFailed says that `pipe test` found records the pipe fails on.
var errRecordsFailed = errors.New("some records failed")

func newTest() *cobra.Command {
	var file, pipeName, topic, format string
	cmd := &cobra.Command{
		Use:   "test [INPUT]",
		Short: "Run a pipe's filter and transform on records from a file, offline",
		Long: `Run one pipe's filter and transform on records read from INPUT (a file, or
standard input when INPUT is - or missing) and print, per record, whether it
passed, why not, and its value after the transform; then what the target would
receive. Nothing is connected: no broker, no enrichment call, no target call.

INPUT is one of:
  - a Kafka batch envelope, as Lambda receives it ({"records": {"t-0": [...]}})
  - a JSON list of envelope records ([{"topic": ..., "value": "<base64>"}, ...])
  - lines of plain values, one record per line (JSON, or any text), given
    topic --topic, partition 0 and offsets 0, 1, 2 ...

The exit status is 0 when every record was decided (passed or filtered), 1
when the pipe failed on any record (an expression that cannot be evaluated,
a transform error) or INPUT cannot be read, and 2 when the config is invalid.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := load(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			pc, err := pickPipe(cfg, pipeName)
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			name := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in, name = f, args[0]
			}
			data, err := io.ReadAll(in)
			if err != nil {
				return err
			}
			recs, err := readTestRecords(data, topic)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return testPipe(cmd.OutOrStdout(), cfg, pc, recs, format == "json")
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "pipes.yaml", "config file")
	cmd.Flags().StringVarP(&pipeName, "pipe", "p", "", "pipe to test (needed when the file has several)")
	cmd.Flags().StringVar(&topic, "topic", "test", "topic of records read as plain values")
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text or json (one JSON object per line)")
	return cmd
}

func pickPipe(cfg *pipeline.Config, name string) (*pipeline.PipeConfig, error) {
	var names []string
	for i := range cfg.Pipes {
		if cfg.Pipes[i].Name == name || name == "" && len(cfg.Pipes) == 1 {
			return &cfg.Pipes[i], nil
		}
		names = append(names, cfg.Pipes[i].Name)
	}
	if name == "" {
		return nil, fmt.Errorf("%s has %d pipes; say which with --pipe (%s)", cfg.File, len(cfg.Pipes), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("%s has no pipe %q (it has: %s)", cfg.File, name, strings.Join(names, ", "))
}

// readTestRecords reads an envelope, a list of envelope records, or lines
// of plain values.
func readTestRecords(data []byte, topic string) ([]pipeline.Record, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("no records")
	case trimmed[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("a list of envelope records: %w", err)
		}
		recs := make([]pipeline.Record, len(raws))
		for i, raw := range raws {
			r, err := pipeline.ParseEnvelopeRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			recs[i] = r
		}
		return recs, nil
	case trimmed[0] == '{' && json.Valid(trimmed):
		var probe struct {
			Records json.RawMessage `json:"records"`
		}
		if json.Unmarshal(trimmed, &probe) == nil && len(probe.Records) > 0 && probe.Records[0] == '{' {
			b, err := pipeline.ParseEnvelope(trimmed)
			if err != nil {
				return nil, err
			}
			return b.Records, nil
		}
	}
	var recs []pipeline.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	now := time.Now()
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		recs = append(recs, pipeline.Record{Topic: topic, Offset: int64(len(recs)), Timestamp: now, Value: bytes.Clone(line)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}

// testResult is one record's fate, as printed.
type testResult struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Result    string          `json:"result"` // passed, filtered, error
	Why       string          `json:"why,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Text      *string         `json:"text,omitempty"`
}

func testPipe(w io.Writer, cfg *pipeline.Config, pc *pipeline.PipeConfig, recs []pipeline.Record, asJSON bool) error {
	one := *cfg
	one.Pipes = []pipeline.PipeConfig{*pc}
	pipes, err := pipeline.Build(&one, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	p := pipes[0]
	defer p.Target.Close()

	var notes []string
	var passed []pipeline.Record
	failed := 0
	for i := range recs {
		r := recs[i]
		res := testResult{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Result: "passed"}
	stages:
		for _, st := range p.Stages {
			switch s := st.(type) {
			case *filter.Stage:
				d := s.Explain(&r)
				switch {
				case d.Err != nil:
					res.Result, res.Why = "error", d.Why
					break stages
				case !d.Pass:
					res.Result, res.Why = "filtered", d.Why
					break stages
				}
			case *transform.Stage:
				v, err := s.Apply(&r)
				if err != nil {
					res.Result, res.Why = "error", err.Error()
					break stages
				}
				r = pipeline.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
					TimestampType: r.TimestampType, Key: r.Key, Value: v, Headers: r.Headers}
			default:
				note := fmt.Sprintf("the enrichment (%T) is not called by pipe test; the target is shown the records before it", st)
				if len(notes) == 0 {
					notes = append(notes, note)
				}
			}
		}
		switch res.Result {
		case "passed":
			passed = append(passed, r)
			if r.Value != nil {
				if json.Valid(r.Value) {
					res.Value = compactJSON(r.Value)
				} else {
					s := string(r.Value)
					res.Text = &s
				}
			}
		case "error":
			failed++
		}
		if err := printResult(w, res, asJSON); err != nil {
			return err
		}
	}
	tctx := pipeline.NewTemplateContext(pc.Name)
	batch := &pipeline.Batch{EventSource: pipeline.EventSourceSelfManagedKafka, BootstrapServers: "pipe-test", Records: passed}
	var reqs []pipeline.Request
	switch {
	case len(passed) == 0:
	case isPreviewer(p.Target):
		reqs = p.Target.(pipeline.Previewer).Preview(batch, &tctx)
	default:
		all := make([]int, len(passed))
		for i := range all {
			all[i] = i
		}
		reqs = []pipeline.Request{{Records: all, Summary: "the batch envelope", Body: pipeline.AppendEnvelope(nil, batch)}}
	}
	// Records the target would fail before any call count as errors.
	npassed := len(passed)
	for _, req := range reqs {
		if req.Err != "" {
			failed += len(req.Records)
			npassed -= len(req.Records)
		}
	}
	if err := printTarget(w, reqs, batch.Records, notes, len(recs), npassed, failed, asJSON); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errRecordsFailed, failed, len(recs))
	}
	return nil
}

func isPreviewer(t pipeline.Target) bool {
	_, ok := t.(pipeline.Previewer)
	return ok
}

func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}

func printResult(w io.Writer, res testResult, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	fmt.Fprintf(w, "%s-%d@%d  %s", res.Topic, res.Partition, res.Offset, res.Result)
	if res.Why != "" {
		fmt.Fprintf(w, ": %s", res.Why)
	}
	fmt.Fprintln(w)
	switch {
	case res.Value != nil:
		fmt.Fprintf(w, "    value: %s\n", res.Value)
	case res.Text != nil:
		fmt.Fprintf(w, "    value (text): %q\n", *res.Text)
	}
	return nil
}

// maxCoords is how many records a request that is not sent names one by
// one in the text output.
const maxCoords = 10

// coords names the records at idx of recs as topic-partition@offset, as
// the per-record lines do.
func coords(recs []pipeline.Record, idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		if i >= 0 && i < len(recs) {
			r := &recs[i]
			out = append(out, fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.Offset))
		}
	}
	return out
}

// printTarget shows the requests the target would make; recs are the
// records of the batch they were built from (the records that passed the
// stages), which a request that is not sent names.
func printTarget(w io.Writer, reqs []pipeline.Request, recs []pipeline.Record, notes []string, total, passed, failed int, asJSON bool) error {
	if asJSON {
		for _, req := range reqs {
			out := map[string]any{"request": req.Summary, "records": req.Records}
			if len(req.Attributes) > 0 {
				out["attributes"] = req.Attributes
			}
			switch {
			case req.Err != "":
				out["coordinates"] = coords(recs, req.Records)
				out["error"] = req.Err
			case json.Valid(req.Body):
				out["body"] = compactJSON(req.Body)
			default:
				out["bodyText"] = string(req.Body)
			}
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
		}
		b, _ := json.Marshal(map[string]any{"summary": map[string]int{"records": total, "passed": passed, "filtered": total - passed - failed, "errors": failed}, "notes": notes})
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(reqs) > 0 {
		fmt.Fprintln(w, "\nthe target would receive:")
	}
	for _, req := range reqs {
		fmt.Fprintf(w, "  %s (%d record(s))\n", req.Summary, len(req.Records))
		if req.Err != "" {
			cs := coords(recs, req.Records)
			more := ""
			if len(cs) > maxCoords {
				more = fmt.Sprintf(" and %d more", len(cs)-maxCoords)
				cs = cs[:maxCoords]
			}
			fmt.Fprintf(w, "    records: %s%s\n", strings.Join(cs, ", "), more)
		}
		keys := make([]string, 0, len(req.Attributes))
		for k := range req.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "    %s: %s\n", k, req.Attributes[k])
		}
		if req.Err != "" {
			fmt.Fprintf(w, "    error: %s\n", req.Err)
			continue
		}
		fmt.Fprintf(w, "    %s\n", req.Body)
	}
	_, err := fmt.Fprintf(w, "\n%d record(s): %d passed, %d filtered, %d error(s)\n", total, passed, total-passed-failed, failed)
	return err
}
