package firewall

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The rules are read with our own netlink dump rather than
// nftables.Conn.GetRules: v0.3.0 fails a whole dump on `ct original …`
// (it reads NFTA_CT_DIRECTION, a u8, as a u32) and silently drops
// expressions it does not know, which would hide a hand-added rule's
// content. Here every expression is kept: unknown ones as opaqueExpr.

// rule is one rule read back from the kernel.
type rule struct {
	handle uint64
	exprs  []any // expr.Any, or opaqueExpr
}

// opaqueExpr is an expression this package does not decode.
type opaqueExpr struct {
	name string
	data []byte
}

func nftMsgType(msg int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg)
}

func nfgenHeader(family byte) []byte { return []byte{family, unix.NFNETLINK_V0, 0, 0} }

// dumpRules lists the rules of one chain.
func dumpRules(nl *netlink.Conn, family byte, table, chain string) ([]rule, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := nl.Execute(netlink.Message{
		Header: netlink.Header{Type: nftMsgType(unix.NFT_MSG_GETRULE), Flags: netlink.Request | netlink.Dump},
		Data:   append(nfgenHeader(family), attrs...),
	})
	if err != nil {
		return nil, err
	}
	var rules []rule
	for _, m := range msgs {
		if m.Header.Type != nftMsgType(unix.NFT_MSG_NEWRULE) || len(m.Data) < 4 {
			continue
		}
		r, err := decodeRule(family, m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("decoding a rule of chain %s: %w", chain, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func decodeRule(family byte, b []byte) (rule, error) {
	var r rule
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return r, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_HANDLE:
			r.handle = ad.Uint64()
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					e, err := decodeExpr(family, list.Bytes())
					if err != nil {
						return err
					}
					r.exprs = append(r.exprs, e)
				}
				return nil
			})
		}
	}
	return r, ad.Err()
}

// decodeExpr decodes one NFTA_LIST_ELEM of a rule's expressions.
func decodeExpr(family byte, b []byte) (any, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	var (
		name string
		data []byte
	)
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_EXPR_NAME:
			name = ad.String()
		case unix.NFTA_EXPR_DATA:
			data = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return decodeExprData(family, name, data)
}

func decodeExprData(family byte, name string, data []byte) (any, error) {
	var e expr.Any
	switch name {
	case "ct":
		return decodeCt(data)
	case "meta":
		e = &expr.Meta{}
	case "cmp":
		e = &expr.Cmp{}
	case "payload":
		e = &expr.Payload{}
	case "lookup":
		e = &expr.Lookup{}
	case "bitwise":
		e = &expr.Bitwise{}
	case "immediate":
		e = &expr.Immediate{}
	default:
		return opaqueExpr{name: name, data: data}, nil
	}
	if err := expr.Unmarshal(family, data, e); err != nil {
		return nil, fmt.Errorf("expression %s: %w", name, err)
	}
	if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(family, data, v); err != nil {
			return nil, fmt.Errorf("expression verdict: %w", err)
		}
		e = v
	}
	if l, ok := e.(*expr.Lookup); ok {
		l.SetID = 0 // we send it, the kernel does not dump it
	}
	return e, nil
}

// decodeCt decodes a ct expression, reading NFTA_CT_DIRECTION as the u8 it is.
func decodeCt(data []byte) (any, error) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	ct := &expr.Ct{}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_CT_KEY:
			ct.Key = expr.CtKey(ad.Uint32())
		case unix.NFTA_CT_DREG:
			ct.Register = ad.Uint32()
		case unix.NFTA_CT_SREG:
			ct.Register = ad.Uint32()
			ct.SourceRegister = true
		case unix.NFTA_CT_DIRECTION:
			b := ad.Bytes()
			if len(b) > 0 {
				ct.Direction = uint32(b[0])
			}
		default:
			return opaqueExpr{name: "ct", data: data}, nil
		}
	}
	return ct, ad.Err()
}

// canonical returns e as it reads back from the kernel: marshalled and
// decoded again, so that it compares equal to a dumped expression.
func canonical(family byte, e expr.Any) (any, error) {
	if ct, ok := e.(*expr.Ct); ok {
		c := *ct
		return &c, nil
	}
	data, err := expr.MarshalExprData(family, e)
	if err != nil {
		return nil, err
	}
	name := map[string]string{
		"*expr.Meta": "meta", "*expr.Cmp": "cmp", "*expr.Payload": "payload", "*expr.Lookup": "lookup",
		"*expr.Bitwise": "bitwise", "*expr.Verdict": "immediate", "*expr.Immediate": "immediate",
	}[reflect.TypeOf(e).String()]
	if name == "" {
		return nil, fmt.Errorf("no canonical form for %T", e)
	}
	return decodeExprData(family, name, data)
}

// sameRule reports whether a dumped rule has exactly the expressions want.
func sameRule(family byte, got rule, want []expr.Any) bool {
	if len(got.exprs) != len(want) {
		return false
	}
	for i, w := range want {
		c, err := canonical(family, w)
		if err != nil || !reflect.DeepEqual(got.exprs[i], c) {
			return false
		}
	}
	return true
}
