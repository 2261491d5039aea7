package sim

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// maxJumpDepth bounds nested jumps, as the kernel does (NFT_JUMP_STACK_SIZE).
const maxJumpDepth = 16

// Check predicts what the ruleset does to the exchange a connection from
// src to dst:dstPort needs, arriving on a non-loopback interface and
// delivered locally: the TCP SYN of a new connection, then the packets after
// it (the connection established), and for IPv6 the neighbour discovery that
// lets the router deliver them. Each packet goes through every base chain
// of its family on prerouting, then on input, in priority order. The result
// is the first packet that is not accepted (Result.Packet names it), or
// Accept.
func (r *Ruleset) Check(src, dst netip.Addr, dstPort uint16) Result {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return Result{Verdict: CannotTell, Reason: fmt.Sprintf("source %v and destination %v are not of one IP family", src, dst)}
	}
	r.prepare()
	res, _, _ := r.exchange(src, dst, dstPort, nil)
	return res
}

// exchange is Check for src standing for the addresses of piece (when not
// nil); it also returns the deepest source-address bit that a comparison
// read and that varies within the piece (-1: none) and the rule that read it.
func (r *Ruleset) exchange(src, dst netip.Addr, port uint16, piece *ivlAddr) (Result, int, Result) {
	dep, at := -1, Result{}
	// IPv6: the router must resolve dst before it can deliver the SYN.
	nd := Result{Verdict: Accept}
	if dst.Is6() {
		if nd = r.neighbour(dst); nd.Verdict == Drop {
			return r.legacyNote(nd, true), dep, at
		}
	}
	res := Result{Verdict: Accept}
	var xlat Translation // the SYN's DNAT, which the packets after it share
	var fwdIf string
	var fwdIndex uint32
	var estab Result // the packets after the SYN, when not accepted
	for _, kind := range []packetKind{kindSYN, kindEstablished, kindReply} {
		p := newPacketKind(kind, src, dst, port)
		p.piece = piece
		p.xlat, p.fwdIf, p.fwdIndex = xlat, fwdIf, fwdIndex
		p.forwarded = xlat.Translated() && !xlat.Local
		res = r.check(p)
		if kind == kindSYN {
			xlat, fwdIf, fwdIndex = p.xlat, p.fwdIf, p.fwdIndex
			if res.Verdict == CannotTell && p.natUnknown {
				res.DNATUnknown = true
			}
		}
		if p.dep > dep {
			dep, at = p.dep, p.depAt
		}
		if res.Verdict == Accept {
			continue
		}
		switch kind {
		case kindSYN:
		case kindEstablished:
			// The answer to the SYN (the SYN-ACK) comes before the packets
			// after the SYN: if it is not let through either, it decides.
			res.Packet = PacketEstablished
			res.Reason = strings.TrimSuffix("the SYN is accepted, but the packets after it (ct state established) are not; "+res.Reason, "; ")
			estab = res
			continue
		case kindReply:
			res.Packet = PacketReply
			if res.Verdict == Reject {
				// The reject answers the sender of the answer; Cloudflare
				// gets nothing and times out.
				res.Verdict = Drop
			}
			whose := "this host's answers to Cloudflare (output, ct state established)"
			if p.forwarded {
				whose = "the answers of " + xlat.To.String() + " to Cloudflare (forwarded back, ct state established)"
			}
			what := "the SYN and the packets after it are accepted"
			if estab.Packet == PacketEstablished {
				what = "the SYN is accepted (the packets after it are not either)"
			}
			res.Reason = strings.TrimSuffix(what+", but "+whose+" are not; "+res.Reason, "; ")
		}
		break
	}
	if res.Verdict == Accept && estab.Packet == PacketEstablished {
		res = estab
	}
	if nd.Verdict == CannotTell && res.Verdict != Drop {
		res = nd // a drop stands whatever neighbour discovery meets
	}
	res.DNAT = xlat
	return r.legacyNote(res, src.Is6()), dep, at
}

// neighbour judges IPv6 neighbour discovery for dst. The router must
// resolve dst before it can deliver a packet to it: a solicitation to dst's
// solicited-node multicast address that does not get through stops every
// connection (Drop). A unicast solicitation (the router re-checking
// reachability) or the advertisement answering this host's own solicitation
// that does not get through breaks IPv6 only now and then, when the
// neighbour caches expire, which the simulator cannot time: CannotTell,
// naming the rule.
func (r *Ruleset) neighbour(dst netip.Addr) Result {
	r.ndMu.Lock()
	defer r.ndMu.Unlock()
	if res, ok := r.nd[dst]; ok {
		return res
	}
	res := Result{Verdict: Accept}
	for _, kind := range []packetKind{kindNSMulticast, kindNAOut, kindNSUnicast, kindNA} {
		p := newPacketKind(kind, netip.Addr{}, dst, 0)
		if res = r.check(p); res.Verdict == Accept {
			continue
		}
		res.Packet = PacketNeighbour
		verb := map[Verdict]string{Drop: "dropped", Reject: "rejected", CannotTell: "maybe not accepted"}[res.Verdict]
		switch kind {
		case kindNSMulticast, kindNAOut:
			if res.Verdict == Reject {
				// The neighbour gets an ICMP error, Cloudflare nothing:
				// its connections time out.
				res.Verdict = Drop
			}
			what := "neighbour solicitations (icmpv6 type nd-neighbor-solicit) to this host are " + verb
			if kind == kindNAOut {
				what = "neighbour advertisements (icmpv6 type nd-neighbor-advert) this host answers with are " + verb + " on output"
			}
			res.Reason = strings.TrimSuffix("IPv6 "+what+", so the router cannot deliver packets to "+dst.String()+" (whatever the SYN meets); "+res.Reason, "; ")
		default:
			what := "unicast neighbour solicitations (icmpv6 type nd-neighbor-solicit, the router re-checking that " + dst.String() + " is reachable)"
			if kind == kindNA {
				what = "neighbour advertisements (icmpv6 type nd-neighbor-advert) answering this host's solicitations"
			}
			res.Verdict = CannotTell
			res.Reason = strings.TrimSuffix("IPv6 "+what+" are "+verb+": IPv6 may fail now and then, when the neighbour caches expire; "+res.Reason, "; ")
		}
		break
	}
	if r.nd == nil {
		r.nd = map[netip.Addr]Result{}
	}
	r.nd[dst] = res
	return res
}

func (r *Ruleset) check(p *packet) Result {
	hooks := []nftables.ChainHook{unix.NF_INET_PRE_ROUTING, unix.NF_INET_LOCAL_IN}
	switch {
	case p.forwarded:
		// A translated connection to another host: from Cloudflare, or
		// that host's answers, both routed through forward.
		hooks = []nftables.ChainHook{unix.NF_INET_PRE_ROUTING, unix.NF_INET_FORWARD, unix.NF_INET_POST_ROUTING}
	case p.reply:
		hooks = []nftables.ChainHook{unix.NF_INET_LOCAL_OUT, unix.NF_INET_POST_ROUTING}
	}
	// Ingress chains run before prerouting; they are not modelled.
	for _, c := range r.hookChains(p.v6, 0) {
		if p.reply {
			break
		}
		if len(c.rules) > 0 || c.policy == nftables.ChainPolicyDrop || c.bad != "" {
			return Result{Verdict: CannotTell, Family: familyName(c.table.family), Table: c.table.name, Chain: c.name,
				Reason: "ingress chain " + c.name + " of table " + familyName(c.table.family) + " " + c.table.name + " runs before prerouting and is not simulated"}
		}
	}
	for i := 0; i < len(hooks); i++ {
		hook := hooks[i]
		chains := r.hookChains(p.v6, 1+int(hook))
		for len(chains) > 0 {
			n := 1
			for n < len(chains) && chains[n].priority == chains[0].priority {
				n++
			}
			tied := natFirstOnly(p, chains[:n])
			had := p.xlat.Translated()
			if res := r.runTied(p, tied); res.Verdict != Accept {
				return res
			}
			if !had && p.xlat.Translated() && len(tied) > 1 {
				p.natUnknown = true
				return Result{Verdict: CannotTell, Family: p.xlat.Family, Table: p.xlat.Table, Chain: p.xlat.Chain, Handle: p.xlat.Handle, Rule: p.xlat.Rule,
					Reason: fmt.Sprintf("the rule translates the destination in a chain of priority %d, which other base chains on %s share: which of them sees the translated packet is not known", chains[0].priority, hookName(hook))}
			}
			chains = chains[n:]
		}
		if hook == unix.NF_INET_PRE_ROUTING && p.kind == kindSYN && p.xlat.Translated() {
			if res, ok := r.route(p); !ok {
				return res
			}
			if !p.xlat.Local {
				p.forwarded = true
				hooks = []nftables.ChainHook{unix.NF_INET_PRE_ROUTING, unix.NF_INET_FORWARD, unix.NF_INET_POST_ROUTING}
			}
		}
	}
	return Result{Verdict: Accept}
}

// runTied runs base chains of one hook and one priority. The kernel runs
// them in the order they were registered, which netlink does not show, so
// each is run on its own: an accept ends only its chain, so the result is
// the one non-accepting chain's, or the common verdict of several; chains
// that disagree (one rejects, another drops) make it CannotTell.
func (r *Ruleset) runTied(p *packet, chains []*chain) Result {
	var deciding []Result
	var by []*chain
	for _, c := range chains {
		if res := r.runChain(p, c); res.Verdict != Accept {
			deciding = append(deciding, res)
			by = append(by, c)
		}
	}
	switch {
	case len(deciding) == 0:
		return Result{Verdict: Accept}
	case len(deciding) == 1:
		return deciding[0]
	}
	first := deciding[0]
	agree := first.Verdict != CannotTell
	for _, d := range deciding[1:] {
		if d.Verdict != first.Verdict {
			agree = false
		}
	}
	var names []string
	for i, c := range by {
		names = append(names, fmt.Sprintf("%s (%s)", chainName(c), verdictVerb(deciding[i])))
	}
	if agree {
		first.Reason = strings.TrimPrefix(first.Reason+"; ", "; ") + fmt.Sprintf(
			"base chains of equal priority %d on hook %s all decide alike: %s", chains[0].priority, hookName(chains[0].hook), strings.Join(names, ", "))
		return first
	}
	if first.Verdict == CannotTell {
		return first // the first chain that cannot be judged already makes it unknown
	}
	res := first
	res.Verdict = CannotTell
	res.Reason = fmt.Sprintf("base chains %s hook %s at the same priority %d and decide differently; the kernel runs them in the order they were registered, which netlink does not show",
		strings.Join(names, " and "), hookName(chains[0].hook), chains[0].priority)
	return res
}

func chainName(c *chain) string {
	return fmt.Sprintf("%s %s %s", familyName(c.table.family), c.table.name, c.name)
}

func verdictVerb(r Result) string {
	switch r.Verdict {
	case Drop:
		return "drops"
	case Reject:
		return "rejects"
	case CannotTell:
		return "cannot be judged"
	}
	return "accepts"
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case unix.NF_INET_PRE_ROUTING:
		return "prerouting"
	case unix.NF_INET_LOCAL_IN:
		return "input"
	case unix.NF_INET_LOCAL_OUT:
		return "output"
	case unix.NF_INET_POST_ROUTING:
		return "postrouting"
	}
	return fmt.Sprintf("hook(%d)", h)
}

// baseChains lists the base chains the packet traverses on hook (or on
// ingress), sorted by priority; equal priorities keep the listing order.
func (r *Ruleset) baseChains(v6 bool, ingress bool, hook nftables.ChainHook) []*chain {
	var out []*chain
	for _, t := range r.tables {
		if t.dormant {
			continue
		}
		for _, c := range t.base {
			switch {
			case ingress && t.family == nftables.TableFamilyNetdev && c.hook == unix.NF_NETDEV_INGRESS,
				ingress && t.family == nftables.TableFamilyINet && c.hook == nfInetIngress:
				out = append(out, c)
			case ingress:
			case c.hook != hook:
			case t.family == nftables.TableFamilyINet,
				t.family == nftables.TableFamilyIPv4 && !v6,
				t.family == nftables.TableFamilyIPv6 && v6:
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	return out
}

type frame struct {
	c *chain
	i int
}

// runChain evaluates one base chain: Accept (the next base chain runs),
// Drop, Reject or CannotTell.
func (r *Ruleset) runChain(p *packet, base *chain) Result {
	// Connection tracking hooks prerouting at priority -200: chains before
	// it see no conntrack entry yet.
	p.track = p.afterCT
	if base.hook == unix.NF_INET_PRE_ROUTING || base.hook == unix.NF_INET_LOCAL_OUT {
		switch {
		case base.priority < nfPriConntrack:
			p.track = ctNotYet
		case base.priority == nfPriConntrack:
			p.track = ctUnsure
		}
	}
	p.natView(base)
	p.base = base
	cur, i := base, 0
	var stack []frame
	at := func(c *chain, ru *rule) Result {
		return Result{Family: familyName(c.table.family), Table: c.table.name, Chain: c.name, Handle: ru.handle, Rule: ru.text}
	}
	policy := func() Result {
		if base.policy == nftables.ChainPolicyDrop {
			return Result{Verdict: Drop, Family: familyName(base.table.family), Table: base.table.name, Chain: base.name, Rule: "policy drop"}
		}
		return Result{Verdict: Accept}
	}
	for {
		if cur.bad != "" {
			return Result{Verdict: CannotTell, Family: familyName(cur.table.family), Table: cur.table.name, Chain: cur.name, Reason: cur.bad}
		}
		if i >= len(cur.rules) {
			if len(stack) == 0 {
				return policy()
			}
			cur, i = stack[len(stack)-1].c, stack[len(stack)-1].i
			stack = stack[:len(stack)-1]
			continue
		}
		if ix := cur.index(p); ix != nil {
			al, sg := ix.candidates(p.src)
			if i = nextCandidate(al, sg, i, len(cur.rules)); i >= len(cur.rules) {
				continue
			}
		}
		ru := cur.rules[i]
		i++
		out := r.evalRule(p, cur, ru)
		switch out.kind {
		case outNext:
			continue
		case outAccept:
			return Result{Verdict: Accept}
		case outDrop, outReject, outCannotTell:
			res := at(cur, ru)
			res.Verdict = CannotTell
			switch out.kind {
			case outDrop:
				res.Verdict = Drop
			case outReject:
				res.Verdict = Reject
			}
			res.Reason = out.reason
			if out.kind == outReject && !p.reply {
				res = r.rejectAnswer(p, out.rst, res)
			}
			return res
		case outDNAT:
			return r.applyDNAT(p, cur, ru, out.nat)
		case outJump, outGoto:
			target := cur.table.chains[out.chain]
			if target == nil {
				res := at(cur, ru)
				res.Verdict, res.Reason = CannotTell, "chain "+out.chain+" was not found"
				return res
			}
			if out.kind == outJump {
				if len(stack) >= maxJumpDepth {
					res := at(cur, ru)
					res.Verdict, res.Reason = CannotTell, "jumps nest too deep"
					return res
				}
				stack = append(stack, frame{cur, i})
			}
			cur, i = target, 0
		case outReturn:
			if len(stack) == 0 {
				return policy()
			}
			cur, i = stack[len(stack)-1].c, stack[len(stack)-1].i
			stack = stack[:len(stack)-1]
		}
	}
}

// index is the chain's rule index for the packet, or nil to evaluate every
// rule.
func (c *chain) index(p *packet) *chainIndex {
	switch {
	case p.noIndex:
		return nil
	case p.v6:
		return c.idx6
	}
	return c.idx4
}

// hookChains are the base chains (sorted) a packet of family v6 meets on
// slot: 0 ingress, 1+hook for prerouting and input; computed by prepare.
func (r *Ruleset) hookChains(v6 bool, slot int) []*chain {
	f := 0
	if v6 {
		f = 1
	}
	return r.hooks[f][slot]
}

// natFirstOnly leaves out chains of type nat for every packet but the SYN:
// the kernel runs them only for the first packet of a connection (later
// packets reuse its mapping; untracked ones have none).
func natFirstOnly(p *packet, chains []*chain) []*chain {
	if p.kind == kindSYN && (!p.xlat.Translated() || len(chains) == 0 || chains[0].hook != unix.NF_INET_PRE_ROUTING) {
		return chains
	}
	// Once the SYN is translated, the nat chains after it on prerouting are
	// skipped (nf_nat_inet_fn runs them only while the destination mapping
	// is not set up).
	var out []*chain
	for _, c := range chains {
		if c.typ != nftables.ChainTypeNAT {
			out = append(out, c)
		}
	}
	return out
}

// rejectAnswer follows the answer of a reject (a TCP reset or an ICMP
// error, ct state related, reply direction) through output and
// postrouting: if it does not get out, Cloudflare sees a timeout (Drop)
// rather than a refusal.
func (r *Ruleset) rejectAnswer(p *packet, rst bool, res Result) Result {
	a := newPacketKind(kindRejectAnswer, p.src, p.dst, p.port)
	if !rst {
		a.icmpAnswer()
	}
	a.piece = p.piece
	ans := r.check(a)
	if a.dep > p.dep {
		p.dep, p.depAt = a.dep, a.depAt
	}
	what := "an ICMP error"
	if rst {
		what = "a TCP reset"
	}
	switch ans.Verdict {
	case Accept:
		return res
	case CannotTell:
		res.Verdict = CannotTell
	default:
		res.Verdict = Drop
	}
	res.Reason = strings.TrimSuffix(fmt.Sprintf("the rule rejects, but its answer (%s, ct state related) is %s on output by %s: Cloudflare sees a timeout; %s",
		what, map[Verdict]string{Drop: "dropped", Reject: "rejected", CannotTell: "maybe not let out"}[ans.Verdict], describeAt(ans), ans.Reason), "; ")
	return res
}

func describeAt(r Result) string {
	s := fmt.Sprintf("%s %s chain %s", r.Family, r.Table, r.Chain)
	if r.Handle != 0 {
		s += fmt.Sprintf(" rule handle %d (%s)", r.Handle, r.Rule)
	} else if r.Rule != "" {
		s += " (" + r.Rule + ")"
	}
	return s
}
