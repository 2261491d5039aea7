package sim

import (
	"fmt"

	"github.com/google/nftables"
)

// icmpMatch is ipt_icmp / ip6t_icmp: an ICMP type and a range of codes.
type icmpMatch struct {
	v6       bool
	typ      byte
	code     [2]byte
	invflags byte
}

// eval is icmp_match / icmp6_match: the type and code of the transport
// header (the rule's `-p icmp` / `-p ipv6-icmp` is checked before it).
func (m icmpMatch) eval(p *packet) (tri, string) {
	if p.thK[0] != 0xff || p.thK[1] != 0xff {
		return triUnknown, "the icmp type and code are not known in advance" + p.kindNote()
	}
	typ, code := p.th[0], p.th[1]
	hit := typ == m.typ && code >= m.code[0] && code <= m.code[1]
	if !m.v6 && m.typ == 0xff { // icmp_type_code_match: any type
		hit = true
	}
	return triOf(hit != (m.invflags&0x01 != 0)), ""
}

func (m icmpMatch) render(string) string {
	l4 := "icmp"
	if m.v6 {
		l4 = "icmpv6"
	}
	op := ""
	if m.invflags&0x01 != 0 {
		op = "!= "
	}
	code := ""
	switch {
	case m.code[0] == 0 && m.code[1] == 0xff:
	case m.code[0] == m.code[1]:
		code = fmt.Sprintf(" %s code %d", l4, m.code[0])
	default:
		code = fmt.Sprintf(" %s code %d-%d", l4, m.code[0], m.code[1])
	}
	return fmt.Sprintf("%s type %s%d%s", l4, op, m.typ, code)
}

// hlMatch is ip6t_hl_info (hl) / ipt_ttl_info (ttl): the hop limit or TTL
// compared with a value.
type hlMatch struct {
	v6    bool
	mode  byte // IP6T_HL_EQ, _NE, _LT, _GT (the same for ttl)
	value byte
}

func (m hlMatch) check() string {
	if m.mode > 3 {
		return fmt.Sprintf("iptables-nft compat match %q with mode %d", m.name(), m.mode)
	}
	return ""
}

func (m hlMatch) name() string {
	if m.v6 {
		return "hl"
	}
	return "ttl"
}

// eval is hl_mt6 / ttl_mt on the packet's hop limit or TTL, when known.
func (m hlMatch) eval(p *packet) (tri, string) {
	i := 8 // ttl
	if p.v6 {
		i = 7
	}
	if p.v6 != m.v6 || p.nhK[i] != 0xff {
		return triUnknown, fmt.Sprintf("the %s of the packet is not known in advance%s", map[bool]string{true: "hop limit", false: "ttl"}[m.v6], p.kindNote())
	}
	v := p.nh[i]
	switch m.mode {
	case 0:
		return triOf(v == m.value), ""
	case 1:
		return triOf(v != m.value), ""
	case 2:
		return triOf(v < m.value), ""
	}
	return triOf(v > m.value), ""
}

func (m hlMatch) render(string) string {
	field := "ip ttl"
	if m.v6 {
		field = "ip6 hoplimit"
	}
	return fmt.Sprintf("%s %s %d", field, []string{"==", "!=", "<", ">"}[m.mode], m.value)
}

func icmpFamilyOK(fam nftables.TableFamily, v6 bool) bool {
	if v6 {
		return fam == nftables.TableFamilyIPv6
	}
	return fam == nftables.TableFamilyIPv4
}
