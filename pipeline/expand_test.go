package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// fakeExpander resolves references from maps instead of the process
// environment and the file system.
func fakeExpander(env map[string]string, files map[string]string) expander {
	return expander{
		lookupEnv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		readFile: func(path string) ([]byte, error) {
			if v, ok := files[path]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		},
	}
}

func TestExpand(t *testing.T) {
	x := fakeExpander(
		map[string]string{"TOKEN": "t0k", "EMPTY": "", "REF": "${TOKEN}", "DOLLAR": "$$", "_x9": "under"},
		map[string]string{
			"/s/token": "file-secret\n", "/s/crlf": "win\r\n", "/s/two": "a\n\n", "/s/none": "raw",
			"/s/inner": "keep\ninner\n", "/s/empty": "", "/s/ref": "${TOKEN}\n",
		})
	for _, c := range []struct {
		in, want string
		found    bool
	}{
		{"plain", "plain", false},
		{"", "", false},
		{"$", "$", false},
		{"costs $5", "costs $5", false},
		{"a$b$", "a$b$", false},
		{"$$", "$", true},
		{"$$$$", "$$", true},
		{"$${TOKEN}", "${TOKEN}", true},
		{"$$$", "$$", true},
		{"${TOKEN}", "t0k", true},
		{"Bearer ${TOKEN}!", "Bearer t0k!", true},
		{"${TOKEN}${TOKEN}", "t0kt0k", true},
		{"${_x9}", "under", true},
		{"${UNSET:-fallback}", "fallback", true},
		{"${UNSET:-}", "", true},
		{"${UNSET:-a:-b}", "a:-b", true},
		{"${UNSET:-http://h:80/}", "http://h:80/", true},
		{"${TOKEN:-fallback}", "t0k", true},
		{"${EMPTY}", "", true},
		{"${EMPTY:-fallback}", "fallback", true}, // as in the shell, empty counts as unset with :-
		{"${REF}", "${TOKEN}", true},             // values are not expanded again
		{"${DOLLAR}", "$$", true},
		{"${file:/s/token}", "file-secret", true},
		{"${file:/s/crlf}", "win", true},
		{"${file:/s/two}", "a\n", true}, // one trailing newline only
		{"${file:/s/none}", "raw", true},
		{"${file:/s/inner}", "keep\ninner", true},
		{"${file:/s/empty}", "", true},
		{"${file:/s/ref}", "${TOKEN}", true},
		{"u:${file:/s/none}:${TOKEN}", "u:raw:t0k", true},
	} {
		got, found, err := x.expand(c.in)
		if err != nil || got != c.want || found != c.found {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", c.in, got, found, err, c.want, c.found)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"${UNSET}", "environment variable UNSET is not set (use ${UNSET:-default} for a default)"},
		{"a-${TOKEN}-${UNSET}", "environment variable UNSET is not set (use ${UNSET:-default} for a default)"},
		{"${}", "${}: not a valid environment variable name"},
		{"${9LIVES}", "${9LIVES}: not a valid environment variable name"},
		{"${A-B}", "${A-B}: not a valid environment variable name"},
		{"${ TOKEN }", "${ TOKEN }: not a valid environment variable name"},
		{"${:-x}", "${}: not a valid environment variable name"},
		{"${TOKEN", "unterminated ${ reference (write $$ for a literal $)"},
		{"x${", "unterminated ${ reference (write $$ for a literal $)"},
		{"${file:}", "${file:} needs a path"},
		{"${file:/s/missing}", "${file:/s/missing}: cannot read the file: file does not exist"},
	} {
		got, _, err := x.expand(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("expand(%q) = %q, %v; want error %q", c.in, got, err, c.want)
		}
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.WriteFile(full, make([]byte, maxSecretFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readSecretFile(full); err != nil || len(data) != maxSecretFile {
		t.Fatalf("a file of exactly %d bytes: %d bytes, %v", maxSecretFile, len(data), err)
	}
	over := filepath.Join(dir, "over")
	if err := os.WriteFile(over, make([]byte, maxSecretFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readSecretFile(over); err == nil {
		t.Fatal("a file over the limit was read")
	}
	// An endless file stops at the limit instead of filling memory.
	if _, err := readSecretFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("/dev/zero: %v", err)
	}
	_, _, err := defaultExpander.expand("${file:" + dir + "}")
	if err == nil || err.Error() != "${file:"+dir+"}: cannot read the file: is a directory" {
		t.Fatalf("directory: %v", err)
	}
	_, _, err = defaultExpander.expand("${file:" + filepath.Join(dir, "missing") + "}")
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want it to wrap fs.ErrNotExist", err)
	}
}

// typed has a field of every kind the decoder supports, to check that a
// reference's text is parsed as the field's type.
type typed struct {
	Int      int               `yaml:"int"`
	Int8     int8              `yaml:"int8"`
	Bool     bool              `yaml:"bool"`
	Float    float64           `yaml:"float"`
	Duration time.Duration     `yaml:"duration"`
	Size     Size              `yaml:"size"`
	Time     time.Time         `yaml:"time"`
	Secret   Secret            `yaml:"secret"`
	List     []string          `yaml:"list"`
	Ints     []int             `yaml:"ints"`
	Map      map[string]string `yaml:"map"`
	Nested   *struct {
		Level string `yaml:"level" enum:"low,high"`
	} `yaml:"nested"`
}

func decodeTyped(t *testing.T, x expander, src string) (typed, Problems) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var v typed
	d := &decoder{file: "t.yaml", x: x}
	d.decode(doc.Content[0], reflect.ValueOf(&v).Elem(), nil, "")
	return v, d.problems
}

func TestExpandedValuesAreTyped(t *testing.T) {
	x := fakeExpander(map[string]string{
		"INT": "0x1F", "INT8": "-128", "BOOL": "true", "FLOAT": "2.5e3", "DUR": "1m30s", "SIZE": "6MB",
		"TIME": "2024-05-06T07:08:09Z", "SECRET": "pa$$word", "ONE": "one", "LEVEL": "high",
	}, map[string]string{"/run/secret": "s3cr3t\n"})
	v, ps := decodeTyped(t, x, `
int: ${INT}
int8: ${INT8}
bool: ${BOOL}
float: ${FLOAT}
duration: ${DUR}
size: ${SIZE}
time: ${TIME}
secret: ${file:/run/secret}-${SECRET}
list: [a, "${ONE}", b$$]
ints: ["${INT}", 2]
map: {k: "${ONE}", "${ONE}": v}
nested: {level: "${LEVEL}"}
`)
	if len(ps) > 0 {
		t.Fatalf("problems:\n%v", ps)
	}
	want := typed{
		Int: 31, Int8: -128, Bool: true, Float: 2500, Duration: 90 * time.Second, Size: 6 << 20,
		Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Secret: "s3cr3t-pa$$word",
		List: []string{"a", "one", "b$"}, Ints: []int{31, 2},
		Map: map[string]string{"k": "one", "${ONE}": "v"}, // keys are not expanded
	}
	want.Nested = &struct {
		Level string `yaml:"level" enum:"low,high"`
	}{Level: "high"}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", v, want)
	}
}

// TestExpandedValuesNeverShown gives every field a bad value through a
// reference: each is reported, by its reference, and no value appears.
func TestExpandedValuesNeverShown(t *testing.T) {
	env := map[string]string{
		"INT": "int-secret", "BIG": "300", "BOOL": "bool-secret", "FLOAT": "NaN", "DUR": "dur-secret",
		"SIZE": "size-secret", "TIME": "time-secret", "LEVEL": "level-secret",
	}
	x := fakeExpander(env, map[string]string{"/run/int": "file-secret\n"})
	_, ps := decodeTyped(t, x, `
int: ${file:/run/int}
int8: ${BIG}
bool: ${BOOL}
float: ${FLOAT}
duration: ${DUR}
size: ${SIZE}
time: ${TIME}
ints: ["${INT}"]
nested: {level: "x${LEVEL}"}
`)
	want := Problems{
		{File: "t.yaml", Line: 2, Column: 6, Path: "int", Msg: "expected an integer, got the value of ${file:/run/int}"},
		{File: "t.yaml", Line: 3, Column: 7, Path: "int8", Msg: "integer out of range for 8 bits, got the value of ${BIG}"},
		{File: "t.yaml", Line: 4, Column: 7, Path: "bool", Msg: "expected a boolean (true or false), got the value of ${BOOL}"},
		{File: "t.yaml", Line: 5, Column: 8, Path: "float", Msg: "expected a finite number, got the value of ${FLOAT}"},
		{File: "t.yaml", Line: 6, Column: 11, Path: "duration", Msg: "expected a duration like 500ms, 30s or 5m, got the value of ${DUR}"},
		{File: "t.yaml", Line: 7, Column: 7, Path: "size", Msg: "expected a size like 512KB, 6MB or 1GB, got the value of ${SIZE}"},
		{File: "t.yaml", Line: 8, Column: 7, Path: "time", Msg: "expected an RFC 3339 timestamp like 2026-01-02T15:04:05Z, got the value of ${TIME}"},
		{File: "t.yaml", Line: 9, Column: 8, Path: "ints[0]", Msg: "expected an integer, got the value of ${INT}"},
		{File: "t.yaml", Line: 10, Column: 17, Path: "nested.level", Msg: "must be one of low, high, got the value of x${LEVEL}"},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("problems\n%v\nwant\n%v", ps, want)
	}
	for name, v := range env {
		if v != "300" && v != "NaN" && strings.Contains(ps.Error(), v) {
			t.Errorf("the value of %s appears: %s", name, ps.Error())
		}
	}
	if strings.Contains(ps.Error(), "file-secret") {
		t.Errorf("the file's content appears: %s", ps.Error())
	}
}

// TestLiteralValuesMustHaveTheirType: without a reference the YAML type must
// fit the field; quoting a number makes it a string.
func TestLiteralValuesMustHaveTheirType(t *testing.T) {
	_, ps := decodeTyped(t, expander{}, `
int: "5"
bool: yes
float: "1.5"
size: [1]
secret: ~
list: {a: b}
nested: [x]
`)
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	want := []string{
		`t.yaml:2:6: int: expected an integer, got a string "5"`,
		`t.yaml:3:7: bool: expected a boolean (true or false), got a string "yes"`,
		`t.yaml:4:8: float: expected a number, got a string "1.5"`,
		`t.yaml:5:7: size: expected a size like 6MB, got a list`,
		`t.yaml:6:9: secret: expected a string, got null`,
		`t.yaml:7:7: list: expected a list, got a mapping`,
		`t.yaml:8:9: nested: expected a mapping, got a list`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
