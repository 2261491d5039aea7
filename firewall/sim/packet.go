package sim

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Known values of the simulated packet.
const (
	ctStateNew      = 8    // NF_CT_STATE_BIT(IP_CT_NEW)
	ctStateInvalid  = 1    // NF_CT_STATE_INVALID_BIT: no conntrack entry (yet)
	nfPriConntrack  = -200 // NF_IP_PRI_CONNTRACK / NF_IP6_PRI_CONNTRACK
	ctDirOriginal   = 0
	ctDirReply      = 1
	packetHost      = 0 // PACKET_HOST
	loopbackIfindex = 1
	tcpFlagSYN      = 0x02
	nfInetIngress   = 5 // NF_INET_INGRESS: inet ingress chains (Linux 5.10)
)

// packetKind is which packet of the exchange Cloudflare needs is simulated.
type packetKind int

const (
	kindSYN          packetKind = iota // the SYN of a new connection (ct state new)
	kindEstablished                    // the packets after it: ACKs and data (ct state established)
	kindNSMulticast                    // IPv6 neighbour solicitation to this host's solicited-node address
	kindNSUnicast                      // IPv6 neighbour solicitation to this host's address (reachability)
	kindNA                             // IPv6 neighbour advertisement answering this host's solicitation
	kindReply                          // this host's answers: SYN-ACK, ACKs, data (output, ct state established, reply direction)
	kindNAOut                          // IPv6 neighbour advertisement this host sends answering a solicitation (output)
	kindRejectAnswer                   // the TCP reset (or, after icmpAnswer, ICMP error) a reject sends (output, ct state related)
)

// packet is one simulated packet from a Cloudflare address (or, for
// neighbour discovery, from an on-link neighbour) to this origin.
type packet struct {
	kind      packetKind
	v6        bool
	src, dst  netip.Addr
	port      uint16
	nh, nhK   []byte // network header and its known bits
	th, thK   []byte // transport header (TCP: 20 bytes, ICMPv6: 24) and its known bits
	nfproto   byte
	l4        byte // IPPROTO_TCP or IPPROTO_ICMPV6
	pkttype   byte
	ethertype uint16
	ctState   uint32 // the conntrack state bit once tracked (new, established)
	buf       [2 * (40 + 24)]byte
	afterCT   ctTrack // what chains after conntrack see: ctTracked or ctUntracked
	track     ctTrack // whether the chain being run sees the conntrack entry

	// piece is the range of source addresses this packet stands for (when
	// set); dep is then the deepest source-address bit (0 = the first) that
	// a comparison read and that varies within the piece, or -1, and depAt
	// names the rule that read it.
	piece   *ivlAddr
	dep     int
	depAt   Result
	noIndex bool // the source address is not known: evaluate every rule
	reply   bool // the packet goes from this host to Cloudflare (src, dst are swapped on the wire)

	curChain *chain // the rule being evaluated, for depAt
	curRule  *rule
	base     *chain // the base chain being run

	// A DNAT in prerouting (nat.go): xlat is the translation (zero: none),
	// origPort the destination port before it, viewXlat whether the chain
	// being run sees the translated destination, fwdIf / fwdIndex the
	// interface toward a forwarded destination, iif / oif which interface
	// the packet arrives on and leaves through.
	xlat      Translation
	origPort  uint16
	viewXlat  bool
	forwarded bool
	fwdIf     string
	fwdIndex  uint32
	iif, oif  ifView
	// natUnknown: a DNAT rule could not be judged (Result.DNATUnknown).
	natUnknown bool
}

// ifView is which interface a meta iif / oif key reads.
type ifView int

const (
	ifNone ifView = iota // no such device: ifindex 0, name ""
	ifCF                 // the interface Cloudflare's packets arrive on (Ruleset.SetInterface)
	ifFwd                // the interface toward a DNAT'ed destination (Ruleset.SetRouter)
)

type ctTrack int

const (
	ctTracked   ctTrack = iota // after conntrack: an entry in state ctState, original direction
	ctNotYet                   // prerouting before conntrack: no entry, state "invalid"
	ctUnsure                   // prerouting at conntrack's own priority
	ctUntracked                // after conntrack, which leaves neighbour discovery untracked
)

// TCP flags.
const (
	tcpFlagFIN = 0x01
	tcpFlagRST = 0x04
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
	tcpFlagURG = 0x20
)

// ICMPv6 neighbour discovery.
const (
	icmpv6NS       = 135 // NDISC_NEIGHBOUR_SOLICITATION
	icmpv6NA       = 136 // NDISC_NEIGHBOUR_ADVERTISEMENT
	ctStateEstab   = 2   // NF_CT_STATE_BIT(IP_CT_ESTABLISHED)
	ctStateRelated = 4   // NF_CT_STATE_BIT(IP_CT_RELATED)
	ctStateUntrack = 64  // NF_CT_STATE_UNTRACKED_BIT
	packetMcast    = 2   // PACKET_MULTICAST
	ndHopLimit     = 255
)

func newPacket(src, dst netip.Addr, port uint16) *packet {
	return newPacketKind(kindSYN, src, dst, port)
}

// newPacketKind builds the packet of the given kind. For neighbour
// discovery src is ignored: the neighbour's address is not known.
func newPacketKind(kind packetKind, src, dst netip.Addr, port uint16) *packet {
	p := &packet{kind: kind, v6: dst.Is6(), src: src, dst: dst, port: port, dep: -1,
		l4: unix.IPPROTO_TCP, pkttype: packetHost, ctState: ctStateNew, afterCT: ctTracked,
		origPort: port, iif: ifCF}
	nd := kind == kindNSMulticast || kind == kindNSUnicast || kind == kindNA
	if nd {
		p.l4, p.afterCT, p.ctState, p.noIndex = unix.IPPROTO_ICMPV6, ctUntracked, 0, true
	}
	switch kind {
	case kindReply:
		return newReply(p)
	case kindRejectAnswer:
		newReply(p)
		p.ctState = ctStateRelated
		p.th[13], p.thK[13] = tcpFlagRST|tcpFlagACK, 0xff
		return p
	case kindNAOut:
		return newNAOut(p)
	}
	if p.v6 {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV6, unix.ETH_P_IPV6
		p.nh, p.nhK = p.buf[0:40:40], p.buf[40:80:80]
		p.nh[0], p.nhK[0] = 0x60, 0xf0 // version 6; traffic class unknown
		p.nh[6], p.nhK[6] = p.l4, 0xff
		d := dst.As16()
		if kind == kindNSMulticast { // ff02::1:ffXX:XXXX
			d = [16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: d[13], 14: d[14], 15: d[15]}
			p.pkttype = packetMcast
		}
		copy(p.nh[24:], d[:])
		for i := 24; i < 40; i++ {
			p.nhK[i] = 0xff
		}
		if !nd {
			s := src.As16()
			copy(p.nh[8:], s[:])
			for i := 8; i < 24; i++ {
				p.nhK[i] = 0xff
			}
		} else {
			// The neighbour's address is not known: a router solicits from
			// its link-local address for a packet it forwards, but from the
			// packet's source when that is its own.
			p.nh[7], p.nhK[7] = ndHopLimit, 0xff
		}
	} else {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV4, unix.ETH_P_IP
		p.nh, p.nhK = p.buf[0:20:20], p.buf[20:40:40]
		p.nh[0], p.nhK[0] = 0x45, 0xff // version 4, no options
		p.nh[9], p.nhK[9] = unix.IPPROTO_TCP, 0xff
		s, d := src.As4(), dst.As4()
		copy(p.nh[12:], s[:])
		copy(p.nh[16:], d[:])
		for i := 12; i < 20; i++ {
			p.nhK[i] = 0xff
		}
		// fragment offset 0 and MF clear: TCP to Cloudflare's MSS is not fragmented
		p.nhK[6], p.nhK[7] = 0x3f, 0xff
	}
	if nd {
		p.th, p.thK = p.buf[80:104:104], p.buf[104:128:128]
		p.thK[0], p.thK[1] = 0xff, 0xff // type, code 0
		p.th[0] = icmpv6NS
		if kind == kindNA {
			p.th[0] = icmpv6NA
		} else { // the target is this host's address
			d := dst.As16()
			copy(p.th[8:], d[:])
			for i := 8; i < 24; i++ {
				p.thK[i] = 0xff
			}
		}
		return p
	}
	p.th, p.thK = p.buf[80:100:100], p.buf[104:124:124]
	binary.BigEndian.PutUint16(p.th[2:], port)
	p.thK[2], p.thK[3] = 0xff, 0xff
	p.thK[18], p.thK[19] = 0xff, 0xff // urgent pointer
	if kind == kindEstablished {
		p.ctState = ctStateEstab
		// ACK set; FIN, SYN, RST and URG clear (the handshake's ACK and the
		// data: what a request needs); PSH, ECE and CWR vary.
		p.th[13], p.thK[13] = tcpFlagACK, tcpFlagFIN|tcpFlagSYN|tcpFlagRST|tcpFlagACK|tcpFlagURG
		return p
	}
	for i := 8; i < 12; i++ { // acknowledgement number: zero in a SYN
		p.thK[i] = 0xff
	}
	p.th[13], p.thK[13] = tcpFlagSYN, 0x3f // ECE/CWR may be set (ECN)
	return p
}

func (p *packet) payload(e *expr.Payload) ([]byte, []byte, string) {
	off, n := e.Offset, e.Len
	var src, srcK []byte
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		src, srcK = p.nh, p.nhK
	case expr.PayloadBaseTransportHeader:
		src, srcK = p.th, p.thK
	}
	var val, known []byte
	if off+n <= uint32(len(src)) {
		val, known = src[off:off+n], srcK[off:off+n]
	} else {
		val, known = make([]byte, n), make([]byte, n)
		for i := uint32(0); i < n; i++ {
			if j := off + i; j < uint32(len(src)) {
				val[i], known[i] = src[j], srcK[j]
			}
		}
	}
	if allKnown(known) {
		return val, known, ""
	}
	fam := nftables.TableFamilyIPv4
	if p.v6 {
		fam = nftables.TableFamilyIPv6
	}
	l4 := "tcp"
	if p.l4 == unix.IPPROTO_ICMPV6 {
		l4 = "icmpv6"
	}
	return val, known, payloadField(fam, e, l4).name + " is not known in advance" + p.kindNote()
}

func (p *packet) meta(k expr.MetaKey, r *Ruleset) ([]byte, []byte, string) {
	switch k {
	case expr.MetaKeyNFPROTO:
		return []byte{p.nfproto}, nil, ""
	case expr.MetaKeyL4PROTO:
		return []byte{p.l4}, nil, ""
	case expr.MetaKeyPROTOCOL:
		return binary.BigEndian.AppendUint16(nil, p.ethertype), nil, ""
	case expr.MetaKeyPKTTYPE:
		return []byte{p.pkttype}, nil, ""
	case expr.MetaKeyIIF, expr.MetaKeyIIFNAME, expr.MetaKeyOIF, expr.MetaKeyOIFNAME:
		v := p.oif
		if k == expr.MetaKeyIIF || k == expr.MetaKeyIIFNAME {
			v = p.iif
		}
		switch v {
		case ifNone: // no such device: ifindex 0, name ""
			if k == expr.MetaKeyIIFNAME || k == expr.MetaKeyOIFNAME {
				return make([]byte, unix.IFNAMSIZ), nil, ""
			}
			return make([]byte, 4), nil, ""
		case ifFwd:
			return p.fwdMeta(k)
		}
		return p.ifMeta(k, r)
	}
	return make([]byte, 16), make([]byte, 16), "meta " + metaName(k) + " is not known in advance"
}

// fwdMeta is the interface toward a DNAT'ed destination.
func (p *packet) fwdMeta(k expr.MetaKey) ([]byte, []byte, string) {
	why := "the interface toward " + p.xlat.To.Addr().String() + " is not known"
	switch k {
	case expr.MetaKeyIIF, expr.MetaKeyOIF:
		if p.fwdIf != "" {
			return binary.NativeEndian.AppendUint32(nil, p.fwdIndex), nil, ""
		}
		return make([]byte, 4), make([]byte, 4), why
	}
	if p.fwdIf != "" {
		b := make([]byte, unix.IFNAMSIZ)
		copy(b, p.fwdIf)
		return b, nil, ""
	}
	return make([]byte, unix.IFNAMSIZ), make([]byte, unix.IFNAMSIZ), why
}

// ifView reports whether the meta key reads an interface whose name is not
// known (only that it is not lo).
func (p *packet) ifUnknown(k expr.MetaKey, r *Ruleset) bool {
	v := p.oif
	if k == expr.MetaKeyIIF || k == expr.MetaKeyIIFNAME {
		v = p.iif
	}
	switch v {
	case ifCF:
		return r.ifName == ""
	case ifFwd:
		return p.fwdIf == ""
	}
	return false
}

// ifMeta is the interface the packet arrives on (or, for a reply, leaves
// through): known with Ruleset.SetInterface, else only known not to be lo.
func (p *packet) ifMeta(k expr.MetaKey, r *Ruleset) ([]byte, []byte, string) {
	dir, key := "arrive on", "iif"
	if p.reply {
		dir, key = "leave through", "oif"
	}
	switch k {
	case expr.MetaKeyIIF, expr.MetaKeyOIF:
		if r.ifName != "" {
			return binary.NativeEndian.AppendUint32(nil, r.ifIndex), nil, ""
		}
		return make([]byte, 4), make([]byte, 4), key + ": the interface Cloudflare's packets " + dir + " is not known (only that it is not lo)"
	}
	if r.ifName != "" {
		b := make([]byte, unix.IFNAMSIZ)
		copy(b, r.ifName)
		return b, nil, ""
	}
	return make([]byte, unix.IFNAMSIZ), make([]byte, unix.IFNAMSIZ), key + "name: the interface Cloudflare's packets " + dir + " is not known (only that it is not lo)"
}

func (p *packet) ct(k expr.CtKey, dir uint32) ([]byte, []byte, string) {
	switch k {
	case expr.CtKeySTATE:
		switch p.track {
		case ctNotYet:
			return binary.NativeEndian.AppendUint32(nil, ctStateInvalid), nil, ""
		case ctUntracked:
			return binary.NativeEndian.AppendUint32(nil, ctStateUntrack), nil, ""
		}
		return binary.NativeEndian.AppendUint32(nil, p.ctState), nil, ""
	case expr.CtKeyDIRECTION:
		if p.reply {
			return []byte{ctDirReply}, nil, ""
		}
		return []byte{ctDirOriginal}, nil, ""
	case expr.CtKeyL3PROTOCOL:
		return []byte{p.nfproto}, nil, ""
	case expr.CtKeyPROTOCOL:
		return []byte{p.l4}, nil, ""
	case expr.CtKeyPROTODST:
		if dir == ctDirOriginal {
			return binary.BigEndian.AppendUint16(nil, p.origPort), nil, ""
		}
	case expr.CtKeySTATUS:
		v, k := p.ctStatus()
		return v, k, "ct status (other than dnat) is not known in advance"
	}
	return make([]byte, 16), make([]byte, 16), "ct " + ctName(k) + " is not known in advance"
}

// kindNote says which packet a reason is about, for the packets other than
// the SYN.
func (p *packet) kindNote() string {
	switch p.kind {
	case kindEstablished:
		return " (for the packets after the SYN)"
	case kindNSMulticast, kindNSUnicast:
		return " (for a neighbour solicitation from an on-link neighbour)"
	case kindNA:
		return " (for a neighbour advertisement from an on-link neighbour)"
	case kindReply:
		return " (for this host's answers to Cloudflare)"
	case kindNAOut:
		return " (for the neighbour advertisement this host answers with)"
	case kindRejectAnswer:
		return " (for the answer of a reject)"
	}
	return ""
}

// newReply fills p as this host's answer to the Cloudflare address p.src
// from p.dst:p.port: the SYN-ACK and the ACKs and data after it, which leave
// through output and postrouting in the reply direction of the connection
// (ct state established). The Cloudflare address is the destination on
// the wire; its port is not known.
func newReply(p *packet) *packet {
	p.reply, p.noIndex, p.ctState = true, true, ctStateEstab
	p.iif, p.oif = ifNone, ifCF
	if p.v6 {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV6, unix.ETH_P_IPV6
		p.nh, p.nhK = p.buf[0:40:40], p.buf[40:80:80]
		p.nh[0], p.nhK[0] = 0x60, 0xf0
		p.nh[6], p.nhK[6] = unix.IPPROTO_TCP, 0xff
		s, d := p.dst.As16(), p.src.As16()
		copy(p.nh[8:], s[:])
		copy(p.nh[24:], d[:])
		for i := 8; i < 40; i++ {
			p.nhK[i] = 0xff
		}
	} else {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV4, unix.ETH_P_IP
		p.nh, p.nhK = p.buf[0:20:20], p.buf[20:40:40]
		p.nh[0], p.nhK[0] = 0x45, 0xff
		p.nh[9], p.nhK[9] = unix.IPPROTO_TCP, 0xff
		s, d := p.dst.As4(), p.src.As4()
		copy(p.nh[12:], s[:])
		copy(p.nh[16:], d[:])
		for i := 12; i < 20; i++ {
			p.nhK[i] = 0xff
		}
		p.nhK[6], p.nhK[7] = 0x3f, 0xff
	}
	p.th, p.thK = p.buf[80:100:100], p.buf[104:124:124]
	binary.BigEndian.PutUint16(p.th[0:], p.port) // the source port
	p.thK[0], p.thK[1] = 0xff, 0xff
	p.thK[18], p.thK[19] = 0xff, 0xff
	// ACK set; SYN set in the SYN-ACK only; FIN, RST and URG clear.
	p.th[13], p.thK[13] = tcpFlagACK, tcpFlagFIN|tcpFlagRST|tcpFlagACK|tcpFlagURG
	return p
}

// cfAddrOff is where the Cloudflare address sits in the network header:
// the source of incoming packets, the destination of replies.
func (p *packet) cfAddrOff() int {
	switch {
	case p.v6 && p.reply:
		return 24
	case p.v6:
		return 8
	case p.reply:
		return 16
	}
	return 12
}

// newNAOut fills p as the neighbour advertisement this host sends from its
// address p.dst in answer to a router's solicitation (output and
// postrouting, untracked, to an address that is not known).
func newNAOut(p *packet) *packet {
	p.reply, p.noIndex = true, true
	p.iif, p.oif = ifNone, ifCF
	p.l4, p.afterCT, p.ctState = unix.IPPROTO_ICMPV6, ctUntracked, 0
	p.nfproto, p.ethertype = unix.NFPROTO_IPV6, unix.ETH_P_IPV6
	p.nh, p.nhK = p.buf[0:40:40], p.buf[40:80:80]
	p.nh[0], p.nhK[0] = 0x60, 0xf0
	p.nh[6], p.nhK[6] = unix.IPPROTO_ICMPV6, 0xff
	p.nh[7], p.nhK[7] = ndHopLimit, 0xff
	s := p.dst.As16()
	copy(p.nh[8:], s[:])
	for i := 8; i < 24; i++ {
		p.nhK[i] = 0xff
	}
	p.th, p.thK = p.buf[80:104:104], p.buf[104:128:128]
	p.th[0], p.thK[0], p.thK[1] = icmpv6NA, 0xff, 0xff
	copy(p.th[8:], s[:])
	for i := 8; i < 24; i++ {
		p.thK[i] = 0xff
	}
	return p
}

// icmpAnswer turns a reject's answer into an ICMP error (destination
// unreachable; the code depends on the rule) about the packet.
func (p *packet) icmpAnswer() {
	p.l4 = unix.IPPROTO_ICMP
	typ := byte(3) // ICMP_DEST_UNREACH
	if p.v6 {
		p.l4, typ = unix.IPPROTO_ICMPV6, 1 // ICMPV6_DEST_UNREACH
		p.nh[6] = p.l4
	} else {
		p.nh[9] = p.l4
	}
	for i := range p.th {
		p.th[i], p.thK[i] = 0, 0
	}
	p.th[0], p.thK[0] = typ, 0xff
}
