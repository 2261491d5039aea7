package cfranges

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"

	"go4.org/netipx"
)

// ErrGrowth is returned (wrapped in a *GrowthError) by CheckGrowth when a new
// list covers far more addresses than the installed one. The CLI lets
// --force override it.
var ErrGrowth = errors.New("list grows suspiciously")

// GrowthFactor is how many times the addresses of the larger of the
// installed list and the built-in list a new list may cover, per family,
// before CheckGrowth refuses it. Cloudflare has only ever added a block or
// two at a time; sixteen /8s in one answer is a hijack or a bug.
const GrowthFactor = 4

// GrowthError says which family grew and by how much.
type GrowthError struct {
	What      string   // "the new list covers", "the China Network ranges cover"
	Family    string   // "IPv4" or "IPv6"
	Next      *big.Int // addresses the new list covers
	Reference *big.Int // addresses of the reference
	RefName   string   // which list the reference is, e.g. "the installed list"
}

func (e *GrowthError) Error() string {
	return fmt.Sprintf("%s %s %s addresses, more than %d times the %s of %s (a hijacked or broken answer looks like this)",
		e.What, addrCount(e.Next), e.Family, GrowthFactor, addrCount(e.Reference), e.RefName)
}

func (e *GrowthError) Unwrap() error { return ErrGrowth }

// CheckGrowth refuses a next list whose address space, per family, is more
// than GrowthFactor times the larger of the installed list's and the
// built-in list's. Addresses are counted once however the prefixes overlap.
// Pass Cloudflare's own ranges only: not --allow extras (see CheckMerged),
// not the China Network ranges (see CheckChinaGrowth).
func CheckGrowth(installed, next []netip.Prefix) error {
	return checkGrowth("the new list covers", installed, next, false)
}

// CheckChinaGrowth refuses China Network ranges that, per family, cover
// more than GrowthFactor times the addresses of Cloudflare's own built-in
// list: they are a partner's few blocks, not a second Internet.
func CheckChinaGrowth(jd []netip.Prefix) error {
	return checkGrowth("the China Network ranges cover", nil, jd, true)
}

func checkGrowth(what string, installed, next []netip.Prefix, china bool) error {
	builtin := Builtin()
	for _, fam := range []struct {
		name string
		is4  bool
	}{{fieldIPv4, true}, {fieldIPv6, false}} {
		inst := addresses(installed, fam.is4)
		ref := addresses(append(builtin.IPv4, builtin.IPv6...), fam.is4)
		refName := "the built-in list (larger than what is installed)"
		switch {
		case china:
			refName = "Cloudflare's built-in list"
		case inst.Cmp(ref) > 0:
			ref, refName = inst, "the installed list"
		case inst.Sign() == 0:
			refName = "the built-in list (nothing is installed)"
		}
		limit := new(big.Int).Mul(ref, big.NewInt(GrowthFactor))
		if n := addresses(next, fam.is4); n.Cmp(limit) > 0 {
			return &GrowthError{What: what, Family: fam.name, Next: n, Reference: ref, RefName: refName}
		}
	}
	return nil
}

// MergedError says which merged range of the whole allow set is too broad.
type MergedError struct {
	What  string // e.g. "Cloudflare's ranges and --allow"
	Range netipx.IPRange
	Kind  error // ErrDefaultRoute or ErrTooBroad
}

func (e *MergedError) Error() string {
	if e.Kind == ErrDefaultRoute {
		return fmt.Sprintf("%s together cover every address (%s): that is no guard at all", e.What, e.Range)
	}
	bits := MinBitsIPv4
	if e.Range.From().Is6() {
		bits = MinBitsIPv6
	}
	return fmt.Sprintf("%s together cover %s (%s addresses), more than one /%d; cfguard would no longer guard anything",
		e.What, e.Range, addrCount(rangeSize(e.Range)), bits)
}

func (e *MergedError) Unwrap() []error { return []error{ErrInvalidList, e.Kind} }

// CheckMerged merges every prefix that would be allowed (Cloudflare's and
// --allow's together) and refuses a merged range that covers more than a /8
// (IPv4) or a /16 (IPv6), or every address of a family: prefixes that each
// pass Validate can still add up to the whole Internet (0.0.0.0/1 +
// 128.0.0.0/1). what names the prefixes in the error.
func CheckMerged(what string, prefixes []netip.Prefix) error {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		if p.IsValid() {
			b.AddPrefix(p.Masked())
		}
	}
	s, err := b.IPSet()
	if err != nil {
		return err
	}
	max4 := new(big.Int).Lsh(big.NewInt(1), 32-MinBitsIPv4)
	max6 := new(big.Int).Lsh(big.NewInt(1), 128-MinBitsIPv6)
	for _, r := range s.Ranges() {
		max := max6
		all := netipx.RangeOfPrefix(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
		if r.From().Is4() {
			max = max4
			all = netipx.RangeOfPrefix(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
		if r == all {
			return &MergedError{What: what, Range: r, Kind: ErrDefaultRoute}
		}
		if rangeSize(r).Cmp(max) > 0 {
			return &MergedError{What: what, Range: r, Kind: ErrTooBroad}
		}
	}
	return nil
}

// addresses counts the addresses of one family that ps covers.
func addresses(ps []netip.Prefix, is4 bool) *big.Int {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		if p.IsValid() && p.Addr().Is4() == is4 {
			b.AddPrefix(p.Masked())
		}
	}
	s, _ := b.IPSet()
	n := new(big.Int)
	for _, r := range s.Ranges() {
		n.Add(n, rangeSize(r))
	}
	return n
}

func rangeSize(r netipx.IPRange) *big.Int {
	from, to := r.From().As16(), r.To().As16()
	n := new(big.Int).Sub(new(big.Int).SetBytes(to[:]), new(big.Int).SetBytes(from[:]))
	return n.Add(n, big.NewInt(1))
}

// addrCount writes an address count a person can read: exact up to a
// IPv4 count, then as a power of two.
func addrCount(n *big.Int) string {
	if n.IsInt64() && n.Int64() <= 1<<32 {
		return n.String()
	}
	bits := n.BitLen() - 1
	if new(big.Int).Lsh(big.NewInt(1), uint(bits)).Cmp(n) == 0 {
		return fmt.Sprintf("2^%d", bits)
	}
	return fmt.Sprintf("about 2^%d", bits)
}
