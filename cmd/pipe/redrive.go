package main

import (
	"bufio"
	"context"
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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/backoff"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/sources/kafka"
)

// failed is one on-failure record read back.
type failed struct {
	where     string // file:line or topic-partition@offset
	pipe      string
	condition string
	stage     string
	errText   string
	batch     *pipeline.Batch
}

func newRedrive() *cobra.Command {
	var file, pipeName, fromFile, fromTopic, brokers, to string
	var dryRun, anyPipe bool
	var attempts int
	cmd := &cobra.Command{
		Use:   "redrive",
		Short: "Send records from an on-failure file or topic through a pipe again",
		Long: `Read the on-failure records a pipe wrote (to a file destination, or to a Kafka
on-failure topic) and send their records again: through the pipe's filter,
transform, enrichment and target (--to pipe, the default), or back onto their
source topic (--to source) so the pipe reads them like new ones. Only records
of the chosen pipe are taken unless --any-pipe. --dry-run lists what would be
sent and sends nothing. The input is not changed; stop at the first failure
(after --attempts tries) and say how far it got, exit 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (fromFile == "") == (fromTopic == "") {
				return errors.New("give one of --from-file and --from-topic")
			}
			if to != "pipe" && to != "source" {
				return fmt.Errorf("--to must be pipe or source, not %q", to)
			}
			cfg, err := load(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			pc, err := pickPipe(cfg, pipeName)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			var fs []failed
			if fromFile != "" {
				fs, err = readFailedFile(fromFile)
			} else {
				fs, err = readFailedTopic(ctx, pc, fromTopic, brokers)
			}
			if err != nil {
				return err
			}
			var mine []failed
			for _, f := range fs {
				if anyPipe || f.pipe == pc.Name {
					mine = append(mine, f)
				}
			}
			return redrive(ctx, cmd.OutOrStdout(), cfg, pc, mine, len(fs), to, dryRun, attempts)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "pipes.yaml", "config file")
	cmd.Flags().StringVarP(&pipeName, "pipe", "p", "", "pipe whose records to redrive (needed when the file has several)")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "on-failure file (JSON lines) to read")
	cmd.Flags().StringVar(&fromTopic, "from-topic", "", "on-failure Kafka topic to read, from its start to its end")
	cmd.Flags().StringVar(&brokers, "brokers", "", "brokers of --from-topic (default: the pipe's source brokers and connection settings)")
	cmd.Flags().StringVar(&to, "to", "pipe", "where to send: pipe (stages and target) or source (the records' source topics)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be sent; send nothing")
	cmd.Flags().BoolVar(&anyPipe, "any-pipe", false, "take records of every pipe, not only the chosen one")
	cmd.Flags().IntVar(&attempts, "attempts", 3, "tries per on-failure record before stopping")
	return cmd
}

// parseFailed reads one on-failure record with its payload.
func parseFailed(where string, data []byte) (failed, error) {
	var meta struct {
		Pipe           string `json:"pipe"`
		ErrorMessage   string `json:"errorMessage"`
		Stage          string `json:"stage"`
		RequestContext struct {
			Condition string `json:"condition"`
		} `json:"requestContext"`
		KafkaBatchInfo struct {
			RecordsInfo map[string]struct {
				First string `json:"firstRecordOffset"`
				Last  string `json:"lastRecordOffset"`
			} `json:"recordsInfo"`
		} `json:"KafkaBatchInfo"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return failed{}, fmt.Errorf("%s: not an on-failure record: %w", where, err)
	}
	b, err := pipeline.ParseFailureRecord(data)
	if err != nil {
		var at []string
		for tp, ri := range meta.KafkaBatchInfo.RecordsInfo {
			at = append(at, fmt.Sprintf("%s offsets %s-%s", tp, ri.First, ri.Last))
		}
		if len(at) > 0 {
			sort.Strings(at)
			return failed{}, fmt.Errorf("%s: %w; the records are at %s of the source topic", where, err, strings.Join(at, ", "))
		}
		return failed{}, fmt.Errorf("%s: %w", where, err)
	}
	return failed{where: where, pipe: meta.Pipe, condition: meta.RequestContext.Condition, stage: meta.Stage,
		errText: meta.ErrorMessage, batch: b}, nil
}

func readFailedFile(path string) ([]failed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []failed
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fl, err := parseFailed(fmt.Sprintf("%s:%d", path, n), []byte(line))
		if err != nil {
			return nil, err
		}
		out = append(out, fl)
	}
	return out, sc.Err()
}

// kafkaOpts returns the seed brokers and connection options for reading an
// on-failure topic or producing back to a source topic.
func kafkaOpts(pc *pipeline.PipeConfig, brokers string) ([]kgo.Opt, error) {
	kc, ok := pc.Source.(*kafka.Config)
	var opts []kgo.Opt
	switch {
	case brokers != "":
		opts = append(opts, kgo.SeedBrokers(strings.Split(brokers, ",")...))
	case ok:
		opts = append(opts, kgo.SeedBrokers(kc.Brokers()...))
	default:
		return nil, errors.New("the pipe's source is not Kafka; give --brokers")
	}
	if ok {
		conn, err := kc.Conn().Opts(nil)
		if err != nil {
			return nil, err
		}
		opts = append(opts, conn...)
	}
	return opts, nil
}

func readFailedTopic(ctx context.Context, pc *pipeline.PipeConfig, topic, brokers string) ([]failed, error) {
	opts, err := kafkaOpts(pc, brokers)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing the end of %s: %w", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end of %s: %w", topic, err)
	}
	var out []failed
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		for _, fe := range fetches.Errors() {
			return nil, fmt.Errorf("reading %s: %w", topic, fe.Err)
		}
		var perr error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || perr != nil {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Offset >= end {
				return
			}
			fl, err := parseFailed(fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.Offset), r.Value)
			if err != nil {
				perr = err
				return
			}
			out = append(out, fl)
		})
		if perr != nil {
			return nil, perr
		}
	}
	return out, nil
}

func describeBatch(b *pipeline.Batch) string {
	if len(b.Records) == 0 {
		return "no records"
	}
	first, last := b.Records[0], b.Records[len(b.Records)-1]
	return fmt.Sprintf("%s-%d offsets %d-%d (%d record(s))", first.Topic, first.Partition, first.Offset, last.Offset, len(b.Records))
}

func redrive(ctx context.Context, w io.Writer, cfg *pipeline.Config, pc *pipeline.PipeConfig, fs []failed, total int, to string, dryRun bool, attempts int) error {
	verb := "sent"
	if dryRun {
		verb = "would send"
	}
	if dryRun {
		for _, f := range fs {
			fmt.Fprintf(w, "%s: %s %s to %s (%s at %s: %s)\n", f.where, verb, describeBatch(f.batch), to, f.condition, f.stage, f.errText)
		}
		fmt.Fprintf(w, "%d of %d on-failure record(s) are pipe %q's; nothing sent (dry run)\n", len(fs), total, pc.Name)
		return nil
	}
	var send func(ctx context.Context, b *pipeline.Batch) error
	switch to {
	case "source":
		opts, err := kafkaOpts(pc, "")
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		send = func(ctx context.Context, b *pipeline.Batch) error {
			recs := make([]*kgo.Record, len(b.Records))
			for i, r := range b.Records {
				kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
				for _, h := range r.Headers {
					kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
				}
				recs[i] = kr
			}
			return cl.ProduceSync(ctx, recs...).FirstErr()
		}
	default:
		one := *cfg
		one.Pipes = []pipeline.PipeConfig{*pc}
		pipes, err := pipeline.Build(&one, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			return err
		}
		p := pipes[0]
		defer p.Target.Close()
		send = p.Try
	}
	pol := backoff.Default
	for i, f := range fs {
		var err error
		for a := 0; a < max(attempts, 1); a++ {
			if a > 0 {
				if err := backoff.Sleep(ctx, pol.Delay(a-1)); err != nil {
					return err
				}
			}
			if err = send(ctx, f.batch); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(w, "%s: failed: %s: %v\n", f.where, describeBatch(f.batch), err)
			return fmt.Errorf("redrive stopped at %s after %d of %d on-failure record(s): %w", f.where, i, len(fs), err)
		}
		fmt.Fprintf(w, "%s: %s %s to %s\n", f.where, verb, describeBatch(f.batch), to)
	}
	fmt.Fprintf(w, "%d of %d on-failure record(s) are pipe %q's; all %s\n", len(fs), total, pc.Name, verb)
	return nil
}
