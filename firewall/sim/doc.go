// Package sim predicts what the live nftables ruleset does to the packets
// a connection from a Cloudflare address to this origin needs, so `cfguard
// verify` can name the table, chain and rule that would drop or reject them.
//
// # What is modelled
//
// Read takes a snapshot of every table over netlink. Check walks, for the
// packet's family, every base chain on the prerouting hook and then every
// base chain on the input hook (for this host's answers: output, then
// postrouting) of the inet, ip (IPv4) and ip6 (IPv6) tables,
// in priority order across tables, as the kernel does: an accept ends only
// its chain (the next base chain still runs), a drop or reject anywhere is
// final, jump/goto/return follow the call stack, and a base chain that runs
// off its end applies its policy. Dormant tables are not hooked. Base chains
// of one hook and one priority run in the order they were registered, which
// netlink does not show: each is run on its own; if only one decides, or
// all that decide agree, that verdict stands; if they disagree (one rejects,
// another drops) the answer is CannotTell naming both chains.
//
// Check judges the whole exchange, in the order the packets arrive:
//
//   - IPv6 only: the neighbour solicitation an on-link router sends to the
//     origin address's solicited-node multicast address (ICMPv6 type 135,
//     hop limit 255, untracked by conntrack, from an address that is not
//     known). If it does not get through, no packet reaches the address:
//     Drop, whatever the SYN meets. A unicast solicitation (the router
//     re-checking reachability) or the advertisement answering this host's
//     own solicitation that does not get through is CannotTell: IPv6 then
//     fails only when the neighbour caches expire;
//   - the TCP SYN of a new connection (`ct state new`, `ct direction
//     original`);
//   - the packets after it: the handshake's ACK and the data (`ct state
//     established`, ACK set, SYN / RST / FIN / URG clear, the same
//     addresses and ports). A ruleset that accepts `ct state new` but not
//     `established` accepts the SYN and drops the rest;
//   - this host's answers (the SYN-ACK, ACKs and data) through every base
//     chain on output, then on postrouting: `ct state established`, the
//     reply direction, from the served port to Cloudflare's (unknown) port,
//     `oif` not lo. IPv6: also the neighbour advertisement this host answers
//     a solicitation with (untracked, from the origin address); if it does
//     not get out, Drop.
//
// The answer to the SYN (the SYN-ACK) comes before the packets after the
// SYN: when neither is let through, the answer's result is the one given.
//
// Chains of type nat run for the SYN only, as in the kernel (later packets
// reuse the mapping; untracked ones have none). A reject answers with a TCP
// reset or an ICMP error that leaves through output and postrouting with
// `ct state related` (checked against the kernel): if that answer is
// dropped, Cloudflare sees a timeout and the result is Drop, naming the
// rejecting rule, with the output rule in Reason. A reject on output
// answers this host itself: Cloudflare sees a timeout (Drop).
//
// Result.Packet names the packet that was not accepted.
//
// Packets arrive on some interface other than loopback. Registers are
// modelled bit by bit with a "known" mask: fields the simulator knows (the
// addresses, the destination port, the protocol, the TCP flags above) are
// known; fields it cannot know (the source port, the TTL, the interface name,
// the mark) are unknown. A comparison that depends on an unknown bit, and any
// expression that is not modelled (iptables-nft compat matches and targets
// other than those listed below, verdict and data maps, concatenations,
// fib, socket, limit, quota, connlimit, dynset, numgen, a DNAT other than
// those below, SNAT, redirect, ...), makes the answer CannotTell with a Reason naming it, unless a later
// comparison of the same rule certainly fails, or the rest of that rule has
// no effect (no verdict, reject or NAT): then the rule is skipped as the
// kernel would skip it either way. The simulator never guesses.
//
// # DNAT in prerouting (published ports, Docker)
//
// A DNAT in a nat chain on prerouting (reached from it through jumps too)
// whose match can be decided and whose target is one address and one port
// (native `dnat ip to 192.0.2.130:8080`, `dnat ip6 to [2001:db8:c::2]:8080`,
// and iptables-nft's DNAT target revisions 0-2 as Docker makes it) is
// followed: the SYN's destination is rewritten there, later chains see the
// new one, and later nat chains on prerouting are skipped, as in the
// kernel. Then the routing decision (Ruleset.SetRouter) sends it to input
// (an address of this host) or through forward and postrouting toward the
// new address, with the output interface known (Docker's `-o docker0`).
// The packets after the SYN see the original destination in prerouting
// chains before priority -100 and the translated one after it (at -100
// itself: unknown); the answers of the host behind the DNAT come back
// through prerouting, forward and postrouting from the translated source,
// which is translated back at postrouting priority 100. `ct status dnat`,
// `ct direction` and `ct original proto-dst` (cfguard's own forward chain)
// are known. Result.DNAT names the translation, whatever the verdict. A
// range of addresses or ports, a netmap, a port offset, a DNAT to
// loopback (route_localnet), a DNAT in a chain tied with other base chains
// of its priority, or a translated destination whose route is not known
// is CannotTell with the reason. The predictions are checked against real
// connections through a real DNAT to a third namespace (nat_test.go).
//
// # Ranges of source addresses
//
// CheckPrefix judges every address of a range: it cuts the range at each
// boundary of the blocks that prefix comparisons, ranges and set lookups of
// the source address cut (in any family a rule can see, after its `meta
// nfproto` guard), and judges one address per piece. A comparison of
// source-address bits that do not form a prefix (`ip saddr & 0.0.0.1 ==
// 0.0.0.1`, a raw `@nh,120,8` load), when reached for a piece whose addresses
// differ in those bits, splits the piece into the prefixes that fix them,
// each judged again, up to 4096 pieces per range; beyond that the piece is
// CannotTell naming the rule. Each chain indexes its rules by their first
// source-address condition, so a check skips the rules that cannot match:
// the cost grows with the pieces and the rules that can match each, not with
// pieces × rules.
//
// Connection tracking runs on prerouting (and on output, for this host's
// answers) at priority -200. Chains before it (the raw priority, -300) see
// no conntrack entry: there `ct state` is invalid (so `ct state new` does
// not match) and other ct keys end the rule, as in the kernel; a chain at
// -200 itself is CannotTell for anything about conntrack (which of the two
// runs first is not known). Neighbour discovery is untracked: `ct state
// untracked` matches it and other ct keys end the rule.
//
// Interfaces: `iif lo` and `iifname "lo"` never match (Cloudflare's packets
// do not arrive on loopback), nor do `oif lo` / `oifname "lo"` for this
// host's answers; an incoming packet has no output interface (oif 0,
// oifname "") and an answer no input interface. Any other interface
// comparison is CannotTell unless the caller names the interface with
// Ruleset.SetInterface (taken for both directions).
//
// # iptables-nft and ufw (compat expressions)
//
// iptables-nft (and ufw, which drives it) compiles plain matches (-p, -s,
// -d, -i, --dport, --tcp-flags) to native expressions, but keeps most -m
// matches and the targets other than ACCEPT/DROP/RETURN/jumps as xtables
// code that the kernel runs with a binary info struct. Read takes those
// structs from the raw netlink dump and decodes, by name, revision and exact
// size (the layouts of the uapi headers on 64-bit Linux):
//
//   - conntrack revisions 1, 2, 3 (also what -m state becomes): --ctstate
//     (new matches; established, related, invalid, untracked do not; snat /
//     dnat alone: CannotTell) and --ctdir; any other conntrack condition
//     (addresses, ports, status, expiry) is CannotTell unless the state or
//     direction already fails;
//   - state revision 0 (xt_state);
//   - multiport revision 1: ports, ranges, !, --dports / --sports / --ports
//     (the source port is unknown, so only a full 0:65535 range is sure);
//   - tcp and udp revision 0 (older iptables-nft): port ranges and !,
//     --tcp-flags over the known flag bits (ECE/CWR are unknown), and a
//     --tcp-option is CannotTell;
//   - addrtype revision 1: --dst-type, taking the destination as a unicast
//     address of this host (IPv4: its type is LOCAL only; IPv6: UNICAST and
//     LOCAL match, MULTICAST and UNSPEC do not); --src-type and
//     --limit-iface-in/out are CannotTell;
//   - rt revision 0 (ip6 tables): never matches, as the SYN carries no
//     extension header;
//   - icmp / icmp6 revision 0 (ip / ip6 tables): the type and code range,
//     and !, over the packet's known ICMP header (neighbour discovery);
//   - ttl / hl revision 0 (ip / ip6 tables): ==, !=, <, > over a known TTL or
//     hop limit (255 for neighbour discovery; unknown for TCP);
//   - comment: always matches;
//   - targets LOG and NFLOG: the rule goes on without a verdict; REJECT
//     (any valid --reject-with): Reject.
//
// A limit match (a rate) and recent (a per-source history) are CannotTell
// where the rule's verdict matters; a rule such as `-m limit -j LOG` has no
// verdict and is skipped. Any other name, revision or info size is
// CannotTell with a Reason naming it. Each decoded match is checked against
// the kernel: rules made with iptables-nft and with Debian's ufw in test
// namespaces, and the older revisions added through netlink with their
// info structs (iptables_test.go, ufw_test.go, xt_test.go).
//
// # iptables-legacy
//
// Rules made by iptables-legacy live outside nftables and netlink does not
// show them. Read looks for legacy tables in /proc/net/ip_tables_names and
// /proc/net/ip6_tables_names of the namespace it reads (the files are
// per-namespace and follow the reading thread, so for another namespace Read
// switches one locked OS thread into it to read them). If any exist, Warnings
// says so and every Accept of that IP family becomes CannotTell (a legacy
// rule may still drop the packet; ip_tables sees only IPv4 packets and
// ip6_tables only IPv6 ones); a Drop or Reject found in nftables stays, since
// it is final whatever the legacy rules do, with the legacy tables noted in
// its Reason. Listing with iptables-legacy (-L, -S) is enough to create an
// empty filter table in a namespace, so a table may hold no rule at all: the
// simulator cannot tell that either.
//
// # Rejects
//
// Reject means the ruleset rejects (a TCP reset or an ICMP error). A Linux
// client that connects without IP_RECVERR treats an ICMP error during the
// handshake as soft and keeps retrying until its own timeout, so an ICMP
// reject can look like a drop to it; a TCP reset is refused at once. The
// kernel tests set IP_RECVERR / IPV6_RECVERR to see ICMP rejects as such.
//
// # Netdev ingress
//
// Chains on the ingress hook (netdev tables, or inet tables since Linux 5.10)
// run before prerouting and are not evaluated: if one has any rule or a drop
// policy, the result is CannotTell.
package sim
