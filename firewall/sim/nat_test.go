package sim

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/firewall"
	"github.com/cfguard/cfguard/internal/nstest"
)

// The "container": a third namespace behind the origin, on its own veth,
// reached only through the origin's DNAT (as Docker publishes a port).
var (
	container4 = netip.MustParseAddr("192.0.2.130")
	container6 = netip.MustParseAddr("2001:db8:c::2")
	// containerPorts: 8080 is published; 8082 is published but its
	// forward rules accept only the SYN; 8081 is the second port of a range.
	containerPorts = []uint16{8080, 8081, 8082}
)

// natProbe is a probe whose DNAT, when to is set, the simulator must name.
type natProbe struct {
	probe
	to      string // the translated destination, "" for none
	unknown bool   // Result.DNATUnknown
}

// cfguardTable is cfguard's own table as the firewall package makes it, for
// the stand-in Cloudflare ranges (203.0.113.128/25 is left out: cfC is a
// stranger here).
func cfguardTable(t *testing.T) string {
	t.Helper()
	var cf []netip.Prefix
	for _, p := range []string{"198.51.100.0/24", "203.0.113.0/25", "2001:db8:cf::/48", "2001:db8:cf1::/48"} {
		cf = append(cf, netip.MustParsePrefix(p))
	}
	text := firewall.Render(firewall.Config{Table: "cfguard", Ports: []uint16{80, 443}}, firewall.Want{Cloudflare: cf})
	if !strings.Contains(text, "198.51.100.0/24") {
		t.Fatalf("cfguard's table lacks the stand-in ranges:\n%s", text)
	}
	return text
}

// nativeNAT publishes the container's 8080 on the origin's :80 with
// native dnat rules, and guards the forward path with a policy drop that
// accepts only what the connections need.
const nativeNAT = `
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.1 tcp dport 80 dnat ip to 192.0.2.130:8080
		ip daddr 192.0.2.1 tcp dport 81 dnat ip to 192.0.2.130:8080-8081
		ip daddr 192.0.2.1 tcp dport 82 dnat ip to 192.0.2.130:8082
		ip daddr 192.0.2.1 tcp dport 8000 dnat ip to 192.0.2.1:443
	}
}
table ip6 nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr 2001:db8:1::1 tcp dport 80 dnat ip6 to [2001:db8:c::2]:8080
		ip6 daddr 2001:db8:1::1 tcp dport 82 dnat ip6 to [2001:db8:c::2]:8082
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related ip daddr 192.0.2.130 tcp dport { 8080, 8081 } accept
		ct state established,related ip saddr 192.0.2.130 tcp sport { 8080, 8081 } accept
		ct state established,related ip6 daddr 2001:db8:c::2 tcp dport 8080 accept
		ct state established,related ip6 saddr 2001:db8:c::2 tcp sport 8080 accept
		ct state new ip daddr 192.0.2.130 tcp dport { 8080, 8081, 8082 } accept
		ct state new ip6 daddr 2001:db8:c::2 tcp dport { 8080, 8082 } accept
	}
}
`

var natCases = []struct {
	name   string
	nft    string
	docker bool // add Docker's iptables-nft rules (dockerRules)
	probes []natProbe
}{
	{name: "native", nft: nativeNAT, probes: []natProbe{
		{probe: probe{src: cfA, port: 80, want: Accept}, to: "192.0.2.130:8080"},
		{probe: probe{src: cf6A, port: 80, want: Accept}, to: "[2001:db8:c::2]:8080"},
		// Not one of cfguard's ranges: its forward chain drops it.
		{probe: probe{src: cfC, port: 80, want: Drop, rule: "meta l4proto tcp ct direction original ct status dnat ct original proto-dst @web_ports drop"}, to: "192.0.2.130:8080"},
		// A range of ports: which one the kernel picks is not known.
		{probe: probe{src: cfA, port: 81, want: CannotTell, real: Accept, reason: "range of ports"}, unknown: true},
		// The SYN gets through, the packets after it do not.
		{probe: probe{src: cfA, port: 82, want: Drop}, to: "192.0.2.130:8082"},
		{probe: probe{src: cf6A, port: 82, want: Drop}, to: "[2001:db8:c::2]:8082"},
		// A DNAT on this host (only the port changes) goes through input.
		{probe: probe{src: cfA, port: 8000, want: Accept}, to: "192.0.2.1:443"},
		// Not DNAT'ed: the origin's own listener.
		{probe: probe{src: cfA, port: 443, want: Accept}},
		{probe: probe{src: cfC, port: 443, want: Drop}},
	}},
	{name: "reject", nft: `
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.1 tcp dport 80 dnat ip to 192.0.2.130:8080
		ip daddr 192.0.2.1 tcp dport 81 dnat ip to 192.0.2.130:8081
		ip daddr 192.0.2.1 tcp dport 82 dnat ip to 192.0.2.130:8082
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority filter; policy accept;
		tcp dport 8080 ct state new reject
		tcp dport 8081 ct state new reject with tcp reset
		tcp dport 8082 ct state established reject
	}
}
`, probes: []natProbe{
		{probe: probe{src: cfA, port: 80, want: Reject}, to: "192.0.2.130:8080"},
		{probe: probe{src: cfA, port: 81, want: Reject}, to: "192.0.2.130:8081"},
		// The packets after the SYN are rejected, but so may be the
		// container's SYN-ACK, which comes first: whether the rule's
		// `tcp dport 8082` matches it depends on Cloudflare's port.
		{probe: probe{src: cfA, port: 82, want: CannotTell, real: Reject, reason: "the answers of 192.0.2.130:8082 to Cloudflare"}, to: "192.0.2.130:8082"},
	}},
	{name: "docker", docker: true, probes: []natProbe{
		{probe: probe{src: cfA, port: 80, want: Accept}, to: "192.0.2.130:8080"},
		{probe: probe{src: cf6A, port: 80, want: Accept}, to: "[2001:db8:c::2]:8080"},
		{probe: probe{src: cfB, port: 80, want: Drop, rule: `ip saddr 203.0.113.0/28 counter drop`}, to: "192.0.2.130:8080"},
		{probe: probe{src: cfC, port: 80, want: Drop}, to: "192.0.2.130:8080"},
		{probe: probe{src: cf6B, port: 80, want: Accept}, to: "[2001:db8:c::2]:8080"},
		// Not published: the origin's own listener, through input.
		{probe: probe{src: cfA, port: 8000, want: Accept}},
		{probe: probe{src: cf6A, port: 443, want: Accept}},
	}},
}

// dockerRules are the rules Docker (iptables-nft backend) makes to publish
// a container's 8080 on the host's :80, with br standing for docker0, and
// one administrator's rule in DOCKER-USER.
func dockerRules(br string) [][]string {
	var out [][]string
	for _, fam := range []struct{ tool, ctr, sub, cfDrop string }{
		{"iptables-nft", "192.0.2.130", "192.0.2.128/25", "203.0.113.0/28"},
		{"ip6tables-nft", "2001:db8:c::2", "2001:db8:c::/64", ""},
	} {
		to := fam.ctr + ":8080"
		if strings.Contains(fam.ctr, ":") {
			to = "[" + fam.ctr + "]:8080"
		}
		ipt := func(args ...string) { out = append(out, append([]string{fam.tool}, args...)) }
		ipt("-t", "nat", "-N", "DOCKER")
		ipt("-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER")
		ipt("-t", "nat", "-A", "POSTROUTING", "-s", fam.sub, "!", "-o", br, "-j", "MASQUERADE")
		ipt("-t", "nat", "-A", "DOCKER", "-i", br, "-j", "RETURN")
		ipt("-t", "nat", "-A", "DOCKER", "!", "-i", br, "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", to)
		ipt("-P", "FORWARD", "DROP")
		ipt("-N", "DOCKER")
		ipt("-N", "DOCKER-USER")
		ipt("-N", "DOCKER-ISOLATION-STAGE-1")
		ipt("-N", "DOCKER-ISOLATION-STAGE-2")
		ipt("-A", "FORWARD", "-j", "DOCKER-USER")
		ipt("-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1")
		ipt("-A", "FORWARD", "-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		ipt("-A", "FORWARD", "-o", br, "-j", "DOCKER")
		ipt("-A", "FORWARD", "-i", br, "!", "-o", br, "-j", "ACCEPT")
		ipt("-A", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT")
		ipt("-A", "DOCKER", "-d", fam.ctr, "!", "-i", br, "-o", br, "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "ACCEPT")
		ipt("-A", "DOCKER-ISOLATION-STAGE-1", "-i", br, "!", "-o", br, "-j", "DOCKER-ISOLATION-STAGE-2")
		ipt("-A", "DOCKER-ISOLATION-STAGE-1", "-j", "RETURN")
		ipt("-A", "DOCKER-ISOLATION-STAGE-2", "-o", br, "-j", "DROP")
		ipt("-A", "DOCKER-ISOLATION-STAGE-2", "-j", "RETURN")
		if fam.cfDrop != "" {
			ipt("-A", "DOCKER-USER", "-s", fam.cfDrop, "-j", "DROP")
		}
		ipt("-A", "DOCKER-USER", "-j", "RETURN")
	}
	return out
}

// TestDNATAgainstKernel publishes a container's port through a real DNAT
// in the origin namespace and compares real connections from the client
// (through the DNAT, forward and the container's answers) with the
// simulator's verdict and the translation it names.
func TestDNATAgainstKernel(t *testing.T) {
	nstest.RequireRoot(t, "nft", "iptables-nft", "ip6tables-nft")
	for _, tc := range natCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			origin, client := pair(t)
			ctr := nstest.New(t)
			nstest.Link(t, origin, ctr, []string{"192.0.2.129/25", "2001:db8:c::1/64"}, []string{container4.String() + "/25", container6.String() + "/64"})
			ctr.Run("ip", "route", "add", "default", "via", "192.0.2.129")
			ctr.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1")
			origin.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
			for _, port := range containerPorts {
				ctr.Serve(t, fmt.Sprintf("[::]:%d", port))
			}
			cfIf, cfIndex := routeDev(t, origin, "192.0.2.2")
			br, _ := routeDev(t, origin, container4.String())

			path := filepath.Join(t.TempDir(), "ruleset.nft")
			if err := os.WriteFile(path, []byte("flush ruleset\n"+cfguardTable(t)+tc.nft), 0o600); err != nil {
				t.Fatal(err)
			}
			origin.Run("nft", "-f", path)
			if tc.docker {
				for _, c := range dockerRules(br) {
					origin.Run(c[0], c[1:]...)
				}
			}
			rs := readNS(t, origin)
			if w := rs.Warnings(); len(w) > 0 {
				t.Errorf("unexpected warnings: %q", w)
			}
			rs.SetInterface(cfIf, cfIndex)
			rs.SetRouter(func(dst netip.Addr) (Route, error) {
				if dst == origin4 || dst == origin6 {
					return Route{Local: true}, nil
				}
				name, index := routeDev(t, origin, dst.String())
				return Route{IfName: name, IfIndex: index}, nil
			})
			var probes []probe
			for _, p := range tc.probes {
				probes = append(probes, p.probe)
			}
			checkProbes(t, rs, client, probes)
			for _, p := range tc.probes {
				src := netip.MustParseAddr(p.src)
				got := rs.Check(src, dstFor(src), p.port)
				gotTo := ""
				if got.DNAT.Translated() {
					gotTo = got.DNAT.To.String()
				}
				if got.DNATUnknown != p.unknown {
					t.Errorf("%s → :%d: DNATUnknown %v, want %v", p.src, p.port, got.DNATUnknown, p.unknown)
				}
				if gotTo != p.to {
					t.Errorf("%s → :%d: translated to %q, want %q (%+v)", p.src, p.port, gotTo, p.to, got)
				}
				if p.to != "" && !got.DNAT.Local && got.DNAT.Interface != br {
					t.Errorf("%s → :%d: forwarded through %q, want %q", p.src, p.port, got.DNAT.Interface, br)
				}
			}
		})
	}
}

// routeDev is the interface the namespace routes dst through, and its index.
func routeDev(t *testing.T, ns *nstest.NS, dst string) (string, uint32) {
	t.Helper()
	f := strings.Fields(ns.Run("ip", "-o", "route", "get", dst))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "dev" {
			var ifc *net.Interface
			if err := ns.Do(func() (err error) { ifc, err = net.InterfaceByName(f[i+1]); return }); err != nil {
				t.Fatalf("interface %s: %v", f[i+1], err)
			}
			return ifc.Name, uint32(ifc.Index)
		}
	}
	t.Fatalf("ip route get %s: no device in %q", dst, f)
	return "", 0
}
