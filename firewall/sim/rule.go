package sim

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

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
	outDNAT // the destination is translated (nat), which ends the chain
)

type outcome struct {
	kind   outKind
	rst    bool // outReject: with a TCP reset (else an ICMP error)
	chain  string
	reason string
	nat    natTo // outDNAT
}

// evalRule runs a rule's expressions over the packet. When a comparison
// cannot be evaluated, the rest of the rule still runs: a later comparison
// that certainly fails means the rule does not match either way. When any
// expression cannot be evaluated and the rest of the rule (from it on) has
// no effect on the verdict, the rule is skipped: the kernel would move on
// either way. Otherwise the rule is CannotTell.
func (r *Ruleset) evalRule(p *packet, c *chain, ru *rule) (out outcome) {
	if ru.bad != "" {
		return outcome{kind: outCannotTell, reason: ru.bad}
	}
	p.curChain, p.curRule = c, ru
	defer func() {
		if out.kind == outCannotTell && hasDNAT(ru.exprs) {
			p.natUnknown = true
		}
	}()
	var rg regs
	pending := "" // why an earlier comparison could not be evaluated
	for i, e := range ru.exprs {
		st, o := r.evalExpr(p, c, &rg, e)
		switch st {
		case stContinue:
			if pending != "" && hasEffect(e) {
				return outcome{kind: outCannotTell, reason: pending}
			}
			continue
		case stBreak:
			return outcome{kind: outNext}
		case stVerdict:
			if pending != "" {
				return outcome{kind: outCannotTell, reason: pending}
			}
			return o
		case stUnknown:
			if isComparison(e) {
				if pending == "" {
					pending = o.reason
				}
				continue
			}
			if pending == "" {
				pending = o.reason
			}
			for _, rest := range ru.exprs[i:] {
				if hasEffect(rest) {
					return outcome{kind: outCannotTell, reason: pending}
				}
			}
			return outcome{kind: outNext}
		}
	}
	return outcome{kind: outNext}
}

// isComparison reports whether an expression only decides whether the rest
// of its rule runs, and writes no register.
func isComparison(e expr.Any) bool {
	switch e := e.(type) {
	case *expr.Cmp, *expr.Range:
		return true
	case *expr.Lookup:
		return !e.IsDestRegSet
	case *xtExpr:
		return !e.target
	}
	return false
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
		return stVerdict, outcome{kind: outReject, rst: e.Type == unix.NFT_REJECT_TCP_RST}
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
		if (e.Key == expr.MetaKeyIIF || e.Key == expr.MetaKeyOIF) && p.ifUnknown(e.Key, r) {
			rg.exclude(e.Register, binary.NativeEndian.AppendUint32(nil, loopbackIfindex), 4)
		}
		if (e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME) && p.ifUnknown(e.Key, r) {
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
		case (p.track == ctNotYet || p.track == ctUntracked) && e.Key != expr.CtKeySTATE:
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
		if e.Base == expr.PayloadBaseNetworkHeader {
			off, _ := regOffset(e.DestRegister)
			rg.prov.load(off, int(e.Offset), int(e.Len), p.v6, p.cfAddrOff())
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
		saved := rg.prov
		if !rg.set(e.DestRegister, nv, nk, why) {
			return unknownf("bitwise into an invalid register")
		}
		src, _ := regOffset(e.SourceRegister)
		dst, _ := regOffset(e.DestRegister)
		rg.prov = saved
		rg.prov.bitwise(dst, src, int(e.Len), e.Mask, e.Xor)
		return stContinue, outcome{}
	case *expr.Cmp:
		v, k, why, ok := rg.get(e.Register, len(e.Data))
		if !ok {
			return unknownf("cmp on an invalid register")
		}
		p.noteRead(rg, e.Register, len(e.Data))
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
		p.noteRead(rg, e.Register, len(e.FromData))
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
		p.noteRead(rg, e.SourceRegister, s.keyLen)
		if !allKnown(k) {
			// Only trailing bits unknown (a link-local neighbour's address):
			// the key is somewhere in [lo, hi].
			lo, hi, ok := suffixRange(v, k)
			if !ok {
				return unknownf("%s", why)
			}
			switch s.overlap(lo, hi) {
			case triYes:
				return boolStep(!e.Invert)
			case triNo:
				return boolStep(e.Invert)
			}
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
			return nativeDNAT(p, c, rg, e)
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
			return stVerdict, outcome{kind: outReject, rst: e.rst}
		case xtNAT:
			if c := p.base; c == nil || c.typ != nftables.ChainTypeNAT || c.hook != unix.NF_INET_PRE_ROUTING {
				return unknownf("iptables-nft compat target \"DNAT\" outside a nat chain on prerouting is not modelled")
			}
			return dnatStep(e.nat)
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
