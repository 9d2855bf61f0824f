// Package lambda is the `lambda` enrichment: it invokes an AWS Lambda
// function synchronously with each batch (its envelope, or the records
// rendered by inputTemplate) and replaces the batch with the function's
// answer, as package stages/enrich describes.
//
// The function is named and reached as by the lambda target
// (targets/lambda.Function): a name, name:qualifier, partial ARN or ARN,
// the `aws:` block for region, credentials and endpoint. A function error
// (X-Amz-Function-Error), throttling (429), service errors (5xx) and an
// answer that breaks the contract fail the batch, which the runner retries;
// other 4xx answers, and a request above the 6 MB payload limit, are
// permanent failures.
package lambda

import (
	"context"
	"fmt"
	"time"

	"github.com/pipe-run/pipe/internal/awscfg"
	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/enrich"
	lambdatarget "github.com/pipe-run/pipe/targets/lambda"
)

func init() {
	pipeline.RegisterEnrichment("lambda", "Invokes an AWS Lambda function with each batch and replaces the batch with its answer.",
		func() *Config { return &Config{} })
}

// Config is the `enrichment: {lambda: ...}` block.
type Config struct {
	FunctionName  string        `yaml:"functionName" required:"true" doc:"The function: a name (orders-enrich), a name with a version or alias (orders-enrich:live), a partial ARN (123456789012:function:orders-enrich) or an ARN. The region of an ARN is the default region."`
	Qualifier     string        `yaml:"qualifier" doc:"A version or alias to invoke ($LATEST, 3, live), when functionName does not carry one."`
	InputTemplate string        `yaml:"inputTemplate" doc:"An EventBridge Pipes input template (<$.value.orderId>, <aws.pipes.event.json> ...) rendered per record: the function then receives a JSON array of the renderings (a JSON template's as it is, any other's as a JSON string) instead of the batch envelope."`
	Timeout       time.Duration `yaml:"timeout" default:"15m" min:"1s" max:"1h" doc:"Limit for one invocation, from sending the batch to reading the answer."`
	AWS           awscfg.Config `yaml:"aws" doc:"AWS access: region, profile, role to assume, endpoint."`

	fn   lambdatarget.FunctionName
	tmpl *pipeline.Template
}

// Validate checks the function name and parses the template.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	fn, p := lambdatarget.ParseFunctionName(c.FunctionName, c.Qualifier)
	if p != nil {
		ps = append(ps, *p)
	}
	c.fn = fn
	t, p := enrich.ParseInputTemplate(c.InputTemplate)
	if p != nil {
		ps = append(ps, *p)
	}
	c.tmpl = t
	return ps
}

// NewStage builds the stage. It reads the AWS settings and environment but
// touches no network.
func (c *Config) NewStage(env pipeline.Env) (pipeline.Stage, error) {
	f, err := lambdatarget.NewFunction(c.fn, c.AWS, c.Timeout)
	if err != nil {
		return nil, err
	}
	return enrich.NewStage(env, caller{f}, c.tmpl, "lambda "+c.fn.String()), nil
}

type caller struct{ fn *lambdatarget.Function }

// Call invokes the function and checks the size of the request and answer.
func (c caller) Call(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) > pipeline.MaxPayloadSize {
		return nil, pipeline.Permanent(fmt.Errorf("lambda %s: the request is %d bytes, above the %d-byte payload limit", c.fn.Name(), len(req), pipeline.MaxPayloadSize))
	}
	answer, err := c.fn.Invoke(ctx, req, false)
	if err != nil {
		return nil, err
	}
	if len(answer) > enrich.MaxResponseSize {
		return nil, fmt.Errorf("lambda %s: the answer is %d bytes, above the %d-byte limit", c.fn.Name(), len(answer), enrich.MaxResponseSize)
	}
	return answer, nil
}
