package sim

import (
	"net/netip"
	"sort"

	"github.com/google/nftables/expr"
)

// maxIndexEntries bounds the size of one chain's index; a chain that would
// need more is evaluated rule by rule.
const maxIndexEntries = 1 << 21

// chainIndex lets a packet with a known source address skip the rules of a
// chain that cannot match it: rules whose first source-address condition
// (a prefix, a range or a set, before anything with an effect) leaves the
// address out. The address space is cut into segments at every edge of
// those conditions; each segment lists the rules that may match there.
type chainIndex struct {
	always []int        // rules without such a condition, in order
	starts []netip.Addr // segment starts, sorted; segment i ends before starts[i+1]
	segs   [][]int      // rules whose condition holds somewhere in segment i, in order
}

// candidates lists the rules that may match a packet from a: always, and
// those of a's segment.
func (ix *chainIndex) candidates(a netip.Addr) (always, seg []int) {
	i := sort.Search(len(ix.starts), func(i int) bool { return ix.starts[i].Compare(a) > 0 }) - 1
	if i >= 0 {
		seg = ix.segs[i]
	}
	return ix.always, seg
}

// next is the first rule at or after i in either list, or n.
func nextCandidate(always, seg []int, i, n int) int {
	best := n
	if j := sort.SearchInts(always, i); j < len(always) {
		best = always[j]
	}
	if j := sort.SearchInts(seg, i); j < len(seg) && seg[j] < best {
		best = seg[j]
	}
	return best
}

// buildIndex indexes the rules of c for packets of family v6; nil when no
// rule has a source-address condition or the index would be too large.
func buildIndex(t *table, c *chain, v6 bool) *chainIndex {
	if !familySees(t.family, v6) {
		return nil
	}
	ix := &chainIndex{}
	filters := make([][]ivlAddr, len(c.rules))
	edges := map[netip.Addr]bool{}
	filtered := 0
	for i, ru := range c.rules {
		f, never, ok := ruleFilter(t, ru, v6)
		switch {
		case never:
			filters[i] = []ivlAddr{}
			filtered++
		case ok:
			filters[i] = f
			filtered++
			for _, r := range f {
				edges[r.from] = true
				if n := r.to.Next(); n.IsValid() {
					edges[n] = true
				}
			}
		default:
			ix.always = append(ix.always, i)
		}
	}
	if filtered == 0 {
		return nil
	}
	ix.starts = sortedAddrs(edges)
	ix.segs = make([][]int, len(ix.starts))
	entries := 0
	for i, f := range filters {
		for _, r := range f {
			s := sort.Search(len(ix.starts), func(j int) bool { return !ix.starts[j].Less(r.from) })
			for ; s < len(ix.starts) && !r.to.Less(ix.starts[s]); s++ {
				if l := ix.segs[s]; len(l) == 0 || l[len(l)-1] != i {
					ix.segs[s] = append(l, i)
					entries++
				}
			}
			if entries > maxIndexEntries {
				return nil
			}
		}
	}
	return ix
}

// ruleFilter is the set of source addresses outside which the rule cannot
// match a packet of family v6: from its first prefix comparison of the
// source address (==, a range, a set that is not negated) reached before any
// expression with an effect. never: a `meta nfproto` guard excludes the
// family. ok false: no such condition.
func ruleFilter(t *table, ru *rule, v6 bool) (f []ivlAddr, never, ok bool) {
	if ru.bad != "" {
		return nil, false, false
	}
	n := 0
	for n < len(ru.exprs) && !hasEffect(ru.exprs[n]) {
		n++
	}
	found := false
	excluded := ruleScan(t, &rule{exprs: ru.exprs[:n]}, v6, func(e expr.Any, rd saddrRead) bool {
		if !rd.prefix || rd.pos != 0 {
			return true
		}
		var size int
		var values [][]byte
		switch e := e.(type) {
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq {
				return true
			}
			size, values = len(e.Data), [][]byte{e.Data, e.Data}
		case *expr.Range:
			if e.Op != expr.CmpOpEq {
				return true
			}
			size, values = len(e.FromData), [][]byte{e.FromData, e.ToData}
		case *expr.Lookup:
			s := t.sets[e.SetName]
			if e.Invert || e.IsDestRegSet || s == nil || s.bad != "" || s.concatenation || t.setsErr != "" {
				return true
			}
			size, values = s.keyLen, setValues(s)
		}
		if size != rd.k || len(values) == 0 {
			return true // the comparison reads more than the address
		}
		var out []ivlAddr
		for i := 0; i+1 < len(values); i += 2 {
			lo, _, ok1 := blockOf(rd, values[i])
			_, hi, ok2 := blockOf(rd, values[i+1])
			if !ok1 || !ok2 {
				return true
			}
			out = append(out, ivlAddr{lo, hi})
		}
		f, found = out, true
		return false
	})
	switch {
	case found:
		sort.Slice(f, func(i, j int) bool { return f[i].from.Less(f[j].from) })
		return f, false, true
	case excluded:
		return nil, true, false
	}
	return nil, false, false
}

// blockOf is the first and last address whose prefix read rd equals v's.
func blockOf(rd saddrRead, v []byte) (lo, hi netip.Addr, ok bool) {
	var a, b netip.Addr
	got := 0
	readBlocks(rd, [][]byte{v}, func(x netip.Addr) {
		switch got {
		case 0:
			a = x
		case 1:
			b = x
		}
		got++
	})
	switch got {
	case 2:
		return a, b.Prev(), true
	case 1: // the block reaches the top of the address space
		last := netip.AddrFrom16([16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if rd.addrBytes == 4 {
			last = netip.AddrFrom4([4]byte{255, 255, 255, 255})
		}
		return a, last, true
	}
	return netip.Addr{}, netip.Addr{}, false
}
