package sim

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// benchPrefixes stands in for Cloudflare's 22 published prefixes (15 IPv4,
// 7 IPv6), carved out of the stand-in ranges.
func benchPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for i := 0; i < 8; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/27", i*32)))
	}
	for i := 0; i < 7; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/27", i*32)))
	}
	for i := 0; i < 7; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("2001:db8:cf:%x::/52", i*0x1000)))
	}
	return out
}

// benchRuleset is a busy host's ruleset: a few hundred per-address rules in
// a foreign table (some inside the Cloudflare prefixes), then cfguard's
// table with the 22 prefixes in its sets.
func benchRuleset() *Ruleset {
	var rules [][]expr.Any
	for i := 0; i < 300; i++ {
		var src string
		switch i % 3 {
		case 0:
			src = fmt.Sprintf("192.0.2.%d/32", i%256)
		case 1:
			src = fmt.Sprintf("203.0.113.%d/32", i%256)
		default:
			src = fmt.Sprintf("198.51.100.%d/30", (i*4)%256)
		}
		rules = append(rules, join(saddr4(src), tcpDport(uint16(1000+i)), &expr.Counter{}, verdict(expr.VerdictDrop)))
	}
	rules = append(rules, join(ctState(6), verdict(expr.VerdictAccept)))
	foreign := build(nftables.TableFamilyINet, "filter", nil, "input:0:accept", rules)

	var v4, v6 []string
	for _, p := range benchPrefixes() {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	guard := build(nftables.TableFamilyINet, "cfguard", []*set{ipSet("cloudflare4", v4...), ipSet("cloudflare6", v6...)},
		"input:-10:accept", [][]expr.Any{
			join(tcpDport(443), saddrLookup(false, "cloudflare4", false), verdict(expr.VerdictAccept)),
			join(tcpDport(443), saddrLookup(true, "cloudflare6", false), verdict(expr.VerdictAccept)),
			join(tcpDport(443), verdict(expr.VerdictDrop)),
		})
	return merge(guard, foreign)
}

// BenchmarkCheckPrefix checks all 22 prefixes against port 443, as verify
// does for one origin address and port.
func BenchmarkCheckPrefix(b *testing.B) {
	rs := benchRuleset()
	prefixes := benchPrefixes()
	pieces := 0
	for _, p := range prefixes {
		dst := o4
		if p.Addr().Is6() {
			dst = o6
		}
		pieces += len(rs.CheckPrefix(p, dst, 443))
	}
	b.ResetTimer()
	for b.Loop() {
		for _, p := range prefixes {
			dst := o4
			if p.Addr().Is6() {
				dst = o6
			}
			rs.CheckPrefix(p, dst, 443)
		}
	}
	b.ReportMetric(float64(pieces), "pieces/op")
}

// benchUFW is the input path of Debian's ufw ruleset, with its compat
// matches decoded as Read decodes them.
func benchUFW() *Ruleset {
	v4 := nftables.TableFamilyIPv4
	m := func(name string, rev uint32, info []byte) expr.Any { return decodeXT(v4, false, name, rev, info) }
	log := decodeXT(v4, true, "LOG", 0, make([]byte, 32))
	ct := func(state uint16) expr.Any { return m("conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, state)) }
	at := func(t uint16) expr.Any { return m("addrtype", 1, xtAddrtypeInfo(0, t, 0)) }
	return build(v4, "filter", nil,
		"input:0:drop", [][]expr.Any{
			join(verdict(expr.VerdictJump, "ufw-before-input")),
			join(verdict(expr.VerdictJump, "ufw-after-input")),
			join(verdict(expr.VerdictJump, "ufw-after-logging-input")),
		},
		"ufw-before-input", [][]expr.Any{
			join(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: []byte("lo\x00")}, verdict(expr.VerdictAccept)),
			join(ct(6), &expr.Counter{}, verdict(expr.VerdictAccept)),
			join(ct(1), &expr.Counter{}, verdict(expr.VerdictDrop)),
			join(metaCmp(expr.MetaKeyL4PROTO, 1), m("icmp", 0, make([]byte, 8)), verdict(expr.VerdictAccept)),
			join(verdict(expr.VerdictJump, "ufw-not-local")),
			join(verdict(expr.VerdictJump, "ufw-user-input")),
		},
		"ufw-not-local", [][]expr.Any{
			join(at(xtAddrtypeLocal), verdict(expr.VerdictReturn)),
			join(at(xtAddrtypeMulticast), verdict(expr.VerdictReturn)),
			join(at(xtAddrtypeBroadcast), verdict(expr.VerdictReturn)),
			join(verdict(expr.VerdictDrop)),
		},
		"ufw-user-input", [][]expr.Any{
			join(tcpDport(22), verdict(expr.VerdictAccept)),
			join(metaCmp(expr.MetaKeyL4PROTO, 6), m("multiport", 1, xtMultiportInfo(1, false, [2]uint16{80, 80}, [2]uint16{8000, 8100})), verdict(expr.VerdictAccept)),
			join(saddr4("203.0.113.0/24"), tcpDport(443), verdict(expr.VerdictAccept)),
		},
		"ufw-after-input", [][]expr.Any{
			join(at(xtAddrtypeBroadcast), verdict(expr.VerdictDrop)),
		},
		"ufw-after-logging-input", [][]expr.Any{
			join(&expr.Limit{}, &expr.Counter{}, log),
		},
	)
}

// BenchmarkCheckUFW checks one accepted and one dropped SYN through the
// ufw-shaped ruleset.
func BenchmarkCheckUFW(b *testing.B) {
	rs := benchUFW()
	if got := rs.Check(cf4, o4, 443).Verdict; got != Accept {
		b.Fatalf("203.0.113.10 → :443: %v, want accept", got)
	}
	other := netip.MustParseAddr("198.51.100.10")
	if got := rs.Check(other, o4, 443).Verdict; got != Drop {
		b.Fatalf("198.51.100.10 → :443: %v, want drop", got)
	}
	for b.Loop() {
		rs.Check(cf4, o4, 443)
		rs.Check(other, o4, 443)
	}
}

// benchManyRules is a host with per-address rules inside the Cloudflare
// ranges: rules rules of `ip6 saddr ADDR tcp dport P drop` (and a few
// hundred IPv4 ones), sets named sets of 20 addresses each matched by one
// rule apiece, then a ct state accept and cfguard's table.
func benchManyRules(rules, sets int) *Ruleset {
	var rs [][]expr.Any
	prefixes := benchPrefixes()
	for i := 0; i < rules; i++ {
		p := prefixes[15+i%7] // the IPv6 stand-ins
		a := p.Addr().As16()
		a[14], a[15] = byte(i>>8), byte(i)
		src := netip.AddrFrom16(a).String() + "/128"
		rs = append(rs, join(saddr6(src), tcpDport(uint16(1000+i%5000)), &expr.Counter{}, verdict(expr.VerdictDrop)))
	}
	for i := 0; i < 512; i++ {
		src := fmt.Sprintf("198.51.100.%d/32", i%256)
		if i >= 256 {
			src = fmt.Sprintf("203.0.113.%d/32", i%256)
		}
		rs = append(rs, join(saddr4(src), tcpDport(uint16(1000+i)), verdict(expr.VerdictDrop)))
	}
	var all []*set
	for i := 0; i < sets; i++ {
		var el []string
		for j := 0; j < 20; j++ {
			a := prefixes[15+i%7].Addr().As16()
			a[12], a[13], a[15] = byte(i>>8), byte(i), byte(j)
			el = append(el, netip.AddrFrom16(a).String()+"/128")
		}
		name := fmt.Sprintf("s%d", i)
		all = append(all, ipSet(name, el...))
		rs = append(rs, join(tcpDport(uint16(6000+i)), saddrLookup(true, name, false), verdict(expr.VerdictDrop)))
	}
	rs = append(rs, join(ctState(6), verdict(expr.VerdictAccept)))
	foreign := build(nftables.TableFamilyINet, "filter", all, "input:0:accept", rs)
	return merge(benchGuard(), foreign)
}

// saddr6 is `ip6 saddr P` for a prefix of whole bytes.
func saddr6(p string) []expr.Any {
	pf := netip.MustParsePrefix(p)
	a := pf.Addr().As16()
	n := uint32(pf.Bits() / 8)
	return append(metaCmp(expr.MetaKeyNFPROTO, unix.NFPROTO_IPV6),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: n},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:n]})
}

// benchGuard is cfguard's table with the 22 stand-in prefixes.
func benchGuard() *Ruleset {
	var v4, v6 []string
	for _, p := range benchPrefixes() {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	return build(nftables.TableFamilyINet, "cfguard", []*set{ipSet("cloudflare4", v4...), ipSet("cloudflare6", v6...)},
		"input:-10:accept", [][]expr.Any{
			join(tcpDport(443), saddrLookup(false, "cloudflare4", false), verdict(expr.VerdictAccept)),
			join(tcpDport(443), saddrLookup(true, "cloudflare6", false), verdict(expr.VerdictAccept)),
			join(tcpDport(443), verdict(expr.VerdictDrop)),
		})
}

// BenchmarkCheckPrefixManyRules checks all 22 prefixes against port 1500
// through 10,000 per-address IPv6 rules, 512 IPv4 ones and 300 sets, as
// verify does for one origin address and port (the ruleset is read once;
// its first check builds the boundaries and indexes, included here).
func BenchmarkCheckPrefixManyRules(b *testing.B) {
	prefixes := benchPrefixes()
	pieces := 0
	for b.Loop() {
		b.StopTimer()
		rs := benchManyRules(10000, 300)
		b.StartTimer()
		pieces = 0
		for _, p := range prefixes {
			dst := o4
			if p.Addr().Is6() {
				dst = o6
			}
			pieces += len(rs.CheckPrefix(p, dst, 1500))
		}
	}
	b.ReportMetric(float64(pieces), "pieces/op")
}
