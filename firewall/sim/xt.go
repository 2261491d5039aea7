package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
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
	// target: what it does.
	act xtAction
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
	"LOG/0":       32,  // xt_log_info
	"NFLOG/0":     80,  // xt_nflog_info
	"REJECT/0":    8,   // ipt_reject_info / ip6t_reject_info
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
	case target && (name == "LOG" || name == "NFLOG" || name == "REJECT"),
		!target && name != "LOG" && name != "NFLOG" && name != "REJECT":
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
		x.match = func(p *packet) (tri, string) { return conntrackMatch(p.track, flags, inv, state) }
		x.text = func(string) string { return conntrackText(flags, inv, state) }
	case "state/0":
		mask := ne.Uint32(info)
		x.match = func(p *packet) (tri, string) {
			switch p.track {
			case ctNotYet:
				return triOf(mask&1 != 0), "" // XT_STATE_INVALID: no conntrack entry yet
			case ctUnsure:
				return triUnknown, ctUnsureWhy
			}
			return triOf(mask&xtCtStateNew != 0), ""
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
	}
	return x
}

func xtKnownName(target bool, name string) bool {
	for k := range xtInfoSize {
		n, _, _ := strings.Cut(k, "/")
		if n == name && target == (n == "LOG" || n == "NFLOG" || n == "REJECT") {
			return true
		}
	}
	return false
}

const ctUnsureWhy = "a prerouting chain at priority -200, where connection tracking itself runs: which runs first is not known"

// conntrackMatch is conntrack_mt for a packet of a new, tracked connection
// in the original direction, with no NAT applied yet; before conntrack
// (track ctNotYet) the packet has no entry: its state is invalid and only
// the state condition is checked.
func conntrackMatch(track ctTrack, flags, inv, state uint16) (tri, string) {
	const modelled = xtConntrackState | xtConntrackDirection | xtConntrackStateAls
	switch track {
	case ctUnsure:
		return triUnknown, ctUnsureWhy
	case ctNotYet:
		if flags&xtConntrackState == 0 {
			return triNo, ""
		}
		return triOf((state&1 != 0) != (inv&xtConntrackState != 0)), ""
	}
	st, dir := triYes, triYes
	if flags&xtConntrackState != 0 {
		var bit tri
		switch {
		case state&xtCtStateNew != 0:
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
		dir = triOf(inv&xtConntrackDirection == 0) // the packet is in the original direction
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

// multiport is xt_multiport_v1.
type multiport struct {
	flags, count, invert byte
	ports                [xtMultiPorts]uint16
	pflags               [xtMultiPorts]byte
}

func (m multiport) check() string {
	switch {
	case m.count > xtMultiPorts:
		return fmt.Sprintf("iptables-nft compat match \"multiport\" with %d ports (at most %d)", m.count, xtMultiPorts)
	case m.invert > 1:
		return fmt.Sprintf("iptables-nft compat match \"multiport\" with invert %d", m.invert)
	case m.flags > xtMultiportEither:
		return fmt.Sprintf("iptables-nft compat match \"multiport\" with flags %d", m.flags)
	}
	for i := 0; i < int(m.count); i++ {
		if m.pflags[i] != 0 {
			if i+1 >= int(m.count) {
				return `iptables-nft compat match "multiport" with a range that has no end`
			}
			i++
		}
	}
	return ""
}

// eval is ports_match_v1: the first entry that matches returns !invert;
// none matching returns invert. The source port is not known.
func (m multiport) eval(p *packet) (tri, string) {
	unknown := false
	for i := 0; i < int(m.count); i++ {
		s, e := m.ports[i], m.ports[i]
		if m.pflags[i] != 0 {
			i++
			e = m.ports[i]
		}
		dst := p.port >= s && p.port <= e
		src := portIn(s, e)
		var hit tri
		switch m.flags {
		case xtMultiportSource:
			hit = src
		case xtMultiportDestination:
			hit = triOf(dst)
		case xtMultiportEither:
			if dst {
				hit = triYes
			} else {
				hit = src
			}
		}
		switch hit {
		case triYes:
			// Any earlier uncertain entry would have returned the same.
			return triOf(m.invert == 0), ""
		case triUnknown:
			unknown = true
		}
	}
	if unknown {
		return triUnknown, "multiport on the source port (tcp sport is not known in advance)"
	}
	return triOf(m.invert != 0), ""
}

// portIn says whether the (unknown) source port lies in [s, e].
func portIn(s, e uint16) tri {
	switch {
	case s > e:
		return triNo
	case s == 0 && e == 0xffff:
		return triYes
	}
	return triUnknown
}

func (m multiport) render(l4 string) string {
	var el []string
	for i := 0; i < int(m.count); i++ {
		v := strconv.Itoa(int(m.ports[i]))
		if m.pflags[i] != 0 {
			i++
			v += "-" + strconv.Itoa(int(m.ports[i]))
		}
		el = append(el, v)
	}
	if l4 == "" {
		l4 = "th"
	}
	field := map[byte]string{xtMultiportSource: " sport", xtMultiportDestination: " dport", xtMultiportEither: " sport|dport"}[m.flags]
	op := ""
	if m.invert != 0 {
		op = "!= "
	}
	return l4 + field + " " + op + "{ " + strings.Join(el, ", ") + " }"
}

// tcpudp is xt_tcp (tcp true) or xt_udp.
type tcpudp struct {
	tcp             bool
	spts, dpts      [2]uint16
	option          byte
	flgMask, flgCmp byte
	inv             byte
}

// eval is tcp_mt / udp_mt: source ports, destination ports, (tcp) flags and
// option, each of which must hold. Both read the ports at the start of the
// transport header, so udp_mt on a TCP packet sees the TCP ports.
func (t tcpudp) eval(p *packet) (tri, string) {
	const invS, invD = 0x01, 0x02 // the same bits in xt_tcp and xt_udp
	sp := portIn(t.spts[0], t.spts[1])
	if t.inv&invS != 0 && sp != triUnknown {
		sp = triOf(sp == triNo)
	}
	dp := triOf((p.port >= t.dpts[0] && p.port <= t.dpts[1]) != (t.inv&invD != 0))
	fl, opt := triYes, triYes
	if t.tcp {
		v, k := p.th[13], p.thK[13]
		switch {
		case (v^t.flgCmp)&k&t.flgMask != 0 || t.flgCmp&^t.flgMask != 0:
			fl = triNo
		case t.flgMask&^k != 0:
			fl = triUnknown
		}
		if t.inv&xtTCPInvFlags != 0 && fl != triUnknown {
			fl = triOf(fl == triNo)
		}
		if t.option != 0 {
			opt = triUnknown
		}
	}
	res := and(sp, dp, fl, opt)
	if res != triUnknown {
		return res, ""
	}
	switch {
	case sp == triUnknown:
		return res, "tcp sport is not known in advance"
	case fl == triUnknown:
		return res, "tcp flags ecn/cwr are not known in advance"
	}
	return res, "tcp options are not known in advance"
}

func (t tcpudp) render(string) string {
	l4 := "udp"
	if t.tcp {
		l4 = "tcp"
	}
	var out []string
	ports := func(name string, pts [2]uint16, inv bool) {
		if pts[0] == 0 && pts[1] == 0xffff && !inv {
			return
		}
		op := ""
		if inv {
			op = "!= "
		}
		v := strconv.Itoa(int(pts[0]))
		if pts[1] != pts[0] {
			v += "-" + strconv.Itoa(int(pts[1]))
		}
		out = append(out, l4+" "+name+" "+op+v)
	}
	ports("sport", t.spts, t.inv&xtTCPInvSrcPt != 0)
	ports("dport", t.dpts, t.inv&xtTCPInvDstPt != 0)
	if t.tcp && t.flgMask != 0 {
		op := ""
		if t.inv&xtTCPInvFlags != 0 {
			op = "!= "
		}
		out = append(out, "tcp flags "+op+tcpFlagNames(t.flgCmp)+" / "+tcpFlagNames(t.flgMask))
	}
	if t.tcp && t.option != 0 {
		op := ""
		if t.inv&xtTCPInvOption != 0 {
			op = "!= "
		}
		out = append(out, fmt.Sprintf("tcp option %s%d", op, t.option))
	}
	if len(out) == 0 {
		return "meta l4proto " + l4
	}
	return strings.Join(out, " ")
}

func tcpFlagNames(f byte) string {
	names := []string{"fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "0x0"
	}
	return strings.Join(out, ",")
}

// addrtype is xt_addrtype_info_v1.
type addrtype struct {
	src, dst uint16
	flags    uint32
	fam      nftables.TableFamily
}

// eval is addrtype_mt_v1 for a packet to a unicast address of this host.
func (a addrtype) eval(p *packet) (tri, string) {
	switch {
	case a.fam != nftables.TableFamilyIPv4 && a.fam != nftables.TableFamilyIPv6:
		return triUnknown, "addrtype outside an ip or ip6 table is not modelled"
	case a.flags&(xtAddrtypeIfaceIn|xtAddrtypeIfaceOut) != 0:
		return triUnknown, "addrtype --limit-iface-in/out (a lookup on one interface) is not modelled"
	case a.flags&^(xtAddrtypeInvSource|xtAddrtypeInvDest) != 0:
		return triUnknown, fmt.Sprintf("addrtype flags 0x%x are not modelled", a.flags)
	}
	var src, dst tri = triYes, triYes
	if a.src != 0 {
		src = triUnknown // the type of a Cloudflare address in this host's routes is not known
	}
	if a.dst != 0 {
		dst = a.dstType(p)
		if a.flags&xtAddrtypeInvDest != 0 && dst != triUnknown {
			dst = triOf(dst == triNo)
		}
	}
	res := and(src, dst)
	switch {
	case res != triUnknown:
		return res, ""
	case src == triUnknown:
		return res, "addrtype --src-type is not modelled"
	}
	return res, "addrtype --dst-type " + addrtypeNames(a.dst) + " is not modelled for destination " + p.dst.String()
}

// dstType is match_type (IPv4: the one route type of the address, RTN_LOCAL
// for an address of this host) or match_type6 (IPv6: multicast / unicast /
// unspec checks, then the local route has RTF_LOCAL) on the destination,
// which the simulator takes to be a unicast address of this host.
func (a addrtype) dstType(p *packet) tri {
	d := p.dst
	if p.v6 != (a.fam == nftables.TableFamilyIPv6) {
		return triUnknown
	}
	if !p.v6 {
		b := d.As4()
		if d.IsMulticast() || d.IsLoopback() || b[0] == 0 || d == netipBroadcast {
			return triUnknown
		}
		return triOf(a.dst&xtAddrtypeLocal != 0)
	}
	if !d.IsGlobalUnicast() {
		return triUnknown
	}
	m := a.dst
	switch {
	case m&xtAddrtypeMulticast != 0, m&xtAddrtypeUnspec != 0:
		return triNo
	case m&(xtAddrtypeLocal|xtAddrtypeAnycast|xtAddrtypeUnreachable) == 0:
		return triYes // only UNICAST (or types ip6 ignores)
	case m&xtAddrtypeLocal != 0:
		return triYes
	}
	return triUnknown // anycast / unreachable without local: the route lookup decides
}

func addrtypeNames(m uint16) string {
	names := []string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve"}
	var out []string
	for i, n := range names {
		if m&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("0x%x", m)
	}
	if len(out) == 1 {
		return out[0]
	}
	return "{ " + strings.Join(out, ", ") + " }"
}

func (a addrtype) render(string) string {
	var out []string
	part := func(dir string, m uint16, inv bool) {
		if m == 0 {
			return
		}
		op := ""
		if inv {
			op = "!= "
		}
		iface := ""
		if a.flags&xtAddrtypeIfaceIn != 0 {
			iface = " . iif"
		}
		out = append(out, "fib "+dir+iface+" type "+op+addrtypeNames(m))
	}
	part("saddr", a.src, a.flags&xtAddrtypeInvSource != 0)
	part("daddr", a.dst, a.flags&xtAddrtypeInvDest != 0)
	if len(out) == 0 {
		return `xt match "addrtype"`
	}
	return strings.Join(out, " ")
}

var netipBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// rejectTarget is ipt_REJECT / ip6t_REJECT: every valid reject-with sends a
// TCP reset or an ICMP error and drops; an unknown value only drops.
func rejectTarget(fam nftables.TableFamily, with uint32) (xtAction, func(string) string, string) {
	var names []string
	switch fam {
	case nftables.TableFamilyIPv4:
		names = []string{"icmp-net-unreachable", "icmp-host-unreachable", "icmp-proto-unreachable", "icmp-port-unreachable",
			"", "icmp-net-prohibited", "icmp-host-prohibited", "tcp-reset", "icmp-admin-prohibited"}
	case nftables.TableFamilyIPv6:
		names = []string{"icmp6-no-route", "icmp6-adm-prohibited", "icmp6-not-neighbour", "icmp6-addr-unreachable",
			"icmp6-port-unreachable", "", "tcp-reset", "icmp6-policy-fail", "icmp6-reject-route"}
	default:
		return xtUnmodelled, func(string) string { return `xt target "REJECT"` }, `iptables-nft compat target "REJECT" outside an ip or ip6 table is not modelled`
	}
	if int(with) >= len(names) || names[with] == "" {
		return xtUnmodelled, func(string) string { return `xt target "REJECT"` },
			fmt.Sprintf("iptables-nft compat target \"REJECT\" with reject-with value %d is not modelled", with)
	}
	n := names[with]
	text := func(string) string {
		switch n {
		case "tcp-reset":
			return "reject with tcp reset"
		case "icmp-port-unreachable", "icmp6-port-unreachable":
			return "reject"
		}
		return "reject with " + n
	}
	return xtReject, text, ""
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
