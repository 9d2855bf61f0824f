package pattern

import (
	"strconv"
	"strings"
)

// Error is a problem found when a pattern is compiled.
type Error struct {
	// Path holds the keys from the pattern's root to the problem. An array
	// element appears as its decimal index, so {"a": [{"numeric": [">", "x"]}]}
	// fails at ["a", "0", "numeric", "1"]; a config layer can walk its YAML
	// nodes with it.
	Path []string
	// Msg says what is wrong.
	Msg string
	// Offset is the byte offset in the pattern's text of the value at fault,
	// or -1 when it is not known.
	Offset int
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("event pattern")
	if len(e.Path) > 0 {
		b.WriteString(" at ")
		b.WriteString(strings.Join(e.Path, "."))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Offset >= 0 {
		b.WriteString(" (byte ")
		b.WriteString(strconv.Itoa(e.Offset))
		b.WriteString(")")
	}
	return b.String()
}
