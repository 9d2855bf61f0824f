// Package expr is the expression language of the filter and transform
// stages: expr-lang/expr evaluated against one record.
//
// # Environment
//
// An expression sees these names:
//
//	topic          string   the record's topic
//	partition      int      its partition
//	offset         int      its offset
//	timestamp      int      its timestamp, Unix milliseconds
//	time           time     its timestamp as a time in UTC (time.Year() ...)
//	timestampType  string   CREATE_TIME or LOG_APPEND_TIME
//	key            any      the key decoded as JSON when it is valid JSON, else
//	                        its text; nil when the record has no key
//	value          any      the value, decoded the same way
//	rawKey         string   the key's bytes as text ("" when there is none)
//	rawValue       string   the value's bytes as text
//	headers        map      header name to its value as text; when a name
//	                        repeats, the last value wins
//
// JSON objects are maps (value.customer.id, value["first-name"]), arrays are
// arrays, numbers are float64. Every expr-lang built-in is there (len, lower,
// upper, trim, split, hasPrefix via startsWith, matches, any, all, filter,
// map, toJSON, fromJSON, now, duration, date ...), plus:
//
//	has(m, "k")        whether map m has key k (a JSON null counts)
//	str(x)             x as text: a string as is, anything else as JSON
//	cidr(ip, "net")    whether the address ip is in the CIDR range net
//
// A missing field reads as nil, but reading a field of nil is an error:
// value.a.b fails when value.a is missing, so write value.a?.b, and
// value.customer?.id ?? "none" for a default. Expressions are compiled when the
// config loads, with the environment's types, so an unknown name or a type
// error is reported with its place before anything runs.
package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/pipe-run/pipe/pipeline"
)

// Env is what an expression sees of a record.
type Env struct {
	Topic         string            `expr:"topic"`
	Partition     int               `expr:"partition"`
	Offset        int               `expr:"offset"`
	Timestamp     int               `expr:"timestamp"`
	Time          time.Time         `expr:"time"`
	TimestampType string            `expr:"timestampType"`
	Key           any               `expr:"key"`
	Value         any               `expr:"value"`
	RawKey        string            `expr:"rawKey"`
	RawValue      string            `expr:"rawValue"`
	Headers       map[string]string `expr:"headers"`
}

// NewEnv fills an Env from a record. Key and value come from the record's
// view, so they are decoded once whatever reads them.
func NewEnv(r *pipeline.Record) *Env {
	v := r.View()
	e := &Env{
		Topic:         r.Topic,
		Partition:     int(r.Partition),
		Offset:        int(r.Offset),
		Timestamp:     int(r.Timestamp.UnixMilli()),
		Time:          r.Timestamp.UTC(),
		TimestampType: r.TimestampType.String(),
		RawKey:        string(r.Key),
		RawValue:      string(r.Value),
	}
	if k := v.Get("key"); k != nil {
		e.Key = k.Interface()
	}
	if val := v.Get("value"); val != nil {
		e.Value = val.Interface()
	}
	if len(r.Headers) > 0 {
		e.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			e.Headers[h.Key] = string(h.Value)
		}
	}
	return e
}

// Program is a compiled expression.
type Program struct {
	src  string
	prog *vm.Program
}

// String returns the expression's text.
func (p *Program) String() string { return p.src }

// Error is a compile error with its place in the expression.
type Error struct {
	// Line and Column are 1-based, within the expression's text.
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("expression line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Compile compiles src. With asBool the expression must yield a boolean
// (a filter); otherwise any value (a transform).
func Compile(src string, asBool bool) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "is empty"}
	}
	opts := []expr.Option{expr.Env(Env{}), expr.Function("has", has, new(func(map[string]any, string) bool)),
		expr.Function("str", str, new(func(any) string)),
		expr.Function("cidr", cidr, new(func(string, string) bool))}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &Error{Line: max(fe.Line, 1), Column: fe.Column + 1, Msg: fe.Message}
		}
		return nil, &Error{Line: 1, Column: 1, Msg: err.Error()}
	}
	return &Program{src: src, prog: prog}, nil
}

// Run evaluates the program against env.
func (p *Program) Run(env *Env) (any, error) {
	out, err := expr.Run(p.prog, env)
	if err != nil {
		return nil, runtimeError(err)
	}
	return out, nil
}

// RunBool evaluates a filter program.
func (p *Program) RunBool(env *Env) (bool, error) {
	out, err := p.Run(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expression yielded %T, not a boolean", out)
	}
	return b, nil
}

// runtimeError keeps the message of an evaluation error and drops the
// source excerpt expr-lang adds, which may quote record data over lines.
func runtimeError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

// Kind names a runtime error's kind for counting and log-once: its message
// with the parts that vary per record (quoted values, numbers) left out.
func Kind(err error) string {
	msg := err.Error()
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case c == '"' || c == '\'':
			if !inQuote {
				b.WriteString("…")
			}
			inQuote = !inQuote
		case inQuote:
		case c >= '0' && c <= '9':
			if b.Len() == 0 || !strings.HasSuffix(b.String(), "N") {
				b.WriteByte('N')
			}
		default:
			b.WriteByte(c)
		}
		if b.Len() > 120 {
			break
		}
	}
	return b.String()
}

func has(params ...any) (any, error) {
	m, _ := params[0].(map[string]any)
	k, _ := params[1].(string)
	_, ok := m[k]
	return ok, nil
}

func str(params ...any) (any, error) {
	switch v := params[0].(type) {
	case string:
		return v, nil
	case nil:
		return "null", nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
}

func cidr(params ...any) (any, error) {
	ip, _ := params[0].(string)
	network, _ := params[1].(string)
	pfx, err := netip.ParsePrefix(network)
	if err != nil {
		return nil, fmt.Errorf("cidr: %q is not a CIDR range", network)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false, nil
	}
	return pfx.Contains(addr.Unmap()), nil
}
