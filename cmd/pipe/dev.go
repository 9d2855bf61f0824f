package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	pipe "github.com/pipe-run/pipe"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/sources/kafka"
)

func newDev() *cobra.Command {
	var (
		file       string
		listen     string
		partitions int32
		demo       bool
		brokerOnly bool
		dataDir    string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run pipes on an embedded Kafka broker (no Kafka needed)",
		Long: `Start an embedded Kafka broker, create the topics the config reads, and run the
pipes against it (their bootstrapServers are replaced by the embedded broker).
Without -f, the built-in quick-start runs and sample orders are produced so
there is something to see. Put records in with 'pipe produce TOPIC'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *pipeline.Config
			var err error
			if !brokerOnly {
				if file == "" {
					cfg, err = pipeline.Parse("pipes.yaml (built-in quick-start)", pipe.QuickStart)
					if !cmd.Flags().Changed("demo") {
						demo = true
					}
				} else {
					cfg, err = pipeline.LoadFile(file)
				}
				if err = reportProblems(cmd.ErrOrStderr(), err); err != nil {
					return err
				}
			}
			return runDev(cmd.Context(), cmd.ErrOrStderr(), cfg, listen, partitions, demo, dataDir)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file (default: the built-in quick-start)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address of the embedded broker")
	cmd.Flags().Int32Var(&partitions, "partitions", 3, "partitions of each created topic")
	cmd.Flags().BoolVar(&demo, "demo", false, "produce a sample order every 200ms to each source topic (on by default for the quick-start)")
	cmd.Flags().BoolVar(&brokerOnly, "broker-only", false, "run only the broker, no pipes")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep the broker's data in this directory across restarts")
	return cmd
}

func runDev(ctx context.Context, logw io.Writer, cfg *pipeline.Config, listen string, partitions int32, demo bool, dataDir string) error {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--listen %q: bad port", listen)
	}
	var topics []string
	if cfg != nil {
		for _, pc := range cfg.Pipes {
			if kc, ok := pc.Source.(*kafka.Config); ok {
				topics = append(topics, kc.Topics...)
			}
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting the embedded broker on %s: %w", listen, err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	logCfg := cfg
	if logCfg == nil {
		logCfg = &pipeline.Config{LogLevel: "INFO", LogFormat: "text"}
	}
	logger := newLogger(logCfg, logw)
	logger.Info("embedded Kafka broker listening", "address", addr, "topics", fmt.Sprint(topics), "partitions", partitions)
	ctx, stop := signalContext(ctx, logger)
	defer stop()
	if cfg == nil {
		<-ctx.Done()
		return nil
	}
	useEmbedded(cfg, addr)
	if demo {
		go produceDemo(ctx, logger, addr, topics)
	}
	pipes, err := pipeline.Build(cfg, logger)
	if err != nil {
		return err
	}
	return pipeline.Run(ctx, pipes)
}

// produceDemo writes a sample order every 200ms to each topic.
func produceDemo(ctx context.Context, logger *slog.Logger, addr string, topics []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		logger.Error("demo producer", "error", err)
		return
	}
	defer cl.Close()
	logger.Info("producing a sample order every 200ms (turn off with --demo=false)")
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	items := []string{"coffee", "tea", "cake", "bagel"}
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, t := range topics {
			value := fmt.Sprintf(`{"orderId":%d,"item":%q,"quantity":%d,"total":%.2f}`, n, items[n%len(items)], n%3+1, float64(n%7)*2.5+3)
			cl.Produce(ctx, &kgo.Record{
				Topic:   t,
				Key:     []byte("order-" + strconv.Itoa(n)),
				Value:   []byte(value),
				Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("pipe-dev-demo")}},
			}, nil)
		}
	}
}

// useEmbedded points the config's Kafka sources at the embedded broker,
// and the Kafka targets that name a source's cluster with them.
func useEmbedded(cfg *pipeline.Config, addr string) {
	for _, pc := range cfg.Pipes {
		kc, ok := pc.Source.(*kafka.Config)
		if !ok {
			continue
		}
		if tc, ok := pc.Target.(brokerUser); ok && sameBrokers(tc.Brokers(), kc.Brokers()) {
			tc.UseBrokers([]string{addr})
		}
		kc.UseBrokers([]string{addr})
	}
}

// brokerUser is a component config that names Kafka brokers and can be
// pointed at others.
type brokerUser interface {
	Brokers() []string
	UseBrokers([]string)
}

func sameBrokers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
