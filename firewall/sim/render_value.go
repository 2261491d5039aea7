package sim

// How a rule's compared values, sets and ranges are written: as nft writes
// them, addresses and prefixes, ports, flag words by name.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

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
