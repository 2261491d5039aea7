package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// maxJumpDepth bounds nested jumps, as the kernel does (NFT_JUMP_STACK_SIZE).
const maxJumpDepth = 16

// Known values of the simulated packet.
const (
	ctStateNew      = 8    // NF_CT_STATE_BIT(IP_CT_NEW)
	ctStateInvalid  = 1    // NF_CT_STATE_INVALID_BIT: no conntrack entry (yet)
	nfPriConntrack  = -200 // NF_IP_PRI_CONNTRACK / NF_IP6_PRI_CONNTRACK
	ctDirOriginal   = 0
	packetHost      = 0 // PACKET_HOST
	loopbackIfindex = 1
	tcpFlagSYN      = 0x02
	nfInetIngress   = 5 // NF_INET_INGRESS: inet ingress chains (Linux 5.10)
)

// Check predicts what the ruleset does to a TCP SYN of a new connection
// from src to dst:dstPort that arrives on a non-loopback interface and is
// delivered locally: every base chain of the packet's family on prerouting,
// then on input, in priority order.
func (r *Ruleset) Check(src, dst netip.Addr, dstPort uint16) Result {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return Result{Verdict: CannotTell, Reason: fmt.Sprintf("source %v and destination %v are not of one IP family", src, dst)}
	}
	res := r.check(newPacket(src, dst, dstPort))
	// ip_tables hooks only IPv4 packets, ip6_tables only IPv6 ones.
	var legacy []string
	for _, l := range r.legacy {
		if strings.HasPrefix(l, "ip6_tables:") == src.Is6() {
			legacy = append(legacy, l)
		}
	}
	if len(legacy) > 0 {
		note := "iptables-legacy tables are present (" + strings.Join(legacy, ", ") + ") and netlink does not show their rules"
		switch res.Verdict {
		case Accept:
			res.Verdict = CannotTell
			res.Reason = "nftables accepts, but " + note
		case Drop, Reject:
			res.Reason = strings.TrimPrefix(res.Reason+"; ", "; ") + note + " (they may decide first)"
		}
	}
	return res
}

func (r *Ruleset) check(p *packet) Result {
	// Ingress chains run before prerouting; they are not modelled.
	for _, c := range r.baseChains(p, true, 0) {
		if len(c.rules) > 0 || c.policy == nftables.ChainPolicyDrop || c.bad != "" {
			return Result{Verdict: CannotTell, Family: familyName(c.table.family), Table: c.table.name, Chain: c.name,
				Reason: "ingress chain " + c.name + " of table " + familyName(c.table.family) + " " + c.table.name + " runs before prerouting and is not simulated"}
		}
	}
	for _, hook := range []nftables.ChainHook{unix.NF_INET_PRE_ROUTING, unix.NF_INET_LOCAL_IN} {
		for _, c := range r.baseChains(p, false, hook) {
			res := r.runChain(p, c)
			if res.Verdict != Accept {
				return res
			}
		}
	}
	return Result{Verdict: Accept}
}

// baseChains lists the base chains the packet traverses on hook (or on
// ingress), sorted by priority; equal priorities keep the listing order.
func (r *Ruleset) baseChains(p *packet, ingress bool, hook nftables.ChainHook) []*chain {
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
				t.family == nftables.TableFamilyIPv4 && !p.v6,
				t.family == nftables.TableFamilyIPv6 && p.v6:
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
	p.track = ctTracked
	if base.hook == unix.NF_INET_PRE_ROUTING {
		switch {
		case base.priority < nfPriConntrack:
			p.track = ctNotYet
		case base.priority == nfPriConntrack:
			p.track = ctUnsure
		}
	}
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
			return res
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

type outKind int

const (
	outNext outKind = iota // the rule did not match, or matched without a verdict
	outAccept
	outDrop
	outReject
	outJump
	outGoto
	outReturn
	outCannotTell
)

type outcome struct {
	kind   outKind
	chain  string
	reason string
}

// evalRule runs a rule's expressions over the packet. When an expression
// cannot be evaluated and the rest of the rule (from it on) has no effect
// on the verdict, the rule is skipped: the kernel would move on either way.
func (r *Ruleset) evalRule(p *packet, c *chain, ru *rule) outcome {
	if ru.bad != "" {
		return outcome{kind: outCannotTell, reason: ru.bad}
	}
	var rg regs
	for i, e := range ru.exprs {
		st, o := r.evalExpr(p, c, &rg, e)
		switch st {
		case stContinue:
			continue
		case stBreak:
			return outcome{kind: outNext}
		case stVerdict:
			return o
		case stUnknown:
			for _, rest := range ru.exprs[i:] {
				if hasEffect(rest) {
					return outcome{kind: outCannotTell, reason: o.reason}
				}
			}
			return outcome{kind: outNext}
		}
	}
	return outcome{kind: outNext}
}

type step int

const (
	stContinue step = iota
	stBreak
	stVerdict
	stUnknown
)

func unknownf(format string, a ...any) (step, outcome) {
	return stUnknown, outcome{reason: fmt.Sprintf(format, a...)}
}

func (r *Ruleset) evalExpr(p *packet, c *chain, rg *regs, e expr.Any) (step, outcome) {
	switch e := e.(type) {
	case *expr.Counter, *expr.Log:
		return stContinue, outcome{}
	case *expr.Verdict:
		switch e.Kind {
		case expr.VerdictAccept:
			return stVerdict, outcome{kind: outAccept}
		case expr.VerdictDrop:
			return stVerdict, outcome{kind: outDrop}
		case expr.VerdictJump:
			return stVerdict, outcome{kind: outJump, chain: e.Chain}
		case expr.VerdictGoto:
			return stVerdict, outcome{kind: outGoto, chain: e.Chain}
		case expr.VerdictReturn:
			return stVerdict, outcome{kind: outReturn}
		case expr.VerdictContinue:
			return stVerdict, outcome{kind: outNext}
		case expr.VerdictBreak:
			return stBreak, outcome{}
		}
		return unknownf("verdict %s is not modelled", verdictName(e.Kind))
	case *expr.Reject:
		return stVerdict, outcome{kind: outReject}
	case *expr.Immediate:
		if e.Register == unix.NFT_REG_VERDICT {
			return unknownf("an immediate verdict that could not be decoded")
		}
		if !rg.set(e.Register, e.Data, nil, "") {
			return unknownf("immediate into an invalid register")
		}
		return stContinue, outcome{}
	case *expr.Meta:
		if e.SourceRegister {
			return unknownf("meta %s set is not modelled", metaName(e.Key))
		}
		val, known, why := p.meta(e.Key, r)
		if !rg.set(e.Register, val, known, why) {
			return unknownf("meta into an invalid register")
		}
		if e.Key == expr.MetaKeyIIF && r.ifName == "" {
			rg.exclude(e.Register, binary.NativeEndian.AppendUint32(nil, loopbackIfindex), 4)
		}
		if e.Key == expr.MetaKeyIIFNAME && r.ifName == "" {
			rg.exclude(e.Register, []byte("lo\x00"), 3)
		}
		return stContinue, outcome{}
	case *expr.Ct:
		if e.SourceRegister {
			return unknownf("ct %s set is not modelled", ctName(e.Key))
		}
		switch {
		case p.track == ctUnsure:
			return unknownf("ct %s in a prerouting chain at priority -200, where connection tracking itself runs: which runs first is not known", ctName(e.Key))
		case p.track == ctNotYet && e.Key != expr.CtKeySTATE:
			return stBreak, outcome{} // no conntrack entry: nft_ct_get_eval breaks the rule
		}
		val, known, why := p.ct(e.Key, e.Direction)
		if !rg.set(e.Register, val, known, why) {
			return unknownf("ct into an invalid register")
		}
		return stContinue, outcome{}
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			return unknownf("payload write (%s) is not modelled", payloadName(e.Base, e.Offset, e.Len, p.v6))
		}
		val, known, why := p.payload(e)
		if !rg.set(e.DestRegister, val, known, why) {
			return unknownf("payload into an invalid register")
		}
		return stContinue, outcome{}
	case *expr.Bitwise:
		if uint32(len(e.Mask)) != e.Len || uint32(len(e.Xor)) != e.Len {
			return unknownf("a bitwise operation other than mask/xor")
		}
		v, k, why, ok := rg.get(e.SourceRegister, int(e.Len))
		if !ok {
			return unknownf("bitwise from an invalid register")
		}
		nv, nk := make([]byte, e.Len), make([]byte, e.Len)
		for i := range nv {
			nv[i] = v[i]&e.Mask[i] ^ e.Xor[i]
			nk[i] = k[i] | ^e.Mask[i]
		}
		rg.set(e.DestRegister, nv, nk, why)
		return stContinue, outcome{}
	case *expr.Cmp:
		v, k, why, ok := rg.get(e.Register, len(e.Data))
		if !ok {
			return unknownf("cmp on an invalid register")
		}
		if ex := rg.excluded(e.Register, e.Data); ex && (e.Op == expr.CmpOpEq || e.Op == expr.CmpOpNeq) {
			return boolStep(e.Op == expr.CmpOpNeq)
		}
		res, sure := compare(v, k, e.Data)
		if !sure {
			if e.Op == expr.CmpOpEq || e.Op == expr.CmpOpNeq {
				if differsInKnownBits(v, k, e.Data) {
					return boolStep(e.Op == expr.CmpOpNeq)
				}
			}
			return unknownf("%s", why)
		}
		switch e.Op {
		case expr.CmpOpEq:
			return boolStep(res == 0)
		case expr.CmpOpNeq:
			return boolStep(res != 0)
		case expr.CmpOpLt:
			return boolStep(res < 0)
		case expr.CmpOpLte:
			return boolStep(res <= 0)
		case expr.CmpOpGt:
			return boolStep(res > 0)
		case expr.CmpOpGte:
			return boolStep(res >= 0)
		}
		return unknownf("cmp operator %d", e.Op)
	case *expr.Range:
		v, k, why, ok := rg.get(e.Register, len(e.FromData))
		if !ok || len(e.FromData) != len(e.ToData) {
			return unknownf("range on an invalid register")
		}
		lo, s1 := compare(v, k, e.FromData)
		hi, s2 := compare(v, k, e.ToData)
		if !s1 || !s2 {
			return unknownf("%s", why)
		}
		in := lo >= 0 && hi <= 0
		return boolStep(in == (e.Op == expr.CmpOpEq))
	case *expr.Lookup:
		s := c.table.sets[e.SetName]
		switch {
		case c.table.setsErr != "":
			return unknownf("%s", c.table.setsErr)
		case s == nil:
			return unknownf("set %s was not found", e.SetName)
		case s.bad != "":
			return unknownf("%s", s.bad)
		case e.IsDestRegSet && e.DestRegister == unix.NFT_REG_VERDICT:
			return unknownf("a verdict map (vmap%s) is not modelled", setRef(s))
		case e.IsDestRegSet:
			return unknownf("a map lookup (%s) is not modelled", strings.TrimPrefix(setRef(s), " "))
		case s.concatenation:
			return unknownf("a concatenation lookup (%s) is not modelled", strings.TrimPrefix(setRef(s), " "))
		}
		v, k, why, ok := rg.get(e.SourceRegister, s.keyLen)
		if !ok || s.keyLen == 0 {
			return unknownf("a lookup (%s) from an invalid register", strings.TrimPrefix(setRef(s), " "))
		}
		if !allKnown(k) {
			return unknownf("%s", why)
		}
		return boolStep(s.contains(v) != e.Invert)
	case *expr.Objref:
		if e.Type == 1 { // NFT_OBJECT_COUNTER
			return stContinue, outcome{}
		}
		return unknownf("named object %q (type %d) is not modelled", e.Name, e.Type)
	case *expr.NAT:
		if e.Type == expr.NATTypeDestNAT {
			return unknownf("dnat in chain %s: the destination changes, which is not modelled", c.name)
		}
		return unknownf("snat in chain %s is not modelled", c.name)
	case *expr.Redir:
		return unknownf("redirect in chain %s: the destination changes, which is not modelled", c.name)
	case *xtExpr:
		return evalXT(p, e)
	case *expr.Match:
		return unknownf("iptables-nft compat match %q (xt_%s) is not modelled", e.Name, e.Name)
	case *expr.Target:
		return unknownf("iptables-nft compat target %q is not modelled", e.Name)
	case *expr.Fib:
		return unknownf("fib (a routing lookup) is not modelled")
	case *expr.Limit:
		return unknownf("limit (a rate limit) is not modelled")
	case *expr.Quota:
		return unknownf("quota is not modelled")
	case *expr.Connlimit:
		return unknownf("ct count (connlimit) is not modelled")
	case *expr.Dynset:
		return unknownf("dynamic set update (%s @%s) is not modelled", dynsetOp(e.Operation), e.SetName)
	case *expr.Numgen:
		return unknownf("numgen (a number generator) is not modelled")
	case *expr.Hash:
		return unknownf("hash (jhash/symhash) is not modelled")
	case *expr.Exthdr:
		return unknownf("exthdr (%s) is not modelled", exthdrName(e))
	case *expr.Queue:
		return unknownf("queue (to user space) is not modelled")
	case *expr.Notrack:
		return unknownf("notrack changes the conntrack state, which is not modelled")
	case *unknownExpr:
		return unknownf("expression %q is not modelled", e.name)
	}
	return unknownf("expression %s is not modelled", exprName(e))
}

func boolStep(match bool) (step, outcome) {
	if match {
		return stContinue, outcome{}
	}
	return stBreak, outcome{}
}

// hasEffect reports whether an expression can change what happens to the
// packet (a verdict, a rewrite, a state change), as opposed to only deciding
// whether the rest of its rule runs.
func hasEffect(e expr.Any) bool {
	switch e := e.(type) {
	case *expr.Counter, *expr.Log, *expr.Cmp, *expr.Range, *expr.Bitwise, *expr.Limit,
		*expr.Quota, *expr.Connlimit, *expr.Fib, *expr.Numgen, *expr.Hash, *expr.Match:
		return false
	case *xtExpr:
		return e.target && e.act != xtContinue
	case *expr.Meta:
		return e.SourceRegister
	case *expr.Ct:
		return e.SourceRegister
	case *expr.Payload:
		return e.OperationType != expr.PayloadLoad
	case *expr.Lookup:
		return e.IsDestRegSet
	case *expr.Exthdr:
		return e.SourceRegister != 0
	case *expr.Objref:
		return e.Type != 1 && e.Type != 2 && e.Type != 4 // counter, quota, limit
	case *expr.Immediate:
		return e.Register == unix.NFT_REG_VERDICT
	}
	return true
}

// compare compares a register value (with its known bits) with data as
// memcmp does; sure is false when an unknown bit decides.
func compare(v, k, d []byte) (int, bool) {
	for i := range d {
		if k[i] == 0xff {
			if v[i] != d[i] {
				if v[i] < d[i] {
					return -1, true
				}
				return 1, true
			}
			continue
		}
		lo, hi := v[i]&k[i], v[i]&k[i]|^k[i]
		switch {
		case hi < d[i]:
			return -1, true
		case lo > d[i]:
			return 1, true
		}
		return 0, false
	}
	return 0, true
}

func differsInKnownBits(v, k, d []byte) bool {
	for i := range d {
		if (v[i]^d[i])&k[i] != 0 {
			return true
		}
	}
	return false
}

func allKnown(k []byte) bool {
	for _, b := range k {
		if b != 0xff {
			return false
		}
	}
	return true
}

// regs is the register file of one rule evaluation: NFT_REG_1..4 (16 bytes
// each) overlaid by NFT_REG32_00..15 (4 bytes each), with a known-bits mask,
// a reason for each unknown 4-byte word, and values the word is known not
// to hold (the interface is not loopback).
type regs struct {
	val, known [64]byte
	why        [16]string
	excl       [16][]byte
}

func regOffset(r uint32) (int, bool) {
	switch {
	case r >= unix.NFT_REG_1 && r <= unix.NFT_REG_4:
		return int(r-unix.NFT_REG_1) * 16, true
	case r >= unix.NFT_REG32_00 && r <= unix.NFT_REG32_15:
		return int(r-unix.NFT_REG32_00) * 4, true
	}
	return 0, false
}

func (rg *regs) set(r uint32, val, known []byte, why string) bool {
	off, ok := regOffset(r)
	if !ok || off+len(val) > len(rg.val) {
		return false
	}
	copy(rg.val[off:], val)
	for i := range val {
		kb := byte(0xff)
		if known != nil {
			kb = known[i]
		}
		rg.known[off+i] = kb
	}
	for w := off / 4; w*4 < off+len(val); w++ {
		rg.why[w], rg.excl[w] = why, nil
	}
	// A load pads to whole 4-byte words with zeros.
	for i := off + len(val); i%4 != 0; i++ {
		rg.val[i], rg.known[i] = 0, 0xff
	}
	return true
}

func (rg *regs) get(r uint32, n int) (val, known []byte, why string, ok bool) {
	off, ok := regOffset(r)
	if !ok || off+n > len(rg.val) {
		return nil, nil, "", false
	}
	why = "a register that was never loaded"
	for w := off / 4; w*4 < off+n; w++ {
		if rg.why[w] != "" {
			why = rg.why[w]
			break
		}
	}
	return rg.val[off : off+n], rg.known[off : off+n], why, true
}

// exclude records that the value loaded at r is not v (compared over at
// least min bytes).
func (rg *regs) exclude(r uint32, v []byte, min int) {
	off, _ := regOffset(r)
	rg.excl[off/4] = append(append([]byte(nil), v...), byte(min))
}

// excluded reports whether the register at r certainly differs from d.
func (rg *regs) excluded(r uint32, d []byte) bool {
	off, ok := regOffset(r)
	if !ok || rg.excl[off/4] == nil {
		return false
	}
	ex := rg.excl[off/4]
	v, min := ex[:len(ex)-1], int(ex[len(ex)-1])
	if len(d) < min {
		return false // a prefix (wildcard) comparison
	}
	for i := range d {
		var b byte
		if i < len(v) {
			b = v[i]
		}
		if d[i] != b {
			return false
		}
	}
	return true
}

// packet is the simulated TCP SYN.
type packet struct {
	v6        bool
	src, dst  netip.Addr
	port      uint16
	nh, nhK   []byte // network header and its known bits
	th, thK   []byte // TCP header (20 bytes) and its known bits
	nfproto   byte
	ethertype uint16
	track     ctTrack // whether the chain being run sees the conntrack entry
}

type ctTrack int

const (
	ctTracked ctTrack = iota // after conntrack: a new connection, original direction
	ctNotYet                 // prerouting before conntrack: no entry, state "invalid"
	ctUnsure                 // prerouting at conntrack's own priority
)

func newPacket(src, dst netip.Addr, port uint16) *packet {
	p := &packet{v6: src.Is6(), src: src, dst: dst, port: port}
	if p.v6 {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV6, unix.ETH_P_IPV6
		p.nh, p.nhK = make([]byte, 40), make([]byte, 40)
		p.nh[0], p.nhK[0] = 0x60, 0xf0 // version 6; traffic class unknown
		p.nh[6], p.nhK[6] = unix.IPPROTO_TCP, 0xff
		s, d := src.As16(), dst.As16()
		copy(p.nh[8:], s[:])
		copy(p.nh[24:], d[:])
		for i := 8; i < 40; i++ {
			p.nhK[i] = 0xff
		}
	} else {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV4, unix.ETH_P_IP
		p.nh, p.nhK = make([]byte, 20), make([]byte, 20)
		p.nh[0], p.nhK[0] = 0x45, 0xff // version 4, no options
		p.nh[9], p.nhK[9] = unix.IPPROTO_TCP, 0xff
		s, d := src.As4(), dst.As4()
		copy(p.nh[12:], s[:])
		copy(p.nh[16:], d[:])
		for i := 12; i < 20; i++ {
			p.nhK[i] = 0xff
		}
		// fragment offset 0 and MF clear: a SYN is not a fragment
		p.nhK[6], p.nhK[7] = 0x3f, 0xff
	}
	p.th, p.thK = make([]byte, 20), make([]byte, 20)
	binary.BigEndian.PutUint16(p.th[2:], port)
	p.thK[2], p.thK[3] = 0xff, 0xff
	for i := 8; i < 12; i++ { // acknowledgement number: zero in a SYN
		p.thK[i] = 0xff
	}
	p.th[13], p.thK[13] = tcpFlagSYN, 0x3f // ECE/CWR may be set (ECN)
	p.thK[18], p.thK[19] = 0xff, 0xff      // urgent pointer
	return p
}

func (p *packet) payload(e *expr.Payload) ([]byte, []byte, string) {
	off, n := e.Offset, e.Len
	var src, srcK []byte
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		src, srcK = p.nh, p.nhK
	case expr.PayloadBaseTransportHeader:
		src, srcK = p.th, p.thK
	}
	var val, known []byte
	if off+n <= uint32(len(src)) {
		val, known = src[off:off+n], srcK[off:off+n]
	} else {
		val, known = make([]byte, n), make([]byte, n)
		for i := uint32(0); i < n; i++ {
			if j := off + i; j < uint32(len(src)) {
				val[i], known[i] = src[j], srcK[j]
			}
		}
	}
	if allKnown(known) {
		return val, known, ""
	}
	fam := nftables.TableFamilyIPv4
	if p.v6 {
		fam = nftables.TableFamilyIPv6
	}
	return val, known, payloadField(fam, e, "tcp").name + " is not known in advance"
}

func (p *packet) meta(k expr.MetaKey, r *Ruleset) ([]byte, []byte, string) {
	switch k {
	case expr.MetaKeyNFPROTO:
		return []byte{p.nfproto}, nil, ""
	case expr.MetaKeyL4PROTO:
		return []byte{unix.IPPROTO_TCP}, nil, ""
	case expr.MetaKeyPROTOCOL:
		return binary.BigEndian.AppendUint16(nil, p.ethertype), nil, ""
	case expr.MetaKeyPKTTYPE:
		return []byte{packetHost}, nil, ""
	case expr.MetaKeyIIF:
		if r.ifName != "" {
			return binary.NativeEndian.AppendUint32(nil, r.ifIndex), nil, ""
		}
		return make([]byte, 4), make([]byte, 4), "iif: the interface Cloudflare's packets arrive on is not known (only that it is not lo)"
	case expr.MetaKeyIIFNAME:
		if r.ifName != "" {
			b := make([]byte, unix.IFNAMSIZ)
			copy(b, r.ifName)
			return b, nil, ""
		}
		return make([]byte, unix.IFNAMSIZ), make([]byte, unix.IFNAMSIZ), "iifname: the interface Cloudflare's packets arrive on is not known (only that it is not lo)"
	}
	return make([]byte, 16), make([]byte, 16), "meta " + metaName(k) + " is not known in advance"
}

func (p *packet) ct(k expr.CtKey, dir uint32) ([]byte, []byte, string) {
	switch k {
	case expr.CtKeySTATE:
		if p.track == ctNotYet {
			return binary.NativeEndian.AppendUint32(nil, ctStateInvalid), nil, ""
		}
		return binary.NativeEndian.AppendUint32(nil, ctStateNew), nil, ""
	case expr.CtKeyDIRECTION:
		return []byte{ctDirOriginal}, nil, ""
	case expr.CtKeyL3PROTOCOL:
		return []byte{p.nfproto}, nil, ""
	case expr.CtKeyPROTOCOL:
		return []byte{unix.IPPROTO_TCP}, nil, ""
	case expr.CtKeyPROTODST:
		if dir == ctDirOriginal {
			return binary.BigEndian.AppendUint16(nil, p.port), nil, ""
		}
	}
	return make([]byte, 16), make([]byte, 16), "ct " + ctName(k) + " is not known in advance"
}

// setRef names a set for a reason: " @name", or "" for an anonymous set.
func setRef(s *set) string {
	if s.anonymous {
		return ""
	}
	return " @" + s.name
}

func dynsetOp(op uint32) string {
	switch op {
	case 0:
		return "add"
	case 1:
		return "update"
	case 2:
		return "delete"
	}
	return "op"
}

func exprName(e expr.Any) string {
	return strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr."))
}

// evalXT runs an iptables-nft compat match or target.
func evalXT(p *packet, e *xtExpr) (step, outcome) {
	if e.target {
		switch e.act {
		case xtContinue:
			return stContinue, outcome{}
		case xtReject:
			return stVerdict, outcome{kind: outReject}
		}
		return unknownf("%s", e.why)
	}
	if e.match == nil {
		return unknownf("%s", e.why)
	}
	res, why := e.match(p)
	switch res {
	case triYes:
		return stContinue, outcome{}
	case triNo:
		return stBreak, outcome{}
	}
	return unknownf("iptables-nft compat match %q: %s", e.name, why)
}
