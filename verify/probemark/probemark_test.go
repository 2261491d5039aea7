package probemark

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFind(t *testing.T) {
	id := "0123456789abcdef"
	tests := []struct {
		name, line, want string
	}{
		{"nginx", `2026/12/02 06:08:36 [crit] 27257#27257: *1 connect() to unix:/run/php.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/0123456789abcdef"`, id},
		{"apache", `[Wed Dec 02 06:08:36.948040 2026] [proxy_fcgi:error] [pid 27258:tid 27261] [client 127.0.0.1:38622] AH01079: failed to make connection to backend: localhost, referer: https://cfguard-probe.invalid/0123456789abcdef`, id},
		{"visitor", `... request: "GET / HTTP/1.1", host: "example.test", referrer: "https://example.test/"`, ""},
		{"too short", `referrer: "https://cfguard-probe.invalid/0123456789abcde"`, ""},
		{"too long", `referrer: "https://cfguard-probe.invalid/0123456789abcdef0"`, ""},
		{"upper case", `referrer: "https://cfguard-probe.invalid/0123456789ABCDEF"`, ""},
		{"second one counts", `cfguard-probe.invalid/xyz cfguard-probe.invalid/fedcba9876543210"`, "fedcba9876543210"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := Find(tt.line); got != tt.want {
			t.Errorf("%s: Find = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNewIsFoundInItsReferer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := New()
		if got := Find(`referrer: "` + Referer(id) + `"`); got != id {
			t.Fatalf("Find(Referer(%q)) = %q", id, got)
		}
		seen[id] = true
	}
	if diff := cmp.Diff(100, len(seen)); diff != "" {
		t.Errorf("distinct ids (-want +got)\n%s", diff)
	}
}

// FuzzFind: Find never panics, and what it returns is an id whose Referer's
// host and path are in the line.
func FuzzFind(f *testing.F) {
	f.Add(`referrer: "https://cfguard-probe.invalid/0123456789abcdef"`)
	f.Add("cfguard-probe.invalid/")
	f.Fuzz(func(t *testing.T, line string) {
		id := Find(line)
		if id == "" {
			return
		}
		if len(id) != IDLen || !isHex(id) || !strings.Contains(line, prefix+id) {
			t.Fatalf("Find(%q) = %q", line, id)
		}
	})
}
