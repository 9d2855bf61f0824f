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

	// Line and Column are where the pipe starts in the file.
	Line, Column int `yaml:"-"`
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
