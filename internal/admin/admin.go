package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pipe-run/pipe/pipeline"
)

// Pipes reports the status of the process's pipes.
type Pipes interface {
	Pipes() []pipeline.PipeReport
}

// Options configure the server.
type Options struct {
	// Pipes is what /pipes and /readyz report on.
	Pipes Pipes
	// Gatherer is served on /metrics.
	Gatherer prometheus.Gatherer
	// UnreadyOnStall makes /readyz fail while a partition is stalled.
	UnreadyOnStall bool
	Logger         *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	o   Options
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and returns a server ready to Serve.
func Listen(addr string, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, ln: ln}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx is cancelled.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	})
	defer stop()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the admin endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.o.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /pipes", s.pipes)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "pipe admin: /metrics /healthz /readyz /pipes")
	})
	return mux
}

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Problems say, pipe by pipe, what keeps the process from being ready.
	Problems []string `json:"problems,omitempty"`
}

// Ready says whether every pipe is running (its group joined) and, with
// unreadyOnStall, has no stalled partition.
func Ready(pipes []pipeline.PipeReport, unreadyOnStall bool) Readiness {
	r := Readiness{Ready: true}
	for _, p := range pipes {
		switch {
		case p.State == pipeline.StateFailed:
			r.Problems = append(r.Problems, fmt.Sprintf("pipe %s: failed: %s", p.Name, p.Reason))
		case p.State != pipeline.StateRunning:
			r.Problems = append(r.Problems, fmt.Sprintf("pipe %s: %s", p.Name, p.State))
		case unreadyOnStall && p.Stalled > 0:
			for _, pt := range p.Parts {
				if pt.Stalled {
					r.Problems = append(r.Problems, fmt.Sprintf("pipe %s: partition %s-%d stalled", p.Name, pt.Topic, pt.Partition))
				}
			}
		}
	}
	r.Ready = len(r.Problems) == 0
	return r
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	r := Ready(s.o.Pipes.Pipes(), s.o.UnreadyOnStall)
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func (s *Server) pipes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Pipes []pipeline.PipeReport `json:"pipes"`
	}{s.o.Pipes.Pipes()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}
