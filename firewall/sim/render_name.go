package sim

// The names nft gives to fields, protocols, meta and ct keys, verdicts and
// rejects, for rendering a rule.

import (
	"fmt"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func metaField(k expr.MetaKey) field {
	f := field{name: "meta " + metaName(k), kind: kHex}
	switch k {
	case expr.MetaKeyNFPROTO:
		f.kind = kNFProto
	case expr.MetaKeyL4PROTO:
		f.kind = kProto
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
		f.name, f.kind = metaName(k), kIfname
	case expr.MetaKeyIIF, expr.MetaKeyOIF:
		f.name, f.kind = metaName(k), kIfindex
	case expr.MetaKeyMARK:
		f.kind = kHost32
	}
	return f
}

func payloadField(fam nftables.TableFamily, e *expr.Payload, l4 string) field {
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		v4 := fam != nftables.TableFamilyIPv6
		v6 := fam != nftables.TableFamilyIPv4
		switch {
		case v4 && e.Offset == 12 && e.Len <= 4 && fam == nftables.TableFamilyIPv4:
			return field{name: "ip saddr", kind: kAddr, partial: partial(e.Len, 4)}
		case v4 && e.Offset == 16 && e.Len <= 4 && fam == nftables.TableFamilyIPv4:
			return field{name: "ip daddr", kind: kAddr, partial: partial(e.Len, 4)}
		case v6 && e.Offset == 8 && e.Len <= 16 && e.Len > 4:
			return field{name: "ip6 saddr", kind: kAddr, partial: partial(e.Len, 16)}
		case v6 && e.Offset == 24 && e.Len <= 16 && e.Len > 4:
			return field{name: "ip6 daddr", kind: kAddr, partial: partial(e.Len, 16)}
		case v4 && e.Offset == 12 && e.Len <= 4:
			return field{name: "ip saddr", kind: kAddr, partial: partial(e.Len, 4)}
		case v4 && e.Offset == 16 && e.Len <= 4:
			return field{name: "ip daddr", kind: kAddr, partial: partial(e.Len, 4)}
		case v4 && e.Offset == 9 && e.Len == 1 && fam != nftables.TableFamilyINet:
			return field{name: "ip protocol", kind: kProto}
		case v6 && e.Offset == 6 && e.Len == 1 && fam == nftables.TableFamilyIPv6:
			return field{name: "ip6 nexthdr", kind: kProto}
		}
	case expr.PayloadBaseTransportHeader:
		p := l4
		if p == "" {
			p = "th"
		}
		switch {
		case e.Offset == 0 && e.Len == 2:
			return field{name: p + " sport", kind: kPort}
		case e.Offset == 2 && e.Len == 2:
			return field{name: p + " dport", kind: kPort}
		case e.Offset == 13 && e.Len == 1 && p == "tcp":
			return field{name: "tcp flags", kind: kHex}
		}
	}
	return field{name: payloadName(e.Base, e.Offset, e.Len, fam == nftables.TableFamilyIPv6), kind: kHex}
}

// partial is the number of bytes of an address loaded, 0 for all of it.
func partial(n, full uint32) int {
	if n == full {
		return 0
	}
	return int(n)
}

// payloadName is nft's raw payload syntax, e.g. "@nh,96,32".
func payloadName(base expr.PayloadBase, off, n uint32, _ bool) string {
	b := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh",
		expr.PayloadBaseTransportHeader: "th"}[base]
	if b == "" {
		b = "ih"
	}
	return fmt.Sprintf("@%s,%d,%d", b, off*8, n*8)
}

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "ipv6-icmp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

func metaName(k expr.MetaKey) string {
	names := map[expr.MetaKey]string{
		expr.MetaKeyLEN: "length", expr.MetaKeyPROTOCOL: "protocol", expr.MetaKeyPRIORITY: "priority",
		expr.MetaKeyMARK: "mark", expr.MetaKeyIIF: "iif", expr.MetaKeyOIF: "oif", expr.MetaKeyIIFNAME: "iifname",
		expr.MetaKeyOIFNAME: "oifname", expr.MetaKeyIIFTYPE: "iiftype", expr.MetaKeyOIFTYPE: "oiftype",
		expr.MetaKeySKUID: "skuid", expr.MetaKeySKGID: "skgid", expr.MetaKeyNFTRACE: "nftrace",
		expr.MetaKeyRTCLASSID: "rtclassid", expr.MetaKeySECMARK: "secmark", expr.MetaKeyNFPROTO: "nfproto",
		expr.MetaKeyL4PROTO: "l4proto", expr.MetaKeyPKTTYPE: "pkttype", expr.MetaKeyCPU: "cpu",
		expr.MetaKeyIIFGROUP: "iifgroup", expr.MetaKeyOIFGROUP: "oifgroup", expr.MetaKeyCGROUP: "cgroup",
		expr.MetaKeyPRANDOM: "random",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf("key %d", k)
}

func ctName(k expr.CtKey) string {
	names := map[expr.CtKey]string{
		expr.CtKeySTATE: "state", expr.CtKeyDIRECTION: "direction", expr.CtKeySTATUS: "status",
		expr.CtKeyMARK: "mark", expr.CtKeyEXPIRATION: "expiration", expr.CtKeyHELPER: "helper",
		expr.CtKeyL3PROTOCOL: "l3proto", expr.CtKeySRC: "saddr", expr.CtKeyDST: "daddr",
		expr.CtKeyPROTOCOL: "protocol", expr.CtKeyPROTOSRC: "proto-src", expr.CtKeyPROTODST: "proto-dst",
		expr.CtKeyLABELS: "label", expr.CtKeyZONE: "zone",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf("key %d", k)
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictGoto:
		return "goto"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictBreak:
		return "break"
	case expr.VerdictQueue:
		return "queue"
	case expr.VerdictStolen:
		return "stolen"
	}
	return fmt.Sprintf("verdict(%d)", k)
}

// rejectText shows nft's default reject (port unreachable) as "reject".
func rejectText(e *expr.Reject, v6 bool) string {
	switch {
	case e.Type == unix.NFT_REJECT_TCP_RST:
		return "reject with tcp reset"
	case e.Type == unix.NFT_REJECT_ICMPX_UNREACH && e.Code == unix.NFT_REJECT_ICMPX_PORT_UNREACH,
		e.Type == unix.NFT_REJECT_ICMP_UNREACH && !v6 && e.Code == 3, // ICMP_PORT_UNREACH
		e.Type == unix.NFT_REJECT_ICMP_UNREACH && v6 && e.Code == 4:  // ICMPV6_PORT_UNREACH
		return "reject"
	case e.Type == unix.NFT_REJECT_ICMPX_UNREACH:
		return fmt.Sprintf("reject with icmpx code %d", e.Code)
	case v6:
		return fmt.Sprintf("reject with icmpv6 code %d", e.Code)
	}
	return fmt.Sprintf("reject with icmp code %d", e.Code)
}

func exthdrName(e *expr.Exthdr) string {
	return fmt.Sprintf("exthdr type %d offset %d", e.Type, e.Offset)
}
