package pattern

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// fold is a compiled equals-ignore-case operand. As in event-ruler, each
// character c of the operand matches exactly its lower-case or its upper-case
// form, as Java's String.toLowerCase and toUpperCase (Locale.ROOT) give them
// for c alone: "ß" matches "ß" and "SS" but not "ss", and the Kelvin sign K
// matches "k" but not "K". A character whose two forms are equal matches only
// itself.
type fold struct {
	ascii string     // the lower-cased operand, when it is all ASCII
	units []foldUnit // otherwise
}

// foldUnit is the two forms one character of the operand matches. They never
// start (nor end) with the same rune unless they are equal, so matching needs
// no backtracking.
type foldUnit struct {
	lower, upper string
}

func compileFold(s string) *fold {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := []byte(s)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		return &fold{ascii: string(b)}
	}
	f := &fold{}
	for _, r := range s {
		f.units = append(f.units, foldUnit{lower: lowerFull(r), upper: upperFull(r)})
	}
	return f
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (f *fold) equal(s string) bool {
	if f.units == nil {
		if len(s) != len(f.ascii) {
			return false
		}
		for i := 0; i < len(s); i++ {
			if lowerASCII(s[i]) != f.ascii[i] {
				return false
			}
		}
		return true
	}
	n, ok := f.matchFront(s)
	return ok && n == len(s)
}

func (f *fold) prefix(s string) bool {
	if f.units == nil {
		if len(s) < len(f.ascii) {
			return false
		}
		for i := 0; i < len(f.ascii); i++ {
			if lowerASCII(s[i]) != f.ascii[i] {
				return false
			}
		}
		return true
	}
	_, ok := f.matchFront(s)
	return ok
}

func (f *fold) suffix(s string) bool {
	if f.units == nil {
		if len(s) < len(f.ascii) {
			return false
		}
		off := len(s) - len(f.ascii)
		for i := 0; i < len(f.ascii); i++ {
			if lowerASCII(s[off+i]) != f.ascii[i] {
				return false
			}
		}
		return true
	}
	end := len(s)
	for i := len(f.units) - 1; i >= 0; i-- {
		u := &f.units[i]
		switch {
		case strings.HasSuffix(s[:end], u.lower):
			end -= len(u.lower)
		case strings.HasSuffix(s[:end], u.upper):
			end -= len(u.upper)
		default:
			return false
		}
	}
	return true
}

// matchFront matches the operand against the start of s and returns how
// many bytes of s it covered.
func (f *fold) matchFront(s string) (int, bool) {
	pos := 0
	for i := range f.units {
		u := &f.units[i]
		switch {
		case strings.HasPrefix(s[pos:], u.lower):
			pos += len(u.lower)
		case strings.HasPrefix(s[pos:], u.upper):
			pos += len(u.upper)
		default:
			return 0, false
		}
	}
	return pos, true
}

func lowerFull(r rune) string {
	if r == 0x130 { // İ: the one unconditional multi-character lower case
		return "i\u0307"
	}
	return string(unicode.ToLower(r))
}

func upperFull(r rune) string {
	if s, ok := upperSpecial[r]; ok {
		return s
	}
	return string(unicode.ToUpper(r))
}

// upperSpecial holds the unconditional multi-character upper-case mappings
// of Unicode's SpecialCasing.txt, which Java applies and unicode.ToUpper
// does not.
var upperSpecial = map[rune]string{
	0x00DF: "SS", 0x0149: "\u02BCN", 0x01F0: "J\u030C",
	0x0390: "\u0399\u0308\u0301", 0x03B0: "\u03A5\u0308\u0301",
	0x0587: "\u0535\u0552",
	0x1E96: "H\u0331", 0x1E97: "T\u0308", 0x1E98: "W\u030A", 0x1E99: "Y\u030A", 0x1E9A: "A\u02BE",
	0x1F50: "\u03A5\u0313", 0x1F52: "\u03A5\u0313\u0300", 0x1F54: "\u03A5\u0313\u0301", 0x1F56: "\u03A5\u0313\u0342",
	0x1FB2: "\u1FBA\u0399", 0x1FB3: "\u0391\u0399", 0x1FB4: "\u0386\u0399", 0x1FB6: "\u0391\u0342", 0x1FB7: "\u0391\u0342\u0399", 0x1FBC: "\u0391\u0399",
	0x1FC2: "\u1FCA\u0399", 0x1FC3: "\u0397\u0399", 0x1FC4: "\u0389\u0399", 0x1FC6: "\u0397\u0342", 0x1FC7: "\u0397\u0342\u0399", 0x1FCC: "\u0397\u0399",
	0x1FD2: "\u0399\u0308\u0300", 0x1FD3: "\u0399\u0308\u0301", 0x1FD6: "\u0399\u0342", 0x1FD7: "\u0399\u0308\u0342",
	0x1FE2: "\u03A5\u0308\u0300", 0x1FE3: "\u03A5\u0308\u0301", 0x1FE4: "\u03A1\u0313", 0x1FE6: "\u03A5\u0342", 0x1FE7: "\u03A5\u0308\u0342",
	0x1FF2: "\u1FFA\u0399", 0x1FF3: "\u03A9\u0399", 0x1FF4: "\u038F\u0399", 0x1FF6: "\u03A9\u0342", 0x1FF7: "\u03A9\u0342\u0399", 0x1FFC: "\u03A9\u0399",
	0xFB00: "FF", 0xFB01: "FI", 0xFB02: "FL", 0xFB03: "FFI", 0xFB04: "FFL", 0xFB05: "ST", 0xFB06: "ST",
	0xFB13: "\u0544\u0546", 0xFB14: "\u0544\u0535", 0xFB15: "\u0544\u053B", 0xFB16: "\u054E\u0546", 0xFB17: "\u0544\u053D",
}

func init() {
	// Greek letters with ypogegrammeni: U+1F80..U+1FAF upper-case to the
	// capital letter without it, then capital iota.
	for r := rune(0x1F80); r <= 0x1FAF; r++ {
		base := []rune{0x1F08, 0x1F28, 0x1F68}[(r-0x1F80)/16] + (r-0x1F80)%8
		upperSpecial[r] = string(base) + "\u0399"
	}
}
