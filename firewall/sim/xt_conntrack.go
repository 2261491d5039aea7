package sim

import (
	"fmt"
	"strings"
)

const ctUnsureWhy = "a prerouting chain at priority -200, where connection tracking itself runs: which runs first is not known"

// conntrackMatch is conntrack_mt for a packet in the original direction
// (reply false) or the reply direction of a tracked connection whose state bit is ctState (new, established),
// with no NAT applied yet. Before conntrack (track ctNotYet) the packet has
// no entry and its state is invalid; neighbour discovery is untracked
// (ctUntracked); without an entry only the state condition is checked.
func conntrackMatch(track ctTrack, ctState uint32, reply bool, flags, inv, state uint16) (tri, string) {
	const modelled = xtConntrackState | xtConntrackDirection | xtConntrackStateAls
	switch track {
	case ctUnsure:
		return triUnknown, ctUnsureWhy
	case ctNotYet, ctUntracked:
		if flags&xtConntrackState == 0 {
			return triNo, ""
		}
		bit := uint16(1) // XT_CONNTRACK_STATE_INVALID
		if track == ctUntracked {
			bit = xtCtStateUntracked
		}
		return triOf((state&bit != 0) != (inv&xtConntrackState != 0)), ""
	}
	st, dir := triYes, triYes
	if flags&xtConntrackState != 0 {
		var bit tri
		switch {
		case uint32(state)&ctState != 0:
			bit = triYes
		case state&(xtCtStateSNAT|xtCtStateDNAT) != 0:
			bit = triUnknown
		default:
			bit = triNo
		}
		st = bit
		if inv&xtConntrackState != 0 && bit != triUnknown {
			st = triOf(bit == triNo)
		}
	}
	if flags&xtConntrackDirection != 0 {
		dir = triOf((inv&xtConntrackDirection == 0) != reply) // original, unless a reply
	}
	res := and(st, dir)
	if res == triUnknown {
		return res, "conntrack match --ctstate SNAT/DNAT depends on NAT, which is not modelled"
	}
	if res == triYes && flags&^modelled != 0 {
		return triUnknown, fmt.Sprintf("conntrack match flags 0x%x (addresses, ports, status or expiry) are not modelled", flags&^modelled)
	}
	return res, ""
}

func conntrackText(flags, inv, state uint16) string {
	var out []string
	if flags&xtConntrackState != 0 {
		op := ""
		if inv&xtConntrackState != 0 {
			op = "!= "
		}
		out = append(out, "ct state "+op+stateNames(uint32(state), xtCtStateUntracked))
	}
	if flags&xtConntrackDirection != 0 {
		d := "original"
		if inv&xtConntrackDirection != 0 {
			d = "reply"
		}
		out = append(out, "ct direction "+d)
	}
	if flags&^(xtConntrackState|xtConntrackDirection|xtConntrackStateAls) != 0 || len(out) == 0 {
		out = append(out, `xt match "conntrack" …`)
	}
	return strings.Join(out, " ")
}

// stateNames names XT_CONNTRACK_STATE_* / XT_STATE_* bits (the same up
// to new; untracked differs), as nft prints ct state.
func stateNames(v, untracked uint32) string {
	names := []bitName{{1, "invalid"}, {2, "established"}, {4, "related"}, {8, "new"}, {untracked, "untracked"}}
	if untracked == xtCtStateUntracked {
		names = append(names, bitName{xtCtStateSNAT, "snat"}, bitName{xtCtStateDNAT, "dnat"})
	}
	return bitNames(v, names)
}
