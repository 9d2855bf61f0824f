package pipeline

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"gopkg.in/yaml.v3"
)

// sourceText remembers what the decoder cannot rebuild from decoded values:
// the text, as written in the file, of the values that came from ${...}
// references (so that printing the config shows the reference, not what
// it expanded to), and the nodes of values that decoded themselves (event
// patterns, expressions). Values are keyed by their address; map entries,
// which are copied into their map, by map and key.
type sourceText struct {
	vals    map[any]string // pointer to the value -> its text as written
	entries map[mapEntry]string
	nodes   map[any]*yaml.Node // pointer to a NodeDecoder -> its node
}

type mapEntry struct {
	m   unsafe.Pointer
	key string
}

// remember records the text n was decoded from into v (addressable).
func (s *sourceText) remember(v reflect.Value, text string) {
	if s == nil {
		return
	}
	if s.vals == nil {
		s.vals = map[any]string{}
	}
	s.vals[v.Addr().Interface()] = text
}

// moveToEntry moves what was recorded for e, a value decoded on its own,
// to entry key of map m, where it was copied.
func (s *sourceText) moveToEntry(e, m reflect.Value, key string) {
	if s == nil || len(s.vals) == 0 {
		return
	}
	p := e.Addr().Interface()
	text, ok := s.vals[p]
	if !ok {
		return
	}
	delete(s.vals, p)
	if s.entries == nil {
		s.entries = map[mapEntry]string{}
	}
	s.entries[mapEntry{m.UnsafePointer(), key}] = text
}

// rememberNode records the node a NodeDecoder value v decoded itself from.
func (s *sourceText) rememberNode(v reflect.Value, n *yaml.Node) {
	if s == nil {
		return
	}
	if s.nodes == nil {
		s.nodes = map[any]*yaml.Node{}
	}
	s.nodes[v.Addr().Interface()] = n
}

// Print returns the config as YAML, as it will run: every setting with its
// default applied, in the order of the config reference, settings left
// unset and without a default left out. Component kinds are written as
// {kind: {...}}, durations and sizes as in a config file (500ms, 2MB),
// event patterns and expressions as written. Secrets never appear: a value
// that came from a ${...} reference is written as the reference (the text
// as written, `Bearer ${TOKEN}`), and a Secret written literally in the file
// as <redacted>. Parsed with the same environment and files, the output
// gives the same config (but for literal secrets).
func Print(cfg *Config) []byte {
	p := printer{src: &cfg.src}
	root := p.structNode(reflect.ValueOf(cfg).Elem())
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		// The tree holds only nodes built here and copies of parsed ones.
		panic(fmt.Sprintf("pipeline: printing the config: %v", err))
	}
	enc.Close()
	return b.Bytes()
}

type printer struct {
	src *sourceText
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// plain is a scalar whose YAML type is read from its text (numbers, booleans).
func plain(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// structNode writes the settings of a config struct (addressable).
func (p *printer) structNode(v reflect.Value) *yaml.Node {
	out := mapping()
	for _, f := range structFields(v.Type()).list {
		fv := v.Field(f.index)
		var n *yaml.Node
		if isNodeDecoder(f.typ) {
			n = p.nodeDecoder(fv)
		} else if f.required || f.def != "" || !fv.IsZero() || isBlock(f.typ) {
			n = p.value(fv, nil)
		}
		if n == nil {
			continue
		}
		if isBlock(f.typ) && len(n.Content) == 0 && !f.required {
			// A block with nothing set and no defaults decodes the same
			// when it is left out.
			continue
		}
		out.Content = append(out.Content, str(f.key), n)
	}
	return out
}

// isBlock reports whether t is a nested block of settings held by value.
func isBlock(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != timeType && !isNodeDecoder(t)
}

func isNodeDecoder(t reflect.Type) bool { return reflect.PointerTo(t).Implements(nodeDecoderType) }

// value writes one setting; nil leaves it out. at, for an entry of a map,
// says where its source text was recorded (v is then not addressable).
func (p *printer) value(v reflect.Value, at *mapEntry) *yaml.Node {
	t := v.Type()
	switch {
	case isNodeDecoder(t):
		if at != nil {
			// A map entry is a copy: only its String can say what it is.
			return stringerNode(v)
		}
		return p.nodeDecoder(v)
	case t.Kind() == reflect.Interface:
		return p.component(v)
	case t.Kind() == reflect.Struct && t != timeType:
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return p.structNode(v)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if v.IsNil() {
			return nil
		}
		return p.value(v.Elem(), nil)
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		// A short list of scalars is written on one line: [a, b].
		flow, width := true, 0
		for i := 0; i < v.Len(); i++ {
			n := p.value(v.Index(i), nil)
			if n == nil {
				n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
			}
			width += len(n.Value) + 2
			if n.Kind != yaml.ScalarNode || strings.Contains(n.Value, "\n") {
				flow = false
			}
			seq.Content = append(seq.Content, n)
		}
		if flow && width <= 60 {
			seq.Style = yaml.FlowStyle
		}
		return seq
	case t.Kind() == reflect.Map:
		if v.IsNil() {
			return nil
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		m := mapping()
		for _, k := range keys {
			e := v.MapIndex(reflect.ValueOf(k).Convert(t.Key()))
			n := p.value(e, &mapEntry{v.UnsafePointer(), k})
			if n == nil {
				n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
			}
			m.Content = append(m.Content, str(k), n)
		}
		return m
	}
	return p.scalar(v, at)
}

// component writes a component config held by a kind interface: a slot's
// config as a mapping, a kind as {kind: {...}}.
func (p *printer) component(v reflect.Value) *yaml.Node {
	if v.IsNil() {
		return nil
	}
	c := v.Elem()
	body := p.value(c, nil)
	for _, k := range Kinds(v.Type()) {
		if reflect.TypeOf(k.NewConfig()) != c.Type() {
			continue
		}
		if k.Name == "" {
			return body
		}
		m := mapping()
		m.Content = append(m.Content, str(k.Name), body)
		return m
	}
	// A config type that is not registered under this interface cannot be
	// written back as a kind: write its settings.
	return body
}

// nodeDecoder writes a value that decoded itself (addressable) as written.
func (p *printer) nodeDecoder(v reflect.Value) *yaml.Node {
	if !v.CanAddr() {
		return stringerNode(v)
	}
	if n := p.src.nodes[v.Addr().Interface()]; n != nil {
		if n = resolveAlias(n); isNull(n) {
			return nil
		}
		return copyNode(n)
	}
	return stringerNode(v)
}

func stringerNode(v reflect.Value) *yaml.Node {
	var s fmt.Stringer
	if v.CanAddr() {
		s, _ = v.Addr().Interface().(fmt.Stringer)
	}
	if s == nil {
		s, _ = v.Interface().(fmt.Stringer)
	}
	if s == nil || v.IsZero() {
		return nil
	}
	return str(s.String())
}

// copyNode copies a parsed node for printing: aliases resolved, comments,
// anchors and positions dropped.
func copyNode(n *yaml.Node) *yaml.Node {
	n = resolveAlias(n)
	c := &yaml.Node{Kind: n.Kind, Style: n.Style, Tag: n.Tag, Value: n.Value}
	for _, e := range n.Content {
		c.Content = append(c.Content, copyNode(e))
	}
	return c
}

// scalar writes a scalar setting: as written when it came from a reference,
// else from its value.
func (p *printer) scalar(v reflect.Value, at *mapEntry) *yaml.Node {
	t := v.Type()
	var text string
	var fromRef bool
	if at != nil {
		text, fromRef = p.src.entries[*at]
	} else if v.CanAddr() && p.src.vals != nil {
		text, fromRef = p.src.vals[v.Addr().Interface()]
	}
	if fromRef {
		if t == secretType && !hasReference(text) {
			// Only $$ escapes: the secret is in the file as it is.
			return str(Secret("").String())
		}
		return str(text)
	}
	switch {
	case t == secretType:
		if v.String() == "" {
			return str("")
		}
		return str(Secret("").String())
	case t == durationType:
		return durationNode(time.Duration(v.Int()))
	case t == sizeType:
		return str(Size(v.Int()).String())
	case t == timeType:
		return str(v.Interface().(time.Time).Format(time.RFC3339Nano))
	case t.Kind() == reflect.String:
		return str(escapeDollars(v.String()))
	case t.Kind() == reflect.Bool:
		return plain(strconv.FormatBool(v.Bool()))
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return plain(strconv.FormatInt(v.Int(), 10))
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return plain(strconv.FormatUint(v.Uint(), 10))
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return plain(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	panic(fmt.Sprintf("pipeline: cannot print a config value of type %s", t))
}

// durationNode writes a duration as a config file does: 500ms, 30s, 5m,
// 1h30m, and -1 for "no limit".
func durationNode(d time.Duration) *yaml.Node {
	if d == -1 {
		return plain("-1")
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return str(s)
}

// hasReference reports whether s, a value as written, holds a ${...}
// reference (rather than only $$ escapes).
func hasReference(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		switch s[i+1] {
		case '{':
			return true
		case '$':
			i++
		}
	}
	return false
}

// escapeDollars writes a value so that reading it back does not expand it:
// "$" doubled where the text would read as a reference or an escape.
func escapeDollars(s string) string {
	if !strings.Contains(s, "${") && !strings.Contains(s, "$$") {
		return s
	}
	return strings.ReplaceAll(s, "$", "$$")
}
