package sim

import (
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Verdict is what the ruleset does to the packet.
type Verdict int

// The verdicts. The zero value is Accept.
const (
	Accept Verdict = iota
	Drop
	Reject
	CannotTell
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Reject:
		return "reject"
	case CannotTell:
		return "cannot tell"
	}
	return "verdict(?)"
}

// Result is the prediction for one packet.
type Result struct {
	Verdict Verdict
	// Family, Table, Chain, Handle and Rule name the deciding rule: the rule
	// that dropped or rejected the packet, the rule the simulator could not
	// evaluate, or (Handle 0, Rule "policy drop") the chain whose policy
	// dropped it. Empty for an Accept by default (no chain, or only accepts).
	Family string // "inet", "ip", "ip6", "netdev"
	Table  string
	Chain  string
	Handle uint64
	Rule   string // nft-like text of the rule; the handle is authoritative
	// Reason says why, for CannotTell, and notes iptables-legacy otherwise.
	Reason string
	// Packet is which packet of the exchange the result is about: the SYN,
	// or (when the SYN is accepted) a packet that follows it.
	Packet Packet
	// DNAT is where a DNAT in prerouting sent the connection (zero when
	// none did): the verdict is then about the path to that destination.
	DNAT Translation
	// DNATUnknown is set on a CannotTell about a DNAT (its match, its
	// target, or where the new destination is routed): the connection may
	// go elsewhere than the address checked.
	DNATUnknown bool
}

// Packet names a packet of the exchange a connection from Cloudflare needs.
type Packet int

// The packets, in the order they are judged. The zero value is the SYN.
const (
	PacketSYN         Packet = iota // the SYN of a new connection (ct state new)
	PacketEstablished               // the packets after the SYN (ct state established, ACK set)
	PacketNeighbour                 // IPv6 neighbour discovery to this host (icmpv6 nd-neighbor-solicit / -advert)
	PacketReply                     // this host's answers to Cloudflare (output, ct state established)
)

func (p Packet) String() string {
	switch p {
	case PacketSYN:
		return "syn"
	case PacketEstablished:
		return "established"
	case PacketNeighbour:
		return "neighbour discovery"
	case PacketReply:
		return "reply"
	}
	return "packet(?)"
}

// PrefixResult is the result for one range of source addresses.
type PrefixResult struct {
	From, To netip.Addr // inclusive
	Result   Result
}

// Ruleset is a snapshot of all nftables tables of one network namespace.
type Ruleset struct {
	tables   []*table
	warnings []string
	legacy   []string // iptables-legacy tables found, e.g. "ip_tables: filter"

	ifName  string
	ifIndex uint32
	router  func(netip.Addr) (Route, error)

	prepOnce sync.Once // bounds, chain indexes and hooks
	hooks    [2][1 + 1 + unix.NF_INET_POST_ROUTING][]*chain
	bounds4  []netip.Addr
	bounds6  []netip.Addr

	ndMu sync.Mutex
	nd   map[netip.Addr]Result // neighbour discovery, by destination
}

type table struct {
	family  nftables.TableFamily
	name    string
	dormant bool
	chains  map[string]*chain
	base    []*chain // base chains, in listing order
	sets    map[string]*set
	setsErr string // why the sets could not be read
}

type chain struct {
	table    *table
	name     string
	base     bool
	hook     nftables.ChainHook
	priority int32
	typ      nftables.ChainType
	policy   nftables.ChainPolicy
	rules    []*rule
	bad      string // why the rules could not be read

	idx4, idx6 *chainIndex // rules by source address; nil: evaluate all
}

type rule struct {
	handle uint64
	exprs  []expr.Any
	text   string
	// bad, when set, is why the rule could not be read completely.
	bad string
}

type set struct {
	name          string
	anonymous     bool
	isMap         bool
	concatenation bool
	keyType       string
	keyLen        int
	ranges        []ivl  // [from, to] inclusive, sorted; a plain element is from == to
	bad           string // why the set cannot be used
}

type ivl struct {
	from, to []byte // inclusive
}

// unknownExpr stands for an expression the nftables library could not
// decode; name is the kernel's name for it ("socket", "byteorder", ...). The
// embedded interface is nil: it only lets the type sit among expr.Any.
type unknownExpr struct {
	expr.Any
	name string
}

// Warnings are things the caller should show next to every result, such as
// iptables-legacy tables that the simulator cannot see into.
func (r *Ruleset) Warnings() []string { return append([]string(nil), r.warnings...) }

// SetInterface names the interface Cloudflare's packets arrive on, so rules
// comparing `iif` / `iifname` with it can be evaluated. Without it those
// rules are CannotTell (except against loopback, which never matches).
func (r *Ruleset) SetInterface(name string, index uint32) {
	r.ifName, r.ifIndex = name, index
}
