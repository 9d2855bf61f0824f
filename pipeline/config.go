package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a whole pipes.yaml file.
type Config struct {
	// File is the path the config was read from.
	File string `yaml:"-"`

	ShutdownTimeout time.Duration `yaml:"shutdownTimeout" default:"30s" min:"0s" max:"1h" doc:"How long in-flight batches may take to finish on SIGINT/SIGTERM (and on a partition revocation) before they are cancelled. Offsets of finished batches are committed either way; unfinished ones are delivered again later."`
	LogLevel        string        `yaml:"logLevel" default:"INFO" enum:"ERROR,WARN,INFO,DEBUG" doc:"Level of the process log on stderr."`
	LogFormat       string        `yaml:"logFormat" default:"text" enum:"text,json" doc:"Format of the process log: text (logfmt-like) or json."`
	Pipes           []PipeConfig  `yaml:"pipes" required:"true" min:"1" doc:"The pipes this process runs, each with its own consumer group."`
}

// PipeConfig is one pipe: a source, its stages and a target.
type PipeConfig struct {
	Name        string           `yaml:"name" required:"true" pattern:"^[A-Za-z0-9._-]{1,64}$" patternDesc:"1 to 64 characters of A-Z a-z 0-9 . _ -" doc:"Unique name of the pipe; it names the pipe in logs and errors and is the default consumer group id."`
	Description string           `yaml:"description" doc:"Free text, for people."`
	Source      SourceConfig     `yaml:"source" required:"true" doc:"Where records come from; exactly one kind."`
	Filter      FilterConfig     `yaml:"filter" doc:"Which records go on; the others count as done and their offsets are committed. Without it every record goes on."`
	Transform   TransformConfig  `yaml:"transform" doc:"Reshapes each record's value after the filter, before enrichment."`
	Enrichment  EnrichmentConfig `yaml:"enrichment" doc:"A synchronous call that replaces the batch with its answer, after the filter and transform; at most one kind."`
	Target      TargetConfig     `yaml:"target" required:"true" doc:"Where batches go; exactly one kind."`

	MaximumRetryAttempts int               `yaml:"maximumRetryAttempts" default:"-1" min:"-1" max:"10000" doc:"Retries of a failing batch before its records go to onFailure; -1 retries until they succeed (or pass maximumRecordAge), blocking their partition. With onFailure set, -1 means 10. A finite value needs onFailure, since records are never dropped silently."`
	MaximumRecordAge     time.Duration     `yaml:"maximumRecordAge" default:"-1" doc:"Records older than this (by their Kafka timestamp) when a batch is tried go to onFailure with condition RecordAgeExceeded instead; -1 for no limit, else 60s to 168h. Needs onFailure."`
	BisectBatchOnError   bool              `yaml:"bisectBatchOnError" doc:"On a failure, split the batch in halves and try each on its own (the split does not count as a retry), so a poison record ends alone in onFailure while the others are delivered."`
	RetryBackoff         RetryBackoff      `yaml:"retryBackoff" doc:"Delays between retries: exponential from initial, doubling, capped at maximum, with jitter (each wait is between half and all of it). A Retry-After answer asks for longer."`
	OnFailure            DestinationConfig `yaml:"onFailure" doc:"Where records go once retries are exhausted, the target rejected them for good, or they are too old: the on-failure record of Lambda (requestContext, responseContext, KafkaBatchInfo) with the error and, where the destination takes it, the records. Only then are their offsets committed. A destination that fails is retried, the partition waiting."`

	// Line and Column are where the pipe starts in the file.
	Line, Column int `yaml:"-"`
}

// RetryBackoff is the delay policy between retries.
type RetryBackoff struct {
	Initial time.Duration `yaml:"initial" default:"200ms" min:"1ms" max:"1h" doc:"Wait before the first retry."`
	Maximum time.Duration `yaml:"maximum" default:"30s" min:"1ms" max:"24h" doc:"Longest wait between retries."`
}

// Validate checks the retry policy against the destination.
func (p *PipeConfig) Validate() []FieldProblem {
	var ps []FieldProblem
	if p.MaximumRecordAge != -1 && (p.MaximumRecordAge < time.Minute || p.MaximumRecordAge > 7*24*time.Hour) {
		ps = append(ps, FieldProblem{Field: "maximumRecordAge", Msg: fmt.Sprintf("must be -1 or between 60s and 168h, got %s", p.MaximumRecordAge)})
	}
	if p.OnFailure == nil {
		if p.MaximumRetryAttempts >= 0 {
			ps = append(ps, FieldProblem{Field: "maximumRetryAttempts", Msg: "needs onFailure: records that exhaust their retries must go somewhere (pipe never drops them); add onFailure, for example {file: {path: failed.jsonl}}"})
		}
		if p.MaximumRecordAge > 0 {
			ps = append(ps, FieldProblem{Field: "maximumRecordAge", Msg: "needs onFailure: expired records must go somewhere (pipe never drops them)"})
		}
	}
	if p.RetryBackoff.Maximum < p.RetryBackoff.Initial {
		ps = append(ps, FieldProblem{Field: "retryBackoff", Msg: "maximum is shorter than initial"})
	}
	if st, ok := p.Source.(interface{ SourceTopics() []string }); ok {
		if dt, ok := p.OnFailure.(interface{ DestinationTopic() string }); ok && dt.DestinationTopic() != "" {
			for _, t := range st.SourceTopics() {
				if t == dt.DestinationTopic() {
					ps = append(ps, FieldProblem{Field: "onFailure", Msg: fmt.Sprintf("the destination topic %q is a source topic of this pipe; failed records would come back forever", t)})
				}
			}
		}
	}
	return ps
}

// RetryLimit is the number of retries in effect: maximumRetryAttempts,
// with -1 meaning 10 when an on-failure destination is set.
func (p *PipeConfig) RetryLimit() int {
	if p.MaximumRetryAttempts == -1 && p.OnFailure != nil {
		return 10
	}
	return p.MaximumRetryAttempts
}

// LoadFile reads and decodes a config file. On problems it returns a
// Problems error listing every one with its place.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a config file's contents; file names it in problems.
func Parse(file string, data []byte) (*Config, error) {
	return parse(file, data, defaultExpander)
}

func parse(file string, data []byte, x expander) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Line: 1, Column: 1, Msg: "the file is empty; it needs a pipes: list"}}
		}
		return nil, Problems{yamlProblem(file, data, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Problems{{File: file, Line: extra.Line, Column: extra.Column, Msg: "a config file holds one YAML document; found a second"}}
	case !errors.Is(err, io.EOF):
		// A broken document after the first one is still a broken file.
		return nil, Problems{yamlProblem(file, data, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	d := &decoder{file: file, x: x}
	cfg := &Config{File: file}
	d.decode(root, reflect.ValueOf(cfg).Elem(), nil, "")
	// Pipe positions and unique names.
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			list := resolveAlias(root.Content[i+1])
			if root.Content[i].Value != "pipes" || list.Kind != yaml.SequenceNode {
				continue
			}
			seen := map[string]bool{}
			for j, item := range list.Content {
				if j >= len(cfg.Pipes) {
					break
				}
				cfg.Pipes[j].Line, cfg.Pipes[j].Column = item.Line, item.Column
				name := cfg.Pipes[j].Name
				if name != "" && seen[name] {
					d.pipe = pipeName(item)
					d.addf(valueOf(item, "name"), "name", "another pipe has the same name")
				}
				seen[name] = true
			}
		}
	}
	if len(d.problems) > 0 {
		// Problems are found field by field and checks spanning fields run
		// after them; report them in file order.
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, d.problems
	}
	return cfg, nil
}

// valueOf returns the value of key in mapping n, or n itself when there is
// none (or n is an alias), as the place to report a problem with it.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return n
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems start the messages of the YAML parser's errors (as
// opposed to its scanner's), whose line yaml.v3 reports counting from 0.
var yamlParserProblems = []string{"did not find expected ", "found duplicate ", "found incompatible ", "found undefined tag handle"}

// yamlProblem turns a YAML syntax error into a Problem with its place. The
// YAML parser names the line only; the column is then 1.
func yamlProblem(file string, data []byte, err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		for _, p := range yamlParserProblems {
			if strings.HasPrefix(m[2], p) {
				line++
				break
			}
		}
		// An error at the end of the input names the line after the last.
		last := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			last++
		}
		line = max(1, min(line, last))
		return Problem{File: file, Line: line, Column: 1, Msg: "YAML syntax: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return Problem{File: file, Line: 1, Column: 1, Msg: "YAML: " + te.Error()}
	}
	return Problem{File: file, Line: 1, Column: 1, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}
