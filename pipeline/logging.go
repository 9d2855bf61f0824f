package pipeline

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

// Log levels besides slog's: TRACE is below DEBUG (per-batch detail and,
// with includeExecutionData, payloads), OFF is above everything.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelOff   = slog.Level(1 << 20)
)

// LogLevels are the level names a config accepts, lowest first as EventBridge
// Pipes names them (OFF, ERROR, INFO, TRACE) plus slog's WARN and DEBUG.
const LogLevels = "OFF,ERROR,WARN,INFO,DEBUG,TRACE"

// ParseLevel returns the level of a name of LogLevels (any case); ok is
// false for other names.
func ParseLevel(s string) (l slog.Level, ok bool) {
	switch strings.ToUpper(s) {
	case "OFF":
		return LevelOff, true
	case "ERROR":
		return slog.LevelError, true
	case "WARN":
		return slog.LevelWarn, true
	case "INFO":
		return slog.LevelInfo, true
	case "DEBUG":
		return slog.LevelDebug, true
	case "TRACE":
		return LevelTrace, true
	}
	return slog.LevelInfo, false
}

// NewLogger returns the process logger: text (logfmt-like) or json lines
// on w, letting through records at level or above. TRACE is written as
// such. A pipe's logger (see Pipe.SetLogLevel) may go below level: the
// filter sits in front of the handler, not in it.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: LevelTrace, ReplaceAttr: levelName}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&levelHandler{h: h, level: level})
}

func levelName(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey && len(groups) == 0 {
		if l, ok := a.Value.Any().(slog.Level); ok && l < slog.LevelDebug {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}

// levelHandler lets through the records at its level or above.
type levelHandler struct {
	h     slog.Handler
	level slog.Leveler
}

func (l *levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.level.Level() && l.h.Enabled(ctx, lv)
}

func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{h: l.h.WithAttrs(as), level: l.level}
}

func (l *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{h: l.h.WithGroup(name), level: l.level}
}

// PipeLevel is a pipe's log level: its own when set, else the process's.
// It is safe for concurrent use; a change applies at once to every logger
// made with it.
type PipeLevel struct {
	own    slog.LevelVar
	set    atomic.Bool
	parent slog.Leveler // set once, before the level is shared
}

// Set sets the pipe's own level (a name of LogLevels); "" follows the
// process's level.
func (p *PipeLevel) Set(name string) {
	if l, ok := ParseLevel(name); ok && name != "" {
		p.own.Set(l)
		p.set.Store(true)
		return
	}
	p.set.Store(false)
}

// Level returns the level in effect.
func (p *PipeLevel) Level() slog.Level {
	if p.set.Load() {
		return p.own.Level()
	}
	if p.parent == nil {
		return slog.LevelInfo
	}
	return p.parent.Level()
}

// NewPipeLogger returns the logger of a pipe: lines carry pipe=<name> and
// pass at lv. When process is a logger of NewLogger, lv replaces its level
// (so a pipe can log at TRACE in an INFO process, or be OFF); otherwise lv
// can only restrict it further. The first call with lv fixes the process
// level it follows.
func NewPipeLogger(process *slog.Logger, name string, lv *PipeLevel) *slog.Logger {
	h := process.Handler()
	var parent slog.Leveler = LevelTrace
	if l, ok := h.(*levelHandler); ok {
		parent, h = l.level, l.h
	}
	if lv.parent == nil {
		lv.parent = parent
	}
	return slog.New(&levelHandler{h: h, level: lv}).With("pipe", name)
}
