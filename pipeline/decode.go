package pipeline

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config file, with its place.
type Problem struct {
	File   string
	Line   int
	Column int
	// Pipe is the name of the pipe the problem is in, if any.
	Pipe string
	// Path is the key path inside the pipe (or the file), like
	// "source.kafka.batchSize".
	Path string
	Msg  string
}

func (p Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", p.File, p.Line, p.Column)
	if p.Pipe != "" {
		fmt.Fprintf(&b, "pipe %q: ", p.Pipe)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a config file, in file order.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// FieldProblem is returned by a config's Validate method: a problem with one
// of its fields, named by its YAML key ("" for the config as a whole), or with
// one entry of a list field, named with its index ("topics[2]"). Problems
// with a field whose value was already reported as wrong are dropped.
type FieldProblem struct {
	Field string
	Msg   string
}

// validator is implemented by config structs with rules that span fields or
// need more than the tags say. It runs after defaults are applied.
type validator interface {
	Validate() []FieldProblem
}

// Size is a byte count, written as an integer or with a unit: 512KB, 6MB, 1GB
// (binary multiples, so 6MB is 6,291,456 bytes as in Lambda's payload limit).
type Size int64

// Secret is a string that is never printed: not in logs, errors or
// `pipe validate` output.
type Secret string

// String hides the value.
func (Secret) String() string { return "<redacted>" }

// Reveal returns the secret value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
	timeType     = reflect.TypeFor[time.Time]()
	secretType   = reflect.TypeFor[Secret]()
)

type decoder struct {
	file     string
	x        expander
	problems Problems
	pipe     string
	// src, when set, keeps the text of values from references and the
	// nodes of NodeDecoders, for Print.
	src *sourceText
}

func (d *decoder) addf(n *yaml.Node, path, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Pipe: d.pipe, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// scalar returns the text of a scalar node with references expanded. ok is
// false when a problem was recorded.
func (d *decoder) scalar(n *yaml.Node, path string) (text string, expanded bool, ok bool) {
	s, exp, err := d.x.expand(n.Value)
	if err != nil {
		d.addf(n, path, "%v", err)
		return "", false, false
	}
	return s, exp, true
}

// show quotes a value for an error message, unless it came from a reference
// (it may be a secret).
func show(n *yaml.Node, expanded bool) string {
	if expanded {
		return "the value of " + n.Value
	}
	v := n.Value
	if len(v) > 64 {
		v = v[:61] + "..."
	}
	return strconv.Quote(v)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a string"
	}
	return "something else"
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// NodeDecoder is implemented by config types that decode their YAML value
// themselves, such as an event pattern written as YAML or as a JSON string.
// The value is taken as written: ${...} references are not expanded in it.
type NodeDecoder interface {
	DecodeNode(n *yaml.Node) []NodeProblem
}

// NodeProblem is a problem found by a NodeDecoder, placed at Line and Column
// when they are set, else at Node, else at the value decoded.
type NodeProblem struct {
	Node         *yaml.Node
	Line, Column int
	Msg          string
}

var nodeDecoderType = reflect.TypeFor[NodeDecoder]()

// decode decodes n into v (addressable), recording problems.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, f *fieldInfo, path string) {
	n = resolveAlias(n)
	t := v.Type()
	switch {
	case reflect.PointerTo(t).Implements(nodeDecoderType):
		d.src.rememberNode(v, n)
		for _, p := range v.Addr().Interface().(NodeDecoder).DecodeNode(n) {
			at := n
			if p.Node != nil {
				at = p.Node
			}
			if p.Line > 0 {
				at = &yaml.Node{Line: p.Line, Column: p.Column}
			}
			d.addf(at, path, "%s", p.Msg)
		}
	case t.Kind() == reflect.Interface && isRegistry(t):
		d.decodeComponent(n, v, path)
	case t.Kind() == reflect.Struct && t != timeType:
		if isNull(n) {
			n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
		}
		d.decodeStruct(n, v, path)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if isNull(n) {
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), f, path)
		v.Set(p)
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		d.decodeSlice(n, v, f, path)
	case t.Kind() == reflect.Map:
		d.decodeMap(n, v, f, path)
	default:
		d.decodeScalar(n, v, f, path)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, f *fieldInfo, path string) {
	items := n.Content
	if n.Kind == yaml.ScalarNode && !isNull(n) && v.Type().Elem().Kind() == reflect.String {
		items = []*yaml.Node{n} // a single string stands for a list of one
	} else if n.Kind != yaml.SequenceNode {
		d.addf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		saved := d.pipe
		if path == "pipes" {
			// Problems in a pipe name it; an unnamed pipe is named by its place.
			if d.pipe = pipeName(item); d.pipe != "" {
				ipath = ""
			}
		}
		d.decode(item, s.Index(i), f.elem(), ipath)
		d.pipe = saved
	}
	v.Set(s)
	if f != nil {
		d.checkLen(n, path, f, len(items))
	}
}

// pipeName peeks at the name of a pipe so problems inside it can say which.
func pipeName(n *yaml.Node) string {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, f *fieldInfo, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		panic("pipeline: config maps must have string keys")
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			d.addf(k, join(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		e := reflect.New(t.Elem()).Elem()
		d.decode(val, e, f.elem(), join(path, k.Value))
		d.src.moveToEntry(e, m, k.Value)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
	}
	v.Set(m)
	if f != nil {
		d.checkLen(n, path, f, m.Len())
	}
}

func (d *decoder) checkLen(n *yaml.Node, path string, f *fieldInfo, l int) {
	entries := func(n int) string {
		if n == 1 {
			return "1 entry"
		}
		return strconv.Itoa(n) + " entries"
	}
	if f.min != "" {
		if min, _ := strconv.Atoi(f.min); l < min {
			d.addf(n, path, "needs at least %s, got %d", entries(min), l)
		}
	}
	if f.max != "" {
		if max, _ := strconv.Atoi(f.max); l > max {
			d.addf(n, path, "takes at most %s, got %d", entries(max), l)
		}
	}
}

func (d *decoder) decodeComponent(n *yaml.Node, v reflect.Value, path string) {
	iface := v.Type()
	kinds := Kinds(iface)
	if isNull(n) {
		return
	}
	if len(kinds) == 1 && kinds[0].Name == "" {
		// A slot: the value is the config itself.
		cfg := reflect.ValueOf(kinds[0].NewConfig())
		d.decodeStruct(n, cfg.Elem(), path)
		v.Set(cfg)
		return
	}
	if len(kinds) == 0 {
		d.addf(n, path, "is not available in this build of pipe")
		return
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.addf(n, path, "expected a mapping with exactly one key naming the kind (one of: %s)", strings.Join(names, ", "))
		return
	}
	key, body := n.Content[0], resolveAlias(n.Content[1])
	k, ok := lookupKind(iface, key.Value)
	if !ok {
		msg := fmt.Sprintf("unknown kind %q (known: %s)", key.Value, strings.Join(names, ", "))
		if s := suggest(key.Value, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		d.addf(key, path, "%s", msg)
		return
	}
	cfg := reflect.ValueOf(k.NewConfig())
	if isNull(body) {
		body = &yaml.Node{Kind: yaml.MappingNode, Line: body.Line, Column: body.Column}
	}
	d.decodeStruct(body, cfg.Elem(), join(path, key.Value))
	v.Set(cfg)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	present := map[string]*yaml.Node{}
	failed := map[string]bool{} // fields with a problem already: Validate is not asked twice
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.addf(k, path, "merge keys (<<) are not supported; repeat the settings or use an anchor for the whole value")
			continue
		}
		f := fields.byKey[k.Value]
		if f == nil {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, fields.keys); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else if len(fields.keys) == 0 {
				msg += " (this takes no settings)"
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(fields.keys, ", "))
			}
			d.addf(k, join(path, k.Value), "%s", msg)
			continue
		}
		if _, dup := present[k.Value]; dup {
			d.addf(k, join(path, k.Value), "duplicate key")
			continue
		}
		present[k.Value] = val
		fv := v.Field(f.index)
		if isNull(resolveAlias(val)) && f.required {
			d.addf(val, join(path, k.Value), "is required and cannot be null")
			failed[k.Value] = true
			continue
		}
		before := len(d.problems)
		d.decode(val, fv, f, join(path, k.Value))
		failed[k.Value] = len(d.problems) > before
	}
	for _, f := range fields.list {
		if _, ok := present[f.key]; ok {
			continue
		}
		if f.required {
			d.addf(n, path, "missing required key %q", f.key)
			failed[f.key] = true
			continue
		}
		if ft := v.Field(f.index).Type(); ft.Kind() == reflect.Struct && ft != timeType && !reflect.PointerTo(ft).Implements(nodeDecoderType) {
			// A nested block left out gets its defaults.
			d.decodeStruct(&yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}, v.Field(f.index), join(path, f.key))
			continue
		}
		if f.def != "" {
			if err := setScalar(v.Field(f.index), f.def, true); err != nil {
				panic(fmt.Sprintf("pipeline: bad default %q for %s: %v", f.def, f.key, err))
			}
		}
	}
	if val, ok := v.Addr().Interface().(validator); ok {
		for _, p := range val.Validate() {
			key, index := splitIndex(p.Field)
			if failed[key] {
				continue
			}
			at := n
			if vn, ok := present[key]; ok {
				at = vn
				if l := resolveAlias(vn); index >= 0 && l.Kind == yaml.SequenceNode && index < len(l.Content) {
					at = l.Content[index]
				}
			}
			fp := path
			if p.Field != "" {
				fp = join(path, p.Field)
			}
			d.addf(at, fp, "%s", p.Msg)
		}
	}
}

// splitIndex splits a FieldProblem's field "topics[2]" into "topics" and 2;
// the index is -1 when there is none.
func splitIndex(field string) (string, int) {
	if key, rest, ok := strings.Cut(field, "["); ok && strings.HasSuffix(rest, "]") {
		if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil && i >= 0 {
			return key, i
		}
	}
	return field, -1
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, f *fieldInfo, path string) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "expected %s, got %s", typeName(v.Type()), kindName(n))
		return
	}
	t := v.Type()
	tag := n.ShortTag()
	text, expanded, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if !expanded {
		// The YAML type must fit the field; a reference's text is parsed as
		// the field's type instead.
		want := ""
		switch {
		case t == durationType || t == timeType:
		case t == sizeType:
			if tag != "!!int" && tag != "!!str" {
				want = "a size like 6MB"
			}
		case t.Kind() == reflect.String:
			if tag == "!!null" {
				want = "a string"
			}
		case t.Kind() == reflect.Bool:
			if tag != "!!bool" {
				want = "a boolean (true or false)"
			}
		case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
			if tag != "!!int" {
				want = "an integer"
			}
		case t.Kind() == reflect.Float64:
			if tag != "!!int" && tag != "!!float" {
				want = "a number"
			}
		}
		if want != "" {
			if tag == "!!null" {
				d.addf(n, path, "expected %s, got null", want)
			} else {
				d.addf(n, path, "expected %s, got %s %s", want, kindName(n), show(n, false))
			}
			return
		}
	}
	if err := setScalar(v, text, false); err != nil {
		d.addf(n, path, "%v, got %s", err, show(n, expanded))
		return
	}
	if expanded {
		d.src.remember(v, n.Value)
	}
	if f != nil {
		if msg := f.check(v); msg != "" {
			d.addf(n, path, "%s, got %s", msg, show(n, expanded))
		}
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration like 500ms"
	case t == sizeType:
		return "a size like 6MB"
	case t == timeType:
		return "a timestamp like 2026-01-02T15:04:05Z"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

// setScalar parses text as v's type.
func setScalar(v reflect.Value, text string, isDefault bool) error {
	t := v.Type()
	switch {
	case t == durationType:
		if text == "-1" {
			// "no limit", as AWS writes it (maximumRecordAge: -1).
			v.SetInt(-1)
			return nil
		}
		dur, err := time.ParseDuration(text)
		if err != nil {
			if _, nerr := strconv.ParseFloat(text, 64); nerr == nil {
				return errors.New("expected a duration with a unit, like 500ms, 30s or 5m")
			}
			return errors.New("expected a duration like 500ms, 30s or 5m")
		}
		v.SetInt(int64(dur))
	case t == sizeType:
		sz, err := ParseSize(text)
		if err != nil {
			return err
		}
		v.SetInt(int64(sz))
	case t == timeType:
		ts, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return errors.New("expected an RFC 3339 timestamp like 2026-01-02T15:04:05Z")
		}
		v.Set(reflect.ValueOf(ts))
	case t.Kind() == reflect.String:
		v.SetString(text)
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return errors.New("expected a boolean (true or false)")
		}
		v.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		i, err := strconv.ParseInt(text, 0, t.Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("integer out of range for %d bits", t.Bits())
			}
			return errors.New("expected an integer")
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return errors.New("expected a finite number")
		}
		v.SetFloat(x)
	case t.Kind() == reflect.Slice && isDefault:
		parts := strings.Split(text, ",")
		s := reflect.MakeSlice(t, len(parts), len(parts))
		for i, p := range parts {
			if err := setScalar(s.Index(i), p, true); err != nil {
				return err
			}
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot decode %s", t)
	}
	return nil
}

// ParseSize parses a byte size: an integer, or a number with B, KB, MB or GB
// (binary multiples).
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || !(n >= 0) || math.IsInf(n, 0) || n*float64(mult) > math.MaxInt64/2 {
		return 0, errors.New("expected a size like 512KB, 6MB or 1GB")
	}
	return Size(n * float64(mult)), nil
}

func (s Size) String() string {
	switch {
	case s >= 1<<30 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGB", s>>30)
	case s >= 1<<20 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMB", s>>20)
	case s >= 1<<10 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKB", s>>10)
	}
	return fmt.Sprintf("%dB", int64(s))
}

// fieldInfo is what the struct tags say about one config field.
type fieldInfo struct {
	index    int
	key      string
	typ      reflect.Type
	def      string
	doc      string
	required bool
	min, max string
	enum     []string
	pattern  *regexp.Regexp
	patDesc  string
}

// elem returns the constraints that apply to the elements of a list or map
// field: pattern and enum, not min/max (those count entries).
func (f *fieldInfo) elem() *fieldInfo {
	if f == nil || (f.pattern == nil && f.enum == nil) {
		return nil
	}
	return &fieldInfo{key: f.key, enum: f.enum, pattern: f.pattern, patDesc: f.patDesc}
}

func (f *fieldInfo) check(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == durationType || t == sizeType || t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		lo, hi, show := f.bounds(t)
		x := v.Int()
		if (f.min != "" && x < lo) || (f.max != "" && x > hi) {
			return show
		}
	case t.Kind() == reflect.String:
		s := v.String()
		if f.enum != nil {
			for _, e := range f.enum {
				if s == e {
					return ""
				}
			}
			return "must be one of " + strings.Join(f.enum, ", ")
		}
		if f.pattern != nil && !f.pattern.MatchString(s) {
			return "must be " + f.patDesc
		}
	}
	return ""
}

func (f *fieldInfo) bounds(t reflect.Type) (lo, hi int64, msg string) {
	parse := func(s string) int64 {
		tmp := reflect.New(t).Elem()
		if err := setScalar(tmp, s, true); err != nil {
			panic(fmt.Sprintf("pipeline: bad bound %q for %s", s, f.key))
		}
		return tmp.Int()
	}
	lo, hi = math.MinInt64, math.MaxInt64
	if f.min != "" {
		lo = parse(f.min)
	}
	if f.max != "" {
		hi = parse(f.max)
	}
	switch {
	case f.min != "" && f.max != "":
		msg = fmt.Sprintf("must be between %s and %s", f.min, f.max)
	case f.min != "":
		msg = fmt.Sprintf("must be at least %s", f.min)
	default:
		msg = fmt.Sprintf("must be at most %s", f.max)
	}
	return lo, hi, msg
}

type structInfo struct {
	list  []*fieldInfo
	byKey map[string]*fieldInfo
	keys  []string
}

// structFields reads the config tags of a struct:
//
//	yaml:"key"        the YAML key (fields without one are not config)
//	default:"..."     the value when the key is absent
//	required:"true"   the key must be present
//	min:"1" max:"10"  bounds for numbers, durations and sizes; entry counts for lists and maps
//	enum:"A,B"        allowed values of a string
//	pattern:"re"      a regular expression a string must match; patternDesc says it in words
//	doc:"..."         the description in the config reference
func structFields(t reflect.Type) *structInfo {
	si := &structInfo{byKey: map[string]*fieldInfo{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		f := &fieldInfo{
			index:    i,
			key:      key,
			typ:      sf.Type,
			def:      sf.Tag.Get("default"),
			doc:      sf.Tag.Get("doc"),
			required: sf.Tag.Get("required") == "true",
			min:      sf.Tag.Get("min"),
			max:      sf.Tag.Get("max"),
			patDesc:  sf.Tag.Get("patternDesc"),
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		if p := sf.Tag.Get("pattern"); p != "" {
			f.pattern = regexp.MustCompile(p)
			if f.patDesc == "" {
				f.patDesc = "matching " + p
			}
		}
		si.list = append(si.list, f)
		si.byKey[key] = f
		si.keys = append(si.keys, key)
	}
	sort.Strings(si.keys)
	return si
}

// suggest returns the candidate closest to s, if it is close enough to be a
// likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 || bestD <= len(s)/3 {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
