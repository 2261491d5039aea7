package sim

import (
	"fmt"
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
