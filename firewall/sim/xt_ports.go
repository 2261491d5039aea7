package sim

import (
	"fmt"
	"strconv"
	"strings"
)

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
		known := triOf(p.port >= s && p.port <= e) // the port this host serves
		dst, src := known, portIn(s, e)
		if p.reply { // this host's answer: from the served port to Cloudflare's
			dst, src = src, known
		}
		var hit tri
		switch m.flags {
		case xtMultiportSource:
			hit = src
		case xtMultiportDestination:
			hit = dst
		case xtMultiportEither:
			switch {
			case dst == triYes || src == triYes:
				hit = triYes
			case dst == triNo && src == triNo:
				hit = triNo
			default:
				hit = triUnknown
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
	if unknown && p.reply {
		return triUnknown, "multiport on the destination port (Cloudflare's port, tcp dport, is not known in advance)"
	}
	if unknown {
		return triUnknown, "multiport on the source port (tcp sport is not known in advance)"
	}
	return triOf(m.invert != 0), ""
}

// portIn says whether Cloudflare's (unknown) port lies in [s, e].
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
	sp, dp := portIn(t.spts[0], t.spts[1]), triOf(p.port >= t.dpts[0] && p.port <= t.dpts[1])
	if p.reply { // this host's answer: from the served port to Cloudflare's
		sp, dp = triOf(p.port >= t.spts[0] && p.port <= t.spts[1]), portIn(t.dpts[0], t.dpts[1])
	}
	if t.inv&invS != 0 && sp != triUnknown {
		sp = triOf(sp == triNo)
	}
	if t.inv&invD != 0 && dp != triUnknown {
		dp = triOf(dp == triNo)
	}
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
	case dp == triUnknown:
		return res, "tcp dport (Cloudflare's port) is not known in advance"
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
