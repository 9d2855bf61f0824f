package pattern

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// selectSeedEvents are values that are not JSON for a reason far from the
// fields a pattern reads, repeat names, nest deeply or spell names with
// escapes: where deciding from the parts a pattern reads could go wrong.
var selectSeedEvents = []string{
	`{"a":"x", "b": tru}`,
	`{"a":"x","b":{"c":[1,2,}}`,
	`{"a":"x","b":"\q"}`,
	`{"a":"x","b":"` + "\xff" + `"}`,
	`{"a":"x","b":"` + "\x1f" + `"}`,
	`{"a":"x"} x`,
	`{"a":"x","a":"y"}`,
	`{"a":{"b":"x"},"a":{"c":1}}`,
	`{"\u0061":"x","b":"\ud83d\ude00","c":"\ud800"}`,
	`{"a":[{"b":"x","c":1},{"b":"y"}],"b":[[{"c":1}]]}`,
	strings.Repeat(`{"a":`, 511) + `"x"` + strings.Repeat(`}`, 511),
	strings.Repeat(`{"a":`, 513) + `"x"` + strings.Repeat(`}`, 513),
	`{"a":"x","d":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}`,
	` { "a" : "x" , "b" : [ 1 , 2.5e3 , -0 , null , true , false ] } `,
	`"x"`, `300`, `3e2`, `null`, ``, `x`,
}

// FuzzSelectiveMatch checks that a set of patterns decides a record from
// the parts of it the patterns read (MatchSelected) as it does from the
// record's whole view (Match of View). The fuzzer's pattern and event are
// used when they are valid; else they, and the shape bytes, seed a
// generator. Each event is tried as it is, and reshaped: cut short, with
// a byte replaced, with a repeated name, with names spelled as \u escapes,
// nested close to the depth limit and past it.
func FuzzSelectiveMatch(f *testing.F) {
	for i, p := range seedPatterns {
		for j, e := range seedEvents {
			f.Add(p, e, []byte{byte(i), byte(j), byte(i * j)})
		}
	}
	for i, e := range selectSeedEvents {
		f.Add(seedPatterns[i%len(seedPatterns)], e, []byte{byte(i), 7, byte(3 * i)})
	}
	f.Fuzz(func(t *testing.T, patText, evText string, shape []byte) {
		checkSelective(t, patText, evText, shape)
	})
}

// TestSelectiveDifferential is FuzzSelectiveMatch on the seeds and on
// 3000 generated patterns and events, reshaped every way.
func TestSelectiveDifferential(t *testing.T) {
	for i, e := range selectSeedEvents {
		for j, p := range seedPatterns {
			checkSelective(t, p, e, []byte{byte(i), byte(j), byte(i * j)})
		}
	}
	// Around the depth limit, exactly: the value's own nesting plus the
	// levels added.
	const depthLimit = 512
	for n := depthLimit - 4; n <= depthLimit+1; n++ {
		for _, inner := range []string{`"x"`, `{"b":"x"}`, `{"c":"x"}`, `{}`, `[]`, `[{"b":"x"}]`, `[{"c":"x"}]`} {
			for _, open := range []string{"[", `{"a":`} {
				closer := "]"
				if open != "[" {
					closer = "}"
				}
				ev := `{"a":` + strings.Repeat(open, n) + inner + strings.Repeat(closer, n) + `}`
				for _, p := range []string{`{"a":{"b":["x"]}}`, `{"a":["x"]}`, `{"a":{"b":[{"exists":false}]}}`} {
					checkSelective(t, p, ev, []byte{4})
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		checkSelective(t, "", string(b[:32]), b[32:])
	}
}

func checkSelective(t *testing.T, patText, evText string, shape []byte) {
	t.Helper()
	g := &gen{data: []byte(patText + evText + string(shape))}
	if _, err := Compile([]byte(patText)); err != nil {
		patText = g.pattern(0)
	}
	sh := &gen{data: shape}
	// The pattern on the value, the key, both, the value and topic; or the
	// value, ORed with a pattern that matches when the value is not JSON
	// (or is a string), so that the decision says whether it is.
	var texts []string
	switch sh.next(5) {
	case 4:
		texts = []string{`{"value":` + patText + `}`, `{"value":[{"prefix":""}]}`}
	case 0:
		texts = []string{`{"value":` + patText + `}`}
	case 1:
		texts = []string{`{"key":` + patText + `}`}
	case 2:
		texts = []string{`{"key":` + patText + `}`, `{"value":` + patText + `}`}
	default:
		texts = []string{`{"value":` + patText + `,"topic":["t"],"headers":{"a":["x"]}}`}
	}
	var ps []*Pattern
	for _, text := range texts {
		p, err := Compile([]byte(text))
		if err != nil {
			return // beyond a limit once wrapped
		}
		ps = append(ps, p)
	}
	set, err := NewSet(ps...)
	if err != nil {
		t.Fatal(err)
	}
	generated := g.event(0)
	events := []string{evText, generated, reshape(generated, sh), reshape(evText, sh)}
	for _, v := range events {
		for _, k := range []string{generated, v} {
			r := pipeline.Record{Topic: "t", Key: []byte(k), Value: []byte(v),
				Headers: []pipeline.Header{{Key: "a", Value: []byte("x")}, {Key: "b"}}}
			fresh := r
			want := set.Match(r.View())
			if got := set.MatchSelected(&fresh); got != want {
				t.Fatalf("patterns %s\nkey   %q\nvalue %q\nselected match = %v, whole view %v", texts, k, v, got, want)
			}
		}
	}
}

// reshape changes the event text ev as the shape bytes say.
func reshape(ev string, sh *gen) string {
	const depthLimit = 512 // pipeline's maxDepth
	switch sh.next(8) {
	case 0: // cut short
		if len(ev) > 0 {
			return ev[:sh.next(len(ev))]
		}
	case 1: // a byte replaced
		if len(ev) > 0 {
			i := sh.next(len(ev))
			bad := []string{",", "}", "]", `"`, `\`, "\x01", "\xff", "x", " ", "{", "[", ":", "0", "-", "\u00e9"}
			return ev[:i] + bad[sh.next(len(bad))] + ev[i+1:]
		}
	case 2: // a name repeated, with another value before or after
		if strings.HasPrefix(ev, "{") && len(ev) > 2 {
			name := genNames[sh.next(len(genNames))]
			if sh.next(2) == 0 {
				return `{"` + name + `":` + genStrings[sh.next(len(genStrings))] + `,` + ev[1:]
			}
			return ev[:len(ev)-1] + `,"` + name + `":` + genNumbers[sh.next(len(genNumbers))] + `}`
		}
	case 3: // names spelled with escapes
		for _, n := range genNames {
			ev = strings.ReplaceAll(ev, `"`+n+`":`, fmt.Sprintf(`"\u%04x":`, n[0]))
		}
		return ev
	case 4: // nested close to the depth limit, or past it
		n := depthLimit - 3 + sh.next(6)
		if sh.next(2) == 0 {
			return strings.Repeat(`[`, n) + ev + strings.Repeat(`]`, n)
		}
		return strings.Repeat(`{"a":`, n) + ev + strings.Repeat(`}`, n)
	case 5: // white space everywhere
		r := strings.NewReplacer(",", " ,\n", ":", "\t: ", "{", "{ ", "}", " }\r\n")
		return r.Replace(ev)
	}
	return ev
}
