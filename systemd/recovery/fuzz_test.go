package recovery

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzFirstErrorLine: whatever a configuration test prints, the reason
// quoted in a refusal is one printable line of bounded length.
func FuzzFirstErrorLine(f *testing.F) {
	f.Add([]byte(fpmBroken))
	f.Add([]byte("nginx: [emerg] unknown directive \"x\" in /etc/nginx/nginx.conf:1\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"))
	f.Add([]byte("[02-Dec-2026 02:47:20] \x1b[31mERROR\x00: \xff\xfe\n\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, out []byte) {
		got := firstErrorLine(out)
		if len(got) > maxReasonLine+len("…") {
			t.Fatalf("%d bytes", len(got))
		}
		if strings.TrimSpace(got) != got {
			t.Fatalf("not trimmed: %q", got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("unprintable %U in %q", r, got)
			}
		}
	})
}
