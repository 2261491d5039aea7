package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// maxSetShown is how many elements of an anonymous set a rule's text shows.
const maxSetShown = 8

// field describes what a register holds, for rendering.
type field struct {
	name    string
	kind    kind
	partial int    // bytes of an address loaded (a prefix), 0 for all
	mask    []byte // a bitwise mask applied, if any
	data    []byte // an immediate's value
}

type kind int

const (
	kHex kind = iota
	kAddr
	kPort
	kProto
	kNFProto
	kIfname
	kIfindex
	kCtState
	kDec
	kHost32   // a 4-byte integer in host byte order (marks)
	kCtDir    // ct direction: original / reply
	kCtStatus // ct status bits (dnat, snat, ...)
)

// renderRule turns a rule's expressions into nft-like text, good enough
// for a person to find the rule (the handle is authoritative). Implicit
// protocol checks that `nft` adds (meta nfproto before `ip saddr`, meta
// l4proto before `tcp dport`) are left out, as `nft list` leaves them out.
func renderRule(t *table, exprs []expr.Any) string {
	var (
		out []string
		reg = map[uint32]field{}
		l4  = ""
		// l4proto is the protocol of `meta l4proto X` (iptables' -p), for
		// compat matches on ports.
		l4proto = ""
		v6      = t.family == nftables.TableFamilyIPv6
		skip    = func(i int, base expr.PayloadBase) bool {
			if i+1 >= len(exprs) {
				return false
			}
			pl, ok := exprs[i+1].(*expr.Payload)
			return ok && pl.Base == base
		}
		// iptables-nft puts `meta l4proto` (-p) first and the transport
		// field (--dport) after the addresses (-s); nft still lists it as
		// `tcp dport`.
		later = func(i int, base expr.PayloadBase) bool {
			for _, e := range exprs[i+1:] {
				if pl, ok := e.(*expr.Payload); ok && pl.Base == base && pl.OperationType == expr.PayloadLoad {
					return true
				}
				// an xt tcp / udp match names its protocol itself
				if x, ok := e.(*xtExpr); ok && !x.target && (x.name == "tcp" || x.name == "udp") && base == expr.PayloadBaseTransportHeader {
					return true
				}
			}
			return false
		}
	)
	for i, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				out = append(out, "meta "+metaName(e.Key)+" set …")
				continue
			}
			reg[e.Register] = metaField(e.Key)
		case *expr.Ct:
			if e.SourceRegister {
				out = append(out, "ct "+ctName(e.Key)+" set …")
				continue
			}
			f := field{name: "ct " + ctName(e.Key), kind: kHex}
			if e.Key == expr.CtKeySTATE {
				f.kind = kCtState
			}
			if e.Key == expr.CtKeyPROTODST || e.Key == expr.CtKeyPROTOSRC {
				f.kind = kPort
			}
			if e.Key == expr.CtKeyMARK {
				f.kind = kHost32
			}
			switch e.Key {
			case expr.CtKeyDIRECTION:
				f.kind = kCtDir
			case expr.CtKeySTATUS:
				f.kind = kCtStatus
			case expr.CtKeySRC, expr.CtKeyDST, expr.CtKeyPROTOSRC, expr.CtKeyPROTODST:
				// tuple keys name their direction: ct original proto-dst
				f.name = "ct " + map[uint32]string{0: "original", 1: "reply"}[e.Direction] + " " + ctName(e.Key)
			}
			reg[e.Register] = f
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				out = append(out, payloadName(e.Base, e.Offset, e.Len, t.family == nftables.TableFamilyIPv6)+" set …")
				continue
			}
			f := payloadField(t.family, e, l4)
			if strings.HasPrefix(f.name, "ip6 ") {
				v6 = true
			}
			reg[e.DestRegister] = f
		case *expr.Bitwise:
			f := reg[e.SourceRegister]
			f.mask = e.Mask
			reg[e.DestRegister] = f
		case *expr.Immediate:
			reg[e.Register] = field{name: "0x" + fmt.Sprintf("%x", e.Data), data: e.Data}
		case *expr.Cmp:
			f := reg[e.Register]
			if f.name == "meta nfproto" && e.Op == expr.CmpOpEq && len(e.Data) == 1 && e.Data[0] == unix.NFPROTO_IPV6 {
				v6 = true
			}
			if f.name == "meta nfproto" && e.Op == expr.CmpOpEq && skip(i, expr.PayloadBaseNetworkHeader) {
				continue
			}
			if f.name == "meta l4proto" && e.Op == expr.CmpOpEq && len(e.Data) == 1 {
				l4proto = protoName(e.Data[0])
			}
			if f.name == "meta l4proto" && e.Op == expr.CmpOpEq && len(e.Data) == 1 && later(i, expr.PayloadBaseTransportHeader) {
				l4 = protoName(e.Data[0])
				continue
			}
			out = append(out, renderCmp(f, e.Op, e.Data))
		case *expr.Range:
			f := reg[e.Register]
			op := ""
			if e.Op == expr.CmpOpNeq {
				op = "!= "
			}
			out = append(out, fieldName(f)+" "+op+formatValue(f, e.FromData)+"-"+formatValue(f, e.ToData))
		case *expr.Lookup:
			f := reg[e.SourceRegister]
			ref := "@" + e.SetName
			if s := t.sets[e.SetName]; s != nil && s.concatenation {
				f.name += " . …"
			} else if s != nil && s.anonymous {
				ref = renderSet(f, s)
			}
			switch {
			case e.IsDestRegSet && e.DestRegister == unix.NFT_REG_VERDICT:
				out = append(out, fieldName(f)+" vmap "+ref)
			case e.IsDestRegSet:
				out = append(out, fieldName(f)+" map "+ref)
			case e.Invert:
				out = append(out, fieldName(f)+" != "+ref)
			default:
				out = append(out, fieldName(f)+" "+ref)
			}
		case *expr.Verdict:
			out = append(out, verdictName(e.Kind)+strings.TrimSuffix(" "+e.Chain, " "))
		case *expr.Reject:
			out = append(out, rejectText(e, v6))
		case *expr.Counter:
			out = append(out, "counter")
		case *expr.Log:
			out = append(out, "log")
		case *expr.Limit:
			out = append(out, "limit rate …")
		case *expr.Quota:
			out = append(out, "quota …")
		case *expr.Connlimit:
			out = append(out, "ct count …")
		case *expr.NAT:
			if e.Type == expr.NATTypeDestNAT {
				out = append(out, "dnat "+natRegText(e, reg))
			} else {
				out = append(out, "snat to …")
			}
		case *expr.Redir:
			out = append(out, "redirect")
		case *expr.Masq:
			out = append(out, "masquerade")
		case *xtExpr:
			out = append(out, e.text(l4proto))
		case *expr.Match:
			out = append(out, fmt.Sprintf("xt match %q", e.Name))
		case *expr.Target:
			out = append(out, fmt.Sprintf("xt target %q", e.Name))
		case *expr.Fib:
			reg[e.Register] = field{name: "fib …"}
		case *expr.Numgen:
			reg[e.Register] = field{name: "numgen …"}
		case *expr.Hash:
			reg[e.DestRegister] = field{name: "hash …"}
		case *expr.Exthdr:
			reg[e.DestRegister] = field{name: exthdrName(e)}
		case *expr.Dynset:
			out = append(out, dynsetOp(e.Operation)+" @"+e.SetName+" { … }")
		case *expr.Objref:
			out = append(out, fmt.Sprintf("objref %q", e.Name))
		case *expr.Queue:
			out = append(out, "queue")
		case *expr.Notrack:
			out = append(out, "notrack")
		case *unknownExpr:
			clear(reg) // it may have loaded any register
			out = append(out, e.name+" …")
		default:
			out = append(out, exprName(e)+" …")
		}
	}
	return strings.Join(out, " ")
}

func fieldName(f field) string {
	if f.name == "" {
		return "reg"
	}
	return f.name
}

func renderCmp(f field, op expr.CmpOp, data []byte) string {
	ops := map[expr.CmpOp]string{expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ",
		expr.CmpOpLte: "<= ", expr.CmpOpGt: "> ", expr.CmpOpGte: ">= "}
	o := ops[op]
	if f.kind == kCtState && f.mask != nil && op == expr.CmpOpNeq && allZero(data) {
		// `ct state established,related`: any of the mask's bits set
		return f.name + " " + ctStates(f.mask)
	}
	if f.kind == kCtStatus && len(f.mask) == 4 && op == expr.CmpOpNeq && allZero(data) {
		// `ct status dnat`: any of the mask's bits set
		return f.name + " " + ctStatusNames(binary.NativeEndian.Uint32(f.mask))
	}
	if _, prefix := prefixLen(f.mask); f.mask != nil && f.kind == kAddr && !prefix {
		if o == "" {
			o = "== "
		}
		plain := field{name: f.name, kind: f.kind}
		return fmt.Sprintf("%s & %s %s%s", fieldName(f), formatValue(plain, f.mask), o, formatValue(plain, data))
	}
	if f.mask != nil && f.kind != kAddr {
		if o == "" {
			o = "== "
		}
		return fmt.Sprintf("%s & 0x%x %s%s", fieldName(f), f.mask, o, formatValue(f, data))
	}
	return fieldName(f) + " " + o + formatValue(f, data)
}

func renderSet(f field, s *set) string {
	var el []string
	for i, r := range s.ranges {
		if i == maxSetShown {
			el = append(el, fmt.Sprintf("… %d more", len(s.ranges)-maxSetShown))
			break
		}
		el = append(el, formatRange(field{name: f.name, kind: f.kind}, r.from, r.to))
	}
	return "{ " + strings.Join(el, ", ") + " }"
}

// formatRange shows an inclusive range as a value, a prefix or a-b.
func formatRange(f field, from, to []byte) string {
	if string(from) == string(to) {
		return formatValue(f, from)
	}
	if f.kind == kAddr {
		a, ok1 := netip.AddrFromSlice(from)
		b, ok2 := netip.AddrFromSlice(to)
		if ok1 && ok2 {
			for bitsN := 0; bitsN <= a.BitLen(); bitsN++ {
				p := netip.PrefixFrom(a, bitsN).Masked()
				if p.Addr() == a && lastAddr(p) == b {
					return p.String()
				}
			}
			return a.String() + "-" + b.String()
		}
	}
	return formatValue(f, from) + "-" + formatValue(f, to)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func formatValue(f field, d []byte) string {
	switch f.kind {
	case kAddr:
		n := len(d)
		full := 4
		if f.partial > 4 || n > 4 {
			full = 16
		}
		if f.partial > 0 {
			n = f.partial
		}
		if n > full || len(d) < n {
			break
		}
		b := make([]byte, full)
		copy(b, d[:n])
		a, _ := netip.AddrFromSlice(b)
		bitsN := -1
		if n < full {
			bitsN = n * 8
		}
		if f.mask != nil {
			ones, ok := prefixLen(f.mask)
			if !ok {
				return fmt.Sprintf("%v & 0x%x", a, f.mask)
			}
			bitsN = ones
		}
		if bitsN >= 0 {
			return netip.PrefixFrom(a, bitsN).String()
		}
		return a.String()
	case kPort:
		if len(d) == 2 {
			return strconv.Itoa(int(binary.BigEndian.Uint16(d)))
		}
	case kProto:
		if len(d) == 1 {
			return protoName(d[0])
		}
	case kNFProto:
		if len(d) == 1 {
			switch d[0] {
			case unix.NFPROTO_IPV4:
				return "ipv4"
			case unix.NFPROTO_IPV6:
				return "ipv6"
			}
		}
	case kIfname:
		s := strings.TrimRight(string(d), "\x00")
		if len(s) == len(d) && len(d) < unix.IFNAMSIZ {
			s += "*" // a prefix comparison: nft's wildcard
		}
		return strconv.Quote(s)
	case kIfindex:
		if len(d) == 4 {
			if i := binary.NativeEndian.Uint32(d); i == loopbackIfindex {
				return `"lo"`
			} else {
				return strconv.Itoa(int(i))
			}
		}
	case kCtState:
		if len(d) == 4 {
			return ctStates(d)
		}
	case kHost32, kCtStatus:
		if len(d) == 4 {
			return fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(d))
		}
	case kCtDir:
		if len(d) == 1 && d[0] <= 1 {
			return []string{"original", "reply"}[d[0]]
		}
	case kDec:
		if len(d) <= 8 {
			var v uint64
			for _, b := range d {
				v = v<<8 | uint64(b)
			}
			return strconv.FormatUint(v, 10)
		}
	}
	return fmt.Sprintf("0x%x", d)
}

func prefixLen(mask []byte) (int, bool) {
	ones, seenZero := 0, false
	for _, b := range mask {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				if seenZero {
					return 0, false
				}
				ones++
			} else {
				seenZero = true
			}
		}
	}
	return ones, true
}

func ctStates(d []byte) string {
	if len(d) != 4 {
		return fmt.Sprintf("0x%x", d)
	}
	v := binary.NativeEndian.Uint32(d)
	return bitNames(v, []bitName{{1, "invalid"}, {2, "established"}, {4, "related"}, {8, "new"}, {64, "untracked"}})
}

// bitName names one bit of a flag word.
type bitName struct {
	bit  uint32
	name string
}

// bitNames writes the set bits of v by name, comma-separated as nft prints
// ct state; bits without a name are written in hex.
func bitNames(v uint32, names []bitName) string {
	var out []string
	for _, n := range names {
		if v&n.bit != 0 {
			out = append(out, n.name)
			v &^= n.bit
		}
	}
	if v != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("0x%x", v))
	}
	return strings.Join(out, ",")
}

func allZero(d []byte) bool {
	for _, b := range d {
		if b != 0 {
			return false
		}
	}
	return true
}

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
