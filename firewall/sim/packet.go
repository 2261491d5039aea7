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
	packetHost      = 0 // PACKET_HOST
	loopbackIfindex = 1
	tcpFlagSYN      = 0x02
	nfInetIngress   = 5 // NF_INET_INGRESS: inet ingress chains (Linux 5.10)
)

// packet is the simulated TCP SYN.
type packet struct {
	v6        bool
	src, dst  netip.Addr
	port      uint16
	nh, nhK   []byte // network header and its known bits
	th, thK   []byte // TCP header (20 bytes) and its known bits
	nfproto   byte
	ethertype uint16
	track     ctTrack // whether the chain being run sees the conntrack entry
}

type ctTrack int

const (
	ctTracked ctTrack = iota // after conntrack: a new connection, original direction
	ctNotYet                 // prerouting before conntrack: no entry, state "invalid"
	ctUnsure                 // prerouting at conntrack's own priority
)

func newPacket(src, dst netip.Addr, port uint16) *packet {
	p := &packet{v6: src.Is6(), src: src, dst: dst, port: port}
	if p.v6 {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV6, unix.ETH_P_IPV6
		p.nh, p.nhK = make([]byte, 40), make([]byte, 40)
		p.nh[0], p.nhK[0] = 0x60, 0xf0 // version 6; traffic class unknown
		p.nh[6], p.nhK[6] = unix.IPPROTO_TCP, 0xff
		s, d := src.As16(), dst.As16()
		copy(p.nh[8:], s[:])
		copy(p.nh[24:], d[:])
		for i := 8; i < 40; i++ {
			p.nhK[i] = 0xff
		}
	} else {
		p.nfproto, p.ethertype = unix.NFPROTO_IPV4, unix.ETH_P_IP
		p.nh, p.nhK = make([]byte, 20), make([]byte, 20)
		p.nh[0], p.nhK[0] = 0x45, 0xff // version 4, no options
		p.nh[9], p.nhK[9] = unix.IPPROTO_TCP, 0xff
		s, d := src.As4(), dst.As4()
		copy(p.nh[12:], s[:])
		copy(p.nh[16:], d[:])
		for i := 12; i < 20; i++ {
			p.nhK[i] = 0xff
		}
		// fragment offset 0 and MF clear: a SYN is not a fragment
		p.nhK[6], p.nhK[7] = 0x3f, 0xff
	}
	p.th, p.thK = make([]byte, 20), make([]byte, 20)
	binary.BigEndian.PutUint16(p.th[2:], port)
	p.thK[2], p.thK[3] = 0xff, 0xff
	for i := 8; i < 12; i++ { // acknowledgement number: zero in a SYN
		p.thK[i] = 0xff
	}
	p.th[13], p.thK[13] = tcpFlagSYN, 0x3f // ECE/CWR may be set (ECN)
	p.thK[18], p.thK[19] = 0xff, 0xff      // urgent pointer
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
	return val, known, payloadField(fam, e, "tcp").name + " is not known in advance"
}

func (p *packet) meta(k expr.MetaKey, r *Ruleset) ([]byte, []byte, string) {
	switch k {
	case expr.MetaKeyNFPROTO:
		return []byte{p.nfproto}, nil, ""
	case expr.MetaKeyL4PROTO:
		return []byte{unix.IPPROTO_TCP}, nil, ""
	case expr.MetaKeyPROTOCOL:
		return binary.BigEndian.AppendUint16(nil, p.ethertype), nil, ""
	case expr.MetaKeyPKTTYPE:
		return []byte{packetHost}, nil, ""
	case expr.MetaKeyIIF:
		if r.ifName != "" {
			return binary.NativeEndian.AppendUint32(nil, r.ifIndex), nil, ""
		}
		return make([]byte, 4), make([]byte, 4), "iif: the interface Cloudflare's packets arrive on is not known (only that it is not lo)"
	case expr.MetaKeyIIFNAME:
		if r.ifName != "" {
			b := make([]byte, unix.IFNAMSIZ)
			copy(b, r.ifName)
			return b, nil, ""
		}
		return make([]byte, unix.IFNAMSIZ), make([]byte, unix.IFNAMSIZ), "iifname: the interface Cloudflare's packets arrive on is not known (only that it is not lo)"
	}
	return make([]byte, 16), make([]byte, 16), "meta " + metaName(k) + " is not known in advance"
}

func (p *packet) ct(k expr.CtKey, dir uint32) ([]byte, []byte, string) {
	switch k {
	case expr.CtKeySTATE:
		if p.track == ctNotYet {
			return binary.NativeEndian.AppendUint32(nil, ctStateInvalid), nil, ""
		}
		return binary.NativeEndian.AppendUint32(nil, ctStateNew), nil, ""
	case expr.CtKeyDIRECTION:
		return []byte{ctDirOriginal}, nil, ""
	case expr.CtKeyL3PROTOCOL:
		return []byte{p.nfproto}, nil, ""
	case expr.CtKeyPROTOCOL:
		return []byte{unix.IPPROTO_TCP}, nil, ""
	case expr.CtKeyPROTODST:
		if dir == ctDirOriginal {
			return binary.BigEndian.AppendUint16(nil, p.port), nil, ""
		}
	}
	return make([]byte, 16), make([]byte, 16), "ct " + ctName(k) + " is not known in advance"
}
