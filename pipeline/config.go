package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	LogLevel        string        `yaml:"logLevel" default:"INFO" enum:"OFF,ERROR,WARN,INFO,DEBUG,TRACE" doc:"Level of the process log on stderr, and of each pipe's unless the pipe sets its own: OFF, ERROR, WARN, INFO, DEBUG or TRACE (below DEBUG: a line per batch). INFO logs nothing per record or per batch, only unexpected events and changes of state. A change applies on reload."`
	LogFormat       string        `yaml:"logFormat" default:"text" enum:"text,json" doc:"Format of the process log: text (logfmt-like) or json."`
	Admin           AdminConfig   `yaml:"admin" doc:"The admin HTTP server: /metrics (Prometheus), /healthz, /readyz and /pipes. Changes apply at the next start of the process."`
	Pipes           []PipeConfig  `yaml:"pipes" required:"true" min:"1" doc:"The pipes this process runs, each with its own consumer group."`

	// src is what Print needs from the file: references as written.
	src sourceText
}

// DefaultAdminAddress is where the admin server listens unless told
// otherwise: loopback only.
const DefaultAdminAddress = "127.0.0.1:9100"

// AdminConfig is the `admin:` block.
type AdminConfig struct {
	Enabled        bool   `yaml:"enabled" default:"true" doc:"Serve the admin endpoints."`
	Address        string `yaml:"address" default:"127.0.0.1:9100" doc:"host:port to listen on (port 0 picks a free one; the log says which). The default binds to loopback only: nothing on the network reaches it. If the default address is taken (another pipe process on the machine) an INFO line says so and the process runs without the server; any other address that cannot be bound stops the process at start."`
	UnreadyOnStall bool   `yaml:"unreadyOnStall" doc:"Make /readyz answer 503 while a partition of a pipe is stalled (see the pipe's stallTimeout), so that an orchestrator can act. Without it /readyz only asks that every pipe is running."`
}

// Validate checks the address.
func (a *AdminConfig) Validate() []FieldProblem {
	_, port, err := net.SplitHostPort(a.Address)
	if err != nil {
		return []FieldProblem{{Field: "address", Msg: fmt.Sprintf("%q is not host:port", a.Address)}}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return []FieldProblem{{Field: "address", Msg: fmt.Sprintf("%q: port must be 0 to 65535", a.Address)}}
	}
	return nil
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

	LogLevel             string        `yaml:"logLevel" enum:"OFF,ERROR,WARN,INFO,DEBUG,TRACE" doc:"This pipe's log level, as EventBridge Pipes has it: OFF, ERROR, INFO or TRACE (WARN and DEBUG too). TRACE adds a line per batch: what it held, how long it took, what was delivered and filtered. Default: the file's logLevel. A change applies on reload without restarting the pipe."`
	IncludeExecutionData bool          `yaml:"includeExecutionData" doc:"At TRACE, also log each batch's payload (the envelope handed to the target, cut at 64 KiB) and a summary of the target's request and response. Payloads are the records' data: turn it on only where the log may hold them. Secrets of the config never appear. A change applies on reload without restarting the pipe."`
	StallTimeout         time.Duration `yaml:"stallTimeout" default:"5m" min:"0s" max:"168h" doc:"A partition with lag whose committed offset has not moved for this long is stalled: a WARN line (and an INFO line when it moves again), pipe_partition_stalled, /pipes, and /readyz when admin.unreadyOnStall is set. A partition blocked on retries says so, with the failing offset and reason. 0 turns detection off. Committed offsets move once per commitInterval of the source: a stallTimeout not longer than twice that is raised to it (with a warning)."`

	// Line and Column are where the pipe starts in the file.
	Line, Column int `yaml:"-"`

	fingerprint string
}

// Fingerprint identifies the pipe's settings: a hash of its YAML subtree
// in a canonical form (keys sorted, anchors resolved, ${...} references
// expanded, so a rotated secret file counts as a change), leaving out
// logLevel and includeExecutionData, which apply without a restart. Two
// configs of a pipe with the same fingerprint run the same way; a reload
// restarts only the pipes whose fingerprint changed.
func (p *PipeConfig) Fingerprint() string { return p.fingerprint }

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

// EffectiveStallTimeout is the stall timeout in effect: StallTimeout, or
// twice the source's commit interval when that is longer (committed offsets
// move only that often).
func (p *PipeConfig) EffectiveStallTimeout() time.Duration {
	if ci, ok := p.Source.(interface{ CommitEvery() time.Duration }); ok && p.StallTimeout > 0 && p.StallTimeout < 2*ci.CommitEvery() {
		return 2 * ci.CommitEvery()
	}
	return p.StallTimeout
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
	cfg := &Config{File: file}
	d := &decoder{file: file, x: x, src: &cfg.src}
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
				cfg.Pipes[j].fingerprint = fingerprint(item, x)
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

// fingerprint hashes a pipe's YAML subtree in a canonical form; see
// PipeConfig.Fingerprint.
func fingerprint(n *yaml.Node, x expander) string {
	data, _ := json.Marshal(canonical(n, x, true))
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// inPlace are the pipe keys that a reload applies without a restart.
var inPlace = map[string]bool{"logLevel": true, "includeExecutionData": true}

func canonical(n *yaml.Node, x expander, top bool) any {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if top && inPlace[k] {
				continue
			}
			m[k] = canonical(n.Content[i+1], x, false)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = canonical(c, x, false)
		}
		return l
	case yaml.ScalarNode:
		v, _, err := x.expand(n.Value)
		if err != nil {
			v = n.Value
		}
		return n.ShortTag() + " " + v
	}
	return nil
}
