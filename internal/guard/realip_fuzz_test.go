package guard

import (
	"strings"
	"testing"
)

// FuzzWebSaid: whatever a web server prints, what cfguard repeats of it is
// one line without control characters.
func FuzzWebSaid(f *testing.F) {
	f.Add("2026/12/02 02:49:10 [emerg] 6583#6583: \"set_real_ip_from\" directive is not allowed here in /x.conf:3\nnginx: configuration file /x.conf test failed\n")
	f.Add("AH00526: Syntax error on line 1 of /x.conf:\nInvalid command 'RemoteIPHeader', perhaps misspelled\nAction 'configtest' failed.\n")
	f.Add("\x1b[31mred\r\nsecond\x00line")
	f.Fuzz(func(t *testing.T, out string) {
		got := webSaid(out)
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("webSaid(%q) = %q has a control character", out, got)
		}
	})
}
