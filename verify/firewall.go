package verify

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"go4.org/netipx"

	"github.com/cfguard/cfguard/firewall/sim"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
)

// maxRangesNamed bounds the Cloudflare ranges a cause lists.
const maxRangesNamed = 6

// simFirewall is the firewall stage over firewall/sim: the live ruleset of
// this host's namespace, read once per interface the origin address is on.
type simFirewall struct {
	read func(ctx context.Context) (*sim.Ruleset, error)

	mu   sync.Mutex
	sets map[string]*rulesetOnce // by interface name ("" when unknown)
	// xlat is the DNAT each checked address:port is published by (dnat.go).
	xlat map[netip.AddrPort]dnatAt
}

type rulesetOnce struct {
	once sync.Once
	rs   *sim.Ruleset
	err  error
}

func newSimFirewall() *simFirewall {
	return &simFirewall{read: func(ctx context.Context) (*sim.Ruleset, error) { return sim.Read(ctx, 0) }}
}

func (f *simFirewall) ruleset(ctx context.Context, addr netip.Addr) (*sim.Ruleset, error) {
	name, index := interfaceOf(addr)
	f.mu.Lock()
	if f.sets == nil {
		f.sets = map[string]*rulesetOnce{}
	}
	ro, ok := f.sets[name]
	if !ok {
		ro = &rulesetOnce{}
		f.sets[name] = ro
	}
	f.mu.Unlock()
	ro.once.Do(func() {
		ro.rs, ro.err = f.read(ctx)
		if ro.err == nil && name != "" {
			ro.rs.SetInterface(name, index)
		}
		if ro.err == nil {
			ro.rs.SetRouter(cachedRoutes(routeTo))
		}
	})
	return ro.rs, ro.err
}

// interfaceOf names the interface that holds addr, where Cloudflare's
// packets for it arrive ("" when it is on none, e.g. an --origin-ip).
func interfaceOf(addr netip.Addr) (string, uint32) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", 0
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr.Unmap() {
					return ifc.Name, uint32(ifc.Index)
				}
			}
		}
	}
	return "", 0
}

// blocked is one rule that blocks some Cloudflare addresses.
type blocked struct {
	res    sim.Result
	ranges netipx.IPSetBuilder
}

// Check simulates a SYN from every Cloudflare range to addr:port.
func (f *simFirewall) Check(ctx context.Context, addr netip.Addr, port int, cloudflare []netip.Prefix) report.Outcome {
	o := report.Outcome{Stage: report.StageFirewall}
	rs, err := f.ruleset(ctx, addr)
	if err != nil {
		o.CannotTell = true
		o.Cause = "the nftables ruleset could not be read (" + err.Error() + ")"
		return o
	}
	var xs dnatSeen
	o = judgeFirewall(rs.Warnings(), addr, port, cloudflare, func(p netip.Prefix) []sim.PrefixResult {
		res := rs.CheckPrefix(p, addr, uint16(port))
		xs.add(res)
		return res
	})
	o = xs.judge(o, addr, port)
	x, ok := xs.one()
	if ok {
		o.Evidence = append(o.Evidence, dnatEvidence(x)) // also when a forward rule blocks
	}
	if ok || xs.unknown || len(xs.by) > 0 {
		f.mu.Lock()
		if f.xlat == nil {
			f.xlat = map[netip.AddrPort]dnatAt{}
		}
		f.xlat[netip.AddrPortFrom(addr.Unmap(), uint16(port))] = dnatAt{x: x, unknown: !ok}
		f.mu.Unlock()
	}
	return o
}

// dnatAt is what the firewall stage found about a DNAT of one address and
// port: one translation, or unknown (cannot tell, or several).
type dnatAt struct {
	x       sim.Translation
	unknown bool
}

// Translation is the DNAT that publishes addr:port, as the last Check of
// it found (the same for every Cloudflare range).
// known is false when a DNAT may send the connections elsewhere but the
// simulator cannot tell where.
func (f *simFirewall) Translation(addr netip.Addr, port int) (x sim.Translation, known bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.xlat[netip.AddrPortFrom(addr.Unmap(), uint16(port))]
	return d.x, !d.unknown
}

// routeTo is the routing decision for a DNAT'ed destination.
func routeTo(dst netip.Addr) (sim.Route, error) {
	h, err := probe.RouteTo(dst)
	if err != nil {
		return sim.Route{}, err
	}
	return sim.Route{Local: h.Local, IfName: h.Dev, IfIndex: h.DevIdx}, nil
}

// cachedRoutes asks route once per destination: the simulator asks for
// every piece of every Cloudflare range.
func cachedRoutes(route func(netip.Addr) (sim.Route, error)) func(netip.Addr) (sim.Route, error) {
	type answer struct {
		r   sim.Route
		err error
	}
	var mu sync.Mutex
	seen := map[netip.Addr]answer{}
	return func(a netip.Addr) (sim.Route, error) {
		mu.Lock()
		defer mu.Unlock()
		if x, ok := seen[a]; ok {
			return x.r, x.err
		}
		r, err := route(a)
		seen[a] = answer{r, err}
		return r, err
	}
}

// dnatSeen collects the translations of the pieces of every Cloudflare
// range.
type dnatSeen struct {
	mu      sync.Mutex
	by      []sim.Translation // distinct, in order seen
	plain   bool              // some piece is not translated
	unknown bool              // some piece meets a DNAT the simulator cannot judge
}

func (d *dnatSeen) add(res []sim.PrefixResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range res {
		x := r.Result.DNAT
		if r.Result.DNATUnknown {
			d.unknown = true
			continue
		}
		if !x.Translated() {
			d.plain = true
			continue
		}
		if !slices.Contains(d.by, x) {
			d.by = append(d.by, x)
		}
	}
}

// one is the translation every piece shares, if there is exactly one.
func (d *dnatSeen) one() (sim.Translation, bool) {
	if d.plain || d.unknown || len(d.by) != 1 {
		return sim.Translation{}, false
	}
	return d.by[0], true
}

// judge makes a passing outcome "cannot tell" when Cloudflare's ranges are
// not all sent to one place: then no single probe stands for them.
func (d *dnatSeen) judge(o report.Outcome, addr netip.Addr, port int) report.Outcome {
	if o.Fail || len(d.by) == 0 || d.unknown {
		return o // a DNAT not judged: the simulator's own "cannot tell" says why
	}
	if _, ok := d.one(); ok {
		return o
	}
	var to []string
	for _, x := range d.by {
		to = append(to, x.String())
	}
	if d.plain {
		to = append(to, "not translated (this host)")
	}
	o.CannotTell = true
	o.Cause = fmt.Sprintf("Cloudflare's connections to %s go to different places depending on their source: %s; verify probes one destination per path",
		net.JoinHostPort(addr.String(), fmt.Sprint(port)), strings.Join(to, "; "))
	return o
}

// ruleKey identifies a deciding rule.
func ruleKey(r sim.Result) string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%s\x00%d\x00%d", r.Family, r.Table, r.Chain, r.Handle, r.Rule, r.Verdict, r.Packet)
}

func describeRule(r sim.Result) string {
	where := strings.TrimSpace(fmt.Sprintf("%s %s chain %s", r.Family, r.Table, r.Chain))
	if r.Handle == 0 {
		if r.Rule != "" {
			return fmt.Sprintf("table %s: %s", where, r.Rule)
		}
		return "table " + where
	}
	return fmt.Sprintf("table %s, rule handle %d: %s", where, r.Handle, r.Rule)
}

// judgeFirewall folds the per-range results into one outcome: any blocked
// piece of any Cloudflare range fails the path (drop → 522, reject → 521);
// pieces the simulator cannot judge make it "cannot tell", never a failure.
func judgeFirewall(warnings []string, addr netip.Addr, port int, cloudflare []netip.Prefix, check func(netip.Prefix) []sim.PrefixResult) report.Outcome {
	o := report.Outcome{Stage: report.StageFirewall, Warnings: warnings}
	var (
		order     []string
		byRule    = map[string]*blocked{}
		cannot    []sim.Result
		hit       = map[netip.Prefix]bool{}
		drop, rej bool
		relevant  int
		dst       = net.JoinHostPort(addr.String(), fmt.Sprint(port))
	)
	for _, p := range cloudflare {
		if p.Addr().Is4() != addr.Unmap().Is4() {
			continue // Cloudflare reaches a v4 origin from its v4 ranges only
		}
		relevant++
		for _, piece := range check(p) {
			switch piece.Result.Verdict {
			case sim.Drop, sim.Reject:
				k := ruleKey(piece.Result)
				b, ok := byRule[k]
				if !ok {
					b = &blocked{res: piece.Result}
					byRule[k] = b
					order = append(order, k)
				}
				b.ranges.AddRange(netipx.IPRangeFrom(piece.From, piece.To))
				hit[p] = true
				if piece.Result.Verdict == sim.Drop {
					drop = true
				} else {
					rej = true
				}
			case sim.CannotTell:
				if !slices.ContainsFunc(cannot, func(r sim.Result) bool { return ruleKey(r) == ruleKey(piece.Result) }) {
					cannot = append(cannot, piece.Result)
				}
			}
		}
	}
	if len(order) > 0 {
		o.Fail = true
		verb := "rejects"
		o.Status = 521
		if drop {
			verb, o.Status = "drops", 522
		}
		if drop && rej {
			verb = "drops or rejects"
		}
		var all netipx.IPSetBuilder
		var rules []string
		for _, k := range order {
			b := byRule[k]
			set, _ := b.ranges.IPSet()
			all.AddSet(set)
			ev := describeRule(b.res) + " — blocks " + namePrefixes(set.Prefixes())
			if b.res.Reason != "" {
				ev += " (" + b.res.Reason + ")"
			}
			o.Evidence = append(o.Evidence, ev)
			rules = append(rules, describeRule(b.res))
		}
		set, _ := all.IPSet()
		if len(hit) == relevant {
			// Every range is hit; is all of each range blocked?
			full := true
			for _, p := range cloudflare {
				if p.Addr().Is4() == addr.Unmap().Is4() && !set.ContainsPrefix(p) {
					full = false
				}
			}
			if full {
				o.Cause = fmt.Sprintf("the firewall %s connections from Cloudflare to %s (%s)", verb, dst, rules[0])
			}
		}
		if o.Cause == "" {
			o.Cause = fmt.Sprintf("the firewall %s connections from part of Cloudflare to %s: %s (%s); visitors whose requests come through those Cloudflare addresses fail, so the failures will look intermittent",
				verb, dst, namePrefixes(set.Prefixes()), rules[0])
		}
		r := byRule[order[0]].res
		if cause, fix, ok := afterSYN(r, verb, dst, rules[0]); ok {
			o.Cause, o.Fix = cause, fix
			return o
		}
		o.Fix = fmt.Sprintf("Allow Cloudflare's ranges to port %d before that rule (cfguard sync keeps them allowed), or remove it (nft -a list chain %s %s %s; nft delete rule %s %s %s handle %d).",
			port, r.Family, r.Table, r.Chain, r.Family, r.Table, r.Chain, r.Handle)
		if r.Handle == 0 {
			o.Fix = fmt.Sprintf("The chain %s %s %s drops by policy: accept Cloudflare's ranges to port %d in it (cfguard sync keeps them allowed in its own table, but a drop policy in another table still applies).", r.Family, r.Table, r.Chain, port)
		}
		return o
	}
	if len(cannot) > 0 {
		o.CannotTell = true
		var why, rules, other []string
		for _, r := range cannot {
			if r.Table == "" && r.Reason != "" {
				// No rule to name (iptables-legacy tables): the reason is
				// the whole story.
				why, other = append(why, r.Reason), append(other, r.Reason)
				continue
			}
			s := describeRule(r)
			if r.Reason != "" {
				s += " (" + r.Reason + ")"
			}
			why, rules = append(why, s), append(rules, s)
		}
		if len(rules) > 0 {
			other = append([]string{"the firewall simulator cannot judge " + strings.Join(rules, "; ")}, other...)
		}
		o.Cause = strings.Join(other, "; ")
		o.Evidence = why
		return o
	}
	o.Cause = fmt.Sprintf("the firewall lets every Cloudflare range reach %s", dst)
	return o
}

// namePrefixes lists prefixes, at most maxRangesNamed.
func namePrefixes(ps []netip.Prefix) string {
	var s []string
	for i, p := range ps {
		if i == maxRangesNamed {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-i))
			break
		}
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// afterSYN words the cause and fix when the SYN is accepted but another
// packet the connection needs is not: the packets after the SYN (no `ct
// state established` accept before a drop), this host's answers (output),
// or IPv6 neighbour discovery.
func afterSYN(r sim.Result, verb, dst, rule string) (cause, fix string, ok bool) {
	chain := fmt.Sprintf("%s %s %s", r.Family, r.Table, r.Chain)
	switch r.Packet {
	case sim.PacketEstablished:
		return fmt.Sprintf("the firewall accepts the SYN from Cloudflare to %s, but %s the packets after it (%s): connections open, then every request times out", dst, verb, rule),
			fmt.Sprintf("Accept the packets of established connections before that rule: nft insert rule %s ct state established,related accept", chain), true
	case sim.PacketReply:
		return fmt.Sprintf("the firewall accepts Cloudflare's packets to %s, but %s this host's answers to them on output (%s): connections never complete", dst, verb, rule),
			fmt.Sprintf("Let the answers of established connections out before that rule: nft insert rule %s ct state established,related accept", chain), true
	case sim.PacketNeighbour:
		return fmt.Sprintf("the firewall %s IPv6 neighbour discovery to %s (%s): the router cannot find this host, so no packet from Cloudflare arrives although the SYN itself would be accepted", verb, dst, rule),
			fmt.Sprintf("Accept ICMPv6 neighbour discovery before that rule: nft insert rule %s icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept", chain), true
	}
	return "", "", false
}
