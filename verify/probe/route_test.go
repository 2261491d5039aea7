package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// TestRoute looks routes up through netlink inside a namespace whose
// routing table each row changes with `ip route`. Netlink work is
// single-threaded, so ns.Do is enough here.
func TestRoute(t *testing.T) {
	ns, peer := nstest.New(t), nstest.New(t)
	nstest.Link(t, ns, peer, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, []string{"192.0.2.2/24", "2001:db8:1::2/64"})
	ifc := strings.Fields(ns.Run("ip", "-o", "link", "show", "type", "veth"))[1]
	ifc = strings.TrimSuffix(strings.Split(ifc, "@")[0], ":")
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:1::1")

	pass := verdict{Stage: report.StageRoute}
	fail := verdict{Stage: report.StageRoute, Fail: true, Status: 523}
	tests := []struct {
		name     string
		ip       [][]string // `ip` commands run before the lookup
		src      netip.Addr
		want     verdict
		cause    string
		evidence string
	}{
		{"no default route", nil, v4, fail, "this server has no route from 192.0.2.1 toward Cloudflare's 198.51.100.0/24, 203.0.113.0/24", "route to 198.51.100.0/24: none"},
		{"no default route v6", nil, v6, fail, "no route from 2001:db8:1::1 toward Cloudflare's 2001:db8:cf::/48, 2001:db8:cf1::/48", ""},
		{"default route", [][]string{{"route", "add", "default", "via", "192.0.2.2"}, {"-6", "route", "add", "default", "via", "2001:db8:1::2"}},
			v4, pass, "replies to Cloudflare's ranges leave by default via 192.0.2.2 dev " + ifc, ""},
		{"default route v6", nil, v6, pass, "default via 2001:db8:1::2", ""},
		{"any family without a source", nil, netip.Addr{}, pass, "default via 192.0.2.2 dev " + ifc + "; default via 2001:db8:1::2", ""},
		{"a source that is not local", nil, netip.MustParseAddr("192.0.2.77"), pass, "default via 192.0.2.2", ""},
		{"blackhole", [][]string{{"route", "add", "blackhole", "203.0.113.0/24"}}, v4, fail,
			`the route "blackhole 203.0.113.0/24" discards replies to Cloudflare's 203.0.113.0/24 — 1 of 2 Cloudflare ranges are affected, so failures will look intermittent`, ""},
		{"unreachable v6", [][]string{{"-6", "route", "add", "unreachable", "2001:db8:cf1::/48"}}, v6, fail, `"unreachable 2001:db8:cf1::/48" discards replies to Cloudflare's 2001:db8:cf1::/48`, ""},
		{"prohibit half a range", [][]string{{"route", "del", "blackhole", "203.0.113.0/24"}, {"route", "add", "prohibit", "198.51.100.128/25"}}, v4, fail,
			`the route "prohibit 198.51.100.128/25" discards replies to Cloudflare's 198.51.100.0/24`, ""},
		{"on-link route swallows a range", [][]string{{"route", "del", "prohibit", "198.51.100.128/25"}, {"route", "add", "203.0.113.0/24", "dev", ifc}}, v4, fail,
			`the route "203.0.113.0/24 dev ` + ifc + `" swallows Cloudflare's 203.0.113.0/24`, ""},
		{"route through a public next hop is policy, not a fault", [][]string{{"route", "del", "203.0.113.0/24"}, {"route", "add", "203.0.0.0/16", "via", "192.0.2.9"}}, v4, pass,
			"203.0.0.0/16 via 192.0.2.9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, args := range tt.ip {
				ns.Run("ip", args...)
			}
			var o report.Outcome
			if err := ns.Do(func() error { o = Route(context.Background(), tt.src, standIn); return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s\ncause: %s\nevidence: %q", diff, o.Cause, o.Evidence)
			}
			has(t, o, tt.cause, tt.evidence, "-")
			t.Logf("%d: %s | fix: %s | evidence: %q", o.Status, o.Cause, o.Fix, o.Evidence)
		})
	}
}

// BenchmarkHTTP measures one HTTP probe (connect, GET /, answer) against a
// local server on loopback.
func BenchmarkHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	tg := Target{Hostname: "www.example.com", Addr: ap.Addr(), Port: int(ap.Port()), Scheme: "http", SSLMode: ModeFull}
	b.ReportAllocs()
	for b.Loop() {
		if o := HTTP(context.Background(), tg, 0); o.Fail || o.Status != 200 {
			b.Fatalf("probe failed: %+v", o)
		}
	}
}
