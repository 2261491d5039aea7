package firewall

import (
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the objects in cfguard's table. Scripts and `cfguard status`
// refer to them; changing one is a breaking change.
const (
	ChainInput   = "input"
	ChainForward = "forward"
	SetCF4       = "cloudflare4"
	SetCF6       = "cloudflare6"
	SetAllow4    = "allow4"
	SetAllow6    = "allow6"
	SetPorts     = "web_ports"
)

// Priority of both base chains: "filter - 10", i.e. just before the usual
// `filter` chains (and Docker's iptables-nft chains) on the same hook, and
// well after conntrack (-200) and DNAT (-100 on prerouting), so `ct status
// dnat` and `ct original proto-dst` are known. See doc.go.
const Priority = -10

// chainSpec is one of cfguard's base chains as it must be in the kernel.
type chainSpec struct {
	name   string
	hook   nftables.ChainHook
	rules  []ruleSpec
	policy nftables.ChainPolicy
}

// ruleSpec is one rule: its expressions and the same rule as nft prints it.
type ruleSpec struct {
	text  string
	exprs []expr.Any
}

const (
	protoTCP      = unix.IPPROTO_TCP
	protoUDP      = unix.IPPROTO_UDP
	nfprotoV4     = unix.NFPROTO_IPV4
	nfprotoV6     = unix.NFPROTO_IPV6
	ifindexLo     = 1    // the loopback device is ifindex 1 in every namespace
	ctStatDNAT    = 0x20 // IPS_DST_NAT
	ctDirOriginal = 0    // IP_CT_DIR_ORIGINAL
)

// saddrMatch is one "source is allowed" set: the family and the set name.
type saddrMatch struct {
	v6  bool
	set string
}

var allowedSets = []saddrMatch{{false, SetCF4}, {false, SetAllow4}, {true, SetCF6}, {true, SetAllow6}}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func lookup(set string) expr.Any { return &expr.Lookup{SourceRegister: 1, SetName: set} }

func metaEq(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// tcpDportWeb is `tcp dport @web_ports`.
func tcpDportWeb() []expr.Any { return dportWeb(protoTCP) }

// dportWeb is `tcp dport @web_ports` or `udp dport @web_ports`.
func dportWeb(proto byte) []expr.Any {
	return append(metaEq(expr.MetaKeyL4PROTO, []byte{proto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		lookup(SetPorts))
}

// saddrIn is `ip saddr @set` or `ip6 saddr @set`.
func saddrIn(m saddrMatch) ([]expr.Any, string) {
	if m.v6 {
		return append(metaEq(expr.MetaKeyNFPROTO, []byte{nfprotoV6}),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			lookup(m.set)), "ip6 saddr @" + m.set
	}
	return append(metaEq(expr.MetaKeyNFPROTO, []byte{nfprotoV4}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		lookup(m.set)), "ip saddr @" + m.set
}

// dnatToWeb is `meta l4proto tcp ct direction original ct status dnat ct
// original proto-dst @web_ports`: the original-direction packets of a TCP
// connection that was DNAT'ed and whose destination port before DNAT was a
// web port. Replies, outbound and plainly routed traffic never match.
func dnatToWeb() []expr.Any { return dnatToWebProto(protoTCP) }

// dnatToWebProto is dnatToWeb for TCP or UDP.
func dnatToWebProto(proto byte) []expr.Any {
	return append(metaEq(expr.MetaKeyL4PROTO, []byte{proto}),
		&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ctDirOriginal}},
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ctStatDNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Ct{Register: 1, Key: expr.CtKeyPROTODST, Direction: ctDirOriginal},
		lookup(SetPorts))
}

// guardRules accepts the allowed sources for traffic that match selects and
// drops the rest of it.
func guardRules(match func() []expr.Any, matchText string) []ruleSpec {
	var rules []ruleSpec
	for _, m := range allowedSets {
		src, srcText := saddrIn(m)
		rules = append(rules, ruleSpec{
			text:  matchText + " " + srcText + " accept",
			exprs: append(append(match(), src...), verdict(expr.VerdictAccept)),
		})
	}
	return append(rules, ruleSpec{
		text:  matchText + " drop",
		exprs: append(match(), verdict(expr.VerdictDrop)),
	})
}

const dnatText = " ct direction original ct status dnat ct original proto-dst @" + SetPorts

// chainSpecs are cfguard's two base chains, in the order they are created
// and listed.
func chainSpecs() []chainSpec {
	input, forward := legacyChainSpecs()
	// Cloudflare never reaches an origin over UDP: UDP to a web port
	// (HTTP/3, QUIC) is dropped from everyone, after loopback was accepted.
	input.rules = append(input.rules, ruleSpec{
		text:  "udp dport @" + SetPorts + " drop",
		exprs: append(dportWeb(protoUDP), verdict(expr.VerdictDrop)),
	})
	forward.rules = append(forward.rules, ruleSpec{
		text:  "meta l4proto udp" + dnatText + " drop",
		exprs: append(dnatToWebProto(protoUDP), verdict(expr.VerdictDrop)),
	})
	return []chainSpec{input, forward}
}

// legacyChainSpecs are the chains of cfguard before it marked its table
// and dropped UDP: a table with exactly these chains and setSpecs, and no
// mark, was made by an earlier cfguard and is adopted (see doc.go).
func legacyChainSpecs() (input, forward chainSpec) {
	input = chainSpec{name: ChainInput, hook: *nftables.ChainHookInput, policy: nftables.ChainPolicyAccept}
	input.rules = append([]ruleSpec{{
		text:  `iif "lo" accept`,
		exprs: append(metaEq(expr.MetaKeyIIF, binaryutil.NativeEndian.PutUint32(ifindexLo)), verdict(expr.VerdictAccept)),
	}}, guardRules(tcpDportWeb, "tcp dport @"+SetPorts)...)
	forward = chainSpec{name: ChainForward, hook: *nftables.ChainHookForward, policy: nftables.ChainPolicyAccept}
	forward.rules = guardRules(dnatToWeb, "meta l4proto tcp"+dnatText)
	return input, forward
}

// setSpec is one of cfguard's sets as it must be in the kernel.
type setSpec struct {
	name     string
	keyType  nftables.SetDatatype
	interval bool
	id       uint32
}

var setSpecs = []setSpec{
	{SetCF4, nftables.TypeIPAddr, true, 1},
	{SetCF6, nftables.TypeIP6Addr, true, 2},
	{SetAllow4, nftables.TypeIPAddr, true, 3},
	{SetAllow6, nftables.TypeIP6Addr, true, 4},
	{SetPorts, nftables.TypeInetService, false, 5},
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return "hook " + strconv.Itoa(int(h))
}
