package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipe-run/pipe/internal/admin"
	"github.com/pipe-run/pipe/internal/metrics"
	"github.com/pipe-run/pipe/internal/supervisor"
	"github.com/pipe-run/pipe/pipeline"
)

func newRun() *cobra.Command {
	var (
		file  string
		watch bool
		every time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipes of a config file",
		Long: `Run the pipes of a config file until SIGINT or SIGTERM; then stop fetching, drain
in-flight batches (shutdownTimeout), commit and leave the groups.

SIGHUP reloads the file (and --watch does when it changes): pipes whose
settings changed restart cleanly (drain, commit), new ones start, removed ones
stop, and unchanged ones run on without leaving their consumer group. A file
with problems is rejected, its problems logged, and the running config stays.

The admin server (admin: in the file; 127.0.0.1:9100 by default) serves
/metrics, /healthz, /readyz and /pipes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			if !watch {
				every = 0
			}
			return runWatched(cmd.Context(), cfg, cmd.ErrOrStderr(), every)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "pipes.yaml", "config file")
	cmd.Flags().BoolVar(&watch, "watch", false, "reload the config file when it changes (polls its modification time and contents)")
	cmd.Flags().DurationVar(&every, "watch-interval", 2*time.Second, "how often --watch looks at the file")
	return cmd
}

// runPipes runs the config's pipes until SIGINT/SIGTERM (or ctx ends),
// reloading the file on SIGHUP.
func runPipes(ctx context.Context, cfg *pipeline.Config, logw io.Writer) error {
	return runWatched(ctx, cfg, logw, 0)
}

// runWatched runs the config's pipes under a supervisor until
// SIGINT/SIGTERM (or ctx ends), with the admin server, reloading the file
// (cfg.File) on SIGHUP and, when watch > 0, when it changes.
func runWatched(ctx context.Context, cfg *pipeline.Config, logw io.Writer, watch time.Duration) error {
	file := cfg.File
	level := new(slog.LevelVar)
	l, _ := pipeline.ParseLevel(cfg.LogLevel)
	level.Set(l)
	logger := pipeline.NewLogger(logw, cfg.LogFormat, level)
	reg := metrics.New()
	sup := supervisor.New(supervisor.Options{Logger: logger, Level: level, Metrics: reg})
	ctx, stop := signalContext(ctx, logger)
	defer stop()

	if cfg.Admin.Enabled {
		srv, err := admin.Listen(cfg.Admin.Address, admin.Options{Pipes: sup, Gatherer: reg.Gatherer(),
			UnreadyOnStall: cfg.Admin.UnreadyOnStall, Logger: logger})
		switch {
		case err != nil && cfg.Admin.Address == pipeline.DefaultAdminAddress:
			// Not a warning: several pipe processes on one machine (tests,
			// a dev run next to another) all default to this address.
			logger.Info("admin server not started: the default address is taken (another pipe process?); set admin.address to serve it", "address", cfg.Admin.Address, "error", err.Error())
		case err != nil:
			return errors.New("admin server: " + err.Error())
		default:
			logger.Info("admin server listening", "address", srv.Addr())
			go func() {
				if err := srv.Serve(ctx); err != nil {
					logger.Error("admin server stopped", "error", err)
				}
			}()
		}
	}

	reloads := make(chan string, 1)
	trigger := func(why string) {
		select {
		case reloads <- why:
		default: // one is pending already
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				trigger("SIGHUP")
			}
		}
	}()
	if watch > 0 {
		go watchFile(ctx, file, watch, logger, trigger)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case why := <-reloads:
				reload(logger, sup, file, why)
			}
		}
	}()
	return sup.Run(ctx, cfg)
}

// reload loads file again and applies it; a file with problems is
// rejected and the running config stays.
func reload(logger *slog.Logger, sup *supervisor.Supervisor, file, why string) {
	logger.Info("reloading the config", "file", file, "trigger", why)
	cfg, err := pipeline.LoadFile(file)
	if err != nil {
		var ps pipeline.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				logger.Error("config problem", "problem", p.Error())
			}
			logger.Error("reload rejected: the file has problems; the running config stays", "file", file, "problems", len(ps))
			return
		}
		logger.Error("reload rejected; the running config stays", "file", file, "error", err)
		return
	}
	ch, err := sup.Reload(cfg)
	if err != nil {
		logger.Error("reload rejected; the running config stays", "file", file, "error", err)
		return
	}
	logger.Info("config reloaded", "file", file, "changes", ch.String())
}

// watchFile polls file every interval and triggers a reload when its
// contents change (its modification time or size moved and its hash
// differs). No file-system notification: it works the same on every
// platform and volume type, mounted ConfigMaps included.
func watchFile(ctx context.Context, file string, every time.Duration, logger *slog.Logger, trigger func(string)) {
	type seen struct {
		mod  time.Time
		size int64
		sum  [sha256.Size]byte
	}
	look := func() (seen, error) {
		fi, err := os.Stat(file)
		if err != nil {
			return seen{}, err
		}
		return seen{mod: fi.ModTime(), size: fi.Size()}, nil
	}
	hash := func() ([sha256.Size]byte, error) {
		data, err := os.ReadFile(file)
		return sha256.Sum256(data), err
	}
	last, _ := look()
	last.sum, _ = hash()
	t := time.NewTicker(every)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := look()
		if err != nil {
			if !failing {
				logger.Warn("watching the config file", "file", file, "error", err)
			}
			failing = true
			continue
		}
		failing = false
		if now.mod.Equal(last.mod) && now.size == last.size {
			continue
		}
		sum, err := hash()
		if err != nil {
			continue
		}
		now.sum = sum
		changed := !bytes.Equal(sum[:], last.sum[:])
		last = now
		if changed {
			trigger("file changed")
		}
	}
}
