package expr_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/expr"
)

// order is a record as the source hands it over: a JSON key and value,
// headers with one name repeated.
func order() *pipeline.Record {
	return &pipeline.Record{
		Topic:         "orders",
		Partition:     3,
		Offset:        42,
		Timestamp:     time.UnixMilli(1715941293512).In(time.FixedZone("CEST", 2*3600)),
		TimestampType: pipeline.LogAppendTime,
		Key:           []byte(`{"id":7}`),
		Value:         []byte(`{"amount":249.9,"customer":{"country":"DE","email":null},"items":[{"sku":"a"},{"sku":"b"}],"ip":"10.1.2.3","big":12345678901234567890}`),
		Headers: []pipeline.Header{
			{Key: "source", Value: []byte("mobile")},
			{Key: "trace", Value: []byte("abc")},
			{Key: "source", Value: []byte("web")},
			{Key: "empty", Value: nil},
		},
	}
}

// eval compiles src (any result) and runs it on r.
func eval(t *testing.T, src string, r *pipeline.Record) (any, error) {
	t.Helper()
	p, err := expr.Compile(src, false)
	if err != nil {
		t.Fatalf("compiling %q: %v", src, err)
	}
	if p.String() != src {
		t.Errorf("String() = %q, want %q", p.String(), src)
	}
	return p.Run(expr.NewEnv(r))
}

// TestEnvironment evaluates every documented name and helper against one
// record and compares the result with its Go value.
func TestEnvironment(t *testing.T) {
	plain := order()
	plain.Key = []byte("user-7")
	plain.Value = []byte("Hello, {not JSON}")
	noKey := order()
	noKey.Key = nil
	noKey.Value = nil
	noKey.Headers = nil
	noKey.TimestampType = pipeline.CreateTime

	cases := []struct {
		src  string
		rec  *pipeline.Record
		want any
	}{
		// Coordinates and metadata.
		{`topic`, order(), "orders"},
		{`partition`, order(), 3},
		{`offset`, order(), 42},
		{`offset + partition`, order(), 45},
		{`timestamp`, order(), 1715941293512},
		{`time.UnixMilli()`, order(), int64(1715941293512)},
		{`time.Year() * 10000 + int(time.Month()) * 100 + time.Day()`, order(), 20240517},
		{`timestampType`, order(), "LOG_APPEND_TIME"},
		{`timestampType`, noKey, "CREATE_TIME"},

		// Key and value, decoded as JSON; numbers are float64.
		{`key`, order(), map[string]any{"id": 7.0}},
		{`key.id`, order(), 7.0},
		{`value.amount`, order(), 249.9},
		{`value.amount > 100 && value.customer.country == "DE"`, order(), true},
		{`value["customer"]["country"]`, order(), "DE"},
		{`value.items[1].sku`, order(), "b"},
		{`len(value.items)`, order(), 2},
		{`map(value.items, .sku)`, order(), []any{"a", "b"}},
		{`value.customer.email`, order(), nil},
		{`value.big`, order(), 12345678901234567890.0},

		// Not JSON: the text; no key: nil; missing fields: nil.
		{`key`, plain, "user-7"},
		{`value`, plain, "Hello, {not JSON}"},
		{`value startsWith "Hello"`, plain, true},
		{`key`, noKey, nil},
		{`value`, noKey, nil},
		{`key == nil && value == nil`, noKey, true},
		{`value.missing`, order(), nil},
		{`value.missing == nil`, order(), true},
		{`value.missing?.deeper`, order(), nil},
		{`value.missing?.deeper ?? "none"`, order(), "none"},
		{`value.customer?.country ?? "none"`, order(), "DE"},

		// The raw bytes as text.
		{`rawKey`, order(), `{"id":7}`},
		{`rawValue`, plain, "Hello, {not JSON}"},
		{`rawKey`, noKey, ""},
		{`rawValue`, noKey, ""},
		{`fromJSON(rawValue).customer.country`, order(), "DE"},

		// Headers: text values; the last of a repeated name wins; a
		// missing header reads as "" (a map of strings), and `in` tells.
		{`headers.source`, order(), "web"},
		{`headers["trace"]`, order(), "abc"},
		{`headers["empty"]`, order(), ""},
		{`"empty" in headers`, order(), true},
		{`"nope" in headers`, order(), false},
		{`headers["nope"]`, order(), ""},
		{`len(headers)`, order(), 3},
		{`len(headers)`, noKey, 0},

		// has: a key that holds null counts.
		{`has(value, "amount")`, order(), true},
		{`has(value.customer, "email")`, order(), true},
		{`has(value.customer, "phone")`, order(), false},
		{`has(value.items, "sku")`, order(), false},
		{`has(value, "x")`, plain, false},

		// str: strings as they are, the rest as JSON with sorted keys.
		{`str(value.customer.country)`, order(), "DE"},
		{`str(value.customer)`, order(), `{"country":"DE","email":null}`},
		{`str(value.items)`, order(), `[{"sku":"a"},{"sku":"b"}]`},
		{`str(value.amount)`, order(), "249.9"},
		{`str(key.id)`, order(), "7"},
		{`str(nil)`, order(), "null"},
		{`str(value.missing)`, order(), "null"},
		{`str(true)`, order(), "true"},

		// cidr: IPv4, IPv6, an IPv4-mapped IPv6 address, not an address.
		{`cidr(value.ip, "10.0.0.0/8")`, order(), true},
		{`cidr(value.ip, "10.2.0.0/16")`, order(), false},
		{`cidr("2001:db8::1", "2001:db8::/32")`, order(), true},
		{`cidr("2001:db9::1", "2001:db8::/32")`, order(), false},
		{`cidr("::ffff:10.1.2.3", "10.0.0.0/8")`, order(), true},
		{`cidr("10.1.2.3", "2001:db8::/32")`, order(), false},
		{`cidr("not an address", "10.0.0.0/8")`, order(), false},
		{`cidr(headers.trace, "10.0.0.0/8")`, order(), false},

		// Built-ins of the language are there.
		{`upper(headers.source) + "/" + lower(topic)`, order(), "WEB/orders"},
		{`any(value.items, .sku == "b")`, order(), true},
		{`split(value, ", ")[0]`, plain, "Hello"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			got, err := eval(t, c.src, c.rec)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, c.want, c.want)
			}
		})
	}
}

// TestTimeIsTheRecordTimestamp: time carries the record's instant, in UTC
// whatever the process's time zone.
func TestTimeIsTheRecordTimestamp(t *testing.T) {
	r := order()
	got, err := eval(t, `time`, r)
	if err != nil {
		t.Fatal(err)
	}
	tm, ok := got.(time.Time)
	if !ok || !tm.Equal(r.Timestamp) || tm.Location() != time.UTC {
		t.Fatalf("time = %#v, want %v", got, r.Timestamp)
	}
	if got, err := eval(t, `time.Hour()`, r); err != nil || got != 10 {
		t.Fatalf("time.Hour() = %v, %v; want 10 (10:21 UTC, 12:21 CEST)", got, err)
	}
}

// TestNewEnvDecodesTheView: key and value come from the record's view, not
// from a decoding of their own, so a view decoded earlier is what the
// expression sees.
func TestNewEnvDecodesTheView(t *testing.T) {
	r := order()
	r.View() // decoded now, and kept
	r.Value = []byte(`{"amount":1}`)
	got, err := eval(t, `[value.amount, fromJSON(rawValue).amount]`, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{249.9, 1.0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v (value from the view, rawValue from the bytes)", got, want)
	}
	r.ResetView()
	if got, err := eval(t, `value.amount`, r); err != nil || got != 1.0 {
		t.Fatalf("after ResetView: value.amount = %v, %v; want 1", got, err)
	}
}

// TestEnvDoesNotShareMaps: the maps an expression sees are its own; an
// expression cannot change the record's view.
func TestEnvDoesNotShareMaps(t *testing.T) {
	r := order()
	env := expr.NewEnv(r)
	env.Value.(map[string]any)["amount"] = "changed"
	env.Headers["source"] = "changed"
	if got, err := eval(t, `[value.amount, headers.source]`, r); err != nil || !reflect.DeepEqual(got, []any{249.9, "web"}) {
		t.Fatalf("got %v, %v; want the record's own values", got, err)
	}
}

// TestRuntimeErrors: failures while evaluating are errors, with expr-lang's
// message and no excerpt of the source or of record data over lines.
func TestRuntimeErrors(t *testing.T) {
	cases := []struct {
		src, msg string
	}{
		{`value.missing.deeper`, "cannot fetch deeper from <nil>"},
		{`value.items[5].sku`, "index out of range: 5 (array length is 2)"},
		{`value.customer.country > 1`, "invalid operation: string > int"},
		{`cidr(value.ip, "10.0.0.0")`, `cidr: "10.0.0.0" is not a CIDR range`},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			got, err := eval(t, c.src, order())
			if err == nil {
				t.Fatalf("no error; got %#v", got)
			}
			if err.Error() != c.msg {
				t.Fatalf("error %q, want %q", err.Error(), c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err.Error())
			}
		})
	}
}

// TestRunBool: a filter program yields a boolean, or an error when the
// result of an untyped expression is not one.
func TestRunBool(t *testing.T) {
	p, err := expr.Compile(`value.amount > 100`, true)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.RunBool(expr.NewEnv(order())); !ok || err != nil {
		t.Fatalf("RunBool = %v, %v; want true", ok, err)
	}
	small := order()
	small.Value = []byte(`{"amount":5}`)
	if ok, err := p.RunBool(expr.NewEnv(small)); ok || err != nil {
		t.Fatalf("RunBool = %v, %v; want false", ok, err)
	}
	// value.customer has type any when compiled: the check happens at run
	// time.
	p, err = expr.Compile(`value.customer`, true)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.RunBool(expr.NewEnv(order()))
	if ok || err == nil {
		t.Fatalf("RunBool on a map = %v, %v; want an error", ok, err)
	}
}

// TestCompileErrors: compile errors carry line and column within the
// expression (1-based) and the type checks of the environment.
func TestCompileErrors(t *testing.T) {
	cases := []struct {
		src    string
		asBool bool
		want   string
	}{
		{``, true, "expression line 1, column 1: is empty"},
		{" \n\t", false, "expression line 1, column 1: is empty"},
		{`valu.amount > 1`, true, "expression line 1, column 1: unknown name valu"},
		{`value.amount > "x" + 1`, true, "expression line 1, column 20: invalid operation: + (mismatched types string and int)"},
		{`topic + 1`, false, "expression line 1, column 7: invalid operation: + (mismatched types string and int)"},
		{`partition == "3"`, true, "expression line 1, column 11: invalid operation: == (mismatched types int and string)"},
		{`1 + 1`, true, "expression line 1, column 1: expected bool, but got int"},
		{`topic`, true, "expression line 1, column 1: expected bool, but got string"},
		{`has(value)`, true, "expression line 1, column 1: not enough arguments to call has"},
		{"value.amount > 1 &&\n  nosuch == 2", true, "expression line 2, column 3: unknown name nosuch"},
		{`value.amount +`, false, "expression line 1, column 14: unexpected token EOF"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			p, err := expr.Compile(c.src, c.asBool)
			if err == nil {
				t.Fatalf("compiled: %v", p)
			}
			var ee *expr.Error
			if !errors.As(err, &ee) {
				t.Fatalf("error %T, want *expr.Error: %v", err, err)
			}
			if err.Error() != c.want {
				t.Fatalf("error\n  %s\nwant\n  %s", err, c.want)
			}
		})
	}
	// A transform may yield anything.
	for _, src := range []string{`1 + 1`, `topic`, `value`, `{"id": key.id}`, `nil`} {
		if _, err := expr.Compile(src, false); err != nil {
			t.Errorf("Compile(%q, false): %v", src, err)
		}
	}
}

// TestKind: errors that differ only in quoted values and numbers are one
// kind; different messages are different kinds; a long message is cut.
func TestKind(t *testing.T) {
	same := [][2]string{
		{"index out of range: 5 (array length is 2)", "index out of range: 17 (array length is 3)"},
		{`cidr: "10.0.0.0" is not a CIDR range`, `cidr: "x/99" is not a CIDR range`},
		{`cannot fetch 'a' from <nil>`, `cannot fetch 'bb' from <nil>`},
	}
	for _, p := range same {
		a, b := expr.Kind(errors.New(p[0])), expr.Kind(errors.New(p[1]))
		if a != b {
			t.Errorf("Kind(%q) = %q, Kind(%q) = %q; want the same", p[0], a, p[1], b)
		}
		if strings.ContainsAny(a, "0123456789") {
			t.Errorf("Kind(%q) = %q keeps digits", p[0], a)
		}
	}
	if got, want := expr.Kind(errors.New("index out of range: 5 (array length is 2)")), "index out of range: N (array length is N)"; got != want {
		t.Errorf("Kind = %q, want %q", got, want)
	}
	if got, want := expr.Kind(errors.New(`cidr: "secret-ish" is not a CIDR range`)), "cidr: … is not a CIDR range"; got != want {
		t.Errorf("Kind = %q, want %q", got, want)
	}
	if a, b := expr.Kind(errors.New("invalid operation: string > int")), expr.Kind(errors.New("invalid operation: bool > int")); a == b {
		t.Errorf("different errors share the kind %q", a)
	}
	long := expr.Kind(errors.New(strings.Repeat("x", 1000)))
	if len(long) > 130 {
		t.Errorf("Kind of a 1000-byte message is %d bytes long", len(long))
	}
}
