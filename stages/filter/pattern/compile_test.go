package pattern_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pipe-run/pipe/stages/filter/pattern"
)

type errorCase struct {
	pattern string
	path    string // Path joined with "/"
	msg     string // a substring of Msg
	offset  int    // -2: do not check
}

var errorCases = []errorCase{
	{`[]`, "", "a pattern is a JSON object, not an array", 0},
	{`"x"`, "", "not a string", 0},
	{`{}`, "", "empty objects are not allowed", 0},
	{`{"a":`, "", "invalid JSON", 5},
	{`{"a": ["x",]}`, "", "invalid JSON", 11},
	{`{"a": ["x"]} x`, "", "invalid JSON", 13},
	{"{\"a\": [\"\xff\"]}", "", "not valid UTF-8", 8},
	{`{"a": {}}`, "a", "empty objects are not allowed", 6},
	{`{"a": []}`, "a", "empty arrays are not allowed", 6},
	{`{"a": "x"}`, "a", `"a" must be an object or an array of values to match, not a string; write ["x"]`, 6},
	{`{"a": 5}`, "a", "not a number", 6},
	{`{"a": null}`, "a", "not null", 6},
	{`{"a": [["x"]]}`, "a/0", "not arrays", 7},
	{`{"a": [{}]}`, "a/0", "empty operator object", 7},
	{`{"a": [{"prefix": "x", "suffix": "y"}]}`, "a/0/suffix", `found "suffix" after "prefix"`, 33},
	{`{"a": [{"contains": "x"}]}`, "a/0", `unknown operator "contains"`, 7},
	{`{"a": [{"Prefix": "x"}]}`, "a/0", `unknown operator "Prefix"`, 7},
	{`{"a": [{"prefix": 5}]}`, "a/0/prefix", "prefix takes a string", 18},
	{`{"a": [{"prefix": {"exactly": "x"}}]}`, "a/0/prefix", `not "exactly"`, 18},
	{`{"a": [{"prefix": {"equals-ignore-case": 1}}]}`, "a/0/prefix/equals-ignore-case", "equals-ignore-case takes a string", 41},
	{`{"a": [{"suffix": ["x"]}]}`, "a/0/suffix", "suffix takes a string", 18},
	{`{"a": [{"suffix": {}}]}`, "a/0/suffix", "suffix takes a string", 18},
	{`{"a": [{"equals-ignore-case": ["x"]}]}`, "a/0/equals-ignore-case", "equals-ignore-case takes a string", -2},
	{`{"a": [{"exactly": 5}]}`, "a/0/exactly", "exactly takes a string", -2},
	{`{"a": [{"wildcard": "a**b"}]}`, "a/0/wildcard", "consecutive wildcard characters at position 1", 20},
	{`{"a": [{"wildcard": "**"}]}`, "a/0/wildcard", "consecutive wildcard", -2},
	{`{"a": [{"wildcard": "a\\b"}]}`, "a/0/wildcard", "invalid escape at position 1", -2},
	{`{"a": [{"wildcard": "a\\"}]}`, "a/0/wildcard", "invalid escape", -2},
	{`{"a": [{"wildcard": 1}]}`, "a/0/wildcard", "wildcard takes a string", -2},
	{`{"a": [{"numeric": 5}]}`, "a/0/numeric", "numeric takes an array", 19},
	{`{"a": [{"numeric": []}]}`, "a/0/numeric", "numeric needs an operator and a number", -2},
	{`{"a": [{"numeric": [">"]}]}`, "a/0/numeric", `">" needs a number after it`, -2},
	{`{"a": [{"numeric": [5, ">"]}]}`, "a/0/numeric/0", "expected a comparison operator", 20},
	{`{"a": [{"numeric": ["!=", 5]}]}`, "a/0/numeric/0", `unknown numeric operator "!="`, -2},
	{`{"a": [{"numeric": [">", "5"]}]}`, "a/0/numeric/1", `the value after ">" must be a number, not "5"`, 25},
	{`{"a": [{"numeric": ["=", 5, 6]}]}`, "a/0/numeric/2", "too many elements", -2},
	{`{"a": [{"numeric": ["<", 5, ">", 1]}]}`, "a/0/numeric/2", "write the lower bound first", -2},
	{`{"a": [{"numeric": [">", 5, "<"]}]}`, "a/0/numeric", `"<" needs a number after it`, -2},
	{`{"a": [{"numeric": [">", 5, "=", 9]}]}`, "a/0/numeric/2", `a range continues with "<" or "<=", not "="`, -2},
	{`{"a": [{"numeric": [">", 5, "<", 5]}]}`, "a/0/numeric/3", "lower bound 5 must be less than the upper bound 5", -2},
	{`{"a": [{"numeric": [">=", 9, "<=", 1]}]}`, "a/0/numeric/3", "must be less than", -2},
	{`{"a": [{"numeric": [">", 0, "<", 5, 6]}]}`, "a/0/numeric/4", "too many elements", -2},
	{`{"a": [{"numeric": [">", 1e400]}]}`, "a/0/numeric/1", "out of the range of numbers", -2},
	{`{"a": [{"exists": "true"}]}`, "a/0/exists", "exists takes true or false", 18},
	{`{"a": [{"exists": 1}]}`, "a/0/exists", "exists takes true or false", -2},
	{`{"a": [{"cidr": 10}]}`, "a/0/cidr", "cidr takes a string", -2},
	{`{"a": [{"cidr": "10.0.0.0"}]}`, "a/0/cidr", "one '/' required", 16},
	{`{"a": [{"cidr": "10.0.0.0/x"}]}`, "a/0/cidr", "mask bits must be an integer", -2},
	{`{"a": [{"cidr": "10.0.0.0/-1"}]}`, "a/0/cidr", "must not be negative", -2},
	{`{"a": [{"cidr": "10.0.0.0/32"}]}`, "a/0/cidr", "IPv4 mask bits must be < 32", -2},
	{`{"a": [{"cidr": "::/128"}]}`, "a/0/cidr", "IPv6 mask bits must be < 128", -2},
	{`{"a": [{"cidr": "300.0.0.0/8"}]}`, "a/0/cidr", "invalid IP address", -2},
	{`{"a": [{"cidr": "example.com/8"}]}`, "a/0/cidr", "invalid IP address", -2},
	{`{"a": [{"cidr": "10.0.0.0/8/8"}]}`, "a/0/cidr", "one '/' required", -2},
	{`{"a": [{"anything-but": null}]}`, "a/0/anything-but", "anything-but takes a string, a number", 24},
	{`{"a": [{"anything-but": true}]}`, "a/0/anything-but", "not a boolean", -2},
	{`{"a": [{"anything-but": []}]}`, "a/0/anything-but", "needs at least one value", -2},
	{`{"a": [{"anything-but": ["x", 1]}]}`, "a/0/anything-but/1", "only strings or only numbers", 30},
	{`{"a": [{"anything-but": [null]}]}`, "a/0/anything-but/0", "holds strings or numbers, not null", -2},
	{`{"a": [{"anything-but": [["x"]]}]}`, "a/0/anything-but/0", "not an array", -2},
	{`{"a": [{"anything-but": {"numeric": [">", 1]}}]}`, "a/0/anything-but/numeric", `does not take "numeric"`, -2},
	{`{"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}`, "a/0/anything-but", "found 2 keys", -2},
	{`{"a": [{"anything-but": {"prefix": ""}}]}`, "a/0/anything-but/prefix", "non-empty string", -2},
	{`{"a": [{"anything-but": {"suffix": ["x", ""]}}]}`, "a/0/anything-but/suffix/1", "non-empty string", -2},
	{`{"a": [{"anything-but": {"prefix": []}}]}`, "a/0/anything-but/prefix", "needs at least one string", -2},
	{`{"a": [{"anything-but": {"prefix": 5}}]}`, "a/0/anything-but/prefix", "takes a string or a list of strings", -2},
	{`{"a": [{"anything-but": {"equals-ignore-case": [1]}}]}`, "a/0/anything-but/equals-ignore-case/0", "takes strings", -2},
	{`{"a": [{"anything-but": {"wildcard": "a**"}}]}`, "a/0/anything-but/wildcard", "consecutive wildcard", -2},
	{`{"a": [{"anything-but": {"wildcard": ["ok*", "x\\y"]}}]}`, "a/0/anything-but/wildcard/1", "invalid escape", -2},
	{`{"a": [{"anything-but": 1e400}]}`, "a/0/anything-but", "out of the range", -2},
	{`{"$or": [{"a": ["x"]}]}`, "$or", "at least two objects; it has 1", 8},
	{`{"$or": []}`, "$or", "it has 0", -2},
	{`{"$or": {"a": ["x"]}}`, "$or", "$or takes an array", -2},
	{`{"$or": [{"a": ["x"]}, "b"]}`, "$or/1", "$or takes objects only, not a string", 23},
	{`{"$or": [{"a": ["x"]}, {}]}`, "$or/1", "empty objects are not allowed", -2},
	{`{"$or": [{"a": ["x"]}, {"prefix": ["b"]}]}`, "$or/1/prefix", `"prefix" is an operator name`, -2},
	{`{"$or": [{"a": ["x"]}, {"b": {"numeric": ["x"]}}]}`, "$or/1/b/numeric", `"numeric" is an operator name`, -2},
	{`{"d": {"$or": [{"a": ["x"]}, {"b": [{"nope": 1}]}]}}`, "d/$or/1/b/0", `unknown operator "nope"`, -2},
	{`{"a": [{"prefix": "x"}], "b": [{"suffix": 1}]}`, "b/0/suffix", "suffix takes a string", -2},
}

func TestCompileErrors(t *testing.T) {
	for i, c := range errorCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := pattern.Compile([]byte(c.pattern))
			if err == nil {
				t.Fatalf("Compile(%s) = %v, want an error", c.pattern, p)
			}
			var pe *pattern.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *pattern.Error", err, err)
			}
			if got := strings.Join(pe.Path, "/"); got != c.path {
				t.Errorf("Path = %q, want %q (%v)", got, c.path, err)
			}
			if !strings.Contains(pe.Msg, c.msg) {
				t.Errorf("Msg = %q, want it to contain %q", pe.Msg, c.msg)
			}
			if c.offset != -2 && pe.Offset != c.offset {
				t.Errorf("Offset = %d, want %d (%v)", pe.Offset, c.offset, err)
			}
			if pe.Offset < -1 || pe.Offset > len(c.pattern) {
				t.Errorf("Offset %d is outside the pattern", pe.Offset)
			}
			if !strings.Contains(err.Error(), pe.Msg) {
				t.Errorf("Error() = %q does not carry the message", err.Error())
			}
		})
	}
}

func TestCompileLimits(t *testing.T) {
	// 4096 characters is fine, 4097 is not; characters count as UTF-16
	// code units, so "é" is one and "😀" two.
	pad := func(n int, unit string) string {
		head, tail := `{"a":["`, `"]}`
		return head + strings.Repeat(unit, n-len(head)-len(tail)) + tail
	}
	if _, err := pattern.Compile([]byte(pad(4096, "x"))); err != nil {
		t.Errorf("4096 characters: %v", err)
	}
	_, err := pattern.Compile([]byte(pad(4097, "x")))
	var pe *pattern.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "4097 characters long; the limit is 4096") {
		t.Errorf("4097 characters: %v", err)
	}
	if _, err := pattern.Compile([]byte(pad(4096, "é"))); err != nil {
		t.Errorf("4096 characters of é (8 KB of UTF-8): %v", err)
	}
	long := `{"a":["` + strings.Repeat("😀", 2046) + `"]}` // 10 + 2*2046 = 4102 units
	if _, err := pattern.Compile([]byte(long)); err == nil {
		t.Errorf("2046 emoji count as 4092 characters plus 10: want an error")
	}

	// $or combinations multiply across parallel $or and add within one.
	or := func(n int, field string) string {
		var bs []string
		for i := 0; i < n; i++ {
			bs = append(bs, fmt.Sprintf(`{%q:[%d]}`, field, i))
		}
		return `[` + strings.Join(bs, ",") + `]`
	}
	ok := `{"x":{"$or":` + or(10, "a") + `},"y":{"$or":` + or(10, "b") + `},"z":{"$or":` + or(10, "c") + `}}`
	p, err := pattern.Compile([]byte(ok))
	if err != nil {
		t.Fatalf("1000 combinations: %v", err)
	}
	if !p.Match(mustJSON(t, `{"x":{"a":9},"y":{"b":0},"z":{"c":5}}`)) {
		t.Errorf("the 1000-combination pattern does not match an event it should")
	}
	tooMany := `{"x":{"$or":` + or(10, "a") + `},"y":{"$or":` + or(10, "b") + `},"z":{"$or":` + or(11, "c") + `}}`
	_, err = pattern.Compile([]byte(tooMany))
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "more than 1000") || strings.Join(pe.Path, "/") != "z/$or" {
		t.Errorf("1100 combinations: %v", err)
	}
	// Nested $or inside a branch adds its alternatives to that branch only:
	// 2 + 1 = 3 here, not 4.
	nested := `{"$or":[{"a":[1]},{"b":[1],"$or":[{"c":[1]},{"d":[1]}]}]}`
	if _, err := pattern.Compile([]byte(nested)); err != nil {
		t.Errorf("nested $or: %v", err)
	}
	// Deep nesting of $or blows up quickly and is rejected without
	// building every alternative first.
	deep := `{"$or":[{"a":[1]},{"b":[1]}]}`
	for i := 0; i < 12; i++ {
		deep = fmt.Sprintf(`{"k%d":{"$or":[%s,%s]}}`, i, deep, deep)
	}
	if _, err := pattern.Compile([]byte(deep)); err == nil {
		t.Errorf("2^13 combinations: want an error")
	}
}

func TestPatternString(t *testing.T) {
	src := `{ "value": { "a": [ 1 ] } }`
	if got := pattern.MustCompile(src).String(); got != src {
		t.Errorf("String() = %q, want %q", got, src)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("MustCompile of a bad pattern did not panic")
		}
	}()
	pattern.MustCompile(`{}`)
}
