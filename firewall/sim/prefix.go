package sim

import (
	"net/netip"
	"sort"

	"github.com/google/nftables/expr"
)

// CheckPrefix splits src at every source-address boundary that appears in
// the rules and sets, checks one address of each piece, and returns the
// pieces in address order with adjacent pieces of equal result merged. A
// result that covers only part of src means some of those addresses are
// treated differently from the rest.
//
// Boundaries come from comparisons of the IPv4 / IPv6 source address (cmp,
// range, set lookups) whose mask is a prefix mask; a comparison with a
// non-contiguous mask or of only the low bytes of the address does not
// split the prefix.
func (r *Ruleset) CheckPrefix(src netip.Prefix, dst netip.Addr, dstPort uint16) []PrefixResult {
	src = src.Masked()
	if !src.IsValid() {
		return nil
	}
	r.boundsOnce.Do(r.collectBounds)
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
	for j, s := range starts {
		to := last
		if j+1 < len(starts) {
			to = starts[j+1].Prev()
		}
		res := r.Check(s, dst, dstPort)
		if n := len(out); n > 0 && out[n-1].Result == res {
			out[n-1].To = to
			continue
		}
		out = append(out, PrefixResult{From: s, To: to, Result: res})
	}
	return out
}

// collectBounds gathers, for each family, every address at which a rule's
// view of the source address can change: the first address of each matched
// block and the address after its last.
func (r *Ruleset) collectBounds() {
	b4, b6 := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, t := range r.tables {
		for _, c := range t.chains {
			for _, ru := range c.rules {
				collectRuleBounds(t, ru.exprs, b4, b6)
			}
		}
	}
	r.bounds4, r.bounds6 = sortedAddrs(b4), sortedAddrs(b6)
}

// saddrLoad is a register holding bytes [from, from+n) of a source address.
type saddrLoad struct {
	v6   bool
	from int
	n    int
	mask []byte
}

func collectRuleBounds(t *table, exprs []expr.Any, b4, b6 map[netip.Addr]bool) {
	loads := map[uint32][]saddrLoad{}
	add := func(l saddrLoad, lo, hi []byte) {
		// lo and hi are the first and last register values of a matched block.
		if l.from != 0 {
			return // only the low bytes of the address: not a block of addresses
		}
		full := 4
		m := b4
		if l.v6 {
			full, m = 16, b6
		}
		if len(lo) < l.n || len(hi) < l.n {
			return
		}
		first, lastB := make([]byte, full), make([]byte, full)
		copy(first, lo[:l.n])
		copy(lastB, hi[:l.n])
		for i := l.n; i < full; i++ {
			lastB[i] = 0xff
		}
		if a, ok := netip.AddrFromSlice(first); ok {
			m[a] = true
		}
		if next, ok := plusOne(lastB); ok {
			if a, ok := netip.AddrFromSlice(next); ok {
				m[a] = true
			}
		}
	}
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Payload:
			delete(loads, e.DestRegister)
			if e.OperationType != expr.PayloadLoad || e.Base != expr.PayloadBaseNetworkHeader {
				continue
			}
			var ls []saddrLoad
			// The same load is ip saddr in one family and part of ip6 saddr in
			// the other (inet tables): keep both readings; a spurious boundary
			// only costs one more check.
			if s := int(e.Offset) - 12; s >= 0 && s+int(e.Len) <= 4 {
				ls = append(ls, saddrLoad{v6: false, from: s, n: int(e.Len)})
			}
			if s := int(e.Offset) - 8; s >= 0 && s+int(e.Len) <= 16 {
				ls = append(ls, saddrLoad{v6: true, from: s, n: int(e.Len)})
			}
			if ls != nil {
				loads[e.DestRegister] = ls
			}
		case *expr.Bitwise:
			ls := loads[e.SourceRegister]
			delete(loads, e.DestRegister)
			if ls == nil || !allZero(e.Xor) {
				continue
			}
			if _, ok := prefixLen(e.Mask); !ok {
				continue
			}
			var out []saddrLoad
			for _, l := range ls {
				l.mask = e.Mask
				out = append(out, l)
			}
			loads[e.DestRegister] = out
		case *expr.Cmp:
			for _, l := range loads[e.Register] {
				lo, hi := e.Data, e.Data
				switch e.Op {
				case expr.CmpOpEq, expr.CmpOpNeq:
					if l.mask != nil {
						lo, hi = maskRange(e.Data, l.mask)
					}
				}
				add(l, lo, hi)
			}
		case *expr.Range:
			for _, l := range loads[e.Register] {
				add(l, e.FromData, e.ToData)
			}
		case *expr.Lookup:
			s := t.sets[e.SetName]
			if s == nil || s.concatenation {
				continue
			}
			for _, l := range loads[e.SourceRegister] {
				if s.keyLen != l.n {
					continue
				}
				for _, rg := range s.ranges {
					add(l, rg.from, rg.to)
				}
			}
		case *expr.Meta:
			delete(loads, e.Register)
		case *expr.Ct:
			delete(loads, e.Register)
		case *expr.Immediate:
			delete(loads, e.Register)
		}
	}
}

// maskRange is the first and last value v with v&mask == d&mask, for a
// prefix mask.
func maskRange(d, mask []byte) ([]byte, []byte) {
	lo, hi := make([]byte, len(d)), make([]byte, len(d))
	for i := range d {
		var m byte
		if i < len(mask) {
			m = mask[i]
		}
		lo[i] = d[i] & m
		hi[i] = d[i]&m | ^m
	}
	return lo, hi
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
