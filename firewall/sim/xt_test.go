package sim

import (
	"encoding/binary"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// Info structs laid out as the uapi headers define them (offsets checked
// with offsetof on linux-libc-dev; the kernel checks the sizes).

func xtTCPInfo(sp, dp [2]uint16, option, mask, flags, inv byte) []byte {
	b := make([]byte, 16)
	ne := binary.NativeEndian
	ne.PutUint16(b[0:], sp[0])
	ne.PutUint16(b[2:], sp[1])
	ne.PutUint16(b[4:], dp[0])
	ne.PutUint16(b[6:], dp[1])
	b[8], b[9], b[10], b[11] = option, mask, flags, inv
	return b
}

func xtUDPInfo(sp, dp [2]uint16, inv byte) []byte {
	b := xtTCPInfo(sp, dp, 0, 0, 0, 0)
	b[8] = inv
	return b
}

func xtStateInfo(mask uint32) []byte {
	return binary.NativeEndian.AppendUint32(make([]byte, 0, 8), mask)[:8:8]
}

func xtConntrackInfo(rev int, flags, inv, state uint16) []byte {
	b := make([]byte, map[int]int{1: 152, 2: 160, 3: 168}[rev])
	ne := binary.NativeEndian
	ne.PutUint16(b[146:], flags)
	ne.PutUint16(b[148:], inv)
	if rev == 1 {
		b[150] = byte(state)
	} else {
		ne.PutUint16(b[150:], state)
	}
	return b
}

func xtMultiportInfo(flags byte, invert bool, entries ...[2]uint16) []byte {
	b := make([]byte, 48)
	b[0] = flags
	n := 0
	for _, e := range entries {
		binary.NativeEndian.PutUint16(b[2+2*n:], e[0])
		if e[0] != e[1] {
			b[32+n] = 1
			n++
			binary.NativeEndian.PutUint16(b[2+2*n:], e[1])
		}
		n++
	}
	b[1] = byte(n)
	if invert {
		b[47] = 1
	}
	return b
}

func xtAddrtypeInfo(src, dst uint16, flags uint32) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b[0:], src)
	binary.NativeEndian.PutUint16(b[2:], dst)
	binary.NativeEndian.PutUint32(b[4:], flags)
	return b
}

func xtMatch(name string, rev uint32, info []byte) *expr.Match {
	u := xt.Unknown(info)
	return &expr.Match{Name: name, Rev: rev, Info: &u}
}

var anyPort = [2]uint16{0, 0xffff}

// TestDecodeXT evaluates decoded compat expressions on the simulated SYN
// (from 203.0.113.10 or 2001:db8:cf::10 to port 443 of the origin).
func TestDecodeXT(t *testing.T) {
	type in struct {
		fam    nftables.TableFamily
		target bool
		name   string
		rev    uint32
		info   []byte
	}
	v4 := nftables.TableFamilyIPv4
	v6 := nftables.TableFamilyIPv6
	tests := []struct {
		name string
		in   in
		want string // "yes", "no", "continue", "reject" or "unknown: reason"; then " | text"
	}{
		{"ct state new", in{v4, false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, xtCtStateNew)}, "yes | ct state new"},
		{"ct state established,related", in{v4, false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, 6)}, "no | ct state established,related"},
		{"ct state != new", in{v4, false, "conntrack", 2, xtConntrackInfo(2, xtConntrackState, xtConntrackState, xtCtStateNew)}, "no | ct state != new"},
		{"ct state invalid, rev 1", in{v4, false, "conntrack", 1, xtConntrackInfo(1, xtConntrackState, 0, 1)}, "no | ct state invalid"},
		{"ct state dnat", in{v4, false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, xtCtStateDNAT)},
			"unknown: conntrack match --ctstate SNAT/DNAT depends on NAT, which is not modelled | ct state dnat"},
		{"ct state new,dnat", in{v4, false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, xtCtStateNew|xtCtStateDNAT)}, "yes | ct state new,dnat"},
		{"ct direction reply", in{v4, false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState|xtConntrackDirection, xtConntrackDirection, xtCtStateNew)},
			"no | ct state new ct direction reply"},
		{"ct expires", in{v4, false, "conntrack", 3, xtConntrackInfo(3, 1<<7, 0, 0)},
			`unknown: conntrack match flags 0x80 (addresses, ports, status or expiry) are not modelled | xt match "conntrack" …`},
		{"ct wrong size", in{v4, false, "conntrack", 3, xtConntrackInfo(2, xtConntrackState, 0, xtCtStateNew)},
			`unknown: iptables-nft compat match "conntrack" revision 3 has a 160-byte info, not the 168 bytes this simulator decodes | xt match "conntrack"`},
		{"ct revision 4", in{v4, false, "conntrack", 4, make([]byte, 168)},
			`unknown: iptables-nft compat match "conntrack" revision 4 is not modelled | xt match "conntrack"`},
		{"state new", in{v4, false, "state", 0, xtStateInfo(8)}, "yes | ct state new"},
		{"state established", in{v4, false, "state", 0, xtStateInfo(2)}, "no | ct state established"},
		{"multiport dports", in{v4, false, "multiport", 1, xtMultiportInfo(1, false, [2]uint16{80, 80}, [2]uint16{443, 443})}, "yes | tcp dport { 80, 443 }"},
		{"multiport range", in{v4, false, "multiport", 1, xtMultiportInfo(1, false, [2]uint16{400, 500})}, "yes | tcp dport { 400-500 }"},
		{"multiport !", in{v4, false, "multiport", 1, xtMultiportInfo(1, true, [2]uint16{443, 443})}, "no | tcp dport != { 443 }"},
		{"multiport sports", in{v4, false, "multiport", 1, xtMultiportInfo(0, false, [2]uint16{443, 443})},
			"unknown: multiport on the source port (tcp sport is not known in advance) | tcp sport { 443 }"},
		{"multiport sports all", in{v4, false, "multiport", 1, xtMultiportInfo(0, false, [2]uint16{0, 65535})}, "yes | tcp sport { 0-65535 }"},
		{"multiport ports: a later destination hit decides", in{v4, false, "multiport", 1, xtMultiportInfo(2, false, [2]uint16{80, 80}, [2]uint16{443, 443})},
			"yes | tcp sport|dport { 80, 443 }"},
		{"multiport range without end", in{v4, false, "multiport", 1, func() []byte {
			b := xtMultiportInfo(1, false, [2]uint16{443, 443})
			b[32] = 1
			return b
		}()}, `unknown: iptables-nft compat match "multiport" with a range that has no end | xt match "multiport"`},
		{"multiport revision 0", in{v4, false, "multiport", 0, make([]byte, 32)},
			`unknown: iptables-nft compat match "multiport" revision 0 is not modelled | xt match "multiport"`},
		{"tcp dport syn", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, [2]uint16{443, 443}, 0, 0x17, 0x02, 0)}, "yes | tcp dport 443 tcp flags syn / fin,syn,rst,ack"},
		{"tcp ! --syn", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, anyPort, 0, 0x17, 0x02, xtTCPInvFlags)}, "no | tcp flags != syn / fin,syn,rst,ack"},
		{"tcp flags ALL SYN (ECN bits unknown)", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, anyPort, 0, 0xff, 0x02, 0)},
			"unknown: tcp flags ecn/cwr are not known in advance | tcp flags syn / fin,syn,rst,psh,ack,urg,ecn,cwr"},
		{"tcp flags ALL ACK: the SYN bit decides", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, anyPort, 0, 0xff, 0x10, 0)}, "no | tcp flags ack / fin,syn,rst,psh,ack,urg,ecn,cwr"},
		{"tcp sport", in{v4, false, "tcp", 0, xtTCPInfo([2]uint16{1024, 65535}, anyPort, 0, 0, 0, 0)},
			"unknown: tcp sport is not known in advance | tcp sport 1024-65535"},
		{"tcp sport, dport decides", in{v4, false, "tcp", 0, xtTCPInfo([2]uint16{1024, 65535}, [2]uint16{80, 80}, 0, 0, 0, 0)}, "no | tcp sport 1024-65535 tcp dport 80"},
		{"tcp option", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, anyPort, 2, 0, 0, 0)}, "unknown: tcp options are not known in advance | tcp option 2"},
		{"tcp ! dport", in{v4, false, "tcp", 0, xtTCPInfo(anyPort, [2]uint16{443, 443}, 0, 0, 0, xtTCPInvDstPt)}, "no | tcp dport != 443"},
		{"udp dport", in{v4, false, "udp", 0, xtUDPInfo(anyPort, [2]uint16{443, 443}, 0)}, "yes | udp dport 443"},
		{"udp bad inversion", in{v4, false, "udp", 0, xtUDPInfo(anyPort, anyPort, 0x10)},
			`unknown: iptables-nft compat match "udp" with unknown inversion flags 0x10 | xt match "udp"`},
		{"addrtype dst local", in{v4, false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeLocal, 0)}, "yes | fib daddr type local"},
		{"addrtype dst broadcast,multicast", in{v4, false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeBroadcast|xtAddrtypeMulticast, 0)},
			"no | fib daddr type { broadcast, multicast }"},
		{"addrtype ! dst local", in{v4, false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeLocal, xtAddrtypeInvDest)}, "no | fib daddr type != local"},
		{"addrtype v6 unicast", in{v6, false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeUnicast, 0)}, "yes | fib daddr type unicast"},
		{"addrtype v6 anycast", in{v6, false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeAnycast, 0)},
			"unknown: addrtype --dst-type anycast is not modelled for destination 2001:db8:1::1 | fib daddr type anycast"},
		{"addrtype src", in{v4, false, "addrtype", 1, xtAddrtypeInfo(xtAddrtypeLocal, 0, 0)}, "unknown: addrtype --src-type is not modelled | fib saddr type local"},
		{"addrtype revision 0", in{v4, false, "addrtype", 0, make([]byte, 16)},
			`unknown: iptables-nft compat match "addrtype" revision 0 is not modelled | xt match "addrtype"`},
		{"comment", in{v4, false, "comment", 0, append([]byte("ufw rule"), make([]byte, 248)...)}, `yes | comment "ufw rule"`},
		{"rt in ip6", in{v6, false, "rt", 0, make([]byte, 280)}, "no | rt type 0"},
		{"rt in ip", in{v4, false, "rt", 0, make([]byte, 280)}, `unknown: iptables-nft compat match "rt" outside an ip6 table is not modelled | xt match "rt"`},
		{"limit", in{v4, false, "limit", 0, make([]byte, 32)},
			`unknown: iptables-nft compat match "limit" (a rate limit) matches depending on the packet rate | xt match "limit"`},
		{"recent", in{v4, false, "recent", 1, make([]byte, 32)}, `unknown: iptables-nft compat match "recent" (a per-source history) is not modelled | xt match "recent"`},
		{"hashlimit", in{v4, false, "hashlimit", 3, nil}, `unknown: iptables-nft compat match "hashlimit" (xt_hashlimit) is not modelled | xt match "hashlimit"`},
		{"LOG", in{v4, true, "LOG", 0, append([]byte{4, 0}, append([]byte("[UFW BLOCK] "), make([]byte, 18)...)...)}, `continue | log prefix "[UFW BLOCK] "`},
		{"NFLOG", in{v4, true, "NFLOG", 0, func() []byte { b := make([]byte, 80); b[4] = 5; return b }()}, "continue | log group 5"},
		{"REJECT", in{v4, true, "REJECT", 0, xtStateInfo(3)}, "reject | reject"},
		{"REJECT tcp-reset", in{v4, true, "REJECT", 0, xtStateInfo(7)}, "reject | reject with tcp reset"},
		{"REJECT ip6 tcp-reset", in{v6, true, "REJECT", 0, xtStateInfo(6)}, "reject | reject with tcp reset"},
		{"REJECT echo-reply (refused by the kernel)", in{v4, true, "REJECT", 0, xtStateInfo(4)},
			`unknown: iptables-nft compat target "REJECT" with reject-with value 4 is not modelled | xt target "REJECT"`},
		{"MARK", in{v4, true, "MARK", 2, make([]byte, 8)}, `unknown: iptables-nft compat target "MARK" is not modelled | xt target "MARK"`},
		{"a match named like a target", in{v4, false, "LOG", 0, make([]byte, 32)}, `unknown: iptables-nft compat match "LOG" (xt_LOG) is not modelled | xt match "LOG"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := decodeXT(tt.in.fam, tt.in.target, tt.in.name, tt.in.rev, tt.in.info)
			src, dst := cf4, o4
			if tt.in.fam == v6 {
				src, dst = cf6, o6
			}
			p := newPacket(src, dst, 443)
			var got string
			switch {
			case tt.in.target && x.act == xtContinue:
				got = "continue"
			case tt.in.target && x.act == xtReject:
				got = "reject"
			case x.match == nil:
				got = "unknown: " + x.why
			default:
				res, why := x.match(p)
				got = map[tri]string{triYes: "yes", triNo: "no", triUnknown: "unknown: " + why}[res]
			}
			got += " | " + x.text("tcp")
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestCompatRevisions checks the revisions iptables-nft 1.8.9 does not
// write (older iptables-nft, as on Ubuntu 20.04/22.04, does): xt_tcp,
// xt_udp, xt_state and xt_conntrack revisions 1 and 2, added through
// netlink with their info structs, against real connections.
func TestCompatRevisions(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	origin, client := pair(t)
	c, err := nftables.New(nftables.WithNetNSFd(origin.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tb := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "xtrev"})
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	l4tcp := metaCmp(expr.MetaKeyL4PROTO, unix.IPPROTO_TCP)
	drop := verdict(expr.VerdictDrop)
	for _, r := range [][]expr.Any{
		join(l4tcp, xtMatch("tcp", 0, xtTCPInfo(anyPort, [2]uint16{443, 443}, 0, 0x17, 0x02, 0)), drop),                                                  // --dport 443 --syn
		join(l4tcp, xtMatch("tcp", 0, xtTCPInfo(anyPort, [2]uint16{8000, 8100}, 0, 0x12, 0x12, xtTCPInvFlags)), drop),                                    // ! --tcp-flags SYN,ACK SYN,ACK
		join(l4tcp, xtMatch("tcp", 0, xtTCPInfo([2]uint16{1024, 65535}, [2]uint16{9000, 9000}, 0, 0, 0, 0)), drop),                                       // --sport 1024:
		join(l4tcp, xtMatch("tcp", 0, xtTCPInfo(anyPort, [2]uint16{80, 80}, 2, 0, 0, 0)), drop),                                                          // --tcp-option 2
		join(xtMatch("udp", 0, xtUDPInfo(anyPort, [2]uint16{81, 81}, 0)), drop),                                                                          // no -p check: udp_mt reads the TCP ports
		join(tcpDport(82), xtMatch("state", 0, xtStateInfo(xtCtStateNew)), drop),                                                                         // -m state --state NEW
		join(tcpDport(83), xtMatch("state", 0, xtStateInfo(2|4)), drop),                                                                                  // ESTABLISHED,RELATED
		join(tcpDport(84), xtMatch("conntrack", 1, xtConntrackInfo(1, xtConntrackState, 0, xtCtStateNew)), drop),                                         // rev 1
		join(tcpDport(85), xtMatch("conntrack", 2, xtConntrackInfo(2, xtConntrackState, xtConntrackState, xtCtStateNew)), drop),                          // rev 2, ! NEW
		join(tcpDport(86), xtMatch("conntrack", 2, xtConntrackInfo(2, xtConntrackState, 0, xtCtStateNew|2)), drop),                                       // rev 2, NEW,ESTABLISHED
		join(tcpDport(87), xtMatch("conntrack", 1, xtConntrackInfo(1, xtConntrackState|xtConntrackDirection, xtConntrackDirection, xtCtStateNew)), drop), // --ctdir REPLY
		join(l4tcp, xtMatch("tcp", 0, xtTCPInfo(anyPort, [2]uint16{0, 1023}, 0, 0, 0, xtTCPInvDstPt)), drop),                                             // ! --dport 0:1023
	} {
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: r})
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("adding the compat rules: %v", err)
	}
	rs := readNS(t, origin)
	for _, tc := range rs.tables {
		for _, r := range tc.chains["input"].rules {
			t.Logf("#%d %s", r.handle, r.text)
		}
	}
	checkProbes(t, rs, client, []probe{
		{src: cfA, port: 443, want: Drop, rule: "tcp dport 443 tcp flags syn / fin,syn,rst,ack drop"},
		{src: cfA, port: 8000, want: Drop, rule: "tcp dport 8000-8100 tcp flags != syn,ack / syn,ack drop"},
		{src: cfA, port: 8080, want: Drop},
		{src: cfA, port: 9000, want: CannotTell, real: Drop, reason: "tcp sport"},
		{src: cfA, port: 80, want: CannotTell, real: Drop, reason: "tcp options"},
		{src: cfA, port: 81, want: Drop, rule: "udp dport 81 drop"},
		{src: cfA, port: 82, want: Drop, rule: "tcp dport 82 ct state new drop"},
		{src: cfA, port: 83, want: Drop, rule: "tcp dport 83 ct state established,related drop", reason: "packets after it"},
		{src: cfA, port: 84, want: Drop, rule: "tcp dport 84 ct state new drop"},
		{src: cfA, port: 85, want: Drop, rule: "tcp dport 85 ct state != new drop", reason: "packets after it"},
		{src: cfA, port: 86, want: Drop},
		{src: cfA, port: 87, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "tcp dport != 0-1023 drop"},
		{src: cfA, port: 22, want: Accept},
		{src: cf6A, port: 8443, want: Accept},
	})
}
