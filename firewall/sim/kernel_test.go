package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/google/go-cmp/cmp"
)

// dialTimeout is how long a probe waits for the handshake: a dropped SYN
// shows as this timeout, an accept or a reject answers within milliseconds.
const dialTimeout = 500 * time.Millisecond

// readCtxTimeout bounds one Read in the tests.
const readCtxTimeout = 10 * time.Second

// The test network: the origin and a client on one veth; the client also
// holds addresses in the stand-in Cloudflare ranges and the origin routes
// those ranges back to it.
var (
	origin4 = netip.MustParseAddr("192.0.2.1")
	origin6 = netip.MustParseAddr("2001:db8:1::1")

	other4 = "192.0.2.2"        // not Cloudflare
	other6 = "2001:db8:1::2"    // not Cloudflare
	cfA    = "198.51.100.10"    // in 198.51.100.0/24
	cfB    = "203.0.113.10"     // in 203.0.113.0/25
	cfC    = "203.0.113.200"    // in 203.0.113.128/25
	cfD    = "198.51.100.11"    // in 198.51.100.0/24, odd
	cf6A   = "2001:db8:cf::10"  // in 2001:db8:cf::/48
	cf6B   = "2001:db8:cf1::10" // in 2001:db8:cf1::/48

	clientAddrs = []string{"192.0.2.2/24", "2001:db8:1::2/64", cfA + "/32", cfB + "/32", cfC + "/32", cfD + "/32", cf6A + "/128", cf6B + "/128"}

	backRoutes = [][]string{
		{"198.51.100.0/24", "via", "192.0.2.2"}, {"203.0.113.0/24", "via", "192.0.2.2"},
		{"2001:db8:cf::/48", "via", "2001:db8:1::2"}, {"2001:db8:cf1::/48", "via", "2001:db8:1::2"},
	}
	listenPorts = []uint16{22, 80, 81, 82, 83, 84, 85, 86, 87, 88, 443, 8000, 8080, 8443, 9000}
)

// probe is one packet-tracer row: the simulator's verdict for a SYN from src
// to the origin's address of that family on port, and what a real
// connection does (the same, unless the simulator cannot tell).
type probe struct {
	src    string
	port   uint16
	want   Verdict
	real   Verdict // for CannotTell rows: what the kernel does
	rule   string  // if set: the deciding rule's text
	reason string  // if set: a substring of Reason
}

type prefixProbe struct {
	prefix string
	port   uint16
	want   []string // "from-to verdict"
}

var kernelCases = []struct {
	file     string
	probes   []probe
	prefixes []prefixProbe
}{
	{file: "empty.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 80, want: Accept},
		{src: other4, port: 8443, want: Accept},
	}},
	{file: "inet_policy_drop.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfC, port: 80, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "policy drop"},
		{src: other4, port: 443, want: Drop, rule: "policy drop"},
		{src: cf6A, port: 443, want: Accept},
		{src: cf6B, port: 443, want: Drop, rule: "policy drop"},
	}},
	{file: "ip_partial.nft", probes: []probe{
		{src: cfB, port: 443, want: Drop, rule: "ip saddr 203.0.113.0/25 drop"},
		{src: cfC, port: 443, want: Accept},
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 443, want: Accept},
	}, prefixes: []prefixProbe{
		{prefix: "203.0.113.0/24", port: 443, want: []string{"203.0.113.0-203.0.113.127 drop", "203.0.113.128-203.0.113.255 accept"}},
		{prefix: "198.51.100.0/24", port: 443, want: []string{"198.51.100.0-198.51.100.255 accept"}},
	}},
	{file: "ip6_only.nft", probes: []probe{
		{src: cf6A, port: 443, want: Drop, rule: "ip6 saddr 2001:db8:cf::/48 tcp dport 443 counter drop"},
		{src: cf6A, port: 80, want: Accept},
		{src: cf6B, port: 443, want: Accept},
		{src: cfA, port: 443, want: Accept},
	}, prefixes: []prefixProbe{
		{prefix: "2001:db8:cf::/47", port: 443, want: []string{"2001:db8:ce::-2001:db8:ce:ffff:ffff:ffff:ffff:ffff accept", "2001:db8:cf::-2001:db8:cf:ffff:ffff:ffff:ffff:ffff drop"}},
	}},
	{file: "reject.nft", probes: []probe{
		{src: cfA, port: 443, want: Reject, rule: "ip saddr 198.51.100.0/24 tcp dport 443 reject with tcp reset"},
		{src: cfA, port: 80, want: Accept},
		{src: cfB, port: 443, want: Accept},
		{src: cf6A, port: 443, want: Reject, rule: "ip6 saddr 2001:db8:cf::/48 tcp dport 443 reject"},
		{src: cfC, port: 8443, want: Reject, rule: "ip saddr 203.0.113.128/25 tcp dport 8443 reject with icmp code 13"},
		{src: cfB, port: 8443, want: Accept},
	}},
	{file: "jumps.nft", probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "tcp dport 443 drop"},
		{src: cfA, port: 80, want: Accept},
		{src: cfB, port: 443, want: Accept},
		{src: other4, port: 8080, want: Drop, rule: "drop"},
		{src: other4, port: 8443, want: Accept},
		{src: other6, port: 8080, want: Drop, rule: "drop"},
		{src: other4, port: 9000, want: Drop, rule: "policy drop"},
		{src: other6, port: 9000, want: Accept},
		{src: other4, port: 80, want: Accept},
	}},
	{file: "two_tables.nft", probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "ip saddr 198.51.100.0/24 tcp dport 443 drop"},
		{src: cfB, port: 443, want: Accept},
		{src: cfC, port: 80, want: Drop, rule: "ip saddr 203.0.113.200 drop"},
		{src: cf6A, port: 443, want: Accept},
	}},
	{file: "foreign_policy_drop.nft", probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "policy drop"},
		{src: cf6A, port: 443, want: Drop, rule: "policy drop"},
		{src: other4, port: 22, want: Accept},
	}},
	{file: "ct_state.nft", probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "ct state new ip saddr 198.51.100.0/24 tcp dport 443 drop"},
		{src: cfB, port: 443, want: Accept},
		{src: cf6A, port: 8443, want: Drop, rule: "ct state new tcp dport 8443 drop"},
		{src: cf6A, port: 443, want: Accept},
	}},
	{file: "before_conntrack.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "tcp dport 8443 ct state invalid drop"},
		{src: cf6A, port: 8443, want: Drop},
		{src: cfA, port: 80, want: Accept},
		{src: cfA, port: 81, want: Accept},
		{src: cf6A, port: 82, want: Drop, rule: "tcp dport 82 ct state new drop"},
	}},
	{file: "port_range.nft", probes: []probe{
		{src: cfA, port: 8000, want: Drop, rule: "tcp dport >= 8000 tcp dport <= 8999 drop"},
		{src: cfA, port: 8443, want: Drop},
		{src: cfA, port: 9000, want: Accept},
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 9000, want: Drop, rule: "ip6 saddr 2001:db8:cf::/48 tcp dport != 1-1023 drop"},
		{src: cf6A, port: 443, want: Accept},
	}},
	{file: "negated_set.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfB, port: 443, want: Accept},
		{src: cfC, port: 443, want: Drop, rule: "ip saddr != @cf4 tcp dport 443 drop"},
		{src: other4, port: 443, want: Drop},
		{src: other4, port: 80, want: Accept},
		{src: cf6A, port: 443, want: Accept},
		{src: cf6B, port: 443, want: Drop, rule: "ip6 saddr != { 2001:db8:cf::/48, 2001:db8:cf1:1::/64 } tcp dport 443 drop"},
	}, prefixes: []prefixProbe{
		{prefix: "203.0.113.0/24", port: 443, want: []string{"203.0.113.0-203.0.113.127 accept", "203.0.113.128-203.0.113.255 drop"}},
		{prefix: "2001:db8:cf1::/48", port: 443, want: []string{
			"2001:db8:cf1::-2001:db8:cf1:0:ffff:ffff:ffff:ffff drop",
			"2001:db8:cf1:1::-2001:db8:cf1:1:ffff:ffff:ffff:ffff accept",
			"2001:db8:cf1:2::-2001:db8:cf1:ffff:ffff:ffff:ffff:ffff drop"}},
	}},
	{file: "cfguard.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cfC, port: 80, want: Accept},
		{src: cf6A, port: 443, want: Accept},
		{src: cf6B, port: 80, want: Accept},
		{src: other4, port: 443, want: Drop, rule: "tcp dport @web_ports drop"},
		{src: other6, port: 80, want: Drop, rule: "tcp dport @web_ports drop"},
		{src: other4, port: 8443, want: Accept},
	}, prefixes: []prefixProbe{
		{prefix: "203.0.113.0/24", port: 443, want: []string{"203.0.113.0-203.0.113.255 accept"}},
		{prefix: "192.0.2.0/24", port: 443, want: []string{"192.0.2.0-192.0.2.255 drop"}},
	}},
	{file: "dormant.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 80, want: Accept},
		{src: cfA, port: 8443, want: Drop, rule: "tcp dport 8443 drop"},
	}},
	{file: "tied_priority.nft", probes: []probe{
		{src: cfA, port: 80, want: CannotTell, real: Drop, reason: "inet a input (rejects) and inet b input (drops)"},
		{src: cf6A, port: 80, want: CannotTell, real: Drop, reason: "same priority 0"},
		{src: cfA, port: 81, want: Drop, rule: "tcp dport 81 drop"},
		{src: cfA, port: 82, want: Drop, rule: "tcp dport 82 drop"},
		{src: cfA, port: 83, want: Reject},
		{src: cfA, port: 84, want: Accept},
		{src: cfA, port: 85, want: Drop, rule: "tcp dport 85 drop"},
		{src: cf6A, port: 85, want: Accept},
	}},
	{file: "exchange.nft", probes: []probe{
		{src: cfA, port: 443, want: Drop, rule: "policy drop", reason: "the SYN is accepted, but the packets after it"},
		{src: cf6A, port: 80, want: Drop, rule: "policy drop", reason: "the SYN is accepted, but the packets after it"},
		{src: cfA, port: 8443, want: Accept},
		{src: cf6A, port: 8443, want: Accept},
		{src: cfA, port: 9000, want: Drop, rule: "policy drop"},
	}},
	{file: "nd_dropped.nft", probes: []probe{
		{src: cf6A, port: 443, want: Drop, rule: "policy drop", reason: "neighbour solicitations"},
		{src: cf6B, port: 80, want: Drop, rule: "policy drop", reason: "neighbour solicitations"},
		{src: cfA, port: 8443, want: Accept},
	}},
	{file: "saddr_bits.nft", probes: []probe{
		{src: cfA, port: 80, want: Accept},
		{src: cfD, port: 80, want: Drop, rule: "ip saddr & 0.0.0.1 == 0.0.0.1 tcp dport 80 drop"},
		{src: cfA, port: 81, want: Drop},
		{src: cfB, port: 81, want: Drop},
		{src: cfD, port: 81, want: Accept},
		{src: cfC, port: 81, want: Accept},
	}, prefixes: []prefixProbe{
		{prefix: "198.51.100.8/30", port: 80, want: []string{"198.51.100.8-198.51.100.8 accept", "198.51.100.9-198.51.100.9 drop",
			"198.51.100.10-198.51.100.10 accept", "198.51.100.11-198.51.100.11 drop"}},
		{prefix: "198.51.100.0/24", port: 81, want: []string{"198.51.100.0-198.51.100.9 accept", "198.51.100.10-198.51.100.10 drop", "198.51.100.11-198.51.100.255 accept"}},
		{prefix: "198.51.100.0/24", port: 443, want: []string{"198.51.100.0-198.51.100.255 accept"}},
		{prefix: "198.0.0.0/8", port: 80, want: []string{"198.0.0.0-198.255.255.255 cannot tell"}},
	}},
	{file: "reply.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 443, want: Accept},
		{src: cfA, port: 8443, want: Accept},
		{src: cfA, port: 80, want: Drop, rule: "policy drop", reason: "this host's answers to Cloudflare"},
		{src: cfA, port: 22, want: Drop, rule: "policy drop", reason: "this host's answers"},
		{src: cf6A, port: 81, want: Drop, reason: "this host's answers"},
	}},
	{file: "nd_out_dropped.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept},
		{src: cf6A, port: 443, want: Drop, rule: "policy drop", reason: "neighbour advertisements"},
	}},
	{file: "reject_answer.nft", probes: []probe{
		{src: cfA, port: 80, want: Drop, rule: "tcp dport 80 reject", reason: "its answer (an ICMP error, ct state related) is dropped on output"},
		{src: cf6A, port: 80, want: Drop, rule: "tcp dport 80 reject"},
		{src: cfA, port: 81, want: Reject},
		{src: cf6A, port: 81, want: Reject},
		{src: cfA, port: 443, want: Accept},
	}},
	{file: "prerouting_reject.nft", probes: []probe{
		{src: cfA, port: 80, want: Reject},
		{src: cf6A, port: 80, want: Reject},
		{src: cfA, port: 81, want: Reject},
		{src: cf6A, port: 81, want: Reject},
		{src: cfA, port: 82, want: Reject},
		{src: cf6A, port: 82, want: Reject},
		{src: cfA, port: 83, want: Reject},
		{src: cf6A, port: 83, want: Reject},
		{src: cfA, port: 84, want: Reject},
		{src: cf6A, port: 84, want: Reject},
	}},
	{file: "cannot_tell.nft", probes: []probe{
		{src: cfA, port: 443, want: Accept}, // passes `iifname "lo" drop`
		{src: cfA, port: 81, want: CannotTell, real: Accept, reason: "fib"},
		{src: cfA, port: 82, want: CannotTell, real: Accept, reason: "iifname"},
		{src: cfA, port: 83, want: CannotTell, real: Accept, reason: "limit"},
		{src: cfA, port: 84, want: CannotTell, real: Accept, reason: `"socket"`},
		{src: cfA, port: 8443, want: CannotTell, real: Drop, reason: "concatenation"},
		{src: cf6A, port: 8443, want: Accept},
		{src: cfA, port: 85, want: CannotTell, real: Drop, reason: "verdict map"},
		{src: cf6A, port: 86, want: CannotTell, real: Accept, reason: "verdict map"},
		{src: cfA, port: 87, want: CannotTell, real: Accept, reason: "meta mark", rule: "tcp dport 87 meta mark 0x00000001 drop"},
		{src: cfA, port: 88, want: CannotTell, real: Accept, reason: "tcp sport"},
		{src: other4, port: 8080, want: Accept}, // DNAT to 192.0.2.1:80 on this host (nat_test.go: to another host)
		{src: other6, port: 8080, want: Accept},
	}},
}

func TestAgainstKernel(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	for _, tc := range kernelCases {
		t.Run(strings.TrimSuffix(tc.file, ".nft"), func(t *testing.T) {
			t.Parallel()
			origin, client := pair(t)
			path, err := filepath.Abs(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			origin.Run("nft", "-f", path)
			ctx, cancel := context.WithTimeout(context.Background(), readCtxTimeout)
			defer cancel()
			rs, err := Read(ctx, origin.Fd())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if w := rs.Warnings(); len(w) > 0 {
				t.Errorf("unexpected warnings: %q", w)
			}

			checkProbes(t, rs, client, tc.probes)

			for _, pp := range tc.prefixes {
				pfx := netip.MustParsePrefix(pp.prefix)
				var got []string
				for _, pr := range rs.CheckPrefix(pfx, dstFor(pfx.Addr()), pp.port) {
					got = append(got, fmt.Sprintf("%v-%v %v", pr.From, pr.To, pr.Result.Verdict))
				}
				if d := cmp.Diff(pp.want, got); d != "" {
					t.Errorf("CheckPrefix(%s, :%d) (-want +got):\n%s", pp.prefix, pp.port, d)
				}
			}
		})
	}
}

// recvErr makes an ICMP error (an ICMP reject) fail the connect at once; by
// default Linux keeps retrying the SYN and only reports it on timeout, so it
// would look like a drop.
func recvErr(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, 1)
		} else {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func dstFor(src netip.Addr) netip.Addr {
	if src.Is4() {
		return origin4
	}
	return origin6
}

// pair makes the origin and client namespaces, with a listener on every
// probed port of the origin.
func pair(t *testing.T) (origin, client *nstest.NS) {
	origin, client = nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, client, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, clientAddrs)
	for _, r := range backRoutes {
		origin.Run("ip", append([]string{"route", "add"}, r...)...)
	}
	// Every ICMP reject must reach the client: no per-peer or global rate
	// limit on the origin's ICMP errors (these sysctls are per namespace).
	origin.Run("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
		"net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
	for _, port := range listenPorts {
		var ln net.Listener
		if err := origin.Do(func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
			return err
		}); err != nil {
			t.Fatalf("listen on :%d in the origin: %v", port, err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// One byte proves the packets after the SYN get through:
				// Accept returns only once the client's ACK arrived.
				c.Write([]byte("x"))
				c.Close()
			}
		}()
	}
	warmUp(t, client)
	return origin, client
}

// warmUpTimeout bounds the first connection from each client address, made
// before any ruleset is applied so neighbour discovery (which IPv6 does
// with the probe's own source address) is done before a probe is timed.
const warmUpTimeout = 5 * time.Second

func warmUp(t *testing.T, client *nstest.NS) {
	deadline := time.Now().Add(warmUpTimeout)
	for _, a := range clientAddrs {
		src := netip.MustParsePrefix(a).Addr()
		for dial(t, client, src, 22) != Accept {
			if time.Now().After(deadline) {
				t.Fatalf("cannot connect from %v to the origin before any ruleset", src)
			}
		}
	}
}

// solicitOrigin empties the client's neighbour cache and connects once
// from a stand-in Cloudflare address, so the client solicits the origin's
// IPv6 address again, under the ruleset (from that address: the source of a
// solicitation is not modelled, so rules on it are CannotTell for neighbour
// discovery); the probes that follow use the result.
func solicitOrigin(t *testing.T, client *nstest.NS) {
	client.Run("ip", "-6", "neigh", "flush", "all")
	dial(t, client, netip.MustParseAddr(cf6A), 22)
}

// dial connects from src (an address of the client) to the origin, reads
// the byte the origin's listener sends once it accepted (so the packets
// after the SYN must get through too) and says what the kernel did:
// answered (accept), timed out (drop) or refused / unreachable / reset
// (reject).
func dial(t *testing.T, client *nstest.NS, src netip.Addr, port uint16) Verdict {
	var err error
	client.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: dialTimeout,
			Control: recvErr}
		var c net.Conn
		c, err = d.Dial("tcp", netip.AddrPortFrom(dstFor(src), port).String())
		if err != nil {
			return nil
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(dialTimeout))
		_, err = c.Read(make([]byte, 1))
		return nil
	})
	var ne net.Error
	switch {
	case err == nil:
		return Accept
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ECONNRESET):
		return Reject
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return Drop
	}
	t.Errorf("dial %v → :%d: unexpected error %v", src, port, err)
	return CannotTell
}
