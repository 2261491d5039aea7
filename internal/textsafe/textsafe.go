// Package textsafe makes untrusted text (Cloudflare's API answers, DNS names,
// configuration files, log lines) safe to print on a terminal: a character a
// terminal would act on is shown as an escape instead of being obeyed.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// unsafe reports whether a terminal could act on r or hide text with it:
// C0 controls, DEL and C1 controls (unicode.Cc: ESC starts a sequence that
// retitles the window or rewrites the screen, CR overwrites the line, BEL
// rings, U+009B is CSI to a terminal reading C1), format characters
// (unicode.Cf: the bidi overrides U+202A–U+202E and isolates U+2066–U+2069
// reorder what follows, zero-width characters hide text) and the line and
// paragraph separators U+2028 and U+2029.
func unsafe(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// String returns s with every unsafe character escaped, on one line: \n,
// \r and \t as those two characters, other C0 controls and DEL as \xNN,
// other unsafe runes as \uNNNN (\UNNNNNNNN above U+FFFF), and each byte
// of invalid UTF-8 as \xNN. Backslashes are left alone, so the escapes are
// for reading, not for decoding. A string with nothing to escape comes back
// as it is, without allocating.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafe(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Strings applies String to each element, in a new slice.
func Strings(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = String(s)
	}
	return out
}

// firstUnsafe returns the index of the first byte that needs escaping, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}

// JSON escapes, in JSON text produced by encoding/json, the unsafe runes
// that encoding/json leaves raw (DEL, C1 controls, format characters) as
// \uNNNN escapes (a surrogate pair above U+FFFF). The result decodes to the
// same values. Outside strings JSON holds only ASCII structure and
// whitespace, so every non-ASCII rune is inside a string; encoding/json
// already escapes the C0 controls and U+2028/U+2029 and replaces invalid
// UTF-8 with U+FFFD.
func JSON(b []byte) []byte {
	if firstUnsafeJSON(b) < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || (r >= utf8.RuneSelf && r != utf8.RuneError && unsafe(r)) {
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

func firstUnsafeJSON(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			if b[i] == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError && unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}
