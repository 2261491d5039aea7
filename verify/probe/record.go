package probe

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cfguard/cfguard/verify/report"
)

// StatusProhibitedIP is the HTTP status of Cloudflare's error 1000 ("DNS
// points to prohibited IP") and 1002 ("DNS points to local or disallowed IP")
// pages. cloudflare.md names the 1xxx codes but not the HTTP status; the
// 1xxx configuration pages are served as 403 (some as 409), so the record
// stage predicts 403 and names the 1xxx code in its Cause.
const StatusProhibitedIP = 403

// reserved are the blocks Cloudflare will not proxy to (error 1002):
// private, shared, loopback, link-local, multicast, unspecified and reserved
// space. The documentation prefixes (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) are deliberately absent: tests use them.
var reserved = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0/8)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (10.0.0.0/8)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (172.16.0.0/12)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (192.168.0.0/16)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/128"), "unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (fc00::/7)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (fec0::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
}

// reservedBlock returns the description of the reserved block holding a,
// or "" when a is routable on the Internet.
func reservedBlock(a netip.Addr) string {
	a = a.Unmap()
	for _, r := range reserved {
		if r.prefix.Contains(a) {
			return r.what
		}
	}
	return ""
}

// Record judges the address a proxied record holds (stage record). An
// address Cloudflare refuses to proxy to fails: a private or reserved one
// (error 1002), or one of Cloudflare's own (error 1000); both with
// StatusProhibitedIP. Any other address passes.
func Record(addr netip.Addr, cloudflare []netip.Prefix) report.Outcome {
	o := report.Outcome{Stage: report.StageRecord}
	addr = addr.Unmap()
	if !addr.IsValid() {
		o.Fail, o.Status = true, StatusProhibitedIP
		o.Cause = "the record holds no valid IP address (Cloudflare error 1002)"
		o.Fix = "Set the record's content to this origin's public address."
		return o
	}
	if what := reservedBlock(addr); what != "" {
		o.Fail, o.Status = true, StatusProhibitedIP
		o.Cause = fmt.Sprintf("the record points to %s, a %s address Cloudflare cannot reach (Cloudflare error 1002)", addr, what)
		o.Fix = "Point the proxied record at the origin's public address (or use a Cloudflare Tunnel for a private origin)."
		return o
	}
	for _, p := range cloudflare {
		if p.Contains(addr) {
			o.Fail, o.Status = true, StatusProhibitedIP
			o.Cause = fmt.Sprintf("the record points to %s, inside Cloudflare's own range %s (Cloudflare error 1000)", addr, p)
			o.Fix = "Point the proxied record at the origin's own address, not at a Cloudflare address (often copied from another proxied record)."
			return o
		}
	}
	o.Cause = fmt.Sprintf("%s is a public address", addr)
	return o
}

// LocalAddrs returns the addresses on this host's interfaces, in the
// network namespace of the calling thread.
func LocalAddrs() ([]netip.Addr, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		var ip net.IP
		switch v := ia.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}
