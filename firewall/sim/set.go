package sim

import (
	"bytes"
	"sort"

	"github.com/google/nftables"
)

// newSet turns a set read back from the kernel into sorted inclusive
// ranges. Interval sets read back as start elements and end elements
// (end-exclusive, flagged IntervalEnd), in descending order; `nft` may add
// an end sentinel at the bottom of the address space, and a range reaching
// the top of the space has no end element. Sets of the pipapo backend carry
// an inclusive KeyEnd instead.
func newSet(s *nftables.Set, elems []nftables.SetElement) *set {
	st := &set{
		name:          s.Name,
		anonymous:     s.Anonymous,
		isMap:         s.IsMap,
		concatenation: s.Concatenation || len(nftables.ConcatSetTypeElements(s.KeyType)) > 1,
		keyType:       s.KeyType.Name,
		keyLen:        int(s.KeyType.Bytes),
	}
	hasKeyEnd := false
	for _, e := range elems {
		if len(e.KeyEnd) > 0 {
			hasKeyEnd = true
		}
	}
	switch {
	case hasKeyEnd:
		for _, e := range elems {
			if e.IntervalEnd {
				continue
			}
			to := e.KeyEnd
			if len(to) == 0 {
				to = e.Key
			}
			st.ranges = append(st.ranges, ivl{e.Key, to})
		}
	case s.Interval:
		es := append([]nftables.SetElement(nil), elems...)
		sort.SliceStable(es, func(i, j int) bool {
			if c := bytes.Compare(es[i].Key, es[j].Key); c != 0 {
				return c < 0
			}
			return es[i].IntervalEnd && !es[j].IntervalEnd // ends first
		})
		var open []byte
		for _, e := range es {
			switch {
			case !e.IntervalEnd && open == nil:
				open = e.Key
			case !e.IntervalEnd:
				st.bad = "set " + s.Name + " has two interval starts in a row"
				return st
			case open != nil:
				to, ok := minusOne(e.Key)
				if ok {
					st.ranges = append(st.ranges, ivl{open, to})
				}
				open = nil
			} // an end with nothing open is nft's sentinel
		}
		if open != nil {
			st.ranges = append(st.ranges, ivl{open, bytes.Repeat([]byte{0xff}, len(open))})
		}
	default:
		for _, e := range elems {
			st.ranges = append(st.ranges, ivl{e.Key, e.Key})
		}
	}
	sort.Slice(st.ranges, func(i, j int) bool { return bytes.Compare(st.ranges[i].from, st.ranges[j].from) < 0 })
	return st
}

// contains reports whether key is in one of the ranges.
func (s *set) contains(key []byte) bool {
	i := sort.Search(len(s.ranges), func(i int) bool { return bytes.Compare(s.ranges[i].from, key) > 0 })
	// ranges[:i] start at or below key; ranges do not overlap, but check a few
	// back in case the kernel returned overlapping elements.
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		if bytes.Compare(key, s.ranges[j].to) <= 0 {
			return true
		}
	}
	return false
}

// minusOne returns b-1 as a big-endian number; false for all zeros.
func minusOne(b []byte) ([]byte, bool) {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] > 0 {
			out[i]--
			return out, true
		}
		out[i] = 0xff
	}
	return nil, false
}

// plusOne returns b+1 as a big-endian number; false on overflow.
func plusOne(b []byte) ([]byte, bool) {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xff {
			out[i]++
			return out, true
		}
		out[i] = 0
	}
	return nil, false
}

// overlap says whether every key in [lo, hi] is in the set (yes), none is
// (no), or some are (unknown).
func (s *set) overlap(lo, hi []byte) tri {
	for _, r := range s.ranges {
		if bytes.Compare(r.to, lo) < 0 || bytes.Compare(r.from, hi) > 0 {
			continue
		}
		if bytes.Compare(r.from, lo) <= 0 && bytes.Compare(hi, r.to) <= 0 {
			return triYes
		}
		return triUnknown
	}
	return triNo
}

// suffixRange is the range of values v may hold when its known bits k are
// all known up to some bit and all unknown after it.
func suffixRange(v, k []byte) (lo, hi []byte, ok bool) {
	lo, hi = make([]byte, len(v)), make([]byte, len(v))
	unknown := false
	for i := range v {
		if unknown && k[i] != 0 {
			return nil, nil, false
		}
		if _, prefix := prefixLen([]byte{k[i]}); !prefix {
			return nil, nil, false
		}
		if k[i] != 0xff {
			unknown = true
		}
		lo[i] = v[i] & k[i]
		hi[i] = v[i]&k[i] | ^k[i]
	}
	return lo, hi, true
}
