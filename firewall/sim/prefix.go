package sim

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// maxPieces bounds the pieces one CheckPrefix splits a range into to judge
// comparisons of source-address bits that are not a prefix.
const maxPieces = 4096

// ivlAddr is an inclusive range of addresses.
type ivlAddr struct{ from, to netip.Addr }

// CheckPrefix judges every address of src: it splits src at every
// source-address boundary that appears in the rules and sets (the blocks
// that prefix comparisons, ranges and set lookups cut), checks one address
// of each piece, and returns the pieces in address order with adjacent
// pieces of equal result merged. A result that covers only part of src
// means some of those addresses are treated differently from the rest.
//
// A comparison of source-address bits that do not form a prefix (`ip saddr
// & 0.0.0.1 == 0.0.0.1`, a raw `@nh,120,8` load) that is reached for a piece
// whose addresses differ in those bits splits the piece into the prefixes
// that fix them, each judged again, up to maxPieces pieces in all; beyond
// that the piece is CannotTell, naming the rule.
func (r *Ruleset) CheckPrefix(src netip.Prefix, dst netip.Addr, dstPort uint16) []PrefixResult {
	src = src.Masked()
	if !src.IsValid() {
		return nil
	}
	r.prepare()
	bounds := r.bounds4
	if src.Addr().Is6() {
		bounds = r.bounds6
	}
	first, last := src.Addr(), lastAddr(src)
	// Piece starts: the first address, then every boundary inside the prefix.
	starts := []netip.Addr{first}
	i := sort.Search(len(bounds), func(i int) bool { return bounds[i].Compare(first) > 0 })
	for ; i < len(bounds) && bounds[i].Compare(last) <= 0; i++ {
		starts = append(starts, bounds[i])
	}
	var out []PrefixResult
	add := func(from, to netip.Addr, res Result) {
		if n := len(out); n > 0 && out[n-1].Result == res && out[n-1].To.Next() == from {
			out[n-1].To = to
			return
		}
		out = append(out, PrefixResult{From: from, To: to, Result: res})
	}
	budget := maxPieces
	var judge func(from, to netip.Addr)
	judge = func(from, to netip.Addr) {
		res, dep, at := r.exchange(from, dst, dstPort, &ivlAddr{from, to})
		if dep < 0 {
			add(from, to, res)
			return
		}
		subs, ok := splitRange(from, to, dep+1, budget)
		if !ok {
			at.Verdict = CannotTell
			at.Reason = fmt.Sprintf("the rule compares source-address bits that do not form a prefix (down to bit %d of the address): judging %v-%v exactly would take more than %d pieces",
				dep+1, from, to, maxPieces)
			add(from, to, at)
			return
		}
		budget -= len(subs)
		for _, s := range subs {
			judge(s.from, s.to)
		}
	}
	for j, s := range starts {
		to := last
		if j+1 < len(starts) {
			to = starts[j+1].Prev()
		}
		judge(s, to)
	}
	return out
}

// splitRange cuts [from, to] into the prefixes of length bits (or longer,
// where the range's own edges fall inside one), at most max of them.
func splitRange(from, to netip.Addr, bits, max int) ([]ivlAddr, bool) {
	var out []ivlAddr
	for _, p := range netipx.IPRangeFrom(from, to).Prefixes() {
		if p.Bits() >= bits {
			out = append(out, ivlAddr{p.Addr(), lastAddr(p)})
			continue
		}
		if bits-p.Bits() > 20 || len(out)+(1<<(bits-p.Bits())) > max {
			return nil, false
		}
		sub := netip.PrefixFrom(p.Addr(), bits)
		for {
			out = append(out, ivlAddr{sub.Addr(), lastAddr(sub)})
			next := lastAddr(sub).Next()
			if !next.IsValid() || !p.Contains(next) {
				break
			}
			sub = netip.PrefixFrom(next, bits)
		}
	}
	return out, len(out) <= max
}

// prepare collects, once, the boundaries of every family and the rule
// indexes of every chain.
func (r *Ruleset) prepare() {
	r.prepOnce.Do(func() {
		b4, b6 := map[netip.Addr]bool{}, map[netip.Addr]bool{}
		for _, t := range r.tables {
			for _, c := range t.chains {
				for _, ru := range c.rules {
					for _, v6 := range []bool{false, true} {
						m := b4
						if v6 {
							m = b6
						}
						if familySees(t.family, v6) {
							ruleBounds(t, ru, v6, func(a netip.Addr) { m[a] = true })
						}
					}
				}
				c.idx4 = buildIndex(t, c, false)
				c.idx6 = buildIndex(t, c, true)
			}
		}
		r.bounds4, r.bounds6 = sortedAddrs(b4), sortedAddrs(b6)
		for f, v6 := range []bool{false, true} {
			r.hooks[f][0] = r.baseChains(v6, true, 0)
			for _, h := range []nftables.ChainHook{unix.NF_INET_PRE_ROUTING, unix.NF_INET_LOCAL_IN, unix.NF_INET_FORWARD, unix.NF_INET_LOCAL_OUT, unix.NF_INET_POST_ROUTING} {
				r.hooks[f][1+int(h)] = r.baseChains(v6, false, h)
			}
		}
	})
}

// familySees reports whether a table of family f sees packets of v6.
func familySees(f nftables.TableFamily, v6 bool) bool {
	switch f {
	case nftables.TableFamilyINet:
		return true
	case nftables.TableFamilyIPv4:
		return !v6
	case nftables.TableFamilyIPv6:
		return v6
	}
	return false
}

// ruleScan walks a rule's expressions tracking source-address provenance
// and the `meta nfproto` guard for a packet of family v6. visit is called for
// each comparison with what it reads; it returns false to stop. ruleScan
// stops by itself, returning true, where a guard excludes the family.
func ruleScan(t *table, ru *rule, v6 bool, visit func(e expr.Any, rd saddrRead) bool) (excluded bool) {
	if ru.bad != "" {
		return false
	}
	var sp saddrProv
	nfReg := -1
	fam := byte(unix.NFPROTO_IPV4)
	if v6 {
		fam = unix.NFPROTO_IPV6
	}
	for _, e := range ru.exprs {
		switch e := e.(type) {
		case *expr.Payload:
			off, ok := regOffset(e.DestRegister)
			if e.OperationType != expr.PayloadLoad || !ok {
				continue
			}
			if nfReg >= off && nfReg < off+int(e.Len) {
				nfReg = -1
			}
			if e.Base == expr.PayloadBaseNetworkHeader {
				start := 12
				if v6 {
					start = 8
				}
				sp.load(off, int(e.Offset), int(e.Len), v6, start)
			} else {
				sp.clear(off, int(e.Len))
			}
		case *expr.Bitwise:
			src, ok1 := regOffset(e.SourceRegister)
			dst, ok2 := regOffset(e.DestRegister)
			if ok1 && ok2 {
				sp.bitwise(dst, src, int(e.Len), e.Mask, e.Xor)
			}
		case *expr.Meta:
			if off, ok := regOffset(e.Register); ok && !e.SourceRegister {
				sp.clear(off, 4)
				nfReg = -1
				if e.Key == expr.MetaKeyNFPROTO {
					nfReg = off
				}
			}
		case *expr.Ct:
			if off, ok := regOffset(e.Register); ok && !e.SourceRegister {
				sp.clear(off, 16)
			}
		case *expr.Immediate:
			if off, ok := regOffset(e.Register); ok {
				sp.clear(off, len(e.Data))
			}
		case *expr.Cmp:
			off, ok := regOffset(e.Register)
			if !ok {
				continue
			}
			if off == nfReg && len(e.Data) == 1 {
				if (e.Op == expr.CmpOpEq && e.Data[0] != fam) || (e.Op == expr.CmpOpNeq && e.Data[0] == fam) {
					return true // never matches this family
				}
				continue
			}
			if !visit(e, sp.read(off, len(e.Data), v6)) {
				return false
			}
		case *expr.Range:
			if off, ok := regOffset(e.Register); ok && !visit(e, sp.read(off, len(e.FromData), v6)) {
				return false
			}
		case *expr.Lookup:
			s := t.sets[e.SetName]
			if off, ok := regOffset(e.SourceRegister); ok && s != nil && !visit(e, sp.read(off, s.keyLen, v6)) {
				return false
			}
			if off, ok := regOffset(e.DestRegister); ok && e.IsDestRegSet {
				sp.clear(off, 16)
			}
		}
	}
	return false
}

// ruleBounds emits every address at which a prefix comparison of the rule
// can change its outcome.
func ruleBounds(t *table, ru *rule, v6 bool, emit func(netip.Addr)) {
	ruleScan(t, ru, v6, func(e expr.Any, rd saddrRead) bool {
		if !rd.prefix {
			return true
		}
		switch e := e.(type) {
		case *expr.Cmp, *expr.Range:
			readBlocks(rd, cmpValues(e), emit)
		case *expr.Lookup:
			if s := t.sets[e.SetName]; s != nil && !s.concatenation && s.keyLen > 0 {
				readBlocks(rd, setValues(s), emit)
			}
		}
		return true
	})
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
