package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipe-run/pipe/pipeline"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// errInvalid is an invalid config; its problems were printed already.
var errInvalid = errors.New("invalid config")

func exitCode(err error) int {
	if errors.Is(err, errInvalid) {
		return 2
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pipe",
		Short:         "Run declarative pipes from Kafka to Lambda, HTTP, stdout and more",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRun(), newValidate(), newTest(), newRedrive(), newVersion(), newDev(), newProduce(), newReference())
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pipe %s\n", v)
		},
	}
}

func newValidate() *cobra.Command {
	var file string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file without connecting to anything",
		Long: "Check a config file: every problem is printed with file:line:column. Nothing is connected; exits 2 on an invalid file.\n\n" +
			"With --print, a valid file is printed back as YAML as it will run: every setting with its default applied. " +
			"Values that came from ${...} references are printed as the references, secrets written in the file as <redacted>.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			if printConfig {
				_, err := cmd.OutOrStdout().Write(pipeline.Print(cfg))
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d pipe(s)\n", file, len(cfg.Pipes))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "pipes.yaml", "config file")
	cmd.Flags().BoolVar(&printConfig, "print", false, "print the effective config (defaults applied, secrets as their references or redacted) instead of ok")
	return cmd
}

// load reads a config file, printing every problem to w.
func load(w io.Writer, file string) (*pipeline.Config, error) {
	cfg, err := pipeline.LoadFile(file)
	return cfg, reportProblems(w, err)
}

func reportProblems(w io.Writer, err error) error {
	var ps pipeline.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(w, p.Error())
		}
		return fmt.Errorf("%w: %d problem(s)", errInvalid, len(ps))
	}
	return err
}

func newLogger(cfg *pipeline.Config, w io.Writer) *slog.Logger {
	level, _ := pipeline.ParseLevel(cfg.LogLevel)
	return pipeline.NewLogger(w, cfg.LogFormat, level)
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits the process.
func signalContext(parent context.Context, logger *slog.Logger) (context.Context, func()) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		var first time.Time
		select {
		case s := <-ch:
			first = time.Now()
			logger.Info("shutting down", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		for s := range ch {
			// The same signal delivered twice at once (to the process and
			// its group, as timeout(1) does) is one request to stop.
			if time.Since(first) < 100*time.Millisecond {
				continue
			}
			logger.Error("second signal: exiting without draining", "signal", s.String())
			os.Exit(130)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
