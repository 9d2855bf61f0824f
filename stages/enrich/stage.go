package enrich

import (
	"context"
	"fmt"
	"time"

	"github.com/pipe-run/pipe/pipeline"
)

// MaxResponseSize caps an enrichment's answer: 6 MB, as a Lambda response.
// A larger answer fails the batch.
const MaxResponseSize = pipeline.MaxPayloadSize

// Caller sends a request to the enrichment and returns its answer. Its
// error says, as a target's does, whether a retry can help (Permanent,
// RetryAfter). A Caller reads at most MaxResponseSize+1 bytes of an answer,
// so that a larger one is seen as such without being read whole.
type Caller interface {
	Call(ctx context.Context, request []byte) ([]byte, error)
}

// Stage is an enrichment: it sends each batch to a Caller and replaces the
// batch with the answer (Apply).
type Stage struct {
	caller Caller
	tmpl   *pipeline.Template
	tctx   pipeline.TemplateContext
	// what names the enrichment in errors: "lambda orders-enrich".
	what string
}

var _ pipeline.Stage = (*Stage)(nil)

// NewStage builds the stage of an enrichment kind. tmpl, the parsed
// inputTemplate, may be nil. what names the enrichment in errors.
func NewStage(env pipeline.Env, c Caller, tmpl *pipeline.Template, what string) *Stage {
	return &Stage{caller: c, tmpl: tmpl, tctx: pipeline.NewTemplateContext(env.Pipe), what: what}
}

// Process calls the enrichment with b and returns the batch its answer
// stands for; b is not changed.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	if len(b.Records) == 0 {
		return nil, nil
	}
	// A new buffer for each call: a transport may still read the request
	// after the call returned (an early answer).
	var req []byte
	if s.tmpl == nil {
		req = make([]byte, 0, pipeline.EnvelopeSize(b))
	}
	req = s.Request(req, b)
	answer, err := s.caller.Call(ctx, req)
	if err != nil {
		// The caller's errors name the function or endpoint.
		return nil, fmt.Errorf("enrichment: %w", err)
	}
	out, err := Apply(answer, b)
	if err != nil {
		return nil, fmt.Errorf("enrichment %s: %w", s.what, err)
	}
	return out, nil
}

// Request appends the request for b to dst: the batch envelope or, with an
// input template, a JSON array of the rendered records. A JSON template's
// rendering is an element as it is; any other template's is a JSON string.
func (s *Stage) Request(dst []byte, b *pipeline.Batch) []byte {
	if s.tmpl == nil {
		return pipeline.AppendEnvelope(dst, b)
	}
	tctx := s.tctx
	tctx.IngestionTime = time.Now()
	dst = append(dst, '[')
	var text []byte
	for i := range b.Records {
		if i > 0 {
			dst = append(dst, ',')
		}
		if s.tmpl.JSON() {
			dst = s.tmpl.Render(dst, &b.Records[i], &tctx)
			continue
		}
		text = s.tmpl.Render(text[:0], &b.Records[i], &tctx)
		str := pipeline.Value{Type: pipeline.TypeString, Str: string(text)}
		dst = str.AppendJSON(dst)
	}
	return append(dst, ']')
}

// ParseInputTemplate parses an inputTemplate setting for a Validate method;
// "" is no template.
func ParseInputTemplate(src string) (*pipeline.Template, *pipeline.FieldProblem) {
	if src == "" {
		return nil, nil
	}
	t, err := pipeline.ParseTemplate(src)
	if err != nil {
		return nil, &pipeline.FieldProblem{Field: "inputTemplate", Msg: err.Error()}
	}
	return t, nil
}
