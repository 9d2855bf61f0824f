package filter

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/expr"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

func init() {
	pipeline.RegisterSlot[pipeline.FilterConfig]("Keeps the records that match; the others count as done.",
		func() *Config { return &Config{} })
}

// Config is a pipe's `filter:` block.
type Config struct {
	Patterns   []Pattern  `yaml:"patterns" max:"10" doc:"Event patterns, as in Lambda FilterCriteria and EventBridge; a record passes when any matches. Each is a JSON string (pasted from a FilterCriteria Pattern) or the same pattern written in YAML. They match the record as {topic, partition, offset, timestamp, timestampType, key, value, headers}, value and key decoded as JSON when they are JSON. At most 10, each at most 4096 characters."`
	Expression Expression `yaml:"expression" doc:"An expr-lang expression that must be true for the record to pass, e.g. value.amount > 100 && headers[\"source\"] == \"web\". With patterns, a record must pass both. A record on which it fails to evaluate does not pass, is counted, and the first failure of each kind is logged at WARN."`
}

// Validate asks for at least one pattern or an expression.
func (c *Config) Validate() []pipeline.FieldProblem {
	if len(c.Patterns) == 0 && !c.Expression.given {
		return []pipeline.FieldProblem{{Msg: "needs patterns, an expression, or both"}}
	}
	return nil
}

// NewStage builds the filter stage.
func (c *Config) NewStage(env pipeline.Env) (pipeline.Stage, error) {
	return New(c, env)
}

// Pattern is one event pattern of a filter, compiled when the config loads.
type Pattern struct {
	*pattern.Pattern
}

// DecodeNode compiles the pattern from a JSON string or a YAML mapping,
// placing a problem at the part of the pattern at fault.
func (p *Pattern) DecodeNode(n *yaml.Node) []pipeline.NodeProblem {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		pat, err := pattern.Compile([]byte(n.Value))
		if err != nil {
			return []pipeline.NodeProblem{stringProblem(n, err)}
		}
		p.Pattern = pat
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return []pipeline.NodeProblem{{Node: n, Msg: "expected an event pattern: a mapping, or a JSON object in a string"}}
	}
	src, bad := toJSON(nil, n)
	if bad != nil {
		return []pipeline.NodeProblem{*bad}
	}
	pat, err := pattern.Compile(src)
	if err != nil {
		pe, ok := err.(*pattern.Error)
		if !ok {
			return []pipeline.NodeProblem{{Node: n, Msg: err.Error()}}
		}
		at := walk(n, pe.Path)
		msg := pe.Msg
		if len(pe.Path) > 0 {
			msg = strings.Join(pe.Path, ".") + ": " + msg
		}
		return []pipeline.NodeProblem{{Node: at, Msg: "event pattern: " + msg}}
	}
	p.Pattern = pat
	return nil
}

// stringProblem places a compile error of a pattern written as a string: at
// the character at fault when the string is on one line of the file, else
// at the line at fault and the string's column.
func stringProblem(n *yaml.Node, err error) pipeline.NodeProblem {
	pe, ok := err.(*pattern.Error)
	if !ok {
		return pipeline.NodeProblem{Node: n, Msg: err.Error()}
	}
	msg := "event pattern: " + pe.Msg
	if len(pe.Path) > 0 {
		msg = "event pattern: " + strings.Join(pe.Path, ".") + ": " + pe.Msg
	}
	if pe.Offset < 0 || pe.Offset > len(n.Value) {
		return pipeline.NodeProblem{Node: n, Msg: msg}
	}
	before := n.Value[:pe.Offset]
	nl := strings.Count(before, "\n")
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The text starts on the line after the indicator.
		return pipeline.NodeProblem{Line: n.Line + 1 + nl, Column: max(n.Column, 1), Msg: msg + fmt.Sprintf(" (character %d of that line of the pattern)", pe.Offset-strings.LastIndexByte(before, '\n'))}
	case nl == 0 && (n.Style == 0 || n.Style&yaml.SingleQuotedStyle != 0 && !strings.Contains(before, "'")):
		col := n.Column + pe.Offset
		if n.Style != 0 {
			col++ // the opening quote
		}
		return pipeline.NodeProblem{Line: n.Line, Column: col, Msg: msg}
	default:
		return pipeline.NodeProblem{Node: n, Msg: msg + fmt.Sprintf(" (byte %d of the pattern)", pe.Offset)}
	}
}

// walk follows a pattern error's path through the YAML nodes, as far as it
// goes.
func walk(n *yaml.Node, path []string) *yaml.Node {
	for _, key := range path {
		n = resolve(n)
		next := (*yaml.Node)(nil)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// toJSON writes a YAML pattern as JSON text, keeping numbers as written
// when they are JSON numbers.
func toJSON(dst []byte, n *yaml.Node) ([]byte, *pipeline.NodeProblem) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		dst = append(dst, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, &pipeline.NodeProblem{Node: k, Msg: "event pattern: a field name must be a string"}
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = (&pipeline.Value{Type: pipeline.TypeString, Str: k.Value}).AppendJSON(dst)
			dst = append(dst, ':')
			var bad *pipeline.NodeProblem
			if dst, bad = toJSON(dst, n.Content[i+1]); bad != nil {
				return nil, bad
			}
		}
		return append(dst, '}'), nil
	case yaml.SequenceNode:
		dst = append(dst, '[')
		for i, e := range n.Content {
			if i > 0 {
				dst = append(dst, ',')
			}
			var bad *pipeline.NodeProblem
			if dst, bad = toJSON(dst, e); bad != nil {
				return nil, bad
			}
		}
		return append(dst, ']'), nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return append(dst, "null"...), nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, &pipeline.NodeProblem{Node: n, Msg: "event pattern: " + err.Error()}
			}
			return strconv.AppendBool(dst, b), nil
		case "!!int", "!!float":
			if json.Valid([]byte(n.Value)) {
				return append(dst, n.Value...), nil
			}
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &pipeline.NodeProblem{Node: n, Msg: fmt.Sprintf("event pattern: %s is not a number JSON can hold", n.Value)}
			}
			return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
		default:
			return (&pipeline.Value{Type: pipeline.TypeString, Str: n.Value}).AppendJSON(dst), nil
		}
	}
	return nil, &pipeline.NodeProblem{Node: n, Msg: "event pattern: unsupported YAML value"}
}

// Expression is a filter expression, compiled when the config loads.
type Expression struct {
	prog *expr.Program
	// given: the config has an expression (compiled or not).
	given bool
}

// DecodeNode compiles the expression, placing a problem at its line and
// column in the file when the expression is a plain or block scalar.
func (e *Expression) DecodeNode(n *yaml.Node) []pipeline.NodeProblem {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	e.given = true
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" && n.ShortTag() != "!!bool" {
		return []pipeline.NodeProblem{{Node: n, Msg: "expected an expression (a string)"}}
	}
	prog, err := expr.Compile(n.Value, true)
	if err != nil {
		return []pipeline.NodeProblem{ExprProblem(n, err)}
	}
	e.prog = prog
	return nil
}

// ExprProblem places an expression's compile error in the file.
func ExprProblem(n *yaml.Node, err error) pipeline.NodeProblem {
	ee, ok := err.(*expr.Error)
	if !ok {
		return pipeline.NodeProblem{Node: n, Msg: err.Error()}
	}
	msg := "expression: " + ee.Msg
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return pipeline.NodeProblem{Line: n.Line + ee.Line, Column: max(n.Column, 1), Msg: msg + fmt.Sprintf(" (column %d of that line of the expression)", ee.Column)}
	case ee.Line == 1 && !strings.Contains(n.Value, "\n") && n.Style&(yaml.DoubleQuotedStyle) == 0:
		col := n.Column + ee.Column - 1
		if n.Style&yaml.SingleQuotedStyle != 0 {
			col++
			if strings.Contains(n.Value, "'") {
				return pipeline.NodeProblem{Node: n, Msg: msg + fmt.Sprintf(" (column %d of the expression)", ee.Column)}
			}
		}
		return pipeline.NodeProblem{Line: n.Line, Column: col, Msg: msg}
	default:
		return pipeline.NodeProblem{Node: n, Msg: msg + fmt.Sprintf(" (line %d, column %d of the expression)", ee.Line, ee.Column)}
	}
}

// Program returns the compiled expression, nil when there is none.
func (e *Expression) Program() *expr.Program { return e.prog }

// RefType names the type in the config reference.
func (*Pattern) RefType() string { return "event pattern" }

// RefType names the type in the config reference.
func (*Expression) RefType() string { return "expression" }
