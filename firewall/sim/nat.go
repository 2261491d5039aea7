package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// DNAT in prerouting (Docker's published ports, `dnat ip to …`): the SYN's
// destination is rewritten by the first nat chain that translates it, the
// chains after it see the new destination, and the routing decision then
// delivers the packet locally (input) or forwards it (forward, then
// postrouting) toward the new address. The packets after the SYN are
// translated by conntrack at the nat priority (-100) without running nat
// chains again; this host's (or the container's) answers are translated
// back at postrouting's nat priority (100).

// Translation is where a DNAT in prerouting sends the connection: the new
// destination and the rule that set it. The zero value means no DNAT.
type Translation struct {
	To     netip.AddrPort
	Family string
	Table  string
	Chain  string
	Handle uint64
	Rule   string
	// Local is true when the new destination is this host's (the packets
	// go through input), false when they are forwarded (forward, then
	// postrouting) toward it.
	Local bool
	// Interface is the interface a forwarded packet leaves through
	// ("" when delivered locally or not known).
	Interface string
}

// Translated reports whether a DNAT changed the destination.
func (t Translation) Translated() bool { return t.To.IsValid() }

// String names the translation for a person: "192.0.2.130:8080 (table ip
// nat chain DOCKER rule handle 4: …)".
func (t Translation) String() string {
	if !t.Translated() {
		return ""
	}
	s := fmt.Sprintf("%s (table %s %s chain %s", t.To, t.Family, t.Table, t.Chain)
	if t.Handle != 0 {
		s += fmt.Sprintf(", rule handle %d: %s", t.Handle, t.Rule)
	}
	return s + ")"
}

// Route is where the kernel's routing decision sends a destination.
type Route struct {
	Local   bool   // an address of this host: delivered through input
	IfName  string // the output interface of a forwarded packet
	IfIndex uint32
}

// SetRouter gives the simulator the routing decision for a destination a
// DNAT rewrote. Without it, a DNAT that keeps the destination address
// (only the port changes) is delivered locally, and one to another address
// is CannotTell.
func (r *Ruleset) SetRouter(route func(dst netip.Addr) (Route, error)) { r.router = route }

// Priorities of the nat hooks (NF_IP_PRI_NAT_DST, NF_IP_PRI_NAT_SRC): where
// conntrack translates the packets after the SYN.
const (
	nfPriNATDst = -100
	nfPriNATSrc = 100
	ipsDstNAT   = 1 << 5 // IPS_DST_NAT in ct status
)

// natTo is what one DNAT rule asks for.
type natTo struct {
	addr netip.Addr // invalid: the address is kept
	port uint16     // 0: the port is kept
}

// nativeDNAT decodes `dnat ip to ADDR[:PORT]` from its registers.
func nativeDNAT(p *packet, c *chain, rg *regs, e *expr.NAT) (step, outcome) {
	if b := p.base; b == nil || b.typ != nftables.ChainTypeNAT || b.hook != unix.NF_INET_PRE_ROUTING {
		return unknownf("dnat in chain %s, which is not reached from a nat chain on prerouting, is not modelled", c.name)
	}
	if e.Prefix {
		return unknownf("dnat to a prefix (netmap) in chain %s is not modelled", c.name)
	}
	fam := unix.NFPROTO_IPV4
	n := 4
	if p.v6 {
		fam, n = unix.NFPROTO_IPV6, 16
	}
	if e.Family != uint32(fam) {
		return unknownf("dnat of family %d in chain %s for an IPv%d packet is not modelled", e.Family, c.name, map[bool]int{false: 4, true: 6}[p.v6])
	}
	var to natTo
	if e.RegAddrMin != 0 {
		v, k, _, ok := rg.get(e.RegAddrMin, n)
		if !ok || !allKnown(k) {
			return unknownf("dnat in chain %s to an address that is not a constant is not modelled", c.name)
		}
		if e.RegAddrMax != 0 && e.RegAddrMax != e.RegAddrMin {
			w, wk, _, ok := rg.get(e.RegAddrMax, n)
			if !ok || !allKnown(wk) || string(w) != string(v) {
				return unknownf("dnat in chain %s to a range of addresses is not modelled (which one the kernel picks is not known)", c.name)
			}
		}
		to.addr, _ = netip.AddrFromSlice(v)
	}
	if e.RegProtoMin != 0 {
		v, k, _, ok := rg.get(e.RegProtoMin, 2)
		if !ok || !allKnown(k) {
			return unknownf("dnat in chain %s to a port that is not a constant is not modelled", c.name)
		}
		if e.RegProtoMax != 0 && e.RegProtoMax != e.RegProtoMin {
			w, wk, _, ok := rg.get(e.RegProtoMax, 2)
			if !ok || !allKnown(wk) || string(w) != string(v) {
				return unknownf("dnat in chain %s to a range of ports is not modelled (which one the kernel picks is not known)", c.name)
			}
		}
		to.port = binary.BigEndian.Uint16(v)
	}
	return dnatStep(to)
}

func dnatStep(to natTo) (step, outcome) {
	if !to.addr.IsValid() && to.port == 0 {
		return unknownf("a dnat that names neither an address nor a port is not modelled")
	}
	if to.addr.IsLoopback() {
		return unknownf("dnat to a loopback address (%s) works only with route_localnet, which is not modelled", to.addr)
	}
	return stVerdict, outcome{kind: outDNAT, nat: to}
}

// Flags of struct nf_nat_range(2) (uapi linux/netfilter/nf_nat.h).
const (
	nfNATRangeMapIPs        = 1 << 0
	nfNATRangeProtoSpecfied = 1 << 1
	nfNATRangeProtoRandom   = 1 << 2
	nfNATRangePersistent    = 1 << 3
	nfNATRangeRandomFully   = 1 << 4
	nfNATRangeProtoOffset   = 1 << 5
	nfNATRangeNetmap        = 1 << 6
)

// xtDNAT decodes the iptables-nft DNAT target (`-j DNAT --to-destination
// ADDR[:PORT]`): revision 0 (nf_nat_ipv4_multi_range_compat, IPv4), 1
// (nf_nat_range) and 2 (nf_nat_range2, what iptables 1.8 makes).
func xtDNAT(x *xtExpr, fam nftables.TableFamily, info []byte) {
	ne := binary.NativeEndian
	var flags uint32
	var minA, maxA []byte
	var minP, maxP []byte
	switch x.rev {
	case 0:
		if fam != nftables.TableFamilyIPv4 || ne.Uint32(info) != 1 {
			x.why = `iptables-nft compat target "DNAT" revision 0 with more than one range (or outside an ip table) is not modelled`
			return
		}
		flags, minA, maxA, minP, maxP = ne.Uint32(info[4:]), info[8:12], info[12:16], info[16:18], info[18:20]
	default:
		n := 4
		if fam == nftables.TableFamilyIPv6 {
			n = 16
		} else if fam != nftables.TableFamilyIPv4 {
			x.why = `iptables-nft compat target "DNAT" outside an ip or ip6 table is not modelled`
			return
		}
		flags, minA, maxA, minP, maxP = ne.Uint32(info), info[4:4+n], info[20:20+n], info[36:38], info[38:40]
		if x.rev == 2 && flags&nfNATRangeProtoOffset != 0 {
			x.why = `iptables-nft compat target "DNAT" with a port offset is not modelled`
			return
		}
	}
	if flags&nfNATRangeNetmap != 0 {
		x.why = `iptables-nft compat target "DNAT" to a netmap is not modelled`
		return
	}
	var to natTo
	if flags&nfNATRangeMapIPs != 0 {
		if string(minA) != string(maxA) {
			x.why = `iptables-nft compat target "DNAT" to a range of addresses is not modelled (which one the kernel picks is not known)`
			return
		}
		to.addr, _ = netip.AddrFromSlice(minA)
	}
	if flags&nfNATRangeProtoSpecfied != 0 {
		if string(minP) != string(maxP) {
			x.why = `iptables-nft compat target "DNAT" to a range of ports is not modelled (which one the kernel picks is not known)`
			return
		}
		to.port = binary.BigEndian.Uint16(minP)
	}
	x.act, x.nat = xtNAT, to
	x.text = func(string) string { return "dnat to " + natText(to) }
}

func natText(to natTo) string {
	switch {
	case !to.addr.IsValid():
		return fmt.Sprintf(":%d", to.port)
	case to.port == 0:
		return to.addr.String()
	}
	return netip.AddrPortFrom(to.addr, to.port).String()
}

// applyDNAT rewrites the SYN's destination as the rule at (c, ru) asks:
// the chains after this one see the new destination.
func (r *Ruleset) applyDNAT(p *packet, c *chain, ru *rule, to natTo) Result {
	if p.kind != kindSYN || p.reply {
		return Result{Verdict: CannotTell, Family: familyName(c.table.family), Table: c.table.name, Chain: c.name, Handle: ru.handle, Rule: ru.text,
			Reason: "a dnat for a packet other than a new connection's first is not modelled"}
	}
	addr, port := p.dst, p.port
	if to.addr.IsValid() {
		addr = to.addr.Unmap()
	}
	if to.port != 0 {
		port = to.port
	}
	if addr.Is4() != p.dst.Is4() {
		return Result{Verdict: CannotTell, Family: familyName(c.table.family), Table: c.table.name, Chain: c.name, Handle: ru.handle, Rule: ru.text,
			Reason: "dnat to an address of the other IP family"}
	}
	p.xlat = Translation{To: netip.AddrPortFrom(addr, port), Family: familyName(c.table.family), Table: c.table.name, Chain: c.name, Handle: ru.handle, Rule: ru.text}
	p.setDst(addr, port, true)
	p.viewXlat = true
	return Result{Verdict: Accept}
}

// route decides where the translated SYN goes: local delivery or forward.
// It returns a CannotTell result when that is not known.
func (r *Ruleset) route(p *packet) (Result, bool) {
	to := p.xlat.To.Addr()
	if to == p.dst {
		p.xlat.Local = true
		return Result{}, true
	}
	fail := func(why string) (Result, bool) {
		p.natUnknown = true
		return Result{Verdict: CannotTell, Family: p.xlat.Family, Table: p.xlat.Table, Chain: p.xlat.Chain, Handle: p.xlat.Handle, Rule: p.xlat.Rule, Reason: why}, false
	}
	if r.router == nil {
		return fail(fmt.Sprintf("the rule translates the destination to %s; where the kernel routes that address is not known", p.xlat.To))
	}
	p.natUnknown = true // until the route is known
	rt, err := r.router(to)
	if err != nil {
		return fail(fmt.Sprintf("the rule translates the destination to %s, whose route could not be looked up: %v", p.xlat.To, err))
	}
	p.natUnknown = false
	p.xlat.Local = rt.Local
	if !rt.Local {
		p.xlat.Interface = rt.IfName
		p.fwdIf, p.fwdIndex = rt.IfName, rt.IfIndex
	}
	return Result{}, true
}

// natView sets what chain c sees of a packet of a translated connection:
// the original or the translated destination (for this host's or the
// container's answers: source), and the interfaces.
func (p *packet) natView(c *chain) {
	if !p.xlat.Translated() {
		return
	}
	fwd := !p.xlat.Local
	if fwd {
		switch {
		case !p.reply && c.hook == unix.NF_INET_PRE_ROUTING:
			p.iif, p.oif = ifCF, ifNone
		case !p.reply:
			p.iif, p.oif = ifCF, ifFwd
		case c.hook == unix.NF_INET_PRE_ROUTING:
			p.iif, p.oif = ifFwd, ifNone
		default:
			p.iif, p.oif = ifFwd, ifCF
		}
	}
	if p.kind == kindSYN {
		return // rewritten when the rule runs (applyDNAT)
	}
	orig, xl := netip.AddrPortFrom(p.dst, p.origPort), p.xlat.To
	var at, sure bool // at: translated; sure: known which
	switch {
	case !p.reply && c.hook == unix.NF_INET_PRE_ROUTING:
		at, sure = c.priority > nfPriNATDst, c.priority != nfPriNATDst
	case !p.reply:
		at, sure = true, true
	case c.hook == unix.NF_INET_POST_ROUTING:
		at, sure = c.priority < nfPriNATSrc, c.priority != nfPriNATSrc
	default:
		at, sure = true, true
	}
	a := orig
	if at {
		a = xl
	}
	p.viewXlat = at
	if p.reply {
		p.setSrc(a.Addr(), a.Port(), sure)
	} else {
		p.setDst(a.Addr(), a.Port(), sure)
	}
}

// setDst writes the destination address and port into the headers; when
// known is false they are marked unknown (a chain tied with the nat hook).
func (p *packet) setDst(a netip.Addr, port uint16, known bool) {
	off := 16
	if p.v6 {
		off = 24
	}
	p.putAddr(off, a, known)
	p.putPort(2, port, known)
}

// setSrc writes the source address and port of an answer.
func (p *packet) setSrc(a netip.Addr, port uint16, known bool) {
	off := 12
	if p.v6 {
		off = 8
	}
	p.putAddr(off, a, known)
	p.putPort(0, port, known)
}

func (p *packet) putAddr(off int, a netip.Addr, known bool) {
	b := a.AsSlice()
	k := byte(0)
	if known {
		k = 0xff
	}
	for i := range b {
		p.nh[off+i], p.nhK[off+i] = b[i], k
	}
}

func (p *packet) putPort(off int, port uint16, known bool) {
	binary.BigEndian.PutUint16(p.th[off:], port)
	k := byte(0)
	if known {
		k = 0xff
	}
	p.thK[off], p.thK[off+1] = k, k
}

// ctStatus is `ct status`: only IPS_DST_NAT is known (set once a DNAT
// translated the connection).
func (p *packet) ctStatus() ([]byte, []byte) {
	v := uint32(0)
	if p.xlat.Translated() && (p.kind != kindSYN || p.viewXlat) {
		v = ipsDstNAT
	}
	return binary.NativeEndian.AppendUint32(nil, v), binary.NativeEndian.AppendUint32(nil, ipsDstNAT)
}

// Equal reports whether two translations are the same (for go-cmp, which
// cannot look into netip.AddrPort).
func (t Translation) Equal(u Translation) bool { return t == u }

// hasDNAT reports whether a rule has a DNAT (native or iptables-nft's).
func hasDNAT(exprs []expr.Any) bool {
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.NAT:
			if e.Type == expr.NATTypeDestNAT {
				return true
			}
		case *xtExpr:
			if e.target && e.name == "DNAT" {
				return true
			}
		}
	}
	return false
}

// ctStatusNames names ct status bits as nft does (IPS_* of
// linux/netfilter/nf_conntrack_common.h).
func ctStatusNames(m uint32) string {
	names := []string{"expected", "seen-reply", "assured", "confirmed", "snat", "dnat", "", "", "", "dying"}
	var out []string
	for i, n := range names {
		if n != "" && m&(1<<i) != 0 {
			out = append(out, n)
			m &^= 1 << i
		}
	}
	if m != 0 {
		out = append(out, fmt.Sprintf("0x%x", m))
	}
	return strings.Join(out, ",")
}

// natRegText renders a dnat's target from the immediates that loaded its
// registers: "ip to 192.0.2.130:8080", or "to …" when they are not known.
func natRegText(e *expr.NAT, reg map[uint32]field) string {
	var to natTo
	if e.RegAddrMin != 0 {
		a, ok := netip.AddrFromSlice(reg[e.RegAddrMin].data)
		if !ok || (e.RegAddrMax != 0 && e.RegAddrMax != e.RegAddrMin) {
			return "to …"
		}
		to.addr = a
	}
	if e.RegProtoMin != 0 {
		d := reg[e.RegProtoMin].data
		if len(d) < 2 || (e.RegProtoMax != 0 && e.RegProtoMax != e.RegProtoMin) {
			return "to …"
		}
		to.port = binary.BigEndian.Uint16(d)
	}
	if !to.addr.IsValid() && to.port == 0 {
		return "to …"
	}
	fam := "ip "
	if e.Family == unix.NFPROTO_IPV6 {
		fam = "ip6 "
	}
	return fam + "to " + natText(to)
}
