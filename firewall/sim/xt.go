package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// iptables-nft compat expressions: an xtables match or target that the
// kernel's nft_compat runs with the info struct userspace gave it. Read
// takes the info bytes from the raw netlink dump (exactly as the kernel
// holds them) and decodes the revisions below, whose layouts were checked
// against the uapi headers (offsetof/sizeof) and whose behaviour was checked
// against the kernel (iptables_test.go, ufw_test.go, xt_test.go). Any other
// name, revision or info size stays CannotTell.

// tri is the result of a match: no, yes, or it depends on something the
// simulator cannot know.
type tri int

const (
	triNo tri = iota
	triYes
	triUnknown
)

func triOf(b bool) tri {
	if b {
		return triYes
	}
	return triNo
}

// and combines conditions the kernel checks one after the other with no
// side effects: any certain "no" decides, else any unknown does.
func and(ts ...tri) tri {
	out := triYes
	for _, t := range ts {
		switch t {
		case triNo:
			return triNo
		case triUnknown:
			out = triUnknown
		}
	}
	return out
}

type xtAction int

const (
	xtUnmodelled xtAction = iota
	xtContinue            // LOG, NFLOG: the rule goes on, no verdict
	xtReject              // REJECT
	xtNAT                 // DNAT: nat is where to
)

// xtExpr is one compat expression with its decoded meaning.
type xtExpr struct {
	expr.Any // the library's *expr.Match / *expr.Target (nil in table tests)
	target   bool
	name     string
	rev      uint32
	info     []byte

	// match: what it does to the simulated packet; nil when not modelled.
	match func(p *packet) (tri, string)
	// target: what it does; rst: a REJECT that answers with a TCP reset.
	act xtAction
	rst bool
	nat natTo
	// why is the reason for CannotTell (match == nil / act == xtUnmodelled).
	why string
	// text renders it, given the protocol of the rule's `-p` (or "").
	text func(l4 string) string
}

// Kernel constants (uapi linux/netfilter/xt_*.h, ipt_REJECT.h, ip6t_REJECT.h).
const (
	xtConntrackState     = 1 << 0
	xtConntrackDirection = 1 << 12
	xtConntrackStateAls  = 1 << 13 // -m state spelled through conntrack: display only
	xtCtStateSNAT        = 1 << 6
	xtCtStateDNAT        = 1 << 7
	xtCtStateNew         = 8 // XT_CONNTRACK_STATE_BIT(IP_CT_NEW) == XT_STATE_BIT(IP_CT_NEW)
	xtCtStateUntracked   = 1 << 8
	xtStateUntracked     = 1 << 6

	xtMultiportSource      = 0
	xtMultiportDestination = 1
	xtMultiportEither      = 2
	xtMultiPorts           = 15

	xtTCPInvSrcPt  = 0x01
	xtTCPInvDstPt  = 0x02
	xtTCPInvFlags  = 0x04
	xtTCPInvOption = 0x08
	xtUDPInvSrcPt  = 0x01
	xtUDPInvDstPt  = 0x02

	xtAddrtypeUnspec      = 1 << 0
	xtAddrtypeUnicast     = 1 << 1
	xtAddrtypeLocal       = 1 << 2
	xtAddrtypeBroadcast   = 1 << 3
	xtAddrtypeAnycast     = 1 << 4
	xtAddrtypeMulticast   = 1 << 5
	xtAddrtypeUnreachable = 1 << 7
	xtAddrtypeInvSource   = 0x1
	xtAddrtypeInvDest     = 0x2
	xtAddrtypeIfaceIn     = 0x4
	xtAddrtypeIfaceOut    = 0x8
)

// xtInfoSize is XT_ALIGN(sizeof(struct ...)) on 64-bit Linux: the length of
// the info the kernel dumps for each decoded revision.
var xtInfoSize = map[string]int{
	"conntrack/1": 152, // xt_conntrack_mtinfo1
	"conntrack/2": 160, // xt_conntrack_mtinfo2
	"conntrack/3": 168, // xt_conntrack_mtinfo3
	"state/0":     8,   // xt_state_info
	"multiport/1": 48,  // xt_multiport_v1
	"tcp/0":       16,  // xt_tcp
	"udp/0":       16,  // xt_udp
	"addrtype/1":  8,   // xt_addrtype_info_v1
	"comment/0":   256, // xt_comment_info
	"rt/0":        280, // ip6t_rt
	"icmp/0":      8,   // ipt_icmp
	"icmp6/0":     8,   // ip6t_icmp
	"hl/0":        8,   // ip6t_hl_info
	"ttl/0":       8,   // ipt_ttl_info
	"LOG/0":       32,  // xt_log_info
	"NFLOG/0":     80,  // xt_nflog_info
	"REJECT/0":    8,   // ipt_reject_info / ip6t_reject_info
	"DNAT/0":      24,  // nf_nat_ipv4_multi_range_compat
	"DNAT/1":      40,  // nf_nat_range
	"DNAT/2":      48,  // nf_nat_range2
}

// decodeXT decodes a compat expression of a table of family fam.
func decodeXT(fam nftables.TableFamily, target bool, name string, rev uint32, info []byte) *xtExpr {
	x := &xtExpr{target: target, name: name, rev: rev, info: info}
	kind := "match"
	if target {
		kind = "target"
	}
	x.text = func(string) string { return fmt.Sprintf("xt %s %q", kind, name) }
	key := name + "/" + strconv.Itoa(int(rev))
	size, known := xtInfoSize[key]
	switch {
	case target && xtIsTarget(name), !target && !xtIsTarget(name):
	default:
		known = false
	}
	switch {
	case !target && name == "limit":
		x.why = `iptables-nft compat match "limit" (a rate limit) matches depending on the packet rate`
		return x
	case !target && name == "recent":
		x.why = `iptables-nft compat match "recent" (a per-source history) is not modelled`
		return x
	case !known && xtKnownName(target, name):
		x.why = fmt.Sprintf("iptables-nft compat %s %q revision %d is not modelled", kind, name, rev)
		return x
	case !known:
		if target {
			x.why = fmt.Sprintf("iptables-nft compat target %q is not modelled", name)
		} else {
			x.why = fmt.Sprintf("iptables-nft compat match %q (xt_%s) is not modelled", name, name)
		}
		return x
	case len(info) != size:
		x.why = fmt.Sprintf("iptables-nft compat %s %q revision %d has a %d-byte info, not the %d bytes this simulator decodes",
			kind, name, rev, len(info), size)
		return x
	}
	ne := binary.NativeEndian
	switch key {
	case "conntrack/1", "conntrack/2", "conntrack/3":
		flags, inv := ne.Uint16(info[146:]), ne.Uint16(info[148:])
		var state uint16
		if rev == 1 {
			state = uint16(info[150])
		} else {
			state = ne.Uint16(info[150:])
		}
		x.match = func(p *packet) (tri, string) { return conntrackMatch(p.track, p.ctState, p.reply, flags, inv, state) }
		x.text = func(string) string { return conntrackText(flags, inv, state) }
	case "state/0":
		mask := ne.Uint32(info)
		x.match = func(p *packet) (tri, string) {
			switch p.track {
			case ctNotYet:
				return triOf(mask&1 != 0), "" // XT_STATE_INVALID: no conntrack entry yet
			case ctUntracked:
				return triOf(mask&xtStateUntracked != 0), ""
			case ctUnsure:
				return triUnknown, ctUnsureWhy
			}
			return triOf(mask&p.ctState != 0), ""
		}
		x.text = func(string) string { return "ct state " + stateNames(mask, xtStateUntracked) }
	case "multiport/1":
		mp := multiport{flags: info[0], count: info[1], invert: info[47]}
		for i := range xtMultiPorts {
			mp.ports[i] = ne.Uint16(info[2+2*i:])
			mp.pflags[i] = info[32+i]
		}
		if why := mp.check(); why != "" {
			x.why = why
			return x
		}
		x.match = mp.eval
		x.text = mp.render
	case "tcp/0":
		t := tcpudp{tcp: true, spts: [2]uint16{ne.Uint16(info[0:]), ne.Uint16(info[2:])},
			dpts: [2]uint16{ne.Uint16(info[4:]), ne.Uint16(info[6:])}, option: info[8], flgMask: info[9], flgCmp: info[10], inv: info[11]}
		if t.inv&^(xtTCPInvSrcPt|xtTCPInvDstPt|xtTCPInvFlags|xtTCPInvOption) != 0 {
			x.why = fmt.Sprintf("iptables-nft compat match \"tcp\" with unknown inversion flags 0x%x", t.inv)
			return x
		}
		x.match = t.eval
		x.text = t.render
	case "udp/0":
		t := tcpudp{spts: [2]uint16{ne.Uint16(info[0:]), ne.Uint16(info[2:])},
			dpts: [2]uint16{ne.Uint16(info[4:]), ne.Uint16(info[6:])}, inv: info[8]}
		if t.inv&^(xtUDPInvSrcPt|xtUDPInvDstPt) != 0 {
			x.why = fmt.Sprintf("iptables-nft compat match \"udp\" with unknown inversion flags 0x%x", t.inv)
			return x
		}
		x.match = t.eval
		x.text = t.render
	case "addrtype/1":
		a := addrtype{src: ne.Uint16(info[0:]), dst: ne.Uint16(info[2:]), flags: ne.Uint32(info[4:]), fam: fam}
		x.match = a.eval
		x.text = a.render
	case "comment/0":
		c := cstring(info)
		x.match = func(*packet) (tri, string) { return triYes, "" }
		x.text = func(string) string { return "comment " + strconv.Quote(c) }
	case "rt/0":
		if fam != nftables.TableFamilyIPv6 {
			x.why = `iptables-nft compat match "rt" outside an ip6 table is not modelled`
			return x
		}
		// ip6t_rt looks for a routing header; the simulated SYN has no
		// extension header (its next header is TCP), so it never matches,
		// inverted or not (rt_mt6 returns false before any inversion).
		x.match = func(*packet) (tri, string) { return triNo, "" }
		x.text = func(string) string { return fmt.Sprintf("rt type %d", ne.Uint32(info)) }
	case "icmp/0", "icmp6/0":
		m := icmpMatch{v6: name == "icmp6", typ: info[0], code: [2]byte{info[1], info[2]}, invflags: info[3]}
		if !icmpFamilyOK(fam, m.v6) {
			x.why = fmt.Sprintf("iptables-nft compat match %q outside an %s table is not modelled", name, map[bool]string{true: "ip6", false: "ip"}[m.v6])
			return x
		}
		x.match, x.text = m.eval, m.render
	case "hl/0", "ttl/0":
		m := hlMatch{v6: name == "hl", mode: info[0], value: info[1]}
		if why := m.check(); why != "" || !icmpFamilyOK(fam, m.v6) {
			x.why = strings.TrimSpace(why + fmt.Sprintf(" iptables-nft compat match %q is modelled in an %s table only", name, map[bool]string{true: "ip6", false: "ip"}[m.v6]))
			return x
		}
		x.match, x.text = m.eval, m.render
	case "LOG/0":
		prefix := cstring(info[2:32])
		x.act = xtContinue
		x.text = func(string) string { return strings.TrimSuffix("log prefix "+strconv.Quote(prefix), ` prefix ""`) }
	case "NFLOG/0":
		group := ne.Uint16(info[4:])
		x.act = xtContinue
		x.text = func(string) string { return fmt.Sprintf("log group %d", group) }
	case "REJECT/0":
		x.act, x.text, x.why = rejectTarget(fam, ne.Uint32(info))
		x.rst = x.act == xtReject && x.text("") == "reject with tcp reset"
	case "DNAT/0", "DNAT/1", "DNAT/2":
		xtDNAT(x, fam, info)
	}
	return x
}

// xtIsTarget reports whether a decoded name is a target.
func xtIsTarget(name string) bool {
	return name == "LOG" || name == "NFLOG" || name == "REJECT" || name == "DNAT"
}

func xtKnownName(target bool, name string) bool {
	for k := range xtInfoSize {
		n, _, _ := strings.Cut(k, "/")
		if n == name && target == xtIsTarget(n) {
			return true
		}
	}
	return false
}

// xtRaw is a compat expression as the raw netlink dump shows it.
type xtRaw struct {
	name string
	rev  uint32
	info []byte
}

// parseXT reads NFTA_MATCH_* / NFTA_TARGET_* (the same numbers: name 1,
// rev 2, info 3) from an expression's NFTA_EXPR_DATA.
func parseXT(b []byte) *xtRaw {
	x := &xtRaw{}
	for _, a := range attrs(b) {
		switch attrType(a) {
		case 1:
			x.name = string(bytes.TrimRight(a[1], "\x00"))
		case 2:
			if len(a[1]) == 4 {
				x.rev = binary.BigEndian.Uint32(a[1])
			}
		case 3:
			x.info = append([]byte(nil), a[1]...)
		}
	}
	return x
}
