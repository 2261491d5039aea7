package sim

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
)

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
	if p.reply {
		return triUnknown, "addrtype on this host's answers to Cloudflare is not modelled"
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
