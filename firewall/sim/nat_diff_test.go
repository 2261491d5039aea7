package sim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

var dnatDiffN = flag.Int("sim.dnat.n", 16, "DNAT differential test: number of random rulesets")

// dnatTables publish the container's 8443 on the origin's :8443 and its
// 8080 on :80, IPv4 and IPv6, after the random tables (which for this
// test also hook forward, where the translated packets go).
const dnatTables = `table ip dnat4 {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.1 tcp dport 8443 dnat ip to 192.0.2.130:8443
		ip daddr 192.0.2.1 tcp dport 80 dnat ip to 192.0.2.130:8080
	}
}
table ip6 dnat6 {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr 2001:db8:1::1 tcp dport 8443 dnat ip6 to [2001:db8:c::2]:8443
		ip6 daddr 2001:db8:1::1 tcp dport 80 dnat ip6 to [2001:db8:c::2]:8080
	}
}
`

// TestDNATDifferential is TestDifferential with DNAT: random rulesets with
// forward chains, ports 80 and 8443 published to a container namespace
// behind the origin, real connections through them compared with the
// simulator (443 stays on the origin).
func TestDNATDifferential(t *testing.T) {
	nstest.RequireRoot(t, "nft", "iptables-nft", "ip6tables-nft")
	g := &gen{r: rand.New(rand.NewPCG(*diffSeed, 0xd4a7)), dnat: true}
	texts := make([]string, *dnatDiffN)
	cmds := make([][][]string, *dnatDiffN)
	for i := range texts {
		texts[i], cmds[i] = g.ruleset(), g.iptables()
	}
	dir := t.TempDir()
	jobs := make(chan int)
	st := diffStats{why: map[string]int{}}
	var wg sync.WaitGroup
	for range min(diffWorkers/2, len(texts)) {
		origin, client := pair(t)
		ctr := nstest.New(t)
		nstest.Link(t, origin, ctr, []string{"192.0.2.129/25", "2001:db8:c::1/64"}, []string{container4.String() + "/25", container6.String() + "/64"})
		ctr.Run("ip", "route", "add", "default", "via", "192.0.2.129")
		ctr.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1")
		origin.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
		for _, port := range []uint16{8080, 8443} {
			ctr.Serve(t, fmt.Sprintf("[::]:%d", port))
		}
		routes := map[netip.Addr]Route{}
		for _, a := range []netip.Addr{container4, container6} {
			name, index := routeDev(t, origin, a.String())
			routes[a] = Route{IfName: name, IfIndex: index}
		}
		prep := func(rs *Ruleset) {
			rs.SetRouter(func(dst netip.Addr) (Route, error) {
				if r, ok := routes[dst]; ok {
					return r, nil
				}
				return Route{}, fmt.Errorf("no route to %s in this test", dst)
			})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				diffOne(t, &st, origin, client, dir, i, texts[i], cmds[i], prep)
			}
		}()
	}
	for i := range texts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(st.probes, 1)) }
	t.Logf("DNAT differential (seed %d): %d rulesets (%d not loadable by nft), %d probes: %d exact (%.1f %%), %d cannot tell (%.1f %%), %d wrong (%.1f %%); %d followed through a DNAT; %d prefix pieces disagreeing with Check",
		*diffSeed, st.rulesets, st.unloadable, st.probes, st.exact, pct(st.exact), st.cannot, pct(st.cannot), st.wrong, pct(st.wrong), st.translated, st.pieceWrong)
	if testing.Verbose() {
		for why, n := range st.why {
			t.Logf("cannot tell %5d × %s", n, why)
		}
	}
	if st.wrong > 0 || st.pieceWrong > 0 {
		t.Errorf("%d definite verdicts differ from the kernel's, %d prefix pieces from Check", st.wrong, st.pieceWrong)
	}
}
