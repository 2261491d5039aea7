package probemark

import (
	"fmt"
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

// TestOurs: an id New made is Ours; one a visitor could write into a
// Referer (any 16 hex digits, another host's id, New's with its tag
// changed) is not.
func TestOurs(t *testing.T) {
	id := New()
	if !Ours(id) {
		t.Fatalf("Ours(New() = %q) = false", id)
	}
	flipped := []byte(id)
	if flipped[IDLen-1] == '0' {
		flipped[IDLen-1] = '1'
	} else {
		flipped[IDLen-1] = '0'
	}
	for _, forged := range []string{"0123456789abcdef", "ffffffffffffffff", string(flipped), id[:IDLen-1], id + "0", strings.ToUpper(id), ""} {
		if Ours(forged) {
			t.Errorf("Ours(%q) = true, want false (not made by New on this host)", forged)
		}
	}
	forged := 0
	for i := range 1000 {
		if Ours(fmt.Sprintf("%016x", i)) {
			forged++
		}
	}
	if forged > 5 {
		t.Errorf("%d of 1,000 guessed ids pass as ours, want about 1 in 65,536", forged)
	}
}
