// Package firewall keeps Cloudflare's ranges in cfguard's own nftables
// table, `inet cfguard`, over netlink: it reads the table back, plans the
// difference and applies it in one kernel transaction.
//
// # The table
//
//	table inet cfguard
//	  comment "managed by cfguard"  (the mark: see Ownership)
//	  set cloudflare4, allow4   ipv4_addr, flags interval
//	  set cloudflare6, allow6   ipv6_addr, flags interval
//	  set web_ports             inet_service
//	  chain input    hook input   priority filter - 10, policy accept
//	    iif "lo" accept
//	    tcp dport @web_ports ip saddr @cloudflare4 accept   (and allow4, and ip6 with cloudflare6, allow6)
//	    tcp dport @web_ports drop
//	    udp dport @web_ports drop
//	  chain forward  hook forward priority filter - 10, policy accept
//	    meta l4proto tcp ct direction original ct status dnat ct original proto-dst @web_ports
//	        ip saddr @cloudflare4 accept                     (and allow4, cloudflare6, allow6)
//	    … drop
//	    meta l4proto udp ct direction original ct status dnat ct original proto-dst @web_ports drop
//
// UDP to a web port is dropped from everyone: Cloudflare never reaches an
// origin over UDP, so `listen 443 quic` (HTTP/3) would otherwise answer the
// whole world. Loopback is accepted first.
//
// # Ownership
//
// cfguard writes, repairs or deletes only a table it created. It creates
// its table with the comment Mark in the table's userdata
// (NFTA_TABLE_USERDATA, encoded as nft encodes a table comment);
// nftables v0.3.0 cannot write that attribute, so the transaction is built
// with the library on a recording connection and sent, with the attribute
// added to its NEWTABLE, on the Manager's own socket (batch.go): still one
// transaction. The kernel keeps a table's userdata from its creation and
// ignores it on updates, so an existing table cannot come to carry the
// mark after the fact. A table of the configured name without the mark is
// refused (*NotOwnedError, one line, nothing sent); status reports it and
// reads none of its content.
//
// A table made by an earlier cfguard has no mark. One that is exactly the
// old layout (these sets with their types and flags, the chains above
// without the UDP rules, no comment, not dormant, nothing else: the
// kernel's use count of the table is 7) is adopted: deleted and made again,
// marked, in one transaction, once. Any other unmarked table is refused; if
// it has cfguard's set names the refusal says how to start over (`nft
// delete table inet cfguard` then `cfguard sync`).
//
// Render prints it exactly as `nft list table inet cfguard` does.
//
// # Hooks and priorities
//
//	prerouting                      input (-10: cfguard, 0: filter tables) → local process
//	  conntrack -200, DNAT -100  →
//	                                forward (-10: cfguard, 0: filter, Docker's DOCKER-USER) → container
//
// Both chains use priority filter - 10 (-10). Every base chain on a hook
// runs for a packet, in priority order across all tables; an accept ends
// only its own chain, a drop anywhere is final. So cfguard's drop holds
// whatever another table accepts, and cfguard's accept never overrides
// another table's drop: cfguard only ever narrows who reaches the web
// ports. -10 runs it before the usual filter chains (a connection cfguard
// drops is not counted or logged by them) and well after conntrack (-200)
// and DNAT (-100, on prerouting), so `ct status dnat` and `ct original
// proto-dst` are known in the forward chain. Policies are accept: cfguard
// never drops a packet it has no rule for, so SSH and every other port are
// untouched, and a chain being rebuilt fails open, never closed.
//
// Ports published by Docker are DNAT'ed in prerouting and then pass the
// forward hook, not input. The forward chain matches only the original
// direction of TCP connections that were DNAT'ed and whose destination
// port BEFORE DNAT is a web port (443 published to a container's 8080 is
// guarded). Replies, the host's and containers' outbound connections and
// plainly routed traffic never match.
//
// # Why flush and refill sets, not recreate the table
//
// Deleting and re-creating the table, even inside one transaction, lost
// connections from allowed addresses in a test (2-3 in 70 replaces); the
// table and chains that stay while their sets are flushed and refilled in
// one transaction lost none in 3,000. So Apply keeps the table and chains
// and, when the content changed, sends FlushSet + the new elements of
// every changed set in one batch (one Conn.Flush, one kernel
// transaction): no packet ever sees an empty or half-filled set, and a
// transaction the kernel refuses leaves everything as it was. When the
// kernel already holds the wanted state Apply sends nothing at all.
//
// Drift (a chain whose hook, priority, type, policy or rules changed, a
// missing chain or set, a set of the wrong type, a dormant table, or
// objects in the table that cfguard did not make) is repaired in that same
// transaction, in a table that carries the mark: cfguard owns the whole
// table. Objects are recreated in
// cfguard's order so that the table keeps listing as Render prints it.
// Other tables are never read for writing, flushed or renamed.
//
// # Interval sets
//
// Intervals are end-exclusive ({first} + {last+1, end}); a range reaching
// the top of the address space is a start element alone. The kernel
// refuses overlapping intervals rather than merging them, so prefixes are
// merged with netipx first (Normalize). Elements read back in descending
// order and sets written by the nft tool carry a 0.0.0.0 end sentinel;
// RangesFromElements handles both.
//
// # nftables v0.3.0 workarounds
//
// Rules are dumped with this package's own netlink request: the library's
// GetRules fails on `ct original …` (NFTA_CT_DIRECTION is a u8, it reads a
// u32) and silently drops expressions it does not know. Tables are read
// with our own request too (getTable): the library decodes table flags in
// host byte order and drops the userdata.
package firewall
