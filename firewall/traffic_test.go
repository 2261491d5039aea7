package firewall

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// dialTimeout is shorter than TCP's first SYN retransmission (1 s), so a
// SYN dropped by the firewall shows as a failed dial instead of being
// hidden by the retransmission; on a veth a handshake takes microseconds.
const dialTimeout = 800 * time.Millisecond

// exchange connects from src (may be invalid: any) to dst and reads "ok".
// It runs on the calling goroutine, which must be inside the namespace.
func exchange(src netip.Addr, dst netip.AddrPort) error {
	d := net.Dialer{Timeout: dialTimeout}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := d.Dial("tcp", dst.String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return fmt.Errorf("read %q", b)
	}
	return nil
}

func reaches(ns *nstest.NS, src, dst string) error {
	var s netip.Addr
	if src != "" {
		s = netip.MustParseAddr(src)
	}
	return ns.Do(func() error { return exchange(s, netip.MustParseAddrPort(dst)) })
}

// edgeAndOrigin joins an "edge" namespace to an origin guarded by cfguard:
// the edge has a stand-in Cloudflare address (198.51.100.10,
// 2001:db8:cf::10) and another one (192.0.2.2, 2001:db8:1::2).
func edgeAndOrigin(t *testing.T) (edge, origin *nstest.NS) {
	nstest.RequireRoot(t, "nft")
	edge, origin = nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, edge, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, []string{"192.0.2.2/24", "2001:db8:1::2/64"})
	edge.Run("ip", "addr", "add", "198.51.100.10/32", "dev", "lo")
	edge.Run("ip", "addr", "add", "2001:db8:cf::10/128", "dev", "lo")
	origin.Run("ip", "route", "add", "198.51.100.10/32", "via", "192.0.2.2")
	origin.Run("ip", "route", "add", "2001:db8:cf::10/128", "via", "2001:db8:1::2")
	linkReady(t, edge, origin, "[2001:db8:1::1]:9", "2001:db8:cf::10", "2001:db8:1::2")
	return edge, origin
}

// readyAttempts bounds the wait for a fresh veth to carry IPv6: the first
// neighbour solicitation on a new link is often lost, so the first
// connection over it may time out whatever the firewall does.
const readyAttempts = 10

// linkReady connects from each src in from to dst (a port no firewall
// guards) until it works, before the test starts counting.
func linkReady(t *testing.T, from, to *nstest.NS, dst string, srcs ...string) {
	t.Helper()
	var ln net.Listener
	if err := to.Do(func() (err error) { ln, err = net.Listen("tcp", dst); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	for _, src := range srcs {
		var err error
		for range readyAttempts {
			if err = reaches(from, src, dst); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("link not ready: %s -> %s: %v", src, dst, err)
		}
	}
}

// From the edge, a stand-in Cloudflare address reaches the origin's 443
// and 80, another address does not, and port 22 answers both, over IPv4
// and IPv6.
func TestGuardsTraffic(t *testing.T) {
	edge, origin := edgeAndOrigin(t)
	for _, port := range []string{"80", "443", "22"} {
		origin.Serve(t, "[::]:"+port)
	}
	mustApply(t, manager(t, origin, testCfg), standIn)
	for _, tc := range []struct {
		src, dst string
		ok       bool
	}{
		{"198.51.100.10", "192.0.2.1:443", true},
		{"198.51.100.10", "192.0.2.1:80", true},
		{"198.51.100.10", "192.0.2.1:22", true},
		{"192.0.2.2", "192.0.2.1:443", false},
		{"192.0.2.2", "192.0.2.1:80", false},
		{"192.0.2.2", "192.0.2.1:22", true},
		{"2001:db8:cf::10", "[2001:db8:1::1]:443", true},
		{"2001:db8:cf::10", "[2001:db8:1::1]:80", true},
		{"2001:db8:1::2", "[2001:db8:1::1]:443", false},
		{"2001:db8:1::2", "[2001:db8:1::1]:22", true},
	} {
		err := reaches(edge, tc.src, tc.dst)
		if (err == nil) != tc.ok {
			t.Errorf("%s -> %s: err %v, want reachable=%v", tc.src, tc.dst, err, tc.ok)
		}
	}
	// Loopback on the origin itself is never guarded.
	if err := reaches(origin, "", "127.0.0.1:443"); err != nil {
		t.Errorf("origin loopback -> 443: %v", err)
	}
}

// hammerReplaces is how many times the set content is replaced while the
// edge connects from an allowed address.
const hammerReplaces = 300

// Replacing the sets' content hundreds of times, alternating two lists
// that both hold the client's range, loses no connection.
func TestAtomicReplaceLosesNoConnection(t *testing.T) {
	edge, origin := edgeAndOrigin(t)
	origin.Serve(t, "[::]:443")
	m := manager(t, origin, testCfg)
	a := standIn
	b := Want{
		Cloudflare: pfx("198.51.100.0/25", "198.51.100.128/25", "2001:db8:cf::/48", "192.0.2.128/25", "2001:db8:cf2::/48"),
		Allow:      pfx("192.0.2.200/32"),
	}
	mustApply(t, m, a)

	var (
		stop       atomic.Bool
		ok, failed atomic.Int64
		firstErr   error
		wg         sync.WaitGroup
		v4, v6     = netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("2001:db8:cf::10")
		dst4, dst6 = netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("[2001:db8:1::1]:443")
		started    = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		edge.Do(func() error {
			close(started)
			for i := 0; !stop.Load() || i < 2; i++ {
				src, dst := v4, dst4
				if i%2 == 1 {
					src, dst = v6, dst6
				}
				if err := exchange(src, dst); err != nil {
					if failed.Add(1) == 1 {
						firstErr = err
					}
					continue
				}
				ok.Add(1)
			}
			return nil
		})
	}()
	<-started
	// At least hammerReplaces replaces, and on until the edge has made as
	// many connections, unless one failed already (bounded: each
	// connection either succeeds or fails within dialTimeout).
	replaces := 0
	for ; replaces < hammerReplaces || (ok.Load()+failed.Load() < hammerReplaces && failed.Load() == 0); replaces++ {
		i := replaces
		w := a
		if i%2 == 0 {
			w = b
		}
		c, err := m.Apply(ctxT(t), w)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
		if c.Empty() {
			t.Fatalf("replace %d changed nothing", i)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d replaces, %d connections, %d failed", replaces, ok.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d connection(s) lost while replacing the sets; first: %v", n, firstErr)
	}
	if ok.Load() == 0 {
		t.Error("no connection made")
	}
}
