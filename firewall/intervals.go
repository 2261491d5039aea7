package firewall

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"go4.org/netipx"
)

// Normalize checks prefixes and merges overlapping and adjacent ones (with
// netipx.IPSetBuilder), returning the smallest equivalent list of prefixes
// per family, sorted. 4in6-mapped and invalid prefixes are refused.
func Normalize(prefixes []netip.Prefix) (v4, v6 []netip.Prefix, err error) {
	var b4, b6 netipx.IPSetBuilder
	for _, p := range prefixes {
		switch {
		case !p.IsValid():
			return nil, nil, fmt.Errorf("invalid prefix %q", p.String())
		case p.Addr().Is4In6():
			return nil, nil, fmt.Errorf("prefix %s is an IPv4-mapped IPv6 prefix: write it as IPv4", p)
		case p.Addr().Is4():
			b4.AddPrefix(p.Masked())
		default:
			if p.Addr().Zone() != "" {
				return nil, nil, fmt.Errorf("prefix %s has a zone", p)
			}
			b6.AddPrefix(p.Masked())
		}
	}
	s4, err := b4.IPSet()
	if err != nil {
		return nil, nil, err
	}
	s6, err := b6.IPSet()
	if err != nil {
		return nil, nil, err
	}
	return s4.Prefixes(), s6.Prefixes(), nil
}

// Ranges merges prefixes of one family into sorted, non-overlapping,
// non-adjacent ranges.
func Ranges(prefixes []netip.Prefix) []netipx.IPRange {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		b.AddPrefix(p.Masked())
	}
	s, _ := b.IPSet() // the builder has no error without invalid input
	return s.Ranges()
}

// Intervals encodes prefixes of ONE family as the elements of an nftables
// interval set. They are merged first: the kernel refuses overlapping
// intervals (it does not merge them; the nft tool does). Intervals are
// end-exclusive: each range is a start element {Key: first} and an end
// element {Key: last+1, IntervalEnd: true}, except a range reaching the top
// of the address space, which is a start element alone.
func Intervals(prefixes []netip.Prefix) []nftables.SetElement {
	return rangeElements(Ranges(prefixes))
}

func rangeElements(ranges []netipx.IPRange) []nftables.SetElement {
	elems := make([]nftables.SetElement, 0, 2*len(ranges))
	for _, r := range ranges {
		elems = append(elems, nftables.SetElement{Key: r.From().AsSlice()})
		if end := r.To().Next(); end.IsValid() {
			elems = append(elems, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return elems
}

// RangesFromElements decodes the elements of an interval set whose keys are
// keyLen bytes (4 or 16) back into ranges. The kernel lists them in
// descending order, end before start; sets written by the nft tool may also
// carry an end element at the zero address that closes nothing. Those are
// tolerated, as are adjacent, unmerged intervals.
func RangesFromElements(elems []nftables.SetElement, keyLen int) ([]netipx.IPRange, error) {
	sorted := slices.Clone(elems)
	for _, e := range sorted {
		if len(e.Key) != keyLen {
			return nil, fmt.Errorf("set element key of %d bytes, want %d", len(e.Key), keyLen)
		}
	}
	// Ascending by key; at equal keys the end of one interval comes before
	// the start of the next.
	slices.SortStableFunc(sorted, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		switch {
		case a.IntervalEnd == b.IntervalEnd:
			return 0
		case a.IntervalEnd:
			return -1
		}
		return 1
	})
	var (
		ranges []netipx.IPRange
		start  netip.Addr
		open   bool
	)
	for _, e := range sorted {
		addr, _ := netip.AddrFromSlice(e.Key)
		switch {
		case !e.IntervalEnd && open:
			return nil, fmt.Errorf("interval set: start %s follows start %s", addr, start)
		case !e.IntervalEnd:
			start, open = addr, true
		case open: // end, exclusive
			last := addr.Prev()
			if !last.IsValid() || last.Less(start) {
				return nil, fmt.Errorf("interval set: empty interval %s-%s", start, addr)
			}
			ranges = append(ranges, netipx.IPRangeFrom(start, last))
			open = false
			// default: an end that closes nothing (nft's zero sentinel)
		}
	}
	if open { // reaches the top of the address space
		top := netipx.RangeOfPrefix(netip.PrefixFrom(start, 0)).To()
		ranges = append(ranges, netipx.IPRangeFrom(start, top))
	}
	return ranges, nil
}

// PrefixesOf returns the smallest list of prefixes covering ranges.
func PrefixesOf(ranges []netipx.IPRange) []netip.Prefix {
	var b netipx.IPSetBuilder
	for _, r := range ranges {
		b.AddRange(r)
	}
	s, _ := b.IPSet()
	return s.Prefixes()
}

// portElements encodes ports as inet_service keys (network byte order).
func portElements(ports []uint16) []nftables.SetElement {
	elems := make([]nftables.SetElement, len(ports))
	for i, p := range ports {
		elems[i] = nftables.SetElement{Key: []byte{byte(p >> 8), byte(p)}}
	}
	return elems
}

func portsFromElements(elems []nftables.SetElement) ([]uint16, error) {
	ports := make([]uint16, 0, len(elems))
	for _, e := range elems {
		if len(e.Key) != 2 {
			return nil, fmt.Errorf("web_ports element of %d bytes, want 2", len(e.Key))
		}
		ports = append(ports, uint16(e.Key[0])<<8|uint16(e.Key[1]))
	}
	slices.Sort(ports)
	return ports, nil
}

// diffPrefixes returns the prefixes in want but not in have, and in have
// but not in want. Both are canonical (Normalize'd) lists.
func diffPrefixes(have, want []netip.Prefix) (added, removed []netip.Prefix) {
	h := make(map[netip.Prefix]bool, len(have))
	for _, p := range have {
		h[p] = true
	}
	w := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		w[p] = true
		if !h[p] {
			added = append(added, p)
		}
	}
	for _, p := range have {
		if !w[p] {
			removed = append(removed, p)
		}
	}
	return added, removed
}
