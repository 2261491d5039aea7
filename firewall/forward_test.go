package firewall

import (
	"os"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

// dockerNAT publishes ports the way Docker does: DNAT in prerouting, for
// local destinations only, to a container behind the origin. 443 goes to
// the container's 8080 (so the guard must look at the ORIGINAL destination
// port), 8000 to 8000.
const dockerNAT = `table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport 443 dnat to 192.0.2.66:8080
		fib daddr type local tcp dport 8000 dnat to 192.0.2.66:8000
	}
}
`

// The forward chain drops DNAT'ed connections to a web port from a source
// outside the sets, and nothing else: not non-web DNAT, not routed
// traffic to a web port, not the container's outbound connections and
// their replies.
//
//	client (192.0.2.2, stand-in CF 198.51.100.10) -- origin/router (192.0.2.1 | 192.0.2.65) -- container (192.0.2.66)
func TestForwardGuardsPublishedPorts(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	client, origin, ctr := nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, client, []string{"192.0.2.1/26"}, []string{"192.0.2.2/26"})
	nstest.Link(t, origin, ctr, []string{"192.0.2.65/26"}, []string{"192.0.2.66/26"})
	client.Run("ip", "addr", "add", "198.51.100.10/32", "dev", "lo")
	client.Run("ip", "route", "add", "192.0.2.64/26", "via", "192.0.2.1")
	ctr.Run("ip", "route", "add", "default", "via", "192.0.2.65")
	origin.Run("ip", "route", "add", "198.51.100.10/32", "via", "192.0.2.2")
	origin.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")

	f, err := os.CreateTemp(t.TempDir(), "*.nft")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(dockerNAT)
	f.Close()
	origin.Run("nft", "-f", f.Name())
	for _, a := range []string{"0.0.0.0:8080", "0.0.0.0:8000", "0.0.0.0:80"} {
		ctr.Serve(t, a)
	}
	client.Serve(t, "192.0.2.2:443")
	linkReady(t, client, origin, "192.0.2.1:9", "192.0.2.2")
	linkReady(t, ctr, origin, "192.0.2.65:9", "192.0.2.66")

	// Without cfguard the published port is open to anyone.
	if err := reaches(client, "192.0.2.2", "192.0.2.1:443"); err != nil {
		t.Fatalf("before cfguard, 192.0.2.2 -> published 443: %v", err)
	}
	mustApply(t, manager(t, origin, testCfg), standIn)
	for _, tc := range []struct {
		name     string
		from     *nstest.NS
		src, dst string
		ok       bool
	}{
		{"published 443 from stand-in Cloudflare", client, "198.51.100.10", "192.0.2.1:443", true},
		{"published 443 from elsewhere", client, "192.0.2.2", "192.0.2.1:443", false},
		{"published non-web 8000 from elsewhere", client, "192.0.2.2", "192.0.2.1:8000", true},
		{"routed (no DNAT) to the container's 80", client, "192.0.2.2", "192.0.2.66:80", true},
		{"container outbound to a web port, and replies", ctr, "", "192.0.2.2:443", true},
	} {
		err := reaches(tc.from, tc.src, tc.dst)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %s -> %s: err %v, want reachable=%v", tc.name, tc.src, tc.dst, err, tc.ok)
		}
	}
}
