package pipeline

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Template is a compiled EventBridge Pipes input template. It is rendered
// once per record, against the record's View (so <$.value.orderId> reads a
// field of a JSON value) and a TemplateContext.
//
// A template takes one of these forms, decided when it is parsed:
//
//   - Static text, with no placeholder: rendered as it is.
//   - A JSON template: with every placeholder replaced by a neutral value,
//     the text is a JSON object, array or string. Rendering keeps it valid
//     JSON whatever the record holds. A placeholder where a JSON value goes
//     ({"id": <$.value.id>}) renders the value's JSON: strings quoted and
//     escaped, objects and arrays as they are, a missing path as null. A
//     placeholder inside a JSON string ("order <$.value.id>") renders a
//     string's text escaped for JSON and any other value's JSON text escaped
//     the same way; a missing path renders as nothing.
//   - Any other text ("Hello, <$.value.name>", or a bare <$.value>): a text
//     template. A placeholder renders a string's text as it is (no quotes, no
//     escaping), any other value as its JSON text, and a missing path as
//     nothing. So a bare <$.value> renders a JSON value's JSON and a
//     non-JSON value's text, and "<$.value>" around a string gives exactly
//     that string. A text that looks like JSON but is not valid JSON (a
//     trailing comma, say) is a text template too: see JSON.
//
// A path with * renders the values it selects as a JSON array, [] when it
// selects none, in every form.
//
// Placeholders are <$...> (a Path) and the reserved variables:
//
//	<aws.pipes.pipe-name>             TemplateContext.PipeName
//	<aws.pipes.pipe-arn>              TemplateContext.PipeARN
//	<aws.pipes.source-arn>            TemplateContext.SourceARN
//	<aws.pipes.enrichment-arn>        TemplateContext.EnrichmentARN
//	<aws.pipes.target-arn>            TemplateContext.TargetARN
//	<aws.pipes.event.ingestion-time>  TemplateContext.IngestionTime, ISO 8601
//	                                  UTC with milliseconds: 2018-12-17T22:10:50.987Z
//	<aws.pipes.event>                 the record as in the envelope (AppendRecord):
//	                                  key and value in base64, headers as byte arrays
//	<aws.pipes.event.json>            the record's View as JSON: key and value
//	                                  decoded, headers as {name: text}
//
// The first five are strings; the last two are JSON objects and render as
// paths to objects do. Any other < is plain text, except that <aws. must
// begin a known reserved variable. A Template is read-only after
// ParseTemplate and safe for concurrent use.
type Template struct {
	src   string
	json  bool
	view  bool // rendering reads the record's view
	parts []tmplPart
}

type partKind uint8

const (
	partText partKind = iota
	partPath
	partPipeName
	partPipeARN
	partSourceARN
	partEnrichmentARN
	partTargetARN
	partIngestionTime
	partEvent
	partEventJSON
)

// reserved maps each reserved variable to its part.
var reserved = map[string]partKind{
	"aws.pipes.pipe-name":            partPipeName,
	"aws.pipes.pipe-arn":             partPipeARN,
	"aws.pipes.source-arn":           partSourceARN,
	"aws.pipes.enrichment-arn":       partEnrichmentARN,
	"aws.pipes.target-arn":           partTargetARN,
	"aws.pipes.event.ingestion-time": partIngestionTime,
	"aws.pipes.event":                partEvent,
	"aws.pipes.event.json":           partEventJSON,
}

// place is where a placeholder sits, which decides how it renders.
type place uint8

const (
	placeText     place = iota // text template: strings raw, values as JSON text
	placeValue                 // a value in a JSON template
	placeInString              // inside a string of a JSON template
)

type tmplPart struct {
	kind  partKind
	place place
	text  string // partText
	path  Path   // partPath
}

// TemplateContext is what the reserved variables read. ARNs here are not
// AWS ARNs: NewTemplateContext names them after the pipe. Set IngestionTime
// to the time the records were read from Kafka; a zero IngestionTime
// renders the time of rendering. Use one context per batch (a copy), not
// one shared and changed under concurrent renders.
type TemplateContext struct {
	PipeName string
	// PipeARN is "pipe:<name>" by convention.
	PipeARN string
	// SourceARN is "pipe:<name>:source" by convention.
	SourceARN string
	// EnrichmentARN is "pipe:<name>:enrichment" by convention.
	EnrichmentARN string
	// TargetARN is "pipe:<name>:target" by convention.
	TargetARN     string
	IngestionTime time.Time
}

// NewTemplateContext returns the context of the pipe named name, with the
// conventional ARNs and no ingestion time.
func NewTemplateContext(name string) TemplateContext {
	arn := "pipe:" + name
	return TemplateContext{
		PipeName:      name,
		PipeARN:       arn,
		SourceARN:     arn + ":source",
		EnrichmentARN: arn + ":enrichment",
		TargetARN:     arn + ":target",
	}
}

// jsonToken stands for a placeholder when a template is checked for being
// JSON: a complete value that cannot merge with neighbouring literals and,
// after a backslash inside a string, is an invalid escape.
const jsonToken = "[]"

// ParseTemplate compiles an input template. Errors are *SyntaxError with
// the offset in src: a bad path, an unknown reserved variable, a < without
// its >.
func ParseTemplate(src string) (*Template, error) {
	t := &Template{src: src}
	lit := 0
	i := 0
	for {
		j := strings.IndexByte(src[i:], '<')
		if j < 0 {
			break
		}
		i += j
		open := i
		var part tmplPart
		switch {
		case strings.HasPrefix(src[i+1:], "$"):
			p, end, err := parsePath(src, i+1)
			if err != nil {
				return nil, err
			}
			if end == len(src) {
				return nil, syntaxErrorf(open, "unterminated placeholder: < without >")
			}
			if src[end] != '>' {
				return nil, syntaxErrorf(end, "unexpected %s in the path of a placeholder", quoteChar(src, end))
			}
			part = tmplPart{kind: partPath, path: p}
			t.view = true
			i = end + 1
		case strings.HasPrefix(src[i+1:], "aws."):
			end := i + 1
			for end < len(src) && varChar(src[end]) {
				end++
			}
			if end == len(src) {
				return nil, syntaxErrorf(open, "unterminated placeholder: < without >")
			}
			name := src[i+1 : end]
			if src[end] != '>' {
				return nil, syntaxErrorf(end, "unexpected %s in reserved variable %q", quoteChar(src, end), name)
			}
			kind, ok := reserved[name]
			if !ok {
				return nil, syntaxErrorf(open+1, "unknown reserved variable <%s> (known: aws.pipes.pipe-name, pipe-arn, source-arn, enrichment-arn, target-arn, event, event.json, event.ingestion-time)", name)
			}
			part = tmplPart{kind: kind}
			if kind == partEventJSON {
				t.view = true
			}
			i = end + 1
		default:
			i++
			continue
		}
		if open > lit {
			t.parts = append(t.parts, tmplPart{kind: partText, text: src[lit:open]})
		}
		t.parts = append(t.parts, part)
		lit = i
	}
	if lit < len(src) {
		t.parts = append(t.parts, tmplPart{kind: partText, text: src[lit:]})
	}
	t.classify()
	return t, nil
}

func varChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

// classify decides whether t is a JSON template and, if so, where each
// placeholder sits.
func (t *Template) classify() {
	placeholders, text := 0, false
	for _, p := range t.parts {
		if p.kind != partText {
			placeholders++
		} else if strings.TrimSpace(p.text) != "" {
			text = true
		}
	}
	if placeholders == 1 && !text {
		return // a bare placeholder: a text template
	}
	var sub []byte
	for _, p := range t.parts {
		if p.kind == partText {
			sub = append(sub, p.text...)
		} else {
			sub = append(sub, jsonToken...)
		}
	}
	v, err := ParseJSON(sub)
	if err != nil || v.Type != TypeObject && v.Type != TypeArray && v.Type != TypeString {
		return
	}
	t.json = true
	// The text is valid JSON, so quotes and backslashes outside placeholders
	// say which placeholders are inside strings.
	inString, escaped := false, false
	for k := range t.parts {
		p := &t.parts[k]
		if p.kind != partText {
			p.place = placeValue
			if inString {
				p.place = placeInString
			}
			continue
		}
		for i := 0; i < len(p.text); i++ {
			switch c := p.text[i]; {
			case escaped:
				escaped = false
			case c == '\\' && inString:
				escaped = true
			case c == '"':
				inString = !inString
			}
		}
	}
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// JSON reports whether t is a JSON template, whose output is always valid
// JSON. A template meant as JSON that is not (a trailing comma, an
// unquoted key) is a text template and is worth a warning.
func (t *Template) JSON() bool { return t.json }

// ingestionLayout is ISO 8601 in UTC with milliseconds.
const ingestionLayout = "2006-01-02T15:04:05.000Z"

// Render appends the template rendered for r to dst and returns the
// extended slice. ctx may be nil (empty names, ingestion time now). r must
// not be nil when the template reads the record.
func (t *Template) Render(dst []byte, r *Record, ctx *TemplateContext) []byte {
	var root *Value
	if t.view {
		root = r.View()
	}
	c := ctx
	if c == nil {
		c = &TemplateContext{}
	}
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partText:
			dst = append(dst, p.text...)
		case partPath:
			dst = appendPath(dst, &p.path, root, p.place)
		case partPipeName:
			dst = appendText(dst, c.PipeName, p.place)
		case partPipeARN:
			dst = appendText(dst, c.PipeARN, p.place)
		case partSourceARN:
			dst = appendText(dst, c.SourceARN, p.place)
		case partEnrichmentARN:
			dst = appendText(dst, c.EnrichmentARN, p.place)
		case partTargetARN:
			dst = appendText(dst, c.TargetARN, p.place)
		case partIngestionTime:
			ts := c.IngestionTime
			if ts.IsZero() {
				ts = time.Now()
			}
			// The time has no character that needs escaping.
			if p.place == placeValue {
				dst = append(dst, '"')
			}
			dst = ts.UTC().AppendFormat(dst, ingestionLayout)
			if p.place == placeValue {
				dst = append(dst, '"')
			}
		case partEvent:
			start := len(dst)
			dst = AppendRecord(dst, r)
			dst = escapeIn(dst, start, p.place)
		case partEventJSON:
			start := len(dst)
			dst = root.AppendJSON(dst)
			dst = escapeIn(dst, start, p.place)
		}
	}
	return dst
}

// appendPath renders what path selects in root at place.
func appendPath(dst []byte, path *Path, root *Value, at place) []byte {
	start := len(dst)
	if path.wild {
		dst = appendMatches(dst, root, path.steps)
		return escapeIn(dst, start, at)
	}
	v := path.one(root)
	switch {
	case v == nil:
		if at == placeValue {
			dst = append(dst, "null"...)
		}
		return dst
	case v.Type == TypeString && at != placeValue:
		return appendText(dst, v.Str, at)
	}
	dst = v.AppendJSON(dst)
	return escapeIn(dst, start, at)
}

// appendText renders the string s at place.
func appendText(dst []byte, s string, at place) []byte {
	switch at {
	case placeValue:
		return appendString(dst, s)
	case placeInString:
		return appendStringBody(dst, s)
	}
	return append(dst, s...)
}

// appendStringBody appends s escaped for the inside of a JSON string, with
// no quotes: appendString over the byte before the opening quote it writes.
func appendStringBody(dst []byte, s string) []byte {
	n := len(dst)
	if n == 0 {
		dst = appendString(dst, s)
		return dst[1 : len(dst)-1]
	}
	before := dst[n-1]
	dst = appendString(dst[:n-1], s)
	dst[n-1] = before
	return dst[:len(dst)-1]
}

// escapeIn escapes dst[start:], JSON text just appended, for the inside of
// a JSON string when at is placeInString.
func escapeIn(dst []byte, start int, at place) []byte {
	if at != placeInString {
		return dst
	}
	end := len(dst)
	clean := true
	for _, c := range dst[start:end] {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return dst
	}
	// Escape into the space after the text, then move it down. When append
	// reallocates, dst[start:end] still reads the old array.
	dst = appendEscaped(dst, dst[start:end])
	n := copy(dst[start:], dst[end:])
	return dst[:start+n]
}

// appendEscaped appends b escaped for the inside of a JSON string by the
// rules of appendString.
func appendEscaped(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, b[start:]...)
}

// Param is a target or enrichment setting that may depend on the record
// (an SQS MessageGroupId, an HTTP header value): a dynamic parameter. A
// value that is wholly a path ($.value.customerId, starting with "$." or
// "$[") is read from the record; a value with placeholders is a Template;
// anything else is a static string. The zero Param is the static "".
type Param struct {
	src  string
	path *Path
	tmpl *Template
}

// ParseParam compiles a dynamic parameter. Errors are *SyntaxError.
func ParseParam(s string) (Param, error) {
	if strings.HasPrefix(s, "$.") || strings.HasPrefix(s, "$[") {
		p, err := ParsePath(s)
		if err != nil {
			return Param{}, err
		}
		t := &Template{src: s, view: true, parts: []tmplPart{{kind: partPath, path: p}}}
		return Param{src: s, path: &t.parts[0].path, tmpl: t}, nil
	}
	t, err := ParseTemplate(s)
	if err != nil {
		return Param{}, err
	}
	for _, p := range t.parts {
		if p.kind != partText {
			return Param{src: s, tmpl: t}, nil
		}
	}
	return Param{src: s}, nil
}

// Static reports whether p is the same for every record.
func (p Param) Static() bool { return p.tmpl == nil }

// String returns the parameter as written.
func (p Param) String() string { return p.src }

// Resolve returns the parameter's value for r: for a path, a string's text,
// another value's JSON text, or "" when the path is missing; for a
// template, its rendering with no TemplateContext (use Append to give one).
func (p Param) Resolve(r *Record) string {
	switch {
	case p.path != nil && !p.path.wild:
		v := p.path.one(r.View())
		if v == nil {
			return ""
		}
		if v.Type == TypeString {
			return v.Str
		}
		return string(v.AppendJSON(nil))
	case p.tmpl != nil:
		return string(p.tmpl.Render(nil, r, nil))
	}
	return p.src
}

// Append appends the parameter's value for r to dst, as Resolve says, with
// ctx for the reserved variables.
func (p Param) Append(dst []byte, r *Record, ctx *TemplateContext) []byte {
	if p.tmpl == nil {
		return append(dst, p.src...)
	}
	return p.tmpl.Render(dst, r, ctx)
}
