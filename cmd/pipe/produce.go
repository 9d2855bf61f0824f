package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newProduce() *cobra.Command {
	var (
		brokers   string
		key       string
		separator string
		headers   []string
		partition int32
		nullValue bool
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records to a topic, one per line of standard input",
		Long: `Produce one record per line of standard input to TOPIC. With --key-separator,
each line is KEY<sep>VALUE. Headers are given as --header name=value (repeatable).`,
		Example: `  echo '{"orderId": 42}' | pipe produce orders --key order-42 --header source=cli
  printf 'k1:v1\nk2:v2\n' | pipe produce orders --key-separator :`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var hs []kgo.RecordHeader
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return fmt.Errorf("--header %q: want name=value", h)
				}
				hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
			// A broker that creates topics on first use (pipe dev's does) gets
			// a missing topic created rather than an error.
			opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.AllowAutoTopicCreation()}
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			n, err := produceLines(cmd.Context(), cl, cmd.InOrStdin(), args[0], key, separator, hs, partition, nullValue)
			fmt.Fprintf(cmd.ErrOrStderr(), "produced %d record(s) to %s\n", n, args[0])
			return err
		},
	}
	cmd.Flags().StringVarP(&brokers, "brokers", "b", "127.0.0.1:9092", "bootstrap servers, comma-separated")
	cmd.Flags().StringVarP(&key, "key", "k", "", "key of every record (default: no key)")
	cmd.Flags().StringVar(&separator, "key-separator", "", "split each line into key and value at the first occurrence")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "header name=value (repeatable)")
	cmd.Flags().Int32VarP(&partition, "partition", "p", -1, "partition (default: by key hash)")
	cmd.Flags().BoolVar(&nullValue, "null-empty", false, "an empty line produces a null value (a tombstone)")
	return cmd
}

func produceLines(ctx context.Context, cl *kgo.Client, in io.Reader, topic, key, sep string, hs []kgo.RecordHeader, partition int32, nullEmpty bool) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		n        int
	)
	for sc.Scan() {
		line := sc.Text()
		r := &kgo.Record{Topic: topic, Headers: hs}
		if partition >= 0 {
			r.Partition = partition
		}
		if key != "" {
			r.Key = []byte(key)
		}
		if sep != "" {
			if k, v, ok := strings.Cut(line, sep); ok {
				r.Key, line = []byte(k), v
			}
		}
		if line != "" || !nullEmpty {
			r.Value = []byte(line)
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				n++
			}
		})
	}
	wg.Wait()
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, firstErr
}
