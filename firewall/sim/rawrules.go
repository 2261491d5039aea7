package sim

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// rawRules decodes the rules of one chain from the raw netlink dump, for a
// chain github.com/google/nftables v0.3.0 refuses as a whole: it reads
// NFTA_CT_DIRECTION as a 32-bit value where the kernel sends 8 bits
// (`ct original proto-dst`, `ct direction original` as cfguard's forward
// chain has them), and fails the chain. Each expression is decoded by the
// library (expr.Unmarshal), except ct, which is decoded here.
func rawRules(fam nftables.TableFamily, table, chain string, names map[ruleKey][]kexpr, order map[ruleKey][]uint64) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, h := range order[ruleKey{fam, table, chain, 0}] {
		r := &nftables.Rule{Handle: h}
		for _, ke := range names[ruleKey{fam, table, chain, h}] {
			e, err := rawExpr(byte(fam), ke)
			if err != nil {
				return nil, fmt.Errorf("rule handle %d: %s: %w", h, ke.name, err)
			}
			if e != nil {
				r.Exprs = append(r.Exprs, e)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// rawExpr decodes one expression; nil for a name the library does not
// decode either (mergeExprs puts an unknownExpr there).
func rawExpr(fam byte, ke kexpr) (expr.Any, error) {
	var e expr.Any
	switch ke.name {
	case "ct":
		return rawCt(ke.data)
	case "notrack":
		return &expr.Notrack{}, nil
	case "range":
		e = &expr.Range{}
	case "meta":
		e = &expr.Meta{}
	case "cmp":
		e = &expr.Cmp{}
	case "counter":
		e = &expr.Counter{}
	case "objref":
		e = &expr.Objref{}
	case "payload":
		e = &expr.Payload{}
	case "lookup":
		e = &expr.Lookup{}
	case "immediate":
		e = &expr.Immediate{}
	case "bitwise":
		e = &expr.Bitwise{}
	case "redir":
		e = &expr.Redir{}
	case "nat":
		e = &expr.NAT{}
	case "limit":
		e = &expr.Limit{}
	case "quota":
		e = &expr.Quota{}
	case "dynset":
		e = &expr.Dynset{}
	case "log":
		e = &expr.Log{}
	case "exthdr":
		e = &expr.Exthdr{}
	case "match":
		e = &expr.Match{}
	case "target":
		e = &expr.Target{}
	case "connlimit":
		e = &expr.Connlimit{}
	case "queue":
		e = &expr.Queue{}
	case "reject":
		e = &expr.Reject{}
	case "masq":
		e = &expr.Masq{}
	case "hash":
		e = &expr.Hash{}
	case "fib":
		e = &expr.Fib{}
	case "numgen":
		e = &expr.Numgen{}
	default:
		if decodedByLibrary[ke.name] {
			return nil, fmt.Errorf("expression %q cannot be decoded from the raw dump", ke.name)
		}
		return nil, nil
	}
	if err := expr.Unmarshal(fam, ke.data, e); err != nil {
		return nil, err
	}
	if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(fam, ke.data, v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return e, nil
}

// rawCt decodes a ct expression (NFTA_CT_DREG, KEY, DIRECTION, SREG).
func rawCt(data []byte) (expr.Any, error) {
	e := &expr.Ct{}
	for _, a := range attrs(data) {
		v := a[1]
		switch attrType(a) {
		case unix.NFTA_CT_DREG:
			if len(v) != 4 {
				return nil, fmt.Errorf("ct register of %d bytes", len(v))
			}
			e.Register = binary.BigEndian.Uint32(v)
		case unix.NFTA_CT_KEY:
			if len(v) != 4 {
				return nil, fmt.Errorf("ct key of %d bytes", len(v))
			}
			e.Key = expr.CtKey(binary.BigEndian.Uint32(v))
		case unix.NFTA_CT_DIRECTION:
			if len(v) != 1 {
				return nil, fmt.Errorf("ct direction of %d bytes", len(v))
			}
			e.Direction = uint32(v[0])
		case unix.NFTA_CT_SREG:
			if len(v) != 4 {
				return nil, fmt.Errorf("ct source register of %d bytes", len(v))
			}
			e.Register, e.SourceRegister = binary.BigEndian.Uint32(v), true
		}
	}
	return e, nil
}
