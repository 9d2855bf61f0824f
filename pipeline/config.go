package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
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
	Name        string       `yaml:"name" required:"true" pattern:"^[A-Za-z0-9._-]{1,64}$" patternDesc:"1 to 64 characters of A-Z a-z 0-9 . _ -" doc:"Unique name of the pipe; it names the pipe in logs and errors and is the default consumer group id."`
	Description string       `yaml:"description" doc:"Free text, for people."`
	Source      SourceConfig `yaml:"source" required:"true" doc:"Where records come from; exactly one kind."`
	Target      TargetConfig `yaml:"target" required:"true" doc:"Where batches go; exactly one kind."`

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
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return nil, Problems{{File: file, Line: 1, Column: 1, Msg: "the file is empty; it needs a pipes: list"}}
		}
		return nil, Problems{yamlProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{File: file, Line: extra.Line, Column: extra.Column, Msg: "a config file holds one YAML document; found a second"}}
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
			if root.Content[i].Value != "pipes" || root.Content[i+1].Kind != yaml.SequenceNode {
				continue
			}
			seen := map[string]bool{}
			for j, item := range root.Content[i+1].Content {
				if j >= len(cfg.Pipes) {
					break
				}
				cfg.Pipes[j].Line, cfg.Pipes[j].Column = item.Line, item.Column
				name := cfg.Pipes[j].Name
				if name != "" && seen[name] {
					d.pipe = name
					d.addf(item, "name", "another pipe has the same name")
				}
				seen[name] = true
			}
		}
	}
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return cfg, nil
}

var errEOF = errors.New("EOF")

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlProblem turns a YAML syntax error into a Problem with its place. The
// YAML parser names the line only; the column is then 1.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Column: 1, Msg: "YAML syntax: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return Problem{File: file, Line: 1, Column: 1, Msg: "YAML: " + te.Error()}
	}
	return Problem{File: file, Line: 1, Column: 1, Msg: "YAML syntax: " + msg}
}
