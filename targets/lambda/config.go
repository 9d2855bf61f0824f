package lambda

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
)

func init() {
	pipeline.RegisterTarget("lambda", "Invokes an AWS Lambda function with each batch's envelope, as Lambda's Kafka event source mapping does; optional partial batch response (batchItemFailures).",
		func() *Config { return &Config{} })
}

// Invocation types.
const (
	RequestResponse = "REQUEST_RESPONSE"
	FireAndForget   = "FIRE_AND_FORGET"
)

// MaxAsyncPayloadSize is the cap on the payload of an asynchronous
// (FIRE_AND_FORGET) invocation: 1 MB.
const MaxAsyncPayloadSize = 1 << 20

// Config is the `target: {lambda: ...}` block.
type Config struct {
	FunctionName            string        `yaml:"functionName" required:"true" doc:"The function: a name (orders), a name with a version or alias (orders:live), a partial ARN (123456789012:function:orders) or an ARN (arn:aws:lambda:eu-west-1:123456789012:function:orders, optionally :live). The region of an ARN is the default region."`
	Qualifier               string        `yaml:"qualifier" doc:"A version or alias to invoke ($LATEST, 3, live), when functionName does not carry one."`
	InvocationType          string        `yaml:"invocationType" default:"REQUEST_RESPONSE" enum:"REQUEST_RESPONSE,FIRE_AND_FORGET" doc:"REQUEST_RESPONSE waits for the function: a function error fails the batch. FIRE_AND_FORGET queues the event (InvocationType Event) and counts the batch as delivered once Lambda accepted it; its payloads are capped at 1 MB."`
	ReportBatchItemFailures bool          `yaml:"reportBatchItemFailures" doc:"Honour the function's partial batch response, {\"batchItemFailures\": [{\"itemIdentifier\": {\"partition\": \"<topic>-<n>\", \"offset\": <n>}}]}: only the records named, and the later records of their partitions, are retried. REQUEST_RESPONSE only."`
	Timeout                 time.Duration `yaml:"timeout" default:"15m" min:"1s" max:"1h" doc:"Limit for one invocation, from sending the event to reading the answer. Lambda runs a function for at most 15 minutes."`
	AWS                     awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	fn FunctionName
}

// Validate checks the function name and the settings that go together.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	fn, err := ParseFunctionName(c.FunctionName, c.Qualifier)
	if err != nil {
		ps = append(ps, pipeline.FieldProblem{Field: err.Field, Msg: err.Msg})
	}
	c.fn = fn
	if c.ReportBatchItemFailures && c.InvocationType == FireAndForget {
		ps = append(ps, pipeline.FieldProblem{Field: "reportBatchItemFailures", Msg: "needs invocationType REQUEST_RESPONSE: an asynchronous invocation has no answer"})
	}
	return ps
}

// FunctionName is a parsed functionName (and qualifier) setting.
type FunctionName struct {
	// Name is the function name as written in the config, which is what
	// Invoke takes: a name, a partial ARN or an ARN, with its qualifier if
	// it carries one.
	Name string
	// Qualifier is the separate qualifier setting, if any.
	Qualifier string
	// Region is the region of an ARN, else "".
	Region string
}

// String names the function in errors: name and qualifier.
func (f FunctionName) String() string {
	if f.Qualifier != "" {
		return f.Name + ":" + f.Qualifier
	}
	return f.Name
}

var (
	nameRE      = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	qualifierRE = regexp.MustCompile(`^(\$LATEST|[a-zA-Z0-9_-]{1,128})$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$`)
	partitionRE = regexp.MustCompile(`^aws[a-zA-Z-]*$`)
)

// ParseFunctionName checks a functionName and qualifier setting. The error
// names the field at fault and never repeats the value.
func ParseFunctionName(name, qualifier string) (FunctionName, *pipeline.FieldProblem) {
	fn := FunctionName{Name: name, Qualifier: qualifier}
	bad := func(msg string) (FunctionName, *pipeline.FieldProblem) {
		return fn, &pipeline.FieldProblem{Field: "functionName", Msg: msg}
	}
	if len(name) > 170 {
		return bad("is longer than 170 characters")
	}
	parts := strings.Split(name, ":")
	if slices.Contains(parts, "") {
		return bad("has an empty part (a colon at the start or end, or two in a row)")
	}
	var fnName, q string
	switch {
	case parts[0] == "arn":
		// arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
		if len(parts) < 7 || len(parts) > 8 || !partitionRE.MatchString(parts[1]) || parts[2] != "lambda" ||
			!regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) || parts[5] != "function" {
			return bad("is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>[:<version or alias>])")
		}
		fn.Region = parts[3]
		fnName = parts[6]
		if len(parts) == 8 {
			q = parts[7]
		}
	case len(parts) >= 3 && parts[1] == "function":
		// <account>:function:<name>[:<qualifier>]
		if len(parts) > 4 || !accountRE.MatchString(parts[0]) {
			return bad("is not a partial Lambda ARN (<account>:function:<name>[:<version or alias>])")
		}
		fnName = parts[2]
		if len(parts) == 4 {
			q = parts[3]
		}
	default:
		if len(parts) > 2 {
			return bad("is not a function name, name:qualifier, partial ARN or ARN")
		}
		fnName = parts[0]
		if len(parts) == 2 {
			q = parts[1]
		}
	}
	if !nameRE.MatchString(fnName) {
		return bad("the function name must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	if q != "" && !qualifierRE.MatchString(q) {
		return bad("the version or alias must be $LATEST or 1 to 128 characters of A-Z a-z 0-9 _ -")
	}
	if qualifier != "" {
		if q != "" {
			return fn, &pipeline.FieldProblem{Field: "qualifier", Msg: "functionName already names a version or alias; give it once"}
		}
		if !qualifierRE.MatchString(qualifier) {
			return fn, &pipeline.FieldProblem{Field: "qualifier", Msg: "must be $LATEST or 1 to 128 characters of A-Z a-z 0-9 _ -"}
		}
	}
	return fn, nil
}

// NewTarget builds the target. It reads the AWS settings and environment
// but touches no network.
func (c *Config) NewTarget(env pipeline.Env) (pipeline.Target, error) {
	f, err := NewFunction(c.fn, c.AWS, c.Timeout)
	if err != nil {
		return nil, err
	}
	limit := pipeline.MaxPayloadSize
	if c.InvocationType == FireAndForget {
		limit = MaxAsyncPayloadSize
	}
	return &target{
		fn:          f,
		async:       c.InvocationType == FireAndForget,
		itemFailure: c.ReportBatchItemFailures,
		limit:       limit,
		logger:      env.Logger,
	}, nil
}
