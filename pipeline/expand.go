package pipeline

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// expander resolves ${NAME}, ${NAME:-default} and ${file:/path} references in
// config values. "$$" stands for a literal "$". As in the shell, the default
// applies when NAME is unset or empty.
type expander struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

var defaultExpander = expander{lookupEnv: os.LookupEnv, readFile: readSecretFile}

// maxSecretFile bounds what ${file:} reads: a secret is one value, and a
// wrong path (a log, /dev/zero) must not exhaust memory at load.
const maxSecretFile = 1 << 20

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("larger than %d bytes; it should hold one value", maxSecretFile)
	}
	return data, nil
}

// expand returns s with its references resolved, and whether there were any.
// Errors name the reference, never the value it resolves to.
func (x expander) expand(s string) (string, bool, error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	found := false
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			found = true
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", false, fmt.Errorf("unterminated ${ reference (write $$ for a literal $)")
		}
		ref := s[i+2 : i+2+end]
		v, err := x.resolve(ref)
		if err != nil {
			return "", false, err
		}
		b.WriteString(v)
		found = true
		i += 2 + end + 1
	}
	return b.String(), found, nil
}

func (x expander) resolve(ref string) (string, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		if path == "" {
			return "", fmt.Errorf("${file:} needs a path")
		}
		data, err := x.readFile(path)
		if err != nil {
			return "", fmt.Errorf("${file:%s}: cannot read the file: %w", path, unwrapPathError(err))
		}
		// One trailing newline, as editors and `echo` leave it, is not part of the secret.
		s := strings.TrimSuffix(string(data), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
	name, def, hasDef := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		return "", fmt.Errorf("${%s}: not a valid environment variable name", name)
	}
	if v, ok := x.lookupEnv(name); ok && (v != "" || !hasDef) {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
