// Package transform is the pipe's transform stage: an expr-lang expression
// (the environment of package stages/expr) maps each record's value to a new
// value, so a pipe can reshape records without an enrichment call.
//
// The result becomes the record's new value: a string as its text, bytes as
// they are, nil as no value (a Kafka null: the envelope leaves value out),
// anything else (a map, a list, a number, a boolean) as JSON, with map keys
// sorted. JSON numbers are read as float64, so integers beyond 2^53 lose
// precision and 1e2 is written 100; keep such numbers as strings. The key,
// headers and coordinates stay. A record on which the expression fails to
// evaluate fails its batch, naming the record; the batch is retried (and,
// with an on-failure destination, ends there), so no record is changed or
// dropped silently.
package transform

import (
	"context"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/expr"
	"github.com/pipe-run/pipe/stages/filter"
)

func init() {
	pipeline.RegisterSlot[pipeline.TransformConfig]("Maps each record's value to a new value.",
		func() *Config { return &Config{} })
}

// Config is a pipe's `transform:` block.
type Config struct {
	Expression Expression `yaml:"expression" required:"true" doc:"An expr-lang expression over the record (the names of the filter expression: value, key, headers, topic ...) whose result becomes the record's new value: a string as its text, a map, list, number or boolean as JSON, nil as no value. E.g. {\"id\": value.orderId, \"total\": value.amount * 1.2, \"source\": headers[\"source\"]}. A record it fails on fails its batch."`
}

// NewStage builds the transform stage.
func (c *Config) NewStage(env pipeline.Env) (pipeline.Stage, error) {
	return &Stage{prog: c.Expression.prog}, nil
}

// Expression is a transform expression, compiled when the config loads.
type Expression struct {
	prog *expr.Program
}

// DecodeNode compiles the expression.
func (e *Expression) DecodeNode(n *yaml.Node) []pipeline.NodeProblem {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return []pipeline.NodeProblem{{Node: n, Msg: "expected an expression (a string)"}}
	}
	prog, err := expr.Compile(n.Value, false)
	if err != nil {
		return []pipeline.NodeProblem{filter.ExprProblem(n, err)}
	}
	e.prog = prog
	return nil
}

// Stage transforms batches.
type Stage struct {
	prog *expr.Program
}

var _ pipeline.Stage = (*Stage)(nil)

// Process returns a new batch with every record's value replaced; b is not
// changed, so a retry starts from the original records.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	out := &pipeline.Batch{EventSource: b.EventSource, BootstrapServers: b.BootstrapServers,
		Records: make([]pipeline.Record, len(b.Records))}
	for i := range b.Records {
		r := &b.Records[i]
		v, err := s.Apply(r)
		if err != nil {
			return nil, pipeline.Permanent(err)
		}
		out.Records[i] = pipeline.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp, TimestampType: r.TimestampType, Key: r.Key, Value: v, Headers: r.Headers}
	}
	return out, nil
}

// Apply returns the new value of one record.
func (s *Stage) Apply(r *pipeline.Record) ([]byte, error) {
	out, err := s.prog.Run(expr.NewEnv(r))
	if err != nil {
		return nil, fmt.Errorf("transform failed on %s-%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	switch v := out.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("transform failed on %s-%d offset %d: result is not JSON: %w", r.Topic, r.Partition, r.Offset, err)
		}
		return b, nil
	}
}

// RefType names the type in the config reference.
func (*Expression) RefType() string { return "expression" }
