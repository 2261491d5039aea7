package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// A generator of random nftables rulesets for the differential test: a few
// inet / ip / ip6 tables with base chains on prerouting and input at many
// (and tied) priorities, both policies, named and anonymous sets, intervals,
// jumps, gotos and returns, every kind of reject, and conditions on the
// addresses, ports, conntrack state, TCP flags and ICMPv6 that the test
// clients' packets meet. Addresses come from the test network only
// (documentation prefixes).

// diffSources are the client addresses probed (all in clientAddrs).
var diffSources = []string{other4, cfA, cfB, cfC, cfD, other6, cf6A, cf6B}

// diffPorts are the destination ports probed (all in listenPorts).
var diffPorts = []uint16{80, 443, 8443}

type gen struct {
	r        *rand.Rand
	b        strings.Builder
	noReject bool // generating a postrouting chain
	outChain bool // generating an output or postrouting chain
	dnat     bool // the DNAT differential: forward chains too, and dnatTables
}

func (g *gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

// addr4 / addr6 are a source-address operand for a rule: one of the
// clients, a block around it, or another documentation block.
func (g *gen) addr4() string {
	return g.pick("198.51.100.10", "198.51.100.11", "198.51.100.10/31", "198.51.100.0/24", "198.51.100.0/25",
		"198.51.100.8/29", "203.0.113.10", "203.0.113.0/25", "203.0.113.128/25", "203.0.113.0/24", "192.0.2.2", "192.0.2.0/24",
		"198.51.100.0-198.51.100.10", "203.0.113.100-203.0.113.250")
}

func (g *gen) addr6() string {
	return g.pick("2001:db8:cf::10", "2001:db8:cf::/48", "2001:db8:cf1::/48", "2001:db8:cf::/64", "2001:db8:1::2",
		"2001:db8:1::/64", "2001:db8::/32", "2001:db8:cf::-2001:db8:cf::ff")
}

func (g *gen) port() string {
	return g.pick("80", "443", "8443", "22", "9999", "80-443", "443-8443")
}

func (g *gen) ports() string {
	n := 1 + g.r.IntN(3)
	var p []string
	for range n {
		p = append(p, g.pick("80", "443", "8443", "22", "9999"))
	}
	return "{ " + strings.Join(dedupe(p), ", ") + " }"
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

type genTable struct {
	family string
	name   string
	sets4  []string
	sets6  []string
	setsP  []string
}

// cond is one match with the protocols it implies ("" for none).
type cond struct{ text, l3, l4 string }

// condition is one match of a rule in table t.
func (g *gen) condition(t *genTable) cond {
	v4 := t.family != "ip6"
	v6 := t.family != "ip"
	var opts []func() cond
	if v4 {
		opts = append(opts,
			func() cond { return cond{"ip saddr " + g.addr4(), "ip", ""} },
			func() cond { return cond{"ip saddr != " + g.addr4(), "ip", ""} },
			func() cond { return cond{"ip saddr { " + strings.Join(g.disjoint4(), ", ") + " }", "ip", ""} },
			func() cond { return cond{"ip saddr & 0.0.0.1 == 0.0.0.1", "ip", ""} },
			func() cond { return cond{"ip daddr " + g.pick("", "!= ") + g.addr4(), "ip", ""} },
		)
		if len(t.sets4) > 0 {
			opts = append(opts, func() cond {
				return cond{"ip saddr " + g.pick("", "!= ") + "@" + t.sets4[g.r.IntN(len(t.sets4))], "ip", ""}
			})
		}
	}
	if v6 {
		opts = append(opts,
			func() cond { return cond{"ip6 saddr " + g.addr6(), "ip6", ""} },
			func() cond { return cond{"ip6 saddr != " + g.addr6(), "ip6", ""} },
			func() cond { return cond{"ip6 daddr " + g.pick("", "!= ") + g.addr6(), "ip6", ""} },
			func() cond {
				return cond{"icmpv6 type " + g.pick("nd-neighbor-solicit", "{ nd-neighbor-solicit, nd-neighbor-advert }", "echo-request"), "ip6", "icmpv6"}
			},
		)
		if len(t.sets6) > 0 {
			opts = append(opts, func() cond {
				return cond{"ip6 saddr " + g.pick("", "!= ") + "@" + t.sets6[g.r.IntN(len(t.sets6))], "ip6", ""}
			})
		}
	}
	opts = append(opts,
		func() cond { return cond{"tcp dport " + g.port(), "", "tcp"} },
		func() cond { return cond{"tcp dport " + g.ports(), "", "tcp"} },
		func() cond { return cond{"tcp dport != " + g.port(), "", "tcp"} },
		func() cond { return cond{"th dport " + g.port(), "", ""} },
		func() cond {
			return cond{"ct state " + g.pick("new", "established", "established,related", "invalid", "new,established", "untracked"), "", ""}
		},
		func() cond { return cond{"ct state != " + g.pick("new", "established"), "", ""} },
		func() cond {
			return cond{"tcp flags " + g.pick("syn", "ack", "syn,ack", "fin") + " / syn,ack,fin,rst", "", "tcp"}
		},
		func() cond {
			l4 := g.pick("tcp", "udp", "ipv6-icmp")
			implied := map[string]string{"tcp": "tcp", "udp": "udp", "ipv6-icmp": "icmpv6"}[l4]
			return cond{"meta l4proto " + l4, "", implied}
		},
		func() cond { return cond{`iifname "lo"`, "", ""} },
		func() cond { return cond{`oifname "lo"`, "", ""} },
		func() cond { return cond{"ct direction " + g.pick("original", "reply"), "", ""} },
		func() cond { return cond{"meta pkttype " + g.pick("host", "multicast"), "", ""} },
	)
	if len(t.setsP) > 0 {
		opts = append(opts, func() cond { return cond{"tcp dport @" + t.setsP[g.r.IntN(len(t.setsP))], "", "tcp"} })
	}
	if g.outChain { // this host's port is the source port of its answers
		opts = append(opts, func() cond { return cond{"tcp sport " + g.port(), "", "tcp"} },
			func() cond { return cond{"tcp sport " + g.ports(), "", "tcp"} })
	}
	if t.family == "inet" {
		opts = append(opts, func() cond {
			f := g.pick("ipv4", "ipv6")
			return cond{"meta nfproto " + f, map[string]string{"ipv4": "ip", "ipv6": "ip6"}[f], ""}
		})
	}
	return opts[g.r.IntN(len(opts))]()
}

// disjoint4 / disjoint6 are one or two elements of an interval set that do
// not overlap (nft refuses overlapping intervals).
func (g *gen) disjoint4() []string {
	return g.twoOf("198.51.100.10", "198.51.100.11", "198.51.100.128/25", "203.0.113.0/25", "203.0.113.200", "192.0.2.2", "198.51.100.0/29")
}

func (g *gen) disjoint6() []string {
	return g.twoOf("2001:db8:cf::10", "2001:db8:cf1::/48", "2001:db8:1::2", "2001:db8:cf:1::/64", "2001:db8:cf::20-2001:db8:cf::ff")
}

func (g *gen) twoOf(s ...string) []string {
	i, j := g.r.IntN(len(s)), g.r.IntN(len(s))
	if i == j {
		return []string{s[i]}
	}
	return []string{s[i], s[j]}
}

// verdict is the end of a rule; jumps go to chains later in the list (no
// loops).
func (g *gen) verdict(t *genTable, targets []string) string {
	rejects := map[string][]string{
		"inet": {"reject", "reject with tcp reset", "reject with icmpx type admin-prohibited", "reject with icmpx type host-unreachable"},
		"ip":   {"reject", "reject with tcp reset", "reject with icmp type host-unreachable", "reject with icmp type admin-prohibited"},
		"ip6":  {"reject", "reject with tcp reset", "reject with icmpv6 type admin-prohibited", "reject with icmpv6 type addr-unreachable"},
	}[t.family]
	opts := []string{"accept", "accept", "drop", "drop", rejects[g.r.IntN(len(rejects))], "counter", "return", "continue"}
	if len(targets) > 0 {
		tg := targets[g.r.IntN(len(targets))]
		opts = append(opts, "jump "+tg, "jump "+tg, "goto "+tg)
	}
	return opts[g.r.IntN(len(opts))]
}

func (g *gen) rules(t *genTable, targets []string) []string {
	var out []string
	for range g.r.IntN(6) {
		var parts []string
		l3, l4 := "", ""
		for range g.r.IntN(3) {
			for range 5 { // retry a match whose protocols conflict with the rule's
				c := g.condition(t)
				if (c.l3 != "" && l3 != "" && c.l3 != l3) || (c.l4 != "" && l4 != "" && c.l4 != l4) {
					continue
				}
				l3, l4 = cmpOr(l3, c.l3), cmpOr(l4, c.l4)
				parts = append(parts, c.text)
				break
			}
		}
		v := g.verdict(t, targets)
		if g.noReject && strings.HasPrefix(v, "reject") {
			v = "drop"
		}
		if strings.Contains(v, "tcp reset") && l4 != "tcp" {
			v = "reject"
		}
		if strings.HasPrefix(v, "reject") && l4 == "icmpv6" || strings.HasPrefix(v, "reject") && l4 == "udp" {
			v = "drop"
		}
		parts = append(parts, v)
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ruleset returns one random ruleset as an nft script.
func (g *gen) ruleset() string {
	g.b.Reset()
	fmt.Fprintln(&g.b, "flush ruleset")
	ntables := 1 + g.r.IntN(3)
	for ti := range ntables {
		t := &genTable{family: g.pick("inet", "inet", "ip", "ip6"), name: fmt.Sprintf("t%d", ti)}
		fmt.Fprintf(&g.b, "table %s %s {\n", t.family, t.name)
		for si := range g.r.IntN(3) {
			name := fmt.Sprintf("s%d", si)
			switch kind := g.r.IntN(3); {
			case kind == 0 && t.family != "ip6":
				t.sets4 = append(t.sets4, name)
				fmt.Fprintf(&g.b, "\tset %s { type ipv4_addr; flags interval; elements = { %s } }\n", name, strings.Join(g.disjoint4(), ", "))
			case kind == 1 && t.family != "ip":
				t.sets6 = append(t.sets6, name)
				fmt.Fprintf(&g.b, "\tset %s { type ipv6_addr; flags interval; elements = { %s } }\n", name, strings.Join(g.disjoint6(), ", "))
			default:
				t.setsP = append(t.setsP, name)
				fmt.Fprintf(&g.b, "\tset %s { type inet_service; elements = %s }\n", name, g.ports())
			}
		}
		nreg := g.r.IntN(3)
		var regular []string
		for i := range nreg {
			regular = append(regular, fmt.Sprintf("c%d", i))
		}
		for i, name := range regular {
			fmt.Fprintf(&g.b, "\tchain %s {\n", name)
			for _, r := range g.rules(t, regular[i+1:]) {
				fmt.Fprintf(&g.b, "\t\t%s\n", r)
			}
			fmt.Fprintln(&g.b, "\t}")
		}
		for bi := range 1 + g.r.IntN(2) {
			hook := g.pick("input", "input", "input", "prerouting", "output", "postrouting")
			if g.dnat {
				hook = g.pick("forward", "forward", "forward", "input", "prerouting", "output", "postrouting")
			}
			prio := g.pick("-300", "-150", "-10", "0", "0", "0", "10", "100")
			policy := g.pick("accept", "accept", "drop")
			fmt.Fprintf(&g.b, "\tchain b%d {\n\t\ttype filter hook %s priority %s; policy %s;\n", bi, hook, prio, policy)
			g.noReject = hook == "postrouting" // reject is not allowed there
			g.outChain = hook == "output" || hook == "postrouting"
			for _, r := range g.rules(t, regular) {
				fmt.Fprintf(&g.b, "\t\t%s\n", r)
			}
			g.noReject, g.outChain = false, false
			fmt.Fprintln(&g.b, "\t}")
		}
		fmt.Fprintln(&g.b, "}")
	}
	if g.dnat {
		g.b.WriteString(dnatTables)
	}
	return g.b.String()
}

// iptables returns, for some rulesets, iptables-nft / ip6tables-nft commands
// to run after the nft script: the shapes hand-written iptables and UFW make
// (a table ip / ip6 filter, chain INPUT at priority 0, compat matches for
// conntrack, state, multiport, tcp, icmp6, comment, LOG and REJECT).
func (g *gen) iptables() [][]string {
	if g.r.IntN(3) != 0 {
		return nil
	}
	var out [][]string
	for _, tool := range []string{"iptables-nft", "ip6tables-nft"} {
		if g.r.IntN(2) == 0 {
			continue
		}
		v6 := tool == "ip6tables-nft"
		src := g.addr4
		if v6 {
			src = g.addr6
		}
		if g.r.IntN(3) == 0 {
			out = append(out, []string{tool, "-P", "INPUT", "DROP"})
		}
		for range 1 + g.r.IntN(4) {
			var m []string
			switch g.r.IntN(8) {
			case 0:
				m = []string{"-m", "conntrack", "--ctstate", g.pick("NEW", "ESTABLISHED,RELATED", "INVALID")}
			case 1:
				m = []string{"-m", "state", "--state", g.pick("NEW", "ESTABLISHED,RELATED")}
			case 2:
				m = []string{"-p", "tcp", "-m", "multiport", "--dports", g.pick("80,443", "8443", "22,80:443")}
			case 3:
				m = []string{"-p", "tcp", "--dport", g.pick("80", "443", "8443", "1000:9000")}
			case 4:
				if a := src(); !strings.Contains(a, "-") {
					m = []string{"-s", a}
				}
			case 5:
				m = []string{"-p", "tcp", g.pick("--syn", "!", "--syn"), "-m", "comment", "--comment", "x"}
				if m[2] == "!" {
					m = []string{"-p", "tcp", "!", "--syn"}
				}
			case 6:
				if v6 {
					m = []string{"-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", g.pick("neighbour-solicitation", "neighbour-advertisement", "echo-request")}
				}
			case 7:
				m = []string{"-i", "lo"}
			}
			target := g.pick("ACCEPT", "DROP", "REJECT", "LOG")
			if target == "REJECT" && g.r.IntN(2) == 0 && len(m) > 1 && m[0] == "-p" && m[1] == "tcp" {
				out = append(out, append(append([]string{tool, "-A", "INPUT"}, m...), "-j", "REJECT", "--reject-with", "tcp-reset"))
				continue
			}
			out = append(out, append(append([]string{tool, "-A", "INPUT"}, m...), "-j", target))
		}
	}
	return out
}
