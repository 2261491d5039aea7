package textsafe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain ASCII", "www.example.com answered 502", "www.example.com answered 502"},
		{"empty", "", ""},
		{"UTF-8 letters and symbols stay", "bücher.example ✔ 日本", "bücher.example ✔ 日本"},
		{"ESC retitling the window", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"ESC clearing the screen", "a\x1b[2Jb", `a\x1b[2Jb`},
		{"BEL", "ding\a", `ding\x07`},
		{"CR overwriting the line", "ok\rFAIL", `ok\rFAIL`},
		{"newline and tab", "a\nb\tc", `a\nb\tc`},
		{"NUL", "a\x00b", `a\x00b`},
		{"DEL", "a\x7fb", `a\x7fb`},
		{"C1 CSI U+009B", "a\u009b2Jb", `a\u009b2Jb`},
		{"C1 first and last", "\u0080\u009f", `\u0080\u009f`},
		{"U+00A0 is not C1", "a\u00a0b", "a\u00a0b"},
		{"bidi override U+202E", "evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"bidi isolates", "\u2066x\u2069", `\u2066x\u2069`},
		{"zero-width space and BOM", "a\u200bb\ufeff", `a\u200bb\ufeff`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"tag character above U+FFFF", "a\U000e0041", `a\U000e0041`},
		{"invalid UTF-8 bytes", "a\xffb\xc3", `a\xffb\xc3`},
		{"C1 as a raw byte (invalid UTF-8)", "a\x9bb", `a\x9bb`},
		{"a real U+FFFD stays", "a\ufffdb", "a\ufffdb"},
		{"backslashes are left alone", `C:\path\x1b`, `C:\path\x1b`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, String(c.in)); diff != "" {
				t.Errorf("String(%q) (-want +got):\n%s", c.in, diff)
			}
		})
	}
}

func TestStringDoesNotAllocateWhenSafe(t *testing.T) {
	s := "www.example.com: 502 Bad Gateway — bücher"
	if n := testing.AllocsPerRun(100, func() { _ = String(s) }); n != 0 {
		t.Errorf("String allocated %v times for safe text", n)
	}
}

func TestJSON(t *testing.T) {
	in := map[string]string{"m": "\x1b]0;x\x07 \u009b \u202e \u2028 \x7f \U000e0041 ok ✔", "bad": "a\xffb"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(raw)
	for _, r := range string(got) {
		if unsafe(r) {
			t.Errorf("JSON left %U raw in %s", r, got)
		}
	}
	var back, want map[string]string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("JSON made invalid JSON: %v\n%s", err, got)
	}
	json.Unmarshal(raw, &want)
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("JSON changed the values (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(got), `\u009b`) || !strings.Contains(string(got), `\udb40\udc41`) {
		t.Errorf("JSON = %s, want \\u009b and a surrogate pair for U+E0041", got)
	}
	plain := []byte(`{"a":"b ✔"}`)
	if g := JSON(plain); &g[0] != &plain[0] {
		t.Error("JSON copied text with nothing to escape")
	}
}

// FuzzString: the output is valid UTF-8, one line, holds nothing unsafe,
// and escaping it again changes nothing.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "www.example.com", "\x1b]0;t\x07", "a\rb\nc", "\u009b\u202e\u2028", "\xff\xc3", "\U000e0041"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if !utf8.ValidString(got) {
			t.Fatalf("String(%q) = %q: not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unsafe(r) {
				t.Fatalf("String(%q) = %q: %U left raw", s, got, r)
			}
		}
		if again := String(got); again != got {
			t.Fatalf("String is not idempotent: %q then %q", got, again)
		}
	})
}

// FuzzJSON: for any string, what JSON makes of encoding/json's output is
// valid JSON decoding to the same value, with nothing unsafe left raw.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[31m", "\u0085\u009b", "\u202e", "\x7f", "\U000e0041", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		got := JSON(raw)
		var a, b string
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatalf("JSON(%s) = %s: %v", raw, got, err)
		}
		json.Unmarshal(raw, &a)
		if a != b {
			t.Fatalf("JSON changed %q into %q", a, b)
		}
		for _, r := range string(got) {
			if unsafe(r) {
				t.Fatalf("JSON(%s) = %s: %U left raw", raw, got, r)
			}
		}
	})
}
