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
// (-p, -s, --dport, -i, --tcp-flags) compile to native payload/cmp
// expressions; most -m matches and targets other than the standard verdicts
// stay xtables code (compat expressions) whose info the simulator decodes
// for the revisions iptables-nft writes (conntrack 3, multiport 1, addrtype
// 1, comment 0, rt 0, LOG 0, REJECT 0). iptables-legacy writes xtables
// tables that netlink does not show at all; the simulator only sees that
// they exist.
var iptablesCases = []struct {
	name   string
	cmds   [][]string // tool and arguments, run in the origin in order
	legacy string     // if set: the legacy table Warnings must name ("table filter (IPv4)")
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
	{name: "conntrack", cmds: [][]string{
		// xt_conntrack revision 3, as iptables-nft 1.8.9 writes it (also for -m state).
		{"iptables-nft", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "203.0.113.0/24", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-m", "state", "--state", "NEW", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-m", "conntrack", "!", "--ctstate", "NEW", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "82", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "83", "-m", "conntrack", "--ctstate", "NEW", "--ctdir", "REPLY", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "84", "-m", "conntrack", "--ctstate", "NEW", "--ctdir", "ORIGINAL", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "85", "-m", "conntrack", "--ctstate", "NEW", "--ctorigsrc", "198.51.100.0/24", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "86", "-m", "conntrack", "--ctstate", "INVALID", "--ctorigsrc", "198.51.100.0/24", "-j", "DROP"},
	}, probes: []probe{
		{src: cfB, port: 443, want: Drop, rule: "ip saddr 203.0.113.0/24 tcp dport 443 counter drop"},
		{src: cfA, port: 443, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "tcp dport 8443 ct state new counter drop"},
		{src: cfA, port: 80, want: Reject, rule: "tcp dport 80 ct state new counter reject with tcp reset"},
		{src: cfA, port: 81, want: Accept},
		{src: cfA, port: 82, want: Accept},
		{src: cfA, port: 83, want: Accept},
		{src: cfA, port: 84, want: Drop, rule: "tcp dport 84 ct state new ct direction original counter drop"},
		// Original addresses are not modelled: never a guess.
		{src: cfA, port: 85, want: CannotTell, real: Drop, reason: "conntrack match flags"},
		// ... but a state that already fails decides.
		{src: cfA, port: 86, want: Accept},
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "raw before conntrack", cmds: [][]string{
		// The raw table's PREROUTING (priority -300) runs before conntrack.
		{"iptables-nft", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", "443", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
		{"iptables-nft", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", "8443", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"},
		{"iptables-nft", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", "80", "-m", "state", "--state", "INVALID", "-j", "DROP"},
		{"iptables-nft", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "--dport", "81", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "tcp dport 8443 ct state invalid counter drop"},
		{src: cfA, port: 80, want: Drop},
		{src: cfA, port: 81, want: Drop, rule: "tcp dport 81 ct state new counter drop"},
	}},
	{name: "multiport", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "198.51.100.0/24", "-m", "multiport", "--dports", "80,443", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "203.0.113.0/25", "-m", "multiport", "--dports", "8000:8100,9000", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "203.0.113.128/25", "-m", "multiport", "!", "--dports", "22,80:88,443", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-m", "multiport", "--sports", "1:1023", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "-s", "192.0.2.2", "-m", "multiport", "--ports", "87,9000", "-j", "REJECT"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "-s", "2001:db8:cf1::/48", "-m", "multiport", "--dports", "80,8443", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "meta l4proto tcp ip saddr 198.51.100.0/24 tcp dport { 80, 443 } counter drop"},
		{src: cfA, port: 80, want: Drop},
		{src: cfA, port: 22, want: Accept},
		{src: cfB, port: 8000, want: Drop, rule: "meta l4proto tcp ip saddr 203.0.113.0/25 tcp dport { 8000-8100, 9000 } counter drop"},
		{src: cfB, port: 8080, want: Drop},
		{src: cfB, port: 9000, want: Drop},
		{src: cfB, port: 443, want: Accept},
		{src: cfC, port: 8443, want: Drop, rule: "meta l4proto tcp ip saddr 203.0.113.128/25 tcp dport != { 22, 80-88, 443 } counter drop"},
		{src: cfC, port: 85, want: Accept},
		{src: cfC, port: 443, want: Accept},
		// The source port is not known; only the destination decides.
		{src: cfB, port: 8443, want: CannotTell, real: Accept, reason: "source port"},
		{src: other4, port: 87, want: Reject, rule: "meta l4proto tcp ip saddr 192.0.2.2 tcp sport|dport { 87, 9000 } counter reject"},
		{src: other4, port: 80, want: CannotTell, real: Accept, reason: "source port"},
		{src: cf6B, port: 8443, want: Drop},
		{src: cf6B, port: 443, want: Accept},
		{src: cf6A, port: 80, want: Accept},
	}},
	{name: "tcp flags and negation", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "!", "-s", "203.0.113.0/24", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "--tcp-flags", "SYN,RST,ACK", "SYN", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "--syn", "-j", "REJECT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "!", "--syn", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "ip saddr != 203.0.113.0/24 tcp dport 443 counter drop"},
		{src: cfB, port: 443, want: Accept},
		{src: cfA, port: 8443, want: Drop},
		{src: cfA, port: 80, want: Reject},
		{src: cfA, port: 81, want: Drop, rule: "tcp flags & 0x17 != 0x02 tcp dport 81 counter drop", reason: "packets after it"}, // ! --syn: the SYN passes, the ACK does not
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "reject", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "203.0.113.0/24", "-j", "REJECT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "REJECT", "--reject-with", "icmp-host-prohibited"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "2001:db8:cf::/48", "-j", "REJECT"},
	}, probes: []probe{
		{src: cfB, port: 443, want: Reject, rule: "ip saddr 203.0.113.0/24 tcp dport 443 counter reject"},
		{src: cfC, port: 443, want: Reject},
		{src: cfA, port: 8443, want: Reject, rule: "tcp dport 8443 counter reject with tcp reset"},
		{src: cfA, port: 443, want: Accept},
		{src: cfA, port: 80, want: Reject, rule: "tcp dport 80 counter reject with icmp-host-prohibited"},
		{src: cfA, port: 81, want: Reject},
		{src: cfB, port: 82, want: Accept},
		{src: cf6A, port: 81, want: Reject, rule: "tcp dport 81 counter reject with tcp reset"},
		{src: cf6A, port: 443, want: Reject},
		{src: cf6B, port: 443, want: Accept},
	}},
	{name: "log limit comment", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-m", "limit", "--limit", "3/min", "-j", "LOG", "--log-prefix", "[drop] "},
		{"iptables-nft", "-A", "INPUT", "-j", "NFLOG", "--nflog-group", "5"},
		{"iptables-nft", "-A", "INPUT", "-m", "comment", "--comment", "web from cf", "-p", "tcp", "--dport", "443", "-s", "198.51.100.0/24", "-j", "ACCEPT"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-m", "comment", "--comment", "no other web", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "8443", "-m", "limit", "--limit", "1/s", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-m", "limit", "--limit", "3/min", "-j", "LOG"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "2001:db8:cf1::/48", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfB, port: 443, want: Drop, rule: `tcp dport 443 comment "no other web" counter drop`},
		{src: cfB, port: 80, want: Accept},
		// A rate limit in front of a verdict decides: never a guess.
		{src: cfA, port: 8443, want: CannotTell, real: Drop, reason: "limit"},
		{src: cf6B, port: 443, want: Drop},
		{src: cf6A, port: 443, want: Accept},
	}},
	{name: "addrtype and rt", cmds: [][]string{
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-m", "addrtype", "--dst-type", "BROADCAST", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-m", "addrtype", "--dst-type", "MULTICAST", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "82", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "83", "-m", "addrtype", "--dst-type", "UNICAST", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "84", "-m", "addrtype", "--src-type", "LOCAL", "-j", "DROP"},
		{"iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "85", "-m", "addrtype", "--dst-type", "LOCAL", "--limit-iface-in", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-m", "rt", "--rt-type", "0", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-m", "rt", "!", "--rt-type", "0", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-m", "addrtype", "--dst-type", "MULTICAST", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "82", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "DROP"},
		{"ip6tables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "83", "-m", "addrtype", "--dst-type", "UNICAST", "-j", "DROP"},
	}, probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "tcp dport 443 fib daddr type local counter drop"},
		{src: cfA, port: 80, want: Accept},
		{src: cfA, port: 81, want: Accept},
		{src: cfA, port: 82, want: Accept},
		{src: cfA, port: 83, want: Accept}, // IPv4: a local address is of type LOCAL only
		{src: cfA, port: 84, want: CannotTell, real: Accept, reason: "--src-type"},
		{src: cfA, port: 85, want: CannotTell, real: Drop, reason: "--limit-iface-in"},
		{src: cf6A, port: 443, want: Drop, rule: "tcp dport 443 fib daddr type local counter drop"},
		{src: cf6A, port: 80, want: Accept}, // no routing header: rt never matches, inverted or not
		{src: cf6A, port: 81, want: Accept},
		{src: cf6A, port: 82, want: Accept},
		{src: cf6A, port: 83, want: Drop}, // IPv6: a unicast address is UNICAST
	}},
	{name: "legacy", legacy: "table filter (IPv4)", cmds: [][]string{
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
	{name: "ip6 legacy", legacy: "table filter (IPv6)", cmds: [][]string{
		{"ip6tables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-s", "2001:db8:cf1::/48", "-j", "DROP"},
	}, probes: []probe{
		{src: cf6B, port: 443, want: CannotTell, real: Drop, reason: "table filter (IPv6)"},
		{src: cf6A, port: 443, want: CannotTell, real: Accept, reason: "iptables-legacy"},
		// ip6_tables does not see IPv4 packets.
		{src: cfA, port: 443, want: Accept},
	}},
	{name: "legacy listed only", legacy: "table filter (IPv4)", cmds: [][]string{
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
			rs := readNS(t, origin)
			w := rs.Warnings()
			switch {
			case tc.legacy == "" && len(w) > 0:
				t.Errorf("unexpected warnings: %q", w)
			case tc.legacy != "" && (len(w) != 1 || !strings.Contains(w[0], "iptables-legacy") || !strings.Contains(w[0], tc.legacy)):
				t.Errorf("warnings %q, want one naming iptables-legacy and %q", w, tc.legacy)
			case tc.legacy != "" && !strings.HasSuffix(w[0], "."):
				t.Errorf("warning %q is not a sentence", w[0])
			}
			checkProbes(t, rs, client, tc.probes)
		})
	}
}

func readNS(t *testing.T, ns *nstest.NS) *Ruleset {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readCtxTimeout)
	defer cancel()
	rs, err := Read(ctx, ns.Fd())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rs
}

// checkProbes connects for every probe at once and compares the kernel's
// answer with the simulator's prediction (and, for CannotTell rows, with
// what the row says the kernel does).
func checkProbes(t *testing.T, rs *Ruleset, client *nstest.NS, probes []probe) {
	t.Helper()
	solicitOrigin(t, client)
	reals := make([]Verdict, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reals[i] = dial(t, client, netip.MustParseAddr(p.src), p.port)
		}()
	}
	wg.Wait()

	for i, p := range probes {
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
}
