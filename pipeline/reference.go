package pipeline

import (
	"fmt"
	"reflect"
	"strings"
)

// Reference returns the config reference in Markdown, generated from the
// config declarations (their yaml, default, bounds and doc tags) and the
// registered component kinds, so it cannot drift from the code.
func Reference() string {
	var b strings.Builder
	b.WriteString("### File\n\n")
	b.WriteString("Top-level keys of a config file.\n\n")
	writeFields(&b, reflect.TypeFor[Config](), "")
	b.WriteString("\n### Pipe\n\nEach entry of `pipes`.\n\n")
	writeFields(&b, reflect.TypeFor[PipeConfig](), "")
	for _, group := range []struct {
		title, key string
		iface      reflect.Type
	}{
		{"Sources", "source", reflect.TypeFor[SourceConfig]()},
		{"Filter", "filter", reflect.TypeFor[FilterConfig]()},
		{"Transform", "transform", reflect.TypeFor[TransformConfig]()},
		{"Enrichments", "enrichment", reflect.TypeFor[EnrichmentConfig]()},
		{"Targets", "target", reflect.TypeFor[TargetConfig]()},
		{"On-failure destinations", "onFailure", reflect.TypeFor[DestinationConfig]()},
	} {
		kinds := Kinds(group.iface)
		if len(kinds) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n", group.title)
		for _, k := range kinds {
			prefix := group.key + "." + k.Name
			if k.Name == "" {
				prefix = group.key
				fmt.Fprintf(&b, "\n%s\n\n", k.Doc)
			} else {
				fmt.Fprintf(&b, "\n#### `%s: {%s: ...}`\n\n%s\n\n", group.key, k.Name, k.Doc)
			}
			t := reflect.TypeOf(k.NewConfig()).Elem()
			if len(structFields(t).list) == 0 {
				b.WriteString("No settings: write `{}`.\n")
				continue
			}
			writeFields(&b, t, prefix)
		}
	}
	return b.String()
}

// refTyper is implemented by config types that name their own type in the
// reference (an event pattern, an expression).
type refTyper interface {
	RefType() string
}

// nested returns the struct type a field holds settings of, or nil.
func nested(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || t == reflect.TypeFor[PipeConfig]() || reflect.PointerTo(t).Implements(nodeDecoderType) {
		return nil
	}
	return t
}

// writeFields writes the table of t's settings, then one table for each
// field that holds settings of its own, named by its path under prefix.
func writeFields(b *strings.Builder, t reflect.Type, prefix string) {
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	var subs []*fieldInfo
	for _, f := range structFields(t).list {
		if nested(f.typ) != nil {
			subs = append(subs, f)
		}
		def := "—"
		switch {
		case f.required:
			def = "required"
		case f.def != "":
			def = "`" + f.def + "`"
		}
		doc := f.doc
		if c := constraints(f); c != "" {
			doc += " " + c
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", f.key, refType(f.typ), def, strings.ReplaceAll(doc, "|", `\|`))
	}
	for _, f := range subs {
		path := f.key
		if prefix != "" {
			path = prefix + "." + f.key
		}
		if f.typ.Kind() == reflect.Slice {
			path += "[]"
		} else if f.typ.Kind() == reflect.Map {
			path += ".*"
		}
		fmt.Fprintf(b, "\n`%s`:\n\n", path)
		writeFields(b, nested(f.typ), path)
	}
}

func constraints(f *fieldInfo) string {
	var parts []string
	switch {
	case f.enum != nil:
		parts = append(parts, "One of "+strings.Join(f.enum, ", ")+".")
	case f.patDesc != "" && f.typ.Kind() == reflect.String:
		parts = append(parts, "Must be "+f.patDesc+".")
	}
	isList := f.typ.Kind() == reflect.Slice || f.typ.Kind() == reflect.Map
	switch {
	case isList:
	case f.min != "" && f.max != "":
		parts = append(parts, fmt.Sprintf("Range %s to %s.", f.min, f.max))
	case f.min != "":
		parts = append(parts, fmt.Sprintf("At least %s.", f.min))
	case f.max != "":
		parts = append(parts, fmt.Sprintf("At most %s.", f.max))
	}
	return strings.Join(parts, " ")
}

func refType(t reflect.Type) string {
	if rt, ok := reflect.New(t).Interface().(refTyper); ok {
		return rt.RefType()
	}
	switch {
	case t == durationType:
		return "duration"
	case t == sizeType:
		return "size"
	case t == timeType:
		return "timestamp"
	case t == secretType:
		return "string (secret)"
	case t.Kind() == reflect.Interface:
		if ks := Kinds(t); len(ks) == 1 && ks[0].Name == "" {
			return "mapping"
		}
		return "kind"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Slice:
		if t.Elem().Kind() == reflect.Struct && nested(t.Elem()) != nil {
			return "list of mappings"
		}
		return "list of " + refType(t.Elem()) + "s"
	case t.Kind() == reflect.Map:
		return "map of " + refType(t.Elem()) + "s"
	}
	return "mapping"
}
