package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

// ufwDefaults is /etc/default/ufw for the test: Debian's defaults, without
// the sysctl file (nothing outside the namespace's ruleset is changed).
const ufwDefaults = `IPV6=yes
DEFAULT_INPUT_POLICY="DROP"
DEFAULT_OUTPUT_POLICY="ACCEPT"
DEFAULT_FORWARD_POLICY="DROP"
DEFAULT_APPLICATION_POLICY="SKIP"
MANAGE_BUILTINS=no
IPT_SYSCTL=
IPT_MODULES=""
`

// ufwCommands build a typical web origin's firewall with Debian's ufw.
var ufwCommands = [][]string{
	{"allow", "22/tcp"},
	{"allow", "proto", "tcp", "from", "203.0.113.0/24", "to", "any", "port", "443"},
	{"allow", "proto", "tcp", "from", "2001:db8:cf::/48", "to", "any", "port", "443"},
	{"deny", "proto", "tcp", "from", "198.51.100.0/24", "to", "any", "port", "80"},
	{"allow", "80/tcp"},
	{"reject", "8080/tcp"},
	{"limit", "9000/tcp"}, // xt_recent: not probed, only skipped by other ports
	{"--force", "enable"},
}

// TestAgainstUFW loads the ruleset that Debian's ufw writes (ufw-before-*,
// ufw-user-input, ufw-after-*, conntrack, addrtype, limit + LOG, rt, icmp,
// policy DROP) into the origin namespace and checks that the simulator
// predicts every probe exactly and agrees with the kernel.
//
// ufw acts on the namespace it runs in; --datadir points it at a private
// copy of its configuration (the package's templates), so neither the host's
// ruleset nor /etc/ufw changes. --rootdir=/ only locates ufw-init.
func TestAgainstUFW(t *testing.T) {
	nstest.RequireRoot(t, "ufw", "iptables", "ip6tables", "nft")
	origin, client := pair(t)
	if v := origin.Run("iptables", "-V"); !strings.Contains(v, "nf_tables") {
		t.Skipf("iptables is not iptables-nft here (%s): ufw would write iptables-legacy rules", strings.TrimSpace(v))
	}
	data := ufwDataDir(t)
	for _, c := range ufwCommands {
		origin.Run("ufw", append([]string{"--rootdir=/", "--datadir=" + data}, c...)...)
	}
	if !strings.Contains(origin.Run("iptables", "-S", "ufw-user-input"), "203.0.113.0/24") {
		t.Fatal("ufw did not load its user rules into the namespace")
	}
	rs := readNS(t, origin)
	if w := rs.Warnings(); len(w) > 0 {
		t.Fatalf("unexpected warnings: %q", w)
	}
	checkProbes(t, rs, client, []probe{
		{src: cfB, port: 443, want: Accept},
		{src: cfC, port: 443, want: Accept},
		{src: cfA, port: 443, want: Drop, rule: "policy drop"},
		{src: other4, port: 22, want: Accept},
		{src: cfA, port: 80, want: Drop, rule: "ip saddr 198.51.100.0/24 tcp dport 80 counter drop"},
		{src: cfB, port: 80, want: Accept},
		{src: cfA, port: 8080, want: Reject, rule: "tcp dport 8080 counter reject with tcp reset"},
		{src: other4, port: 8443, want: Drop, rule: "policy drop"},
		{src: cf6A, port: 443, want: Accept},
		{src: cf6B, port: 443, want: Drop, rule: "policy drop"},
		{src: other6, port: 22, want: Accept},
		{src: other6, port: 80, want: Accept},
		{src: cf6B, port: 8080, want: Reject},
	})
}

// ufwDataDir makes a private ufw configuration from the package's
// templates: DATADIR/etc/ufw, DATADIR/etc/default/ufw, DATADIR/lib/ufw.
func ufwDataDir(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	etc := filepath.Join(data, "etc", "ufw")
	for _, d := range []string{etc, filepath.Join(etc, "applications.d"), filepath.Join(data, "etc", "default"), filepath.Join(data, "lib", "ufw")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Skipf("ufw's templates are not installed: %v", err)
		}
		if err := os.WriteFile(to, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"before.rules", "before6.rules", "after.rules", "after6.rules", "user.rules", "user6.rules"} {
		copyFile(filepath.Join("/usr/share/ufw/iptables", f), filepath.Join(etc, f))
	}
	copyFile("/usr/share/ufw/ufw.conf", filepath.Join(etc, "ufw.conf"))
	if err := os.WriteFile(filepath.Join(data, "etc", "default", "ufw"), []byte(ufwDefaults), 0o640); err != nil {
		t.Fatal(err)
	}
	return data
}
