package pattern_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

// TestMatchTableSelected runs every case of the match table through a
// record both ways: the whole view (MatchRecord) and the parts the pattern
// reads (MatchSelected). The case's event is the record's value under a
// pattern moved to "value", and its key under one moved to "key".
func TestMatchTableSelected(t *testing.T) {
	for i, c := range matchCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for _, field := range []string{"value", "key"} {
				s := mustSet(t, `{"`+field+`":`+c.pattern+`}`)
				r := &pipeline.Record{Topic: "t", Value: []byte(`{"other":1}`)}
				if field == "value" {
					r.Value = []byte(c.event)
				} else {
					r.Key = []byte(c.event)
				}
				if got := s.MatchSelected(r); got != c.want {
					t.Fatalf("%s pattern %s\nevent %s\nselected match = %v, want %v", field, c.pattern, c.event, got, c.want)
				}
				if r.HasView() {
					t.Fatal("MatchSelected built the record's view")
				}
				if got := s.MatchRecord(r); got != c.want {
					t.Fatalf("%s pattern %s\nevent %s\nmatch = %v, want %v", field, c.pattern, c.event, got, c.want)
				}
			}
		})
	}
}

func mustSet(t testing.TB, patterns ...string) *pattern.Set {
	t.Helper()
	var ps []*pattern.Pattern
	for _, p := range patterns {
		c, err := pattern.Compile([]byte(p))
		if err != nil {
			t.Fatalf("Compile(%s): %v", p, err)
		}
		ps = append(ps, c)
	}
	s, err := pattern.NewSet(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSelectedInvalidJSON checks the cases where the selective decoder
// must read past the fields a pattern names to decide: a value that is not
// JSON far from them is a string, so no field of it matches.
func TestSelectedInvalidJSON(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{`{"value":{"type":["order"]}}`, `{"type":"order", "x": tru}`, false},
		{`{"value":{"type":["order"]}}`, `{"type":"order", "x": true}`, true},
		{`{"value":{"type":["order"]}}`, `{"type":"order","x":{"y":[1,2,}}`, false},
		{`{"value":{"type":["order"]}}`, `{"type":"order","x":"\q"}`, false},
		{`{"value":{"type":["order"]}}`, `{"type":"order","x":"` + "\xff" + `"}`, false},
		{`{"value":{"type":["order"]}}`, `{"type":"order","x":"` + "\x01" + `"}`, false},
		{`{"value":{"type":["order"]}}`, `{"type":"order"} {}`, false},
		{`{"value":{"type":[{"exists":false}]}}`, `{"type":"order", "x": tru}`, true},
		{`{"value":[{"prefix":"{\"type\""}]}`, `{"type":"order", "x": tru}`, true},
		{`{"value":[{"prefix":"{\"type\""}]}`, `{"type":"order", "x": true}`, false},
		// Repeated names: the last one counts, as on the whole view.
		{`{"value":{"type":["order"]}}`, `{"type":"order","type":"refund"}`, false},
		{`{"value":{"type":["refund"]}}`, `{"type":"order","type":"refund"}`, true},
		{`{"value":{"a":{"b":[1]}}}`, `{"a":{"b":1},"a":{"c":2}}`, false},
		{`{"value":{"a":{"b":[1]}}}`, `{"a":{"c":2},"a":{"b":1}}`, true},
		// Escaped names are the names they spell.
		{`{"value":{"type":["order"]}}`, `{"\u0074ype":"order"}`, true},
		{`{"value":{"t\"q":["x"]}}`, `{"t\"q":"x"}`, true},
		{`{"value":{"é":["\u00e9"]}}`, `{"\u00e9":"é"}`, true},
	}
	for _, c := range cases {
		s := mustSet(t, c.pattern)
		r := &pipeline.Record{Value: []byte(c.value)}
		full := s.Match((&pipeline.Record{Value: []byte(c.value)}).View())
		if got := s.MatchSelected(r); got != c.want || full != c.want {
			t.Errorf("pattern %s on %q: selected %v, whole view %v, want %v", c.pattern, c.value, got, full, c.want)
		}
	}
}

// TestSetPaths checks the paths a set reads: each once, a path that
// another extends left out, $or branches included.
func TestSetPaths(t *testing.T) {
	s := mustSet(t,
		`{"value":{"status":["PAID"],"customer":{"country":["DE"]}},"topic":["orders"]}`,
		`{"value":{"customer":{"country":[{"prefix":"F"}],"tier":["gold"]}}}`,
		`{"value":{"$or":[{"a":[1]},{"b":{"c":[2]}}]},"headers":{"h":["x"]}}`,
	)
	want := [][]string{
		{"value", "status"}, {"value", "customer", "country"}, {"topic"},
		{"value", "customer", "tier"}, {"value", "a"}, {"value", "b", "c"}, {"headers", "h"},
	}
	got := s.Paths()
	for _, ps := range [][][]string{got, want} {
		sort.Slice(ps, func(i, j int) bool { return strings.Join(ps[i], ".") < strings.Join(ps[j], ".") })
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
}

// TestMatchSelectedAllocs checks that deciding records from the parts
// patterns read costs no allocation once the memory has grown.
func TestMatchSelectedAllocs(t *testing.T) {
	s := mustSet(t, benchPatterns...)
	base := benchRecord()
	if !s.MatchSelected(&base) {
		t.Fatal("no match")
	}
	allocs := testing.AllocsPerRun(200, func() {
		r := base
		if !s.MatchSelected(&r) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("MatchSelected allocates %v times per record", allocs)
	}
}
