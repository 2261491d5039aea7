package verify

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/firewall/sim"
	"github.com/cfguard/cfguard/verify/report"
)

func TestJudgeFirewall(t *testing.T) {
	dropRule := sim.Result{Verdict: sim.Drop, Family: "inet", Table: "filter", Chain: "input", Handle: 7, Rule: "ip saddr 198.51.100.0/25 drop"}
	rejectRule := sim.Result{Verdict: sim.Reject, Family: "inet", Table: "filter", Chain: "input", Handle: 9, Rule: "tcp dport 443 reject"}
	policy := sim.Result{Verdict: sim.Drop, Family: "ip", Table: "foreign", Chain: "in", Rule: "policy drop"}
	legacy := sim.Result{Verdict: sim.CannotTell, Family: "ip", Table: "filter", Chain: "INPUT", Handle: 3, Rule: "xt match", Reason: "iptables-nft compat expression"}
	legacyTables := sim.Result{Verdict: sim.CannotTell, Reason: "nftables accepts, but iptables-legacy table filter (IPv4) may drop the connection first, and nftables cannot show its rules (iptables-legacy -S lists them)"}
	accept := sim.Result{Verdict: sim.Accept}
	estab := sim.Result{Verdict: sim.Drop, Family: "inet", Table: "filter", Chain: "input", Rule: "policy drop", Packet: sim.PacketEstablished}
	rejectLost := rejectRule
	rejectLost.Verdict = sim.Drop
	rejectLost.Reason = "the rule rejects, but its answer (an ICMP error, ct state related) is dropped on output by inet filter chain output (policy drop): Cloudflare sees a timeout"
	reply := sim.Result{Verdict: sim.Drop, Family: "inet", Table: "filter", Chain: "output", Rule: "policy drop", Packet: sim.PacketReply}
	nd := sim.Result{Verdict: sim.Drop, Family: "ip6", Table: "filter", Chain: "input", Rule: "policy drop", Packet: sim.PacketNeighbour}
	whole := func(r sim.Result) func(netip.Prefix) []sim.PrefixResult {
		return func(p netip.Prefix) []sim.PrefixResult {
			return []sim.PrefixResult{{From: p.Addr(), To: netipxLast(p), Result: r}}
		}
	}
	tests := []struct {
		name  string
		addr  netip.Addr
		check func(netip.Prefix) []sim.PrefixResult
		want  report.Outcome
	}{
		{"all accepted", origin4, whole(accept), report.Outcome{Stage: report.StageFirewall, Cause: "the firewall lets every Cloudflare range reach 192.0.2.1:443"}},
		{"reject everything", origin4, whole(rejectRule), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 521,
			Cause:    "the firewall rejects connections from Cloudflare to 192.0.2.1:443 (table inet filter chain input, rule handle 9: tcp dport 443 reject)",
			Fix:      "Allow Cloudflare's ranges to port 443 before that rule (cfguard sync keeps them allowed), or remove it (nft -a list chain inet filter input; nft delete rule inet filter input handle 9).",
			Evidence: []string{"table inet filter chain input, rule handle 9: tcp dport 443 reject — blocks 198.51.100.0/24, 203.0.113.0/24"}}},
		{"policy drop in a foreign table", origin6, whole(policy), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall drops connections from Cloudflare to [2001:db8:1::1]:443 (table ip foreign chain in: policy drop)",
			Fix:      "The chain ip foreign in drops by policy: accept Cloudflare's ranges to port 443 in it (cfguard sync keeps them allowed in its own table, but a drop policy in another table still applies).",
			Evidence: []string{"table ip foreign chain in: policy drop — blocks 2001:db8:cf::/48, 2001:db8:cf1::/48"}}},
		{"half of one range dropped", origin4, func(p netip.Prefix) []sim.PrefixResult {
			if p.String() != "198.51.100.0/24" {
				return whole(accept)(p)
			}
			return []sim.PrefixResult{
				{From: netip.MustParseAddr("198.51.100.0"), To: netip.MustParseAddr("198.51.100.127"), Result: dropRule},
				{From: netip.MustParseAddr("198.51.100.128"), To: netip.MustParseAddr("198.51.100.255"), Result: accept},
			}
		}, report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall drops connections from part of Cloudflare to 192.0.2.1:443: 198.51.100.0/25 (table inet filter chain input, rule handle 7: ip saddr 198.51.100.0/25 drop); visitors whose requests come through those Cloudflare addresses fail, so the failures will look intermittent",
			Fix:      "Allow Cloudflare's ranges to port 443 before that rule (cfguard sync keeps them allowed), or remove it (nft -a list chain inet filter input; nft delete rule inet filter input handle 7).",
			Evidence: []string{"table inet filter chain input, rule handle 7: ip saddr 198.51.100.0/25 drop — blocks 198.51.100.0/25"}}},
		{"the packets after the SYN dropped", origin4, whole(estab), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall accepts the SYN from Cloudflare to 192.0.2.1:443, but drops the packets after it (table inet filter chain input: policy drop): connections open, then every request times out",
			Fix:      "Accept the packets of established connections before that rule: nft insert rule inet filter input ct state established,related accept",
			Evidence: []string{"table inet filter chain input: policy drop — blocks 198.51.100.0/24, 203.0.113.0/24"}}},
		{"the answers dropped on output", origin4, whole(reply), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall accepts Cloudflare's packets to 192.0.2.1:443, but drops this host's answers to them on output (table inet filter chain output: policy drop): connections never complete",
			Fix:      "Let the answers of established connections out before that rule: nft insert rule inet filter output ct state established,related accept",
			Evidence: []string{"table inet filter chain output: policy drop — blocks 198.51.100.0/24, 203.0.113.0/24"}}},
		{"neighbour discovery dropped", origin6, whole(nd), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall drops IPv6 neighbour discovery to [2001:db8:1::1]:443 (table ip6 filter chain input: policy drop): the router cannot find this host, so no packet from Cloudflare arrives although the SYN itself would be accepted",
			Fix:      "Accept ICMPv6 neighbour discovery before that rule: nft insert rule ip6 filter input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept",
			Evidence: []string{"table ip6 filter chain input: policy drop — blocks 2001:db8:cf::/48, 2001:db8:cf1::/48"}}},
		{"a reject whose answer is dropped on output", origin4, whole(rejectLost), report.Outcome{Stage: report.StageFirewall, Fail: true, Status: 522,
			Cause:    "the firewall drops connections from Cloudflare to 192.0.2.1:443 (table inet filter chain input, rule handle 9: tcp dport 443 reject)",
			Fix:      "Allow Cloudflare's ranges to port 443 before that rule (cfguard sync keeps them allowed), or remove it (nft -a list chain inet filter input; nft delete rule inet filter input handle 9).",
			Evidence: []string{"table inet filter chain input, rule handle 9: tcp dport 443 reject — blocks 198.51.100.0/24, 203.0.113.0/24 (the rule rejects, but its answer (an ICMP error, ct state related) is dropped on output by inet filter chain output (policy drop): Cloudflare sees a timeout)"}}},
		{"cannot tell", origin4, whole(legacy), report.Outcome{Stage: report.StageFirewall, CannotTell: true,
			Cause:    "the firewall simulator cannot judge table ip filter chain INPUT, rule handle 3: xt match (iptables-nft compat expression)",
			Evidence: []string{"table ip filter chain INPUT, rule handle 3: xt match (iptables-nft compat expression)"}}},
		{"cannot tell: iptables-legacy", origin4, whole(legacyTables), report.Outcome{Stage: report.StageFirewall, CannotTell: true,
			Cause:    "nftables accepts, but iptables-legacy table filter (IPv4) may drop the connection first, and nftables cannot show its rules (iptables-legacy -S lists them)",
			Evidence: []string{"nftables accepts, but iptables-legacy table filter (IPv4) may drop the connection first, and nftables cannot show its rules (iptables-legacy -S lists them)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeFirewall(nil, tt.addr, 443, testCF, tt.check)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func netipxLast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}
