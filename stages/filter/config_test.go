package filter_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	_ "github.com/pipe-run/pipe/sources/kafka"
	"github.com/pipe-run/pipe/stages/filter"
	"github.com/pipe-run/pipe/stages/filter/pattern"
	_ "github.com/pipe-run/pipe/stages/transform"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

// pipeYAML is a whole pipes.yaml with one pipe; filter is the pipe's
// filter: block, indented by four spaces.
func pipeYAML(filterBlock string) string {
	return `pipes:
  - name: p
    source:
      kafka: {bootstrapServers: "127.0.0.1:9092", topics: orders}
` + filterBlock + `    target:
      stdout: {}
`
}

// loadFilter parses a pipes.yaml text and returns its first pipe's filter
// config.
func loadFilter(t testing.TB, yamlText string) *filter.Config {
	t.Helper()
	cfg, err := pipeline.Parse("pipes.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("parsing:\n%s\nerror:\n%v", yamlText, err)
	}
	fc, ok := cfg.Pipes[0].Filter.(*filter.Config)
	if !ok {
		t.Fatalf("filter is %T", cfg.Pipes[0].Filter)
	}
	return fc
}

// TestBadConfig loads testdata/bad.yaml, a file with every kind of problem
// a filter or a transform can have next to problems elsewhere, and compares
// the whole error with testdata/bad.want: every problem is reported at
// once, in file order, each placed at file:line:column. Columns were
// counted by hand; for patterns written as strings they point at the
// character at fault inside the string.
func TestBadConfig(t *testing.T) {
	want, err := os.ReadFile("testdata/bad.want")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.LoadFile("testdata/bad.yaml")
	if err == nil {
		t.Fatalf("no error; %d pipes", len(cfg.Pipes))
	}
	var ps pipeline.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not Problems: %v", err, err)
	}
	got := err.Error() + "\n"
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("line %d of the error differs\n got: %s\nwant: %s", i+1, g, w)
			}
		}
	}
	// Every pipe of the file has a problem of its own in its filter or
	// transform, beside the problems elsewhere.
	for _, name := range []string{"yaml-patterns", "json-patterns", "eleven-patterns", "expressions", "expression-types", "bool-expected", "empty-filter", "empty-lists", "unknown-keys"} {
		found := false
		for _, p := range ps {
			if p.Pipe == name && (strings.HasPrefix(p.Path, "filter") || strings.HasPrefix(p.Path, "transform")) {
				found = true
			}
		}
		if !found {
			t.Errorf("no filter or transform problem reported for pipe %q", name)
		}
	}
}

// TestPatternForms writes the same patterns as JSON strings (single- and
// double-quoted, block scalars) and as YAML (block and flow mappings,
// anchors, YAML spellings of numbers and null) and checks that every form
// compiles to the same JSON text and matches the same records.
func TestPatternForms(t *testing.T) {
	records := []*pipeline.Record{
		rec(`{"status":"PAID","amount":250,"customer":{"country":"DE"},"note":null}`),
		rec(`{"status":"PAID","amount":16,"customer":{"country":"FR"}}`),
		rec(`{"status":"OPEN","amount":16.5,"customer":{"country":"DE"},"note":"x"}`),
		rec(`{"status":"paid","amount":"300","customer":{"country":"de"}}`),
		rec(`{"status":"PAID","amount":300,"tags":["a","vip"]}`),
		rec(`not JSON at all`),
		rec(`{"status":"REFUNDED","amount":1e3,"customer":{"country":"IT"}}`),
	}
	cases := []struct {
		name  string
		json  string   // the pattern as compiled
		forms []string // entries of the patterns: block, each one pattern
		want  []bool   // matches, per record
	}{
		{
			name: "exact, numeric and nested",
			json: `{"value":{"status":["PAID"],"amount":[{"numeric":[">",16]}],"customer":{"country":["DE","FR"]}}}`,
			forms: []string{
				`        - '{"value": {"status": ["PAID"], "amount": [{"numeric": [">", 16]}], "customer": {"country": ["DE", "FR"]}}}'` + "\n",
				`        - "{\"value\": {\"status\": [\"PAID\"], \"amount\": [{\"numeric\": [\">\", 16]}], \"customer\": {\"country\": [\"DE\", \"FR\"]}}}"` + "\n",
				"        - |\n          {\"value\": {\"status\": [\"PAID\"],\n                     \"amount\": [{\"numeric\": [\">\", 16]}],\n                     \"customer\": {\"country\": [\"DE\", \"FR\"]}}}\n",
				"        - value:\n            status: [PAID]\n            amount:\n              - numeric: ['>', 16]\n            customer:\n              country: [DE, FR]\n",
				"        - {value: {status: [\"PAID\"], amount: [{numeric: [\">\", 0x10]}], customer: {country: [DE, FR]}}}\n",
				"        - value: {status: [PAID], amount: [{numeric: [\">\", +16]}], customer: {country: [DE, FR]}}\n",
			},
			want: []bool{true, false, false, false, false, false, false},
		},
		{
			name: "null, exists and a string that looks like a number",
			json: `{"value":{"note":[null,{"exists":false}],"amount":["300",16.5]}}`,
			forms: []string{
				`        - '{"value": {"note": [null, {"exists": false}], "amount": ["300", 16.5]}}'` + "\n",
				"        - value:\n            note: [~, {exists: false}]\n            amount: ['300', 16.5]\n",
				"        - value:\n            note: [null, {exists: false}]\n            amount: [\"300\", 165e-1]\n",
			},
			want: []bool{false, false, false, true, false, false, false},
		},
		{
			name: "$or, anything-but, prefix with equals-ignore-case, array",
			json: `{"value":{"$or":[{"tags":["vip"]},{"status":[{"anything-but":["PAID","OPEN"]}]},{"customer":{"country":[{"prefix":{"equals-ignore-case":"D"}}]},"amount":[{"numeric":["<",16]}]}]}}`,
			forms: []string{
				`        - '{"value":{"$or":[{"tags":["vip"]},{"status":[{"anything-but":["PAID","OPEN"]}]},{"customer":{"country":[{"prefix":{"equals-ignore-case":"D"}}]},"amount":[{"numeric":["<",16]}]}]}}'` + "\n",
				"        - value:\n            $or:\n              - tags: [vip]\n              - status: [{anything-but: [PAID, OPEN]}]\n              - customer: {country: [{prefix: {equals-ignore-case: D}}]}\n                amount: [{numeric: [\"<\", 16]}]\n",
			},
			want: []bool{false, false, false, true, true, false, true},
		},
		{
			name: "anchors and aliases",
			json: `{"value":{"$or":[{"status":["PAID","REFUNDED"],"amount":[{"numeric":[">=",300]}]},{"status":["PAID","REFUNDED"],"customer":{"country":["DE"]}}]}}`,
			forms: []string{
				"        - value:\n            $or:\n              - {status: &st [PAID, REFUNDED], amount: [{numeric: [\">=\", 300]}]}\n              - {status: *st, customer: {country: [DE]}}\n",
			},
			want: []bool{true, false, false, false, true, false, true},
		},
		{
			name: "metadata and a plain value",
			json: `{"topic":["orders"],"value":[{"prefix":"not "}]}`,
			forms: []string{
				`        - '{"topic": ["orders"], "value": [{"prefix": "not "}]}'` + "\n",
				"        - topic: [orders]\n          value: [prefix: 'not ']\n",
			},
			want: []bool{false, false, false, false, false, true, false},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct := pattern.MustCompile(c.json)
			for i, r := range records {
				if got := direct.MatchRecord(r); got != c.want[i] {
					t.Fatalf("the expectation is wrong: %s on record %d (%s) = %v", c.json, i, r.Value, got)
				}
			}
			for _, form := range c.forms {
				fc := loadFilter(t, pipeYAML("    filter:\n      patterns:\n"+form))
				if len(fc.Patterns) != 1 {
					t.Fatalf("%d patterns from\n%s", len(fc.Patterns), form)
				}
				p := fc.Patterns[0].Pattern
				// Every form's text is the same JSON.
				if !sameJSON(p.String(), c.json) {
					t.Errorf("YAML form\n%scompiles to\n  %s\nwant\n  %s", form, p.String(), c.json)
				}
				for i, r := range records {
					if got := p.MatchRecord(r); got != c.want[i] {
						t.Errorf("form\n%smatches record %d (%s): %v, want %v", form, i, r.Value, got, c.want[i])
					}
				}
			}
		})
	}
}

// TestPatternsKeepTheirOrder: patterns and expression decode into the
// config in file order, each compiled.
func TestPatternsKeepTheirOrder(t *testing.T) {
	fc := loadFilter(t, pipeYAML(`    filter:
      patterns:
        - '{"value": {"a": [1]}}'
        - value: {b: [2]}
        - '{"value": {"c": [3]}}'
      expression: value.d != 4
`))
	want := []string{`{"value": {"a": [1]}}`, `{"value":{"b":[2]}}`, `{"value": {"c": [3]}}`}
	if len(fc.Patterns) != len(want) {
		t.Fatalf("%d patterns", len(fc.Patterns))
	}
	for i, w := range want {
		if got := fc.Patterns[i].String(); got != w {
			t.Errorf("pattern %d is %s, want %s", i, got, w)
		}
	}
	if fc.Expression.Program() == nil || fc.Expression.Program().String() != "value.d != 4" {
		t.Errorf("expression = %v", fc.Expression.Program())
	}
	// Expression alone, patterns alone.
	if fc := loadFilter(t, pipeYAML("    filter:\n      expression: topic == \"orders\"\n")); len(fc.Patterns) != 0 || fc.Expression.Program() == nil {
		t.Errorf("expression alone: %d patterns, program %v", len(fc.Patterns), fc.Expression.Program())
	}
	if fc := loadFilter(t, pipeYAML("    filter:\n      patterns: ['{\"topic\": [\"orders\"]}']\n")); len(fc.Patterns) != 1 || fc.Expression.Program() != nil {
		t.Errorf("patterns alone: %d patterns, program %v", len(fc.Patterns), fc.Expression.Program())
	}
	// No filter at all: the slot stays empty.
	cfg, err := pipeline.Parse("pipes.yaml", []byte(pipeYAML("")))
	if err != nil || cfg.Pipes[0].Filter != nil {
		t.Errorf("without filter: %v, %v", cfg, err)
	}
}

// TestTenPatternsIsTheLimit: ten patterns load; the eleventh is a problem
// (TestBadConfig) and so is a longer pattern than 4096 characters, while
// one of exactly 4096 loads.
func TestTenPatternsIsTheLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("    filter:\n      patterns:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "        - '{\"value\": {\"n\": [%d]}}'\n", i)
	}
	if fc := loadFilter(t, pipeYAML(b.String())); len(fc.Patterns) != 10 {
		t.Fatalf("%d patterns", len(fc.Patterns))
	}
	head, tail := `{"value": {"s": ["`, `"]}}`
	exact := head + strings.Repeat("é", pattern.MaxLength-len(head)-len(tail)) + tail // é: one UTF-16 unit, two bytes
	fc := loadFilter(t, pipeYAML("    filter:\n      patterns:\n        - '"+exact+"'\n"))
	if fc.Patterns[0].String() != exact {
		t.Fatal("the 4096-character pattern changed")
	}
	over := head + strings.Repeat("é", pattern.MaxLength-len(head)-len(tail)+1) + tail
	_, err := pipeline.Parse("pipes.yaml", []byte(pipeYAML("    filter:\n      patterns:\n        - '"+over+"'\n")))
	if want := `pipes.yaml:7:11: pipe "p": filter.patterns[0]: event pattern: pattern is 4097 characters long; the limit is 4096`; err == nil || err.Error() != want {
		t.Fatalf("error\n  %v\nwant\n  %s", err, want)
	}
}

// sameJSON says whether a and b are JSON texts of the same value.
func sameJSON(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func rec(value string) *pipeline.Record {
	return &pipeline.Record{Topic: "orders", Partition: 1, Offset: 10, Timestamp: time.UnixMilli(1_700_000_000_000), Value: []byte(value)}
}

// TestBrokenExpressionReportedOnce: a filter whose only expression does not
// compile gets that one problem, not also "needs patterns, an expression".
func TestBrokenExpressionReportedOnce(t *testing.T) {
	_, err := pipeline.Parse("pipes.yaml", []byte(pipeYAML("    filter:\n      expression: nope > 1\n")))
	var ps pipeline.Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Msg, "unknown name nope") {
		t.Fatalf("problems: %v", err)
	}
}

// TestYAMLPatternKeepsCharacters: <, > and & in a YAML pattern stay as
// they are in the pattern's JSON text.
func TestYAMLPatternKeepsCharacters(t *testing.T) {
	c := loadFilter(t, pipeYAML("    filter:\n      patterns:\n        - value: {amount: [{numeric: [\">\", 100]}], \"a&b\": [\"<x>\"]}\n"))
	if got := c.Patterns[0].String(); got != `{"value":{"amount":[{"numeric":[">",100]}],"a&b":["<x>"]}}` {
		t.Fatalf("pattern text %s", got)
	}
}
