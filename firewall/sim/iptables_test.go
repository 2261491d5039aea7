package sim

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

// iptablesCases are rulesets made with Debian's iptables tools inside the
// origin namespace. iptables-nft writes nftables rules: plain matches
// (-p, -s, --dport, -i) compile to native payload/cmp expressions, which the
// simulator evaluates exactly; -m matches and targets other than the
// standard verdicts stay xtables code (expr.Match / expr.Target), which it
// does not model. iptables-legacy writes xtables tables that netlink does
// not show at all; the simulator only sees that they exist.
var iptablesCases = []struct {
	name   string
	cmds   [][]string // tool and arguments, run in the origin in order
	legacy string     // if set: the legacy table Warnings must name ("ip_tables: filter")
	probes []probe
}{
	{name: "nft native drop", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "203.0.113.0/24", "-j", "DROP"},
	}, probes: []probe{
		{src: cfB, port: 443, want: Drop, rule: "ip saddr 203.0.113.0/24 tcp dport 443 counter drop"},
		{src: cfC, port: 443, want: Drop},
		{src: cfB, port: 80, want: Accept},
		{src: cfA, port: 443, want: Accept},
		{src: cf6B, port: 443, want: Accept},
	}},
	{name: "nft native allowlist", cmds: [][]string{
		{"iptables-nft", "-P", "INPUT", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "198.51.100.0/24", "-j", "ACCEPT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfB, port: 443, want: Drop, rule: "policy drop"},
		{src: other4, port: 22, want: Accept},
		{src: other4, port: 80, want: Drop, rule: "policy drop"},
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "nft compat matches", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "198.51.100.0/24", "-m", "multiport", "--dports", "80,443", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 8443, want: CannotTell, real: Drop, reason: `compat match "conntrack"`,
			rule: `tcp dport 8443 xt match "conntrack" counter drop`},
		{src: cfB, port: 8443, want: CannotTell, real: Drop, reason: `"conntrack"`},
		{src: cfA, port: 443, want: CannotTell, real: Drop, reason: `compat match "multiport"`,
			rule: `meta l4proto tcp ip saddr 198.51.100.0/24 xt match "multiport" counter drop`},
		{src: cfA, port: 22, want: CannotTell, real: Accept, reason: `"multiport"`},
		// Rules whose native part already fails are skipped exactly.
		{src: cfB, port: 443, want: Accept},
		{src: cf6A, port: 8443, want: Accept},
	}},
	{name: "nft established first", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "203.0.113.0/24", "-j", "DROP"},
	}, probes: []probe{
		// The compat match decides whether a verdict follows: never a guess.
		{src: cfB, port: 443, want: CannotTell, real: Drop, reason: `"conntrack"`},
		{src: cfA, port: 443, want: CannotTell, real: Accept, reason: `"conntrack"`},
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "nft compat reject", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "203.0.113.0/24", "-j", "REJECT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-j", "REJECT", "--reject-with", "tcp-reset"},
	}, probes: []probe{
		{src: cfB, port: 443, want: CannotTell, real: Reject, reason: `compat target "REJECT"`,
			rule: `ip saddr 203.0.113.0/24 tcp dport 443 counter xt target "REJECT"`},
		{src: cfC, port: 443, want: CannotTell, real: Reject, reason: `"REJECT"`},
		{src: cfA, port: 8443, want: CannotTell, real: Reject, reason: `"REJECT"`},
		{src: cfA, port: 443, want: Accept},
		{src: cfB, port: 80, want: Accept},
	}},
	{name: "ip6 nft", cmds: [][]string{
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "2001:db8:cf::/48", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "-s", "2001:db8:cf1::/48", "-m", "multiport", "--dports", "80,8443", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "REJECT", "--reject-with", "tcp-reset"},
	}, probes: []probe{
		{src: cf6A, port: 443, want: Drop, rule: "ip6 saddr 2001:db8:cf::/48 tcp dport 443 counter drop"},
		{src: cf6A, port: 80, want: Accept},
		{src: cf6B, port: 443, want: CannotTell, real: Accept, reason: `compat match "multiport"`},
		{src: cf6B, port: 8443, want: CannotTell, real: Drop, reason: `"multiport"`},
		{src: cf6A, port: 81, want: CannotTell, real: Reject, reason: `compat target "REJECT"`},
		{src: cfA, port: 443, want: Accept},
	}},
	{name: "legacy", legacy: "ip_tables: filter", cmds: [][]string{
		{"iptables-legacy", "-A", "INPUT", "-s", "203.0.113.0/24", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-s", "198.51.100.0/24", "-j", "DROP"},
	}, probes: []probe{
		// nftables accepts; the invisible legacy rule drops.
		{src: cfB, port: 443, want: CannotTell, real: Drop, reason: "iptables-legacy"},
		{src: cfC, port: 80, want: CannotTell, real: Drop, reason: "iptables-legacy"},
		// nftables accepts and so does the legacy table, but netlink cannot show it.
		{src: cfA, port: 443, want: CannotTell, real: Accept, reason: "iptables-legacy"},
		// A drop in nftables is final whatever the legacy rules say.
		{src: cfA, port: 8443, want: Drop, reason: "iptables-legacy",
			rule: "ip saddr 198.51.100.0/24 tcp dport 8443 counter drop"},
		// ip_tables does not see IPv6 packets.
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "ip6 legacy", legacy: "ip6_tables: filter", cmds: [][]string{
		{"ip6tables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "2001:db8:cf1::/48", "-j", "DROP"},
	}, probes: []probe{
		{src: cf6B, port: 443, want: CannotTell, real: Drop, reason: "ip6_tables: filter"},
		{src: cf6A, port: 443, want: CannotTell, real: Accept, reason: "iptables-legacy"},
		// ip6_tables does not see IPv4 packets.
		{src: cfA, port: 443, want: Accept},
	}},
	{name: "legacy listed only", legacy: "ip_tables: filter", cmds: [][]string{
		// Listing alone makes the kernel instantiate the (empty) filter table.
		{"iptables-legacy", "-S"},
	}, probes: []probe{
		// The simulator cannot see that it is empty.
		{src: cfA, port: 443, want: CannotTell, real: Accept, reason: "iptables-legacy"},
		{src: cf6A, port: 443, want: Accept},
	}},
}

func TestAgainstIptables(t *testing.T) {
	nstest.RequireRoot(t, "nft", "iptables-nft", "iptables-legacy", "ip6tables-nft", "ip6tables-legacy")
	for _, tc := range iptablesCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			origin, client := pair(t)
			for _, c := range tc.cmds {
				origin.Run(c[0], c[1:]...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), readCtxTimeout)
			defer cancel()
			rs, err := Read(ctx, origin.Fd())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			w := rs.Warnings()
			switch {
			case tc.legacy == "" && len(w) > 0:
				t.Errorf("unexpected warnings: %q", w)
			case tc.legacy != "" && (len(w) != 1 || !strings.Contains(w[0], "iptables-legacy") || !strings.Contains(w[0], tc.legacy)):
				t.Errorf("warnings %q, want one naming iptables-legacy and %q", w, tc.legacy)
			}

			reals := make([]Verdict, len(tc.probes))
			var wg sync.WaitGroup
			for i, p := range tc.probes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reals[i] = dial(t, client, netip.MustParseAddr(p.src), p.port)
				}()
			}
			wg.Wait()

			for i, p := range tc.probes {
				src := netip.MustParseAddr(p.src)
				got := rs.Check(src, dstFor(src), p.port)
				wantReal := p.want
				if p.want == CannotTell {
					wantReal = p.real
				}
				name := fmt.Sprintf("%s → :%d", p.src, p.port)
				if got.Verdict != p.want {
					t.Errorf("%s: simulator says %v (%+v), want %v", name, got.Verdict, got, p.want)
				}
				if reals[i] != wantReal {
					t.Errorf("%s: the kernel did %v, want %v", name, reals[i], wantReal)
				}
				if p.want != CannotTell && got.Verdict != reals[i] {
					t.Errorf("%s: simulator (%v) and kernel (%v) disagree", name, got.Verdict, reals[i])
				}
				if p.rule != "" && got.Rule != p.rule {
					t.Errorf("%s: deciding rule %q, want %q", name, got.Rule, p.rule)
				}
				if p.reason != "" && !strings.Contains(got.Reason, p.reason) {
					t.Errorf("%s: reason %q does not mention %q", name, got.Reason, p.reason)
				}
				// Only an accept made uncertain by legacy tables has no deciding rule.
				if got.Verdict != Accept && got.Table == "" && !strings.HasPrefix(got.Reason, "nftables accepts, but ") {
					t.Errorf("%s: %v names no table: %+v", name, got.Verdict, got)
				}
				t.Logf("%-24s sim=%-11v kernel=%-6v %s %s/%s #%d %q %s", name, got.Verdict, reals[i],
					got.Family, got.Table, got.Chain, got.Handle, got.Rule, got.Reason)
			}
		})
	}
}
