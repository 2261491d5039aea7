package cfranges

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinels for the reasons a list is refused. Every error returned by
// Validate matches ErrInvalidList and exactly one of the more specific ones,
// so the CLI can tell them apart with errors.Is.
var (
	ErrInvalidList   = errors.New("invalid ranges list")
	ErrNoIPv4        = errors.New("no IPv4 range")
	ErrNoIPv6        = errors.New("no IPv6 range")
	ErrInvalidPrefix = errors.New("not a valid CIDR")
	ErrWrongFamily   = errors.New("wrong address family")
	ErrHostBits      = errors.New("host bits set")
	ErrDefaultRoute  = errors.New("default route")
	ErrTooBroad      = errors.New("prefix too broad")
	ErrReserved      = errors.New("reserved address space") // private, loopback, link-local, multicast, unspecified, …
)

// ErrShrink is returned (wrapped in a *ShrinkError) by CheckShrink when a new
// list would drop more than half of the installed prefixes of one family.
// The CLI lets --force override it.
var ErrShrink = errors.New("list shrinks by more than half")

// Broadest prefixes Cloudflare could plausibly publish. Anything broader is
// refused: Cloudflare's own largest blocks are a /13 (IPv4) and a /29 (IPv6).
const (
	MinBitsIPv4 = 8
	MinBitsIPv6 = 16
)

// PrefixError says why one prefix (or one whole field) of a list was refused.
// It matches ErrInvalidList and its Kind with errors.Is.
type PrefixError struct {
	Field  string       // "IPv4", "IPv6" or "China Network"
	Prefix netip.Prefix // zero when the field as a whole is at fault (empty list)
	Entry  string       // the raw text, when the entry did not even parse
	Reason string       // human words, e.g. "private address space (RFC 1918 10.0.0.0/8)"
	Kind   error        // one of the sentinels above
}

func (e *PrefixError) Error() string {
	switch {
	case e.Entry == "" && e.Kind == ErrInvalidPrefix && !e.Prefix.IsValid():
		return fmt.Sprintf("%s range (empty or invalid) refused: %s", e.Field, e.Reason)
	case e.Entry != "":
		return fmt.Sprintf("%s range %q refused: %s", e.Field, e.Entry, e.Reason)
	case e.Prefix.IsValid():
		return fmt.Sprintf("%s range %s refused: %s", e.Field, e.Prefix, e.Reason)
	default:
		return fmt.Sprintf("%s ranges refused: %s", e.Field, e.Reason)
	}
}

// Unwrap lets errors.Is match both ErrInvalidList and the specific Kind.
func (e *PrefixError) Unwrap() []error { return []error{ErrInvalidList, e.Kind} }

// Field labels used in errors.
const (
	fieldIPv4    = "IPv4"
	fieldIPv6    = "IPv6"
	fieldJDCloud = "China Network"
)

// reservedBlock is address space that can never be a Cloudflare edge
// address. Documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) and benchmarking (198.18.0.0/15) prefixes are deliberately
// absent: tests use them as stand-in Cloudflare ranges.
type reservedBlock struct {
	prefix netip.Prefix
	what   string
}

var reservedBlocks = []reservedBlock{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\", 0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address space (RFC 1918 10.0.0.0/8)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (RFC 6598 100.64.0.0/10, carrier-grade NAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address space (RFC 1918 172.16.0.0/12)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address space (RFC 1918 192.168.0.0/16)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4, incl. broadcast)"},
	{netip.MustParsePrefix("::/128"), "unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
	{netip.MustParsePrefix("fc00::/7"), "private address space (unique local fc00::/7)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
}

// v4Mapped is ::ffff:0:0/96, IPv4 addresses written as IPv6.
var v4Mapped = netip.MustParsePrefix("::ffff:0:0/96")

// Validate checks a whole list before anything is touched and returns the
// first problem as a one-line *PrefixError (or nil). It refuses: no IPv4 or
// no IPv6 range; an invalid (zero) prefix; a prefix of the wrong family for
// its field; a prefix with host bits set (198.51.100.1/24 — Cloudflare never
// sends one, and nftables would silently widen it); a default route; a prefix
// broader than /8 (IPv4) or /16 (IPv6); a prefix that is or overlaps private
// (RFC 1918, fc00::/7), shared (100.64.0.0/10), loopback, link-local,
// multicast, unspecified or 240.0.0.0/4 space; and any IPv4-mapped IPv6
// prefix (::ffff:a.b.c.d), naming the IPv4 rule it breaks when it breaks one.
// Documentation and benchmarking prefixes are valid. China Network
// (JDCloud) prefixes mix families and follow the same rules; an empty
// JDCloud list is fine here (Fetch checks it when China ranges were asked for).
func Validate(l List) error {
	if len(l.IPv4) == 0 {
		return &PrefixError{Field: fieldIPv4, Reason: "the list has no IPv4 range", Kind: ErrNoIPv4}
	}
	if len(l.IPv6) == 0 {
		return &PrefixError{Field: fieldIPv6, Reason: "the list has no IPv6 range", Kind: ErrNoIPv6}
	}
	for _, p := range l.IPv4 {
		if err := checkPrefix(fieldIPv4, p, famV4); err != nil {
			return err
		}
	}
	for _, p := range l.IPv6 {
		if err := checkPrefix(fieldIPv6, p, famV6); err != nil {
			return err
		}
	}
	for _, p := range l.JDCloud {
		if err := checkPrefix(fieldJDCloud, p, famAny); err != nil {
			return err
		}
	}
	return nil
}

type family int

const (
	famAny family = iota
	famV4
	famV6
)

func checkPrefix(field string, p netip.Prefix, fam family) error {
	refuse := func(kind error, format string, args ...any) error {
		return &PrefixError{Field: field, Prefix: p, Reason: fmt.Sprintf(format, args...), Kind: kind}
	}
	if !p.IsValid() {
		return &PrefixError{Field: field, Reason: "not a valid CIDR", Kind: ErrInvalidPrefix}
	}
	switch {
	case fam == famV4 && !p.Addr().Is4():
		return refuse(ErrWrongFamily, "not an IPv4 prefix")
	case fam == famV6 && !p.Addr().Is6():
		return refuse(ErrWrongFamily, "not an IPv6 prefix")
	}
	if m := p.Masked(); m != p {
		return refuse(ErrHostBits, "host bits set (the network is %s)", m)
	}
	if err := checkSpace(p, refuse); err != nil {
		return err
	}
	if p.Addr().Is6() && v4Mapped.Overlaps(p) {
		// Name the IPv4 rule it would break, if any, then refuse it anyway:
		// nftables' ip6 family never sees these addresses on the wire.
		if p.Bits() >= v4Mapped.Bits() {
			v4 := netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if err := checkSpace(v4, func(kind error, format string, args ...any) error {
				return refuse(kind, "IPv4-mapped form of %s, which is %s", v4, fmt.Sprintf(format, args...))
			}); err != nil {
				return err
			}
		}
		return refuse(ErrWrongFamily, "IPv4-mapped IPv6 prefix (::ffff:0:0/96); IPv4 ranges belong in the IPv4 list")
	}
	return nil
}

// checkSpace applies the size and reserved-space rules to a valid, masked
// prefix. A prefix inside a reserved block is named for that block (fc00::/7
// is "private", not "too broad"); a broad one is "too broad" before it is
// "contains private …".
func checkSpace(p netip.Prefix, refuse func(error, string, ...any) error) error {
	if p.Bits() == 0 {
		return refuse(ErrDefaultRoute, "default route (matches every address)")
	}
	for _, b := range reservedBlocks {
		if p.Addr().Is4() == b.prefix.Addr().Is4() && p.Bits() >= b.prefix.Bits() && b.prefix.Contains(p.Addr()) {
			return refuse(ErrReserved, "%s", b.what)
		}
	}
	if p.Addr().Is4() && p.Bits() < MinBitsIPv4 {
		return refuse(ErrTooBroad, "broader than /%d", MinBitsIPv4)
	}
	if p.Addr().Is6() && p.Bits() < MinBitsIPv6 {
		return refuse(ErrTooBroad, "broader than /%d", MinBitsIPv6)
	}
	for _, b := range reservedBlocks {
		if b.prefix.Overlaps(p) {
			return refuse(ErrReserved, "contains %s", b.what)
		}
	}
	return nil
}

// ShrinkError is returned by CheckShrink; it matches ErrShrink.
type ShrinkError struct {
	Family    string // "IPv4" or "IPv6"
	Dropped   int    // installed prefixes of that family that no new prefix overlaps
	Installed int    // installed prefixes of that family
}

func (e *ShrinkError) Error() string {
	return fmt.Sprintf("the new list would drop %d of the %d installed %s ranges (more than half; a truncated answer looks like this)",
		e.Dropped, e.Installed, e.Family)
}

func (e *ShrinkError) Unwrap() error { return ErrShrink }

// CheckShrink refuses a next list that drops more than half of the prefixes
// now installed, counted per address family (a truncated answer loses the
// tail, i.e. the IPv6 list first). An installed prefix counts as dropped only
// when no prefix of next overlaps it, so a block that Cloudflare splits or
// merges is not a drop. Pass Cloudflare's ranges only, not --allow extras.
// Nothing installed is never a shrink.
func CheckShrink(installed, next []netip.Prefix) error {
	for _, fam := range []struct {
		name string
		is4  bool
	}{{fieldIPv4, true}, {fieldIPv6, false}} {
		var total, dropped int
		for _, old := range installed {
			if !old.IsValid() || old.Addr().Is4() != fam.is4 {
				continue
			}
			total++
			kept := false
			for _, n := range next {
				if n.IsValid() && n.Overlaps(old) {
					kept = true
					break
				}
			}
			if !kept {
				dropped++
			}
		}
		if dropped*2 > total {
			return &ShrinkError{Family: fam.name, Dropped: dropped, Installed: total}
		}
	}
	return nil
}
