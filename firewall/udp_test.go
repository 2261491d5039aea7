package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// udpWait bounds the wait for a marker datagram that does arrive; a
// datagram that the firewall drops is told apart by ordering, not by time:
// it is sent before the marker on the same path, so once the marker is in,
// an accepted datagram is already queued on its socket.
const udpWait = 2 * time.Second

// udpAfterMarker is how long an accepted datagram may still take to show
// on its socket once the marker sent after it is in (on a loaded machine).
const udpAfterMarker = 500 * time.Millisecond

func listenUDP(t *testing.T, ns *nstest.NS, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() error {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", a)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendUDP sends msg to dst, then marker to ctl, from one socket bound to
// src (any if invalid), one after the other on one thread.
func sendUDP(from *nstest.NS, src netip.Addr, dst, ctl netip.AddrPort, msg, marker string) error {
	return from.Do(func() error {
		la := &net.UDPAddr{}
		if src.IsValid() {
			la = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		c, err := net.ListenUDP("udp", la)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
			return err
		}
		_, err = c.WriteToUDPAddrPort([]byte(marker), ctl)
		return err
	})
}

// udpPath sends from src to a guarded port, then a marker to a port no
// firewall guards on the same host, and reports whether the first arrived.
type udpPath struct {
	t        *testing.T
	from     *nstest.NS
	web, ctl *net.UDPConn
	n        int
}

func (u *udpPath) arrives(src netip.Addr, web, ctl netip.AddrPort) bool {
	u.t.Helper()
	for range readyAttempts { // the first datagrams on a fresh IPv6 link may wait for neighbour discovery
		u.n++
		msg, marker := fmt.Sprintf("web-%d", u.n), fmt.Sprintf("marker-%d", u.n)
		if err := sendUDP(u.from, src, web, ctl, msg, marker); err != nil {
			u.t.Fatal(err)
		}
		if !readUntil(u.ctl, marker, time.Now().Add(udpWait)) {
			continue
		}
		return readUntil(u.web, msg, time.Now().Add(udpAfterMarker))
	}
	u.t.Fatalf("marker datagrams from %s to %s never arrived", src, ctl)
	return false
}

// readUntil reads datagrams until one is want, or the deadline.
func readUntil(c *net.UDPConn, want string, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == want {
			return true
		}
	}
}

// UDP to a web port (HTTP/3, QUIC) is dropped from everyone, Cloudflare's
// ranges too (Cloudflare never reaches an origin over UDP), over IPv4 and
// IPv6; UDP to other ports and loopback UDP pass; TCP from Cloudflare and
// SSH still answer.
func TestDropsUDPToWebPorts(t *testing.T) {
	edge, origin := edgeAndOrigin(t)
	for _, port := range []string{"443", "22"} {
		origin.Serve(t, "[::]:"+port)
	}
	u := &udpPath{t: t, from: edge, web: listenUDP(t, origin, "[::]:443"), ctl: listenUDP(t, origin, "[::]:5353")}
	web4, ctl4 := netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("192.0.2.1:5353")
	web6, ctl6 := netip.MustParseAddrPort("[2001:db8:1::1]:443"), netip.MustParseAddrPort("[2001:db8:1::1]:5353")
	stranger4, cf4 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.10")
	stranger6, cf6 := netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db8:cf::10")

	// Without cfguard, UDP 443 is open to anyone: the test can see a datagram arrive.
	if !u.arrives(stranger4, web4, ctl4) {
		t.Fatal("before cfguard, UDP 443 from 192.0.2.2 did not arrive")
	}
	mustApply(t, manager(t, origin, testCfg), standIn)
	for _, tc := range []struct {
		name     string
		src      netip.Addr
		web, ctl netip.AddrPort
	}{
		{"stranger v4", stranger4, web4, ctl4},
		{"cloudflare v4", cf4, web4, ctl4},
		{"stranger v6", stranger6, web6, ctl6},
		{"cloudflare v6", cf6, web6, ctl6},
	} {
		if u.arrives(tc.src, tc.web, tc.ctl) {
			t.Errorf("UDP %s -> %s arrived, want dropped", tc.src, tc.web)
		}
	}
	// Loopback UDP to 443 on the origin itself passes.
	lo := &udpPath{t: t, from: origin, web: u.web, ctl: u.ctl, n: 1000}
	if !lo.arrives(netip.Addr{}, netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("127.0.0.1:5353")) {
		t.Error("loopback UDP to 443 was dropped")
	}
	for _, tc := range []struct{ src, dst string }{
		{"198.51.100.10", "192.0.2.1:443"}, {"2001:db8:cf::10", "[2001:db8:1::1]:443"},
		{"192.0.2.2", "192.0.2.1:22"}, {"2001:db8:1::2", "[2001:db8:1::1]:22"},
	} {
		if err := reaches(edge, tc.src, tc.dst); err != nil {
			t.Errorf("TCP %s -> %s: %v, want reachable", tc.src, tc.dst, err)
		}
	}
}

// dockerUDPNAT publishes UDP 443 (HTTP/3) to a container's 8443, and UDP
// 5353 to its 5353, the way Docker does.
const dockerUDPNAT = `table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local udp dport 443 dnat to 192.0.2.66:8443
		fib daddr type local udp dport 5353 dnat to 192.0.2.66:5353
	}
}
`

// UDP DNAT'ed from a web port to a container is dropped in the forward
// chain, from Cloudflare's ranges too; other published UDP passes.
func TestForwardDropsUDPToPublishedPorts(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	client, origin, ctr := nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, client, []string{"192.0.2.1/26"}, []string{"192.0.2.2/26"})
	nstest.Link(t, origin, ctr, []string{"192.0.2.65/26"}, []string{"192.0.2.66/26"})
	client.Run("ip", "addr", "add", "198.51.100.10/32", "dev", "lo")
	ctr.Run("ip", "route", "add", "default", "via", "192.0.2.65")
	origin.Run("ip", "route", "add", "198.51.100.10/32", "via", "192.0.2.2")
	origin.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	loadNft(t, origin, dockerUDPNAT)
	u := &udpPath{t: t, from: client, web: listenUDP(t, ctr, "0.0.0.0:8443"), ctl: listenUDP(t, ctr, "0.0.0.0:5353")}
	web, ctl := netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("192.0.2.1:5353")
	stranger, cf := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.10")

	if !u.arrives(stranger, web, ctl) {
		t.Fatal("before cfguard, UDP to the published 443 did not arrive")
	}
	mustApply(t, manager(t, origin, testCfg), standIn)
	for _, src := range []netip.Addr{stranger, cf} {
		if u.arrives(src, web, ctl) {
			t.Errorf("UDP %s -> published 443 arrived, want dropped", src)
		}
	}
}
