package eventbridge

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("eventbridge", "Puts each record as one event on an Amazon EventBridge event bus, with PutEvents in chunks of 10.",
		func() *Config { return &Config{} })
}

// Limits of PutEvents.
const (
	// MaxEntries is the most events one call takes.
	MaxEntries = 10
	// MaxRequestSize bounds the sum of the entry sizes of one call (and so
	// one entry): 256 KiB.
	MaxRequestSize = 256 << 10
	// timeSize is what a Time adds to an entry's size.
	timeSize = 14
)

// Config is the `target: {eventbridge: ...}` block.
type Config struct {
	Timeout       time.Duration `yaml:"timeout" default:"30s" min:"1ms" max:"15m" doc:"Limit for one PutEvents call, from sending it to reading the answer; a call that takes longer fails and is retried."`
	EventBusName  string        `yaml:"eventBusName" default:"default" pattern:"^([/.\\-_A-Za-z0-9]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[/.\\-_A-Za-z0-9]{1,256})$" patternDesc:"an event bus name or ARN (arn:aws:events:eu-west-1:123456789012:event-bus/orders)" doc:"The event bus, by name or ARN. With an ARN the region defaults to the one in it."`
	Source        string        `yaml:"source" doc:"Source of each event: static text, a template, or a whole $.path read from the record; 1 to 256 characters once resolved, not starting with aws. (reserved for AWS). Default: Pipe <pipe name>."`
	DetailType    string        `yaml:"detailType" doc:"DetailType of each event, like source; 1 to 128 characters once resolved. Default: Event from <eventSource> (Event from SelfManagedKafka)."`
	Resources     []string      `yaml:"resources" max:"10" doc:"Resources of each event: ARNs the event concerns, each static, a template or a whole $.path; one that resolves to nothing is left out."`
	Time          string        `yaml:"time" doc:"Time of each event: an RFC 3339 timestamp, or a whole $.path (or template) read from the record giving an RFC 3339 string or a number of epoch milliseconds ($.timestamp is the Kafka record's timestamp). A path that resolves to nothing leaves the time to EventBridge (the time of the call). Default: the time of the call."`
	InputTemplate string        `yaml:"inputTemplate" doc:"The event's Detail, rendered per record; it must be a JSON object. A JSON template must have an object at its root; the rendering of a text template is checked per record and a record whose Detail is not a JSON object fails permanently. Default: the record as JSON, as in the envelope's records lists (key and value in base64)."`
	AWS           awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	source, detailType, timeParam pipeline.Param
	resources                     []pipeline.Param
	staticTime                    *time.Time
	staticResources               []string
	tmpl                          *pipeline.Template
	checkDetail                   bool
	region                        string
}

var busARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:events:([a-z0-9-]+):`)

// Validate compiles the parameters and the template.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, pipeline.FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if m := busARNRE.FindStringSubmatch(c.EventBusName); m != nil {
		c.region = m[1]
	}
	var err error
	if c.source, err = pipeline.ParseParam(c.Source); err != nil {
		add("source", "%v", err)
	} else if c.Source != "" && c.source.Static() {
		if msg := checkSource(c.Source); msg != "" {
			add("source", "%s", msg)
		}
	}
	if c.detailType, err = pipeline.ParseParam(c.DetailType); err != nil {
		add("detailType", "%v", err)
	} else if c.DetailType != "" && c.detailType.Static() {
		if msg := checkDetailType(c.DetailType); msg != "" {
			add("detailType", "%s", msg)
		}
	}
	c.resources = nil
	static := true
	for i, r := range c.Resources {
		p, err := pipeline.ParseParam(r)
		if err != nil {
			add(fmt.Sprintf("resources[%d]", i), "%v", err)
			continue
		}
		if p.Static() && (r == "" || len(r) > 1600) {
			add(fmt.Sprintf("resources[%d]", i), "must be 1 to 1600 characters")
		}
		static = static && p.Static()
		c.resources = append(c.resources, p)
	}
	if static {
		c.staticResources = c.Resources
	}
	if c.timeParam, err = pipeline.ParseParam(c.Time); err != nil {
		add("time", "%v", err)
	} else if c.Time != "" && c.timeParam.Static() {
		ts, err := time.Parse(time.RFC3339Nano, c.Time)
		if err != nil {
			add("time", "must be an RFC 3339 timestamp like 2026-01-02T15:04:05Z, or a $.path")
		}
		c.staticTime = &ts
	}
	if c.InputTemplate != "" {
		t, err := pipeline.ParseTemplate(c.InputTemplate)
		switch {
		case err != nil:
			add("inputTemplate", "%v", err)
		case t.JSON() && !strings.HasPrefix(strings.TrimSpace(c.InputTemplate), "{"):
			add("inputTemplate", "must render a JSON object, the event's Detail; this JSON template has an array or a string at its root")
		}
		c.tmpl = t
		c.checkDetail = t != nil && !t.JSON()
	}
	return ps
}

// checkSource returns what is wrong with a resolved Source, or "".
func checkSource(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 256:
		return fmt.Sprintf("is %d characters long; at most 256 are allowed", len(s))
	case strings.HasPrefix(s, "aws."):
		return "must not start with aws. (reserved for events from AWS services)"
	}
	return ""
}

// checkDetailType returns what is wrong with a resolved DetailType, or "".
func checkDetailType(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 128:
		return fmt.Sprintf("is %d characters long; at most 128 are allowed", len(s))
	}
	return ""
}

// NewTarget builds the target. It reads the AWS settings (environment,
// shared files) but touches no network.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	return newTarget(c, env)
}
