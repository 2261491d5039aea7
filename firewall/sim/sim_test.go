package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Expressions as nft compiles them (see `nft --debug=netlink`).

func metaCmp(k expr.MetaKey, d ...byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: k, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: d}}
}

func tcpDport(port uint16) []expr.Any {
	return append(metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)})
}

// saddr4 is `ip saddr P` in an inet table: a payload of the prefix's whole
// bytes, plus a bitwise mask when the length is not a multiple of 8.
func saddr4(p string) []expr.Any {
	pf := netip.MustParsePrefix(p)
	a := pf.Addr().As4()
	out := metaCmp(expr.MetaKeyNFPROTO, unix.NFPROTO_IPV4)
	if pf.Bits()%8 == 0 {
		n := uint32(pf.Bits() / 8)
		return append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: n},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:n]})
	}
	m := make([]byte, 4)
	for i := 0; i < pf.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
}

func saddrLookup(v6 bool, set string, invert bool) []expr.Any {
	if v6 {
		return append(metaCmp(expr.MetaKeyNFPROTO, unix.NFPROTO_IPV6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Lookup{SourceRegister: 1, SetName: set, Invert: invert})
	}
	return append(metaCmp(expr.MetaKeyNFPROTO, unix.NFPROTO_IPV4),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set, Invert: invert})
}

func ctState(mask uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind, chain ...string) expr.Any {
	v := &expr.Verdict{Kind: k}
	if len(chain) > 0 {
		v.Chain = chain[0]
	}
	return v
}

func join(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

// ipSet is a set of addresses or prefixes as interval ranges.
func ipSet(name string, prefixes ...string) *set {
	s := &set{name: name, keyLen: 4}
	for _, p := range prefixes {
		pf := netip.MustParsePrefix(p)
		if pf.Addr().Is6() {
			s.keyLen = 16
		}
		s.ranges = append(s.ranges, ivl{pf.Addr().AsSlice(), lastAddr(pf).AsSlice()})
	}
	return s
}

// build makes a one-table ruleset: chains maps a name to its rules; a name
// "input:P:policy" or "prerouting:P:policy" makes a base chain.
func build(family nftables.TableFamily, name string, sets []*set, chains ...any) *Ruleset {
	t := &table{family: family, name: name, chains: map[string]*chain{}, sets: map[string]*set{}}
	for _, s := range sets {
		t.sets[s.name] = s
	}
	for i := 0; i < len(chains); i += 2 {
		spec := chains[i].(string)
		c := &chain{table: t, name: spec, policy: nftables.ChainPolicyAccept}
		if f := strings.Split(spec, ":"); len(f) == 3 {
			c.name, c.base = f[0], true
			c.hook = map[string]nftables.ChainHook{"prerouting": unix.NF_INET_PRE_ROUTING, "input": unix.NF_INET_LOCAL_IN}[f[0]]
			var prio int32
			fmt.Sscan(f[1], &prio)
			c.priority = prio
			if f[2] == "drop" {
				c.policy = nftables.ChainPolicyDrop
			}
			t.base = append(t.base, c)
		}
		rules, _ := chains[i+1].([][]expr.Any)
		for j, ex := range rules {
			c.rules = append(c.rules, &rule{handle: uint64(j + 2), exprs: ex, text: renderRule(t, ex)})
		}
		t.chains[c.name] = c
	}
	return &Ruleset{tables: []*table{t}}
}

func merge(rs ...*Ruleset) *Ruleset {
	out := &Ruleset{}
	for _, r := range rs {
		out.tables = append(out.tables, r.tables...)
	}
	return out
}

var (
	cf4 = netip.MustParseAddr("203.0.113.10")
	o4  = netip.MustParseAddr("192.0.2.1")
	cf6 = netip.MustParseAddr("2001:db8:cf::10")
	o6  = netip.MustParseAddr("2001:db8:1::1")
)

func TestRenderRule(t *testing.T) {
	tb := &table{family: nftables.TableFamilyINet, sets: map[string]*set{
		"__set0": {name: "__set0", anonymous: true, keyLen: 2, ranges: []ivl{{[]byte{0, 80}, []byte{0, 80}}, {[]byte{1, 0xbb}, []byte{1, 0xbb}}}},
	}}
	tests := []struct {
		name string
		in   []expr.Any
		want string
	}{
		{"prefix /24", join(saddr4("203.0.113.0/24"), verdict(expr.VerdictDrop)), "ip saddr 203.0.113.0/24 drop"},
		{"prefix /25 (bitwise)", join(saddr4("203.0.113.0/25"), verdict(expr.VerdictDrop)), "ip saddr 203.0.113.0/25 drop"},
		{"host", join(saddr4("203.0.113.7/32"), tcpDport(443), verdict(expr.VerdictAccept)), "ip saddr 203.0.113.7 tcp dport 443 accept"},
		{"set", join(tcpDport(443), saddrLookup(true, "cf6", false), &expr.Counter{}, verdict(expr.VerdictAccept)), "tcp dport 443 ip6 saddr @cf6 counter accept"},
		{"negated set", join(saddrLookup(false, "cf4", true), verdict(expr.VerdictDrop)), "ip saddr != @cf4 drop"},
		{"anonymous set", join(metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: "__set0"}, verdict(expr.VerdictAccept)), "tcp dport { 80, 443 } accept"},
		{"ct state", join(ctState(6), verdict(expr.VerdictAccept)), "ct state established,related accept"},
		{"iif lo", join(&expr.Meta{Key: expr.MetaKeyIIF, Register: 1}, &expr.Cmp{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 1)}, verdict(expr.VerdictAccept)), `iif "lo" accept`},
		{"iifname wildcard", join(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: []byte("eth")}, verdict(expr.VerdictJump, "wan")), `iifname "eth*" jump wan`},
		{"reject with tcp reset", join(tcpDport(22), &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}), "tcp dport 22 reject with tcp reset"},
		{"xt match", join(&expr.Match{Name: "recent"}, verdict(expr.VerdictDrop)), `xt match "recent" drop`},
		{"iptables-nft order: -p before -s, --dport after", join(metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP), saddr4("203.0.113.0/24"),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1, 0xbb}}, &expr.Counter{}, verdict(expr.VerdictDrop)),
			"ip saddr 203.0.113.0/24 tcp dport 443 counter drop"},
		{"iptables-nft -p without a transport field", join(metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP), saddr4("198.51.100.0/24"),
			&expr.Match{Name: "multiport"}, verdict(expr.VerdictDrop)),
			`meta l4proto tcp ip saddr 198.51.100.0/24 xt match "multiport" drop`},
		{"not decoded", join(&unknownExpr{name: "socket"}, verdict(expr.VerdictDrop)), "socket … drop"},
		{"policy-free return", join(verdict(expr.VerdictReturn)), "return"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, renderRule(tb, tt.in)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	webDrop := build(nftables.TableFamilyINet, "f", []*set{ipSet("cf4", "203.0.113.0/24"), ipSet("cf6", "2001:db8:cf::/48")},
		"input:0:drop", [][]expr.Any{
			join(ctState(6), verdict(expr.VerdictAccept)),
			join(&expr.Meta{Key: expr.MetaKeyIIF, Register: 1}, &expr.Cmp{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 1)}, verdict(expr.VerdictAccept)),
			join(tcpDport(443), saddrLookup(false, "cf4", false), verdict(expr.VerdictAccept)),
			join(tcpDport(443), saddrLookup(true, "cf6", false), verdict(expr.VerdictAccept)),
		})
	tcpFlags := func(mask, val byte) []expr.Any {
		return join(metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{mask}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{val}}, verdict(expr.VerdictDrop))
	}
	tests := []struct {
		name     string
		rs       *Ruleset
		src, dst netip.Addr
		port     uint16
		want     Result
	}{
		{"no tables", &Ruleset{}, cf4, o4, 443, Result{Verdict: Accept}},
		{"allowed v4", webDrop, cf4, o4, 443, Result{Verdict: Accept}},
		{"allowed v6, but neighbour discovery dropped", webDrop, cf6, o6, 443, Result{Verdict: Drop, Family: "inet", Table: "f", Chain: "input", Rule: "policy drop",
			Reason: "IPv6 neighbour solicitations (icmpv6 type nd-neighbor-solicit) to this host are dropped, so the router cannot deliver packets to 2001:db8:1::1 (whatever the SYN meets)", Packet: PacketNeighbour}},
		{"other port: policy", webDrop, cf4, o4, 80, Result{Verdict: Drop, Family: "inet", Table: "f", Chain: "input", Rule: "policy drop"}},
		{"families differ", webDrop, cf4, o6, 443, Result{Verdict: CannotTell, Reason: "source 203.0.113.10 and destination 2001:db8:1::1 are not of one IP family"}},
		{"syn flag, ECN bits masked off: matches",
			build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{tcpFlags(0x17, 0x02)}), cf4, o4, 443,
			Result{Verdict: Drop, Family: "inet", Table: "t", Chain: "input", Handle: 2, Rule: "tcp flags & 0x17 == 0x02 drop"}},
		{"ack flag: not the SYN, but the packets after it",
			build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{tcpFlags(0x17, 0x10)}), cf4, o4, 443,
			Result{Verdict: Drop, Family: "inet", Table: "t", Chain: "input", Handle: 2, Rule: "tcp flags & 0x17 == 0x10 drop",
				Reason: "the SYN is accepted, but the packets after it (ct state established) are not", Packet: PacketEstablished}},
		{"syn flag alone: only the SYN",
			build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{tcpFlags(0x12, 0x10)}), cf4, o4, 443,
			Result{Verdict: Drop, Family: "inet", Table: "t", Chain: "input", Handle: 2, Rule: "tcp flags & 0x12 == 0x10 drop",
				Reason: "the SYN is accepted, but the packets after it (ct state established) are not", Packet: PacketEstablished}},
		{"all flags: ECN unknown",
			build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{tcpFlags(0xff, 0x02)}), cf4, o4, 443,
			Result{Verdict: CannotTell, Family: "inet", Table: "t", Chain: "input", Handle: 2, Rule: "tcp flags & 0xff == 0x02 drop", Reason: "tcp flags is not known in advance"}},
		{"limit without a verdict is skipped",
			build(nftables.TableFamilyINet, "t", nil, "input:0:drop", [][]expr.Any{
				join(tcpDport(443), &expr.Limit{}, &expr.Counter{}),
				join(tcpDport(443), verdict(expr.VerdictAccept)),
			}), cf4, o4, 443, Result{Verdict: Accept}},
		{"return from a jumped chain, then the policy",
			build(nftables.TableFamilyIPv4, "t", nil,
				"input:0:drop", [][]expr.Any{join(verdict(expr.VerdictJump, "sub")), join(tcpDport(80), verdict(expr.VerdictAccept))},
				"sub", [][]expr.Any{join(verdict(expr.VerdictReturn)), join(verdict(expr.VerdictAccept))}),
			cf4, o4, 443, Result{Verdict: Drop, Family: "ip", Table: "t", Chain: "input", Rule: "policy drop"}},
		{"ip table does not see IPv6",
			build(nftables.TableFamilyIPv4, "t", nil, "input:0:drop", nil), cf6, o6, 443, Result{Verdict: Accept}},
		{"accept in one table, drop in a later one",
			merge(build(nftables.TableFamilyINet, "a", nil, "input:10:accept", [][]expr.Any{join(tcpDport(443), verdict(expr.VerdictDrop))}),
				build(nftables.TableFamilyINet, "b", nil, "input:-10:accept", [][]expr.Any{join(verdict(expr.VerdictAccept))})),
			cf4, o4, 443, Result{Verdict: Drop, Family: "inet", Table: "a", Chain: "input", Handle: 2, Rule: "tcp dport 443 drop"}},
		{"prerouting before input, whatever the priority",
			merge(build(nftables.TableFamilyINet, "a", nil, "input:-300:accept", [][]expr.Any{join(verdict(expr.VerdictDrop))}),
				build(nftables.TableFamilyINet, "b", nil, "prerouting:100:accept", [][]expr.Any{join(tcpDport(443), &expr.Reject{})})),
			cf4, o4, 443, Result{Verdict: Reject, Family: "inet", Table: "b", Chain: "prerouting", Handle: 2, Rule: "tcp dport 443 reject with icmp code 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, tt.rs.Check(tt.src, tt.dst, tt.port)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestInterfaces(t *testing.T) {
	rs := build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{
		join(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: append([]byte("lo"), make([]byte, 14)...)}, verdict(expr.VerdictDrop)),
		join(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Register: 1, Data: append([]byte("eth0"), make([]byte, 12)...)}, verdict(expr.VerdictDrop)),
	})
	got := rs.Check(cf4, o4, 443)
	if got.Verdict != CannotTell || got.Handle != 3 || !strings.Contains(got.Reason, "iifname") {
		t.Errorf("unknown interface: got %+v, want CannotTell at handle 3 naming iifname", got)
	}
	rs.SetInterface("eth0", 2)
	if got := rs.Check(cf4, o4, 443); got.Verdict != Drop || got.Handle != 3 {
		t.Errorf("interface eth0: got %+v, want Drop at handle 3", got)
	}
	rs.SetInterface("ens3", 2)
	if got := rs.Check(cf4, o4, 443); got.Verdict != Accept {
		t.Errorf("interface ens3: got %+v, want Accept", got)
	}
}

func TestLegacy(t *testing.T) {
	rs := build(nftables.TableFamilyINet, "t", nil, "input:0:accept", [][]expr.Any{join(tcpDport(22), verdict(expr.VerdictDrop))})
	rs.legacy = []string{"ip_tables: filter"}
	if got := rs.Check(cf4, o4, 443); got.Verdict != CannotTell || !strings.Contains(got.Reason, "iptables-legacy") {
		t.Errorf("accept with legacy tables: got %+v, want CannotTell naming iptables-legacy", got)
	}
	if got := rs.Check(cf4, o4, 22); got.Verdict != Drop || !strings.Contains(got.Reason, "table filter (IPv4)") {
		t.Errorf("drop with legacy tables: got %+v, want Drop noting the legacy tables", got)
	}
	// ip_tables does not see IPv6 packets, nor ip6_tables IPv4 ones.
	tests := []struct {
		name   string
		legacy []string
		src    netip.Addr
		want   Verdict
	}{
		{"ip_tables, IPv6 packet", []string{"ip_tables: filter"}, cf6, Accept},
		{"ip6_tables, IPv6 packet", []string{"ip6_tables: filter"}, cf6, CannotTell},
		{"ip6_tables, IPv4 packet", []string{"ip6_tables: filter"}, cf4, Accept},
		{"both, IPv4 packet", []string{"ip_tables: filter", "ip6_tables: raw"}, cf4, CannotTell},
	}
	for _, tt := range tests {
		rs.legacy = tt.legacy
		dst := o4
		if tt.src.Is6() {
			dst = o6
		}
		got := rs.Check(tt.src, dst, 443)
		if got.Verdict != tt.want {
			t.Errorf("%s: got %+v, want %v", tt.name, got, tt.want)
		}
		if tt.want == CannotTell && strings.Contains(got.Reason, "raw") {
			t.Errorf("%s: reason %q names the other family's table", tt.name, got.Reason)
		}
	}
}

func TestNewSet(t *testing.T) {
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	tests := []struct {
		name  string
		set   nftables.Set
		elems []nftables.SetElement
		want  []string
	}{
		{"interval, as read back: descending, end first, with nft's sentinel",
			nftables.Set{Name: "s", Interval: true, KeyType: nftables.TypeIPAddr},
			[]nftables.SetElement{
				{Key: ip("203.0.114.0"), IntervalEnd: true}, {Key: ip("203.0.113.0")},
				{Key: ip("198.51.101.0"), IntervalEnd: true}, {Key: ip("198.51.100.0")},
				{Key: ip("0.0.0.0"), IntervalEnd: true},
			},
			[]string{"198.51.100.0-198.51.100.255", "203.0.113.0-203.0.113.255"}},
		{"interval reaching the top of the space: no end element",
			nftables.Set{Name: "s", Interval: true, KeyType: nftables.TypeIPAddr},
			[]nftables.SetElement{{Key: ip("255.255.255.0")}, {Key: ip("10.0.0.1"), IntervalEnd: true}, {Key: ip("10.0.0.0")}},
			[]string{"10.0.0.0-10.0.0.0", "255.255.255.0-255.255.255.255"}},
		{"plain elements",
			nftables.Set{Name: "s", KeyType: nftables.TypeIPAddr},
			[]nftables.SetElement{{Key: ip("192.0.2.9")}, {Key: ip("192.0.2.1")}},
			[]string{"192.0.2.1-192.0.2.1", "192.0.2.9-192.0.2.9"}},
		{"pipapo ranges with KeyEnd",
			nftables.Set{Name: "s", Interval: true, KeyType: nftables.TypeIPAddr},
			[]nftables.SetElement{{Key: ip("192.0.2.0"), KeyEnd: ip("192.0.2.127")}},
			[]string{"192.0.2.0-192.0.2.127"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(&tt.set, tt.elems)
			var got []string
			for _, r := range s.ranges {
				a, _ := netip.AddrFromSlice(r.from)
				b, _ := netip.AddrFromSlice(r.to)
				got = append(got, a.String()+"-"+b.String())
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if s.bad != "" {
				t.Errorf("bad: %s", s.bad)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	rs := build(nftables.TableFamilyINet, "t", []*set{ipSet("deny", "198.51.100.64/26", "198.51.100.200/32")},
		"input:0:accept", [][]expr.Any{
			join(saddr4("203.0.113.0/25"), verdict(expr.VerdictDrop)),
			join(saddr4("203.0.113.128/26"), tcpDport(443), &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}),
			join(saddrLookup(false, "deny", false), verdict(expr.VerdictDrop)),
		})
	tests := []struct {
		in   string
		want []string
	}{
		{"203.0.113.0/24", []string{"203.0.113.0-203.0.113.127 drop #2", "203.0.113.128-203.0.113.191 reject #3", "203.0.113.192-203.0.113.255 accept #0"}},
		{"203.0.113.128/25", []string{"203.0.113.128-203.0.113.191 reject #3", "203.0.113.192-203.0.113.255 accept #0"}},
		{"198.51.100.0/24", []string{"198.51.100.0-198.51.100.63 accept #0", "198.51.100.64-198.51.100.127 drop #4",
			"198.51.100.128-198.51.100.199 accept #0", "198.51.100.200-198.51.100.200 drop #4", "198.51.100.201-198.51.100.255 accept #0"}},
		{"192.0.2.0/24", []string{"192.0.2.0-192.0.2.255 accept #0"}},
		{"2001:db8:cf::/48", []string{"2001:db8:cf::-2001:db8:cf:ffff:ffff:ffff:ffff:ffff accept #0"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.in)
			dst := o4
			if p.Addr().Is6() {
				dst = o6
			}
			var got []string
			for _, r := range rs.CheckPrefix(p, dst, 443) {
				got = append(got, fmt.Sprintf("%v-%v %v #%d", r.From, r.To, r.Result.Verdict, r.Result.Handle))
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestTableDormant(t *testing.T) {
	tests := []struct {
		flags uint32
		want  bool
	}{
		{0, false},
		{1, true},          // NFT_TABLE_F_DORMANT in host order
		{0x01000000, true}, // as google/nftables v0.3.0 decodes it on little-endian
		{2, false},         // owner
		{0x02000000, false},
		{0x03000000, true},
		{4, false}, // persist
	}
	for _, tt := range tests {
		if got := tableDormant(tt.flags); got != tt.want {
			t.Errorf("tableDormant(%#x) = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

func TestSetOverlap(t *testing.T) {
	s := ipSet("s", "2001:db8:cf::/48", "2001:db8:1::2/128")
	key := func(a string, bits int) ([]byte, []byte) {
		v := netip.MustParseAddr(a).AsSlice()
		k := make([]byte, 16)
		for i := 0; i < bits; i++ {
			k[i/8] |= 0x80 >> (i % 8)
		}
		return v, k
	}
	tests := []struct {
		addr string
		bits int
		want tri
	}{
		{"2001:db8:cf::", 48, triYes},     // all of the /48
		{"2001:db8:cf::", 32, triUnknown}, // part of 2001:db8::/32
		{"2001:db8:cf2::", 48, triNo},
		{"fe80::", 64, triNo},
		{"2001:db8:1::2", 128, triYes},
	}
	for _, tt := range tests {
		v, k := key(tt.addr, tt.bits)
		lo, hi, ok := suffixRange(v, k)
		if !ok {
			t.Fatalf("suffixRange(%s/%d) not a suffix", tt.addr, tt.bits)
		}
		if got := s.overlap(lo, hi); got != tt.want {
			t.Errorf("overlap(%s/%d) = %v, want %v", tt.addr, tt.bits, got, tt.want)
		}
	}
	if _, _, ok := suffixRange([]byte{1, 2}, []byte{0x0f, 0xff}); ok {
		t.Error("suffixRange accepted known bits after unknown ones")
	}
}
