package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// pathDoc is the document the lookup table reads.
const pathDoc = `{
  "a": {"b": "text", "c": [10, 20, 30], "d": null, "e": false},
  "items": [{"sku": "x", "n": 1}, {"n": 2}, {"sku": "z", "n": 3}],
  "a b": {"it's": 1, "q\"": 2, "back\\slash": 3},
  "": "empty name",
  "dup": 1, "dup": 2,
  "order-id": "o-1", "a/b": "slash", "é": "accent", "$ref": "dollar",
  "nested": [[1, 2], [3]]
}`

func pathParseJSON(t testing.TB, s string) *pipeline.Value {
	t.Helper()
	v, err := pipeline.ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("ParseJSON(%q): %v", s, err)
	}
	return &v
}

// pathJSONOf joins the JSON text of each value with spaces.
func pathJSONOf(vs []*pipeline.Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = string(v.AppendJSON(nil))
	}
	return strings.Join(parts, " ")
}

func TestPathLookup(t *testing.T) {
	root := pathParseJSON(t, pathDoc)
	for _, c := range []struct {
		path, canonical, want string
	}{
		{"$.a.b", "$.a.b", `"text"`},
		{"$.a.c[0]", "$.a.c[0]", `10`},
		{"$.a.c[2]", "$.a.c[2]", `30`},
		{"$.a.c[-1]", "$.a.c[-1]", `30`},
		{"$.a.c[-3]", "$.a.c[-3]", `10`},
		{"$.a.c[3]", "$.a.c[3]", ``},
		{"$.a.c[-4]", "$.a.c[-4]", ``},
		{"$.a.d", "$.a.d", `null`},
		{"$.a.e", "$.a.e", `false`},
		{"$.a.missing", "$.a.missing", ``},
		{"$.a.b.c", "$.a.b.c", ``},                      // a step into a string
		{"$.a[0]", "$.a[0]", ``},                        // an index into an object
		{"$.a.c.x", "$.a.c.x", ``},                      // a name into an array
		{"$.items[*].sku", "$.items[*].sku", `"x" "z"`}, // elements without the member are skipped
		{"$.items.*.n", "$.items[*].n", `1 2 3`},
		{"$.a.*", "$.a[*]", `"text" [10, 20, 30] null false`},
		{"$.a[*]", "$.a[*]", `"text" [10, 20, 30] null false`},
		{"$.a.b[*]", "$.a.b[*]", ``}, // * over a string selects nothing
		{"$.nested[*][*]", "$.nested[*][*]", `1 2 3`},
		{"$.nested[*][1]", "$.nested[*][1]", `2`},
		{"$.missing[*]", "$.missing[*]", ``},
		{"$['a b']['it\\'s']", `$['a b']['it\'s']`, `1`},
		{`$["a b"]["q\""]`, `$['a b']['q"']`, `2`},
		{`$['a b']['back\\slash']`, `$['a b']['back\\slash']`, `3`},
		{`$['']`, `$['']`, `"empty name"`},
		{`$.dup`, `$.dup`, `2`}, // the last of a repeated name, as Value.Get
		{`$.order-id`, `$.order-id`, `"o-1"`},
		{`$.a/b`, `$.a/b`, `"slash"`},
		{`$.é`, `$.é`, `"accent"`},
		{`$.$ref`, `$.$ref`, `"dollar"`},
		{`$['a']['b']`, `$.a.b`, `"text"`},
	} {
		p, err := pipeline.ParsePath(c.path)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", c.path, err)
			continue
		}
		if got := p.String(); got != c.canonical {
			t.Errorf("ParsePath(%q).String() = %q, want %q", c.path, got, c.canonical)
		}
		if got := pathJSONOf(p.Lookup(root)); got != c.want {
			t.Errorf("ParsePath(%q).Lookup = %s, want %s", c.path, got, c.want)
		}
		if p.Wildcard() != strings.Contains(c.canonical, "*") {
			t.Errorf("ParsePath(%q).Wildcard() = %v", c.path, p.Wildcard())
		}
	}
}

func TestPathRoot(t *testing.T) {
	root := pathParseJSON(t, `{"a": 1}`)
	p, err := pipeline.ParsePath("$")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Lookup(root); len(got) != 1 || got[0] != root {
		t.Errorf("$ selects %v, want the root itself", got)
	}
	if p.Lookup(nil) != nil {
		t.Error("a lookup in nil selects something")
	}
	if p.String() != "$" {
		t.Errorf("String() = %q", p.String())
	}
	var zero pipeline.Path
	if zero.String() != "$" || len(zero.Lookup(root)) != 1 {
		t.Error("the zero Path is not the root")
	}
}

func TestPathLookupReturnsPointersIntoTheTree(t *testing.T) {
	root := pathParseJSON(t, `{"a": [{"b": 1}]}`)
	p, _ := pipeline.ParsePath("$.a[0].b")
	got := p.Lookup(root)
	if len(got) != 1 || got[0] != &root.Fields[0].Value.Elems[0].Fields[0].Value {
		t.Fatalf("Lookup did not return the value in the tree")
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, c := range []struct {
		path   string
		offset int
		msg    string
	}{
		{"", 0, "starts with $"},
		{"a.b", 0, "starts with $"},
		{"$.", 2, "a name must follow the dot"},
		{"$.a.", 4, "a name must follow the dot"},
		{"$..a", 1, "recursive descent"},
		{"$.a b", 3, "unexpected ' '"},
		{"$a", 1, "unexpected 'a'"},
		{"$.a[", 3, "unterminated ["},
		{"$.a[0", 3, "unterminated ["},
		{"$.a[0x]", 5, "expected ]"},
		{"$.a[]", 4, "expected an index"},
		{"$.a[-]", 4, "an index needs digits"},
		{"$.a[1234567890]", 4, "too large"},
		{"$.a['b]", 4, "unterminated quoted name"},
		{"$.a['b\\", 4, "unterminated quoted name"},
		{`$.a['b\n']`, 6, "unknown escape"},
		{"$.a['b'", 3, "unterminated ["},
		{"$.a['b'x", 7, "expected ]"},
		{"$.a\"b", 3, "unexpected '\"'"},
		{"$.*x", 3, "unexpected 'x'"},
		{"$.a*", 3, "unexpected '*'"},
		{"$.\xff", 2, "byte 0xff"},
		{"$.a>", 3, "unexpected '>'"},
	} {
		_, err := pipeline.ParsePath(c.path)
		var se *pipeline.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParsePath(%q) = %v, want a *SyntaxError", c.path, err)
			continue
		}
		if se.Offset != c.offset || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("ParsePath(%q): offset %d %q, want offset %d and %q", c.path, se.Offset, se.Msg, c.offset, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "at offset ") {
			t.Errorf("ParsePath(%q) error %q does not say the offset", c.path, err)
		}
	}
}

// FuzzParsePath checks that the parser never panics, that a parsed path
// prints in a form that parses back to the same path, and that lookups of
// parsed paths never panic.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$.a[0]", "$.a[*].b", "$.a.*", "$['a b']", `$["q\""]`, "$.a[-1]", "$..a", "$.a[", "$.é", "$['it\\'s']"} {
		f.Add(s)
	}
	root, err := pipeline.ParseJSON([]byte(pathDoc))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := pipeline.ParsePath(s)
		if err != nil {
			var se *pipeline.SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("ParsePath(%q): bad error %v", s, err)
			}
			return
		}
		canon := p.String()
		q, err := pipeline.ParsePath(canon)
		if err != nil {
			t.Fatalf("ParsePath(%q).String() = %q does not parse: %v", s, canon, err)
		}
		if q.String() != canon {
			t.Fatalf("canonical form %q prints as %q", canon, q.String())
		}
		if pathJSONOf(p.Lookup(&root)) != pathJSONOf(q.Lookup(&root)) {
			t.Fatalf("%q and its canonical form %q select different values", s, canon)
		}
	})
}
