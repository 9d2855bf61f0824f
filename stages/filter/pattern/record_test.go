package pattern_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

func record(key, value []byte, headers ...pipeline.Header) *pipeline.Record {
	return &pipeline.Record{
		Topic:     "orders",
		Partition: 3,
		Offset:    15,
		Timestamp: time.UnixMilli(1545084650987),
		Key:       key,
		Value:     value,
		Headers:   headers,
	}
}

// TestMatchRecord matches patterns against records as Lambda presents
// Kafka records to filters: value and key decoded when they are JSON,
// strings otherwise; metadata as they are; headers as strings.
func TestMatchRecord(t *testing.T) {
	jsonValue := []byte(`{"device_ID": "AB1234", "session": {"start_time": "2024-01-01T00:00:00", "duration": 162}}`)
	plain := []byte("Hello, this is a test.") // the Lambda guide's base64 example, decoded
	cases := []struct {
		pattern string
		rec     *pipeline.Record
		want    bool
	}{
		// The Lambda guide's Kafka examples.
		{`{"value":{"device_ID":[{"prefix":"AB"}]}}`, record(nil, jsonValue), true},
		{`{"value":{"device_ID":[{"prefix":"CD"}]}}`, record(nil, jsonValue), false},
		{`{"value":[{"anything-but":["error"]}]}`, record(nil, []byte("error")), false},
		{`{"value":[{"anything-but":["error"]}]}`, record(nil, plain), true},
		{`{"value":{"session":{"duration":[{"numeric":[">",100]}]}}}`, record(nil, jsonValue), true},
		// A pattern expecting JSON fields never matches a plain value, and a
		// string pattern never matches a JSON object; metadata still match.
		{`{"value":{"device_ID":[{"exists":true}]}}`, record(nil, plain), false},
		{`{"value":{"device_ID":[{"exists":false}]}}`, record(nil, plain), true},
		{`{"value":[{"prefix":"{"}]}`, record(nil, jsonValue), false},
		{`{"value":[{"prefix":"Hello"}]}`, record(nil, plain), true},
		{`{"topic":["orders"],"value":[{"wildcard":"*test*"}]}`, record(nil, plain), true},
		{`{"value":["hello"]}`, record(nil, []byte(`"hello"`)), true},
		{`{"value":["hello"]}`, record(nil, []byte(`hello`)), true},
		{`{"value":[123]}`, record(nil, []byte(`123`)), true},
		{`{"value":["123"]}`, record(nil, []byte(`123`)), false},
		{`{"value":[""]}`, record(nil, []byte{}), true},
		{`{"value":[{"exists":false}]}`, record(nil, nil), true},
		{`{"value":[null]}`, record(nil, nil), false},
		{`{"value":[null]}`, record(nil, []byte("null")), true},
		{`{"value":{"a":[1]}}`, record(nil, []byte(`{"a":1,}`)), false},
		{`{"value":[{"prefix":"{\"a\":1,"}]}`, record(nil, []byte(`{"a":1,}`)), true},
		{`{"value":[{"prefix":"ab"}]}`, record(nil, []byte("ab\xff")), true},
		// Keys.
		{`{"key":{"id":[7]}}`, record([]byte(`{"id":7}`), jsonValue), true},
		{`{"key":["user-7"]}`, record([]byte(`user-7`), jsonValue), true},
		{`{"key":[{"exists":false}]}`, record(nil, jsonValue), true},
		{`{"key":[{"exists":true}]}`, record(nil, jsonValue), false},
		// Metadata.
		{`{"topic":["orders"],"partition":[3],"offset":[{"numeric":[">",10]}]}`, record(nil, plain), true},
		{`{"partition":["3"]}`, record(nil, plain), false},
		{`{"timestamp":[1545084650987]}`, record(nil, plain), true},
		{`{"timestampType":["CREATE_TIME"]}`, record(nil, plain), true},
		{`{"topic":[{"prefix":"pay"}]}`, record(nil, plain), false},
		// Headers: name -> text.
		{`{"headers":{"trace":["abc"]}}`, record(nil, plain, pipeline.Header{Key: "trace", Value: []byte("abc")}), true},
		{`{"headers":{"trace":[{"exists":true}]}}`, record(nil, plain), false},
		{`{"headers":{"n":["1"]}}`, record(nil, plain, pipeline.Header{Key: "n", Value: []byte("1")}), true},
		{`{"headers":{"n":[1]}}`, record(nil, plain, pipeline.Header{Key: "n", Value: []byte("1")}), false},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p := pattern.MustCompile(c.pattern)
			s, err := pattern.NewSet(p)
			if err != nil {
				t.Fatal(err)
			}
			// The parts the pattern reads, from a copy without a view.
			fresh := *c.rec
			if got := s.MatchSelected(&fresh); got != c.want {
				t.Fatalf("pattern %s on value %q: selected match = %v, want %v", c.pattern, c.rec.Value, got, c.want)
			}
			if fresh.HasView() {
				t.Fatal("MatchSelected built the record's view")
			}
			if got := p.MatchRecord(c.rec); got != c.want {
				t.Fatalf("pattern %s on value %q: match = %v, want %v", c.pattern, c.rec.Value, got, c.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	a := pattern.MustCompile(`{"value":{"kind":["a"]}}`)
	b := pattern.MustCompile(`{"value":{"kind":["b"]}}`)
	s, err := pattern.NewSet(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		want  bool
	}{{`{"kind":"a"}`, true}, {`{"kind":"b"}`, true}, {`{"kind":"c"}`, false}, {`kind a`, false}} {
		r := record(nil, []byte(c.value))
		if got := s.MatchRecord(r); got != c.want {
			t.Errorf("value %s: match = %v, want %v", c.value, got, c.want)
		}
		ok, why := s.Explain(r.View())
		if ok != c.want || ok == (why != "") {
			t.Errorf("value %s: Explain = %v, %q", c.value, ok, why)
		}
	}
	empty, err := pattern.NewSet()
	if err != nil || !empty.MatchRecord(record(nil, nil)) {
		t.Errorf("an empty set matches every record: %v", err)
	}
	ps := make([]*pattern.Pattern, pattern.MaxPatterns+1)
	for i := range ps {
		ps[i] = a
	}
	if _, err := pattern.NewSet(ps[:pattern.MaxPatterns]...); err != nil {
		t.Errorf("%d patterns: %v", pattern.MaxPatterns, err)
	}
	if _, err := pattern.NewSet(ps...); err == nil {
		t.Errorf("%d patterns: want an error", len(ps))
	}
	if _, err := pattern.NewSet(a, nil); err == nil {
		t.Errorf("a nil pattern: want an error")
	}
	if got := len(s.Patterns()); got != 2 {
		t.Errorf("Patterns() holds %d", got)
	}
}

// TestDecodeOnce checks that matching several patterns decodes the value
// once: the view is built on first use and kept with the record.
func TestDecodeOnce(t *testing.T) {
	var ps []*pattern.Pattern
	for i := 0; i < 5; i++ {
		ps = append(ps, pattern.MustCompile(fmt.Sprintf(`{"value":{"n":[%d]}}`, i)))
	}
	s, err := pattern.NewSet(ps...)
	if err != nil {
		t.Fatal(err)
	}
	r := record(nil, []byte(`{"n":4}`))
	first := r.View()
	if !s.MatchRecord(r) {
		t.Fatal("no match")
	}
	if r.View() != first {
		t.Fatal("the record's view was rebuilt")
	}
	// Matching a decoded record costs no allocation at all.
	allocs := testing.AllocsPerRun(100, func() {
		if !s.MatchRecord(r) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("matching a decoded record allocates %v times", allocs)
	}
}

func TestExplain(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           string
	}{
		{`{"value":{"amount":[{"numeric":[">",100]}]}}`, `{"amount":42}`,
			`value.amount: 42 does not match [{"numeric":[">",100]}]`},
		{`{"value":{"amount":[{"numeric":[">",100]}]}}`, `{"total":42}`,
			`value.amount: missing does not match [{"numeric":[">",100]}]`},
		{`{"value":{"amount":[{"numeric":[">",100]}]}}`, `not json`,
			`value.amount: missing (value is a string, not an object) does not match [{"numeric":[">",100]}]`},
		{`{"topic":["payments"],"value":{"a":[1]}}`, `{"a":1}`,
			`topic: "orders" does not match ["payments"]`},
		{`{"value":{"tags":["red"]}}`, `{"tags":["blue","green"]}`,
			`value.tags: ["blue","green"] does not match ["red"]`},
		{`{"value":{"items":{"sku":["A1"]}}}`, `{"items":[{"sku":"B2"},{"sku":"C3"}]}`,
			`value.items.sku: ["B2","C3"] does not match ["A1"]`},
		{`{"value":{"items":{"sku":["A1"],"qty":[2]}}}`, `{"items":[{"sku":"A1","qty":1},{"sku":"B2","qty":2}]}`,
			`value.items: no single element of the array matches all the fields the pattern gives under items`},
		{`{"value":{"gone":[{"exists":false}]}}`, `{"gone":{"x":1},"here":1,"gone":"yes"}`,
			`value.gone: "yes" does not match [{"exists":false}]`},
		{`{"value":{"$or":[{"a":[1]},{"b":[2]}]}}`, `{"a":2,"b":1}`,
			`no $or alternative matches: value.a: 2 does not match [1]; value.b: 1 does not match [2]`},
	}
	for _, c := range cases {
		p := pattern.MustCompile(c.pattern)
		ok, why := p.Explain(record(nil, []byte(c.value)).View())
		if ok || why != c.want {
			t.Errorf("pattern %s on %s:\n got %v %s\nwant false %s", c.pattern, c.value, ok, why, c.want)
		}
	}
	a := pattern.MustCompile(`{"value":{"kind":["a"]}}`)
	b := pattern.MustCompile(`{"topic":["other"]}`)
	s, _ := pattern.NewSet(a, b)
	_, why := s.Explain(record(nil, []byte(`{"kind":"z"}`)).View())
	want := `no pattern matches: pattern 1: value.kind: "z" does not match ["a"]; pattern 2: topic: "orders" does not match ["other"]`
	if why != want {
		t.Errorf("set:\n got %s\nwant %s", why, want)
	}
}
