package verify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

var (
	testCF = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8:cf::/48"), netip.MustParsePrefix("2001:db8:cf1::/48"),
	}
	origin4 = netip.MustParseAddr("192.0.2.1")
	origin6 = netip.MustParseAddr("2001:db8:1::1")
)

func strictSettings() cloudflare.Settings {
	return cloudflare.Settings{SSL: ModeStrict, MinTLSVersion: "1.2", ProxyReadTimeout: 125 * time.Second}
}

func zoneWith(name string, s cloudflare.Settings, recs ...cloudflare.Record) fakeZone {
	return fakeZone{zone: cloudflare.Zone{ID: "id-" + name, Name: name, Status: "active"}, settings: s, records: recs}
}

func a(name, content string) cloudflare.Record {
	typ := "A"
	if strings.Contains(content, ":") {
		typ = "AAAA"
	}
	return cloudflare.Record{Type: typ, Name: name, Content: content, Proxied: true}
}

func cname(name, target string) cloudflare.Record {
	return cloudflare.Record{Type: "CNAME", Name: name, Content: target, Proxied: true}
}

// brief is one path as the tables assert it.
func brief(p report.Path) string {
	ok := "ok"
	if !p.OK {
		ok = "FAIL"
	}
	return fmt.Sprintf("%s %s %s %d/%s %s %d %s", p.Hostname, p.RecordType, p.OriginIP, p.Port, p.Scheme, ok, p.Status, p.Stage)
}

type fixture struct {
	api      *fakeAPI
	probe    *fakeProbe
	fw       *fakeFirewall
	up       *fakeUpstream
	host     fakeHost
	resolver fakeResolver
	cfg      Config
}

func newFixture(zones ...fakeZone) *fixture {
	return &fixture{
		api:      &fakeAPI{zones: zones},
		probe:    newFakeProbe(),
		fw:       &fakeFirewall{verdict: map[string]report.Outcome{}},
		up:       &fakeUpstream{outcomes: map[string]report.Outcome{}},
		host:     fakeHost{addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), origin4, origin6}},
		resolver: fakeResolver{},
		cfg:      Config{Token: "t", Cloudflare: testCF},
	}
}

func (f *fixture) run(t *testing.T) *report.Report {
	t.Helper()
	d := deps{api: f.api, probe: f.probe, firewall: f.fw, upstream: f.up, host: f.host, resolver: f.resolver,
		now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }}
	if f.cfg.Token == "" {
		d.api = nil
	}
	rep, err := run(context.Background(), f.cfg, d, nil, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

func briefs(rep *report.Report) []string {
	var out []string
	for _, p := range rep.Paths {
		out = append(out, brief(p))
	}
	return out
}

func messages(rep *report.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, string(f.Severity)+": "+f.Message)
	}
	return out
}

func TestHopsFor(t *testing.T) {
	tests := []struct {
		mode   string
		always bool
		want   []hop
	}{
		{ModeOff, false, []hop{{80, "http"}}},
		{ModeOff, true, []hop{{80, "http"}}},
		{ModeFlexible, false, []hop{{80, "http"}}},
		{ModeFull, false, []hop{{443, "https"}, {80, "http"}}},
		{ModeFull, true, []hop{{443, "https"}}},
		{ModeStrict, false, []hop{{443, "https"}, {80, "http"}}},
		{ModeStrict, true, []hop{{443, "https"}}},
		{ModeOriginPull, false, []hop{{443, "https"}}},
		{"weird", false, []hop{{443, "https"}, {80, "http"}}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, hopsFor(tt.mode, tt.always), cmp.AllowUnexported(hop{})); d != "" {
			t.Errorf("hopsFor(%s, %v) (-want +got):\n%s", tt.mode, tt.always, d)
		}
	}
}

func TestRunPaths(t *testing.T) {
	always := strictSettings()
	always.AlwaysUseHTTPS = true
	flexible := cloudflare.Settings{SSL: ModeFlexible}
	tests := []struct {
		name     string
		setup    func(f *fixture)
		want     []string
		findings []string // substrings of the findings, in order
	}{
		{
			name: "healthy strict zone: 443 and 80 for A and AAAA, DNS-only ignored",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", strictSettings(),
					a("www.example.com", "192.0.2.1"), a("www.example.com", "2001:db8:1::1"),
					cloudflare.Record{Type: "A", Name: "mail.example.com", Content: "192.0.2.1"},
					cloudflare.Record{Type: "MX", Name: "example.com", Content: "mail.example.com"},
					cloudflare.Record{Type: "TXT", Name: "example.com", Content: "v=spf1"})}
			},
			want: []string{
				"www.example.com A 192.0.2.1 80/http ok 200 http",
				"www.example.com A 192.0.2.1 443/https ok 200 http",
				"www.example.com AAAA 2001:db8:1::1 80/http ok 200 http",
				"www.example.com AAAA 2001:db8:1::1 443/https ok 200 http",
			},
		},
		{
			name: "always_use_https: 443 only; flexible: 80 only",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{
					zoneWith("a.example", always, a("a.example", "192.0.2.1")),
					zoneWith("f.example", flexible, a("f.example", "192.0.2.1")),
				}
			},
			want: []string{
				"a.example A 192.0.2.1 443/https ok 200 http",
				"f.example A 192.0.2.1 80/http ok 200 http",
			},
		},
		{
			name: "stop at the first failing stage",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", strictSettings(),
					a("a.example.com", "192.0.2.1"), a("b.example.com", "192.0.2.1"))}
				f.probe.outcomes["listener 192.0.2.1:80"] = report.Outcome{Fail: true, Status: 521, Cause: "nothing listens"}
				f.probe.outcomes["certificate b.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 526, Cause: "expired"}
			},
			want: []string{
				"a.example.com A 192.0.2.1 80/http FAIL 521 listener",
				"a.example.com A 192.0.2.1 443/https ok 200 http",
				"b.example.com A 192.0.2.1 80/http FAIL 521 listener",
				"b.example.com A 192.0.2.1 443/https FAIL 526 certificate",
			},
		},
		{
			name: "firewall drop, reject and cannot tell",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", strictSettings(),
					a("www.example.com", "192.0.2.1"), a("www.example.com", "2001:db8:1::1"))}
				f.fw.verdict["192.0.2.1:443"] = report.Outcome{Fail: true, Status: 522, Cause: "drops"}
				f.fw.verdict["192.0.2.1:80"] = report.Outcome{Fail: true, Status: 521, Cause: "rejects"}
				f.fw.verdict["[2001:db8:1::1]:443"] = report.Outcome{CannotTell: true, Cause: "iptables-legacy rules"}
			},
			want: []string{
				"www.example.com A 192.0.2.1 80/http FAIL 521 firewall",
				"www.example.com A 192.0.2.1 443/https FAIL 522 firewall",
				"www.example.com AAAA 2001:db8:1::1 80/http ok 200 http",
				"www.example.com AAAA 2001:db8:1::1 443/https ok 200 http",
			},
		},
		{
			name: "record elsewhere, private record, Cloudflare's own",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", always,
					a("gone.example.com", "192.0.2.99"), a("other.example.com", "192.0.2.98"),
					a("lan.example.com", "10.0.0.5"), a("bad.example.com", "not-an-ip"))}
				f.probe.outcomes["elsewhere 192.0.2.99:443"] = report.Outcome{Fail: true, Status: 522, Cause: "not this server and does not answer"}
				f.probe.outcomes["record 10.0.0.5"] = report.Outcome{Fail: true, Status: 403, Cause: "private"}
			},
			want: []string{
				"bad.example.com A  443/https FAIL 403 record",
				"gone.example.com A 192.0.2.99 443/https FAIL 522 elsewhere",
				"lan.example.com A 10.0.0.5 443/https FAIL 403 record",
				"other.example.com A 192.0.2.98 443/https ok 0 elsewhere",
			},
		},
		{
			name: "CNAMEs: inside the zone, through DNS, unresolvable, tunnel, behind Cloudflare",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", always,
					a("example.com", "192.0.2.1"),
					cname("www.example.com", "example.com"),
					cname("shop.example.com", "shop.provider.test"),
					cname("gone.example.com", "nothing.invalid"),
					cname("app.example.com", "1234.cfargotunnel.com"),
					cname("cdn.example.com", "cdn.other.test"))}
				f.resolver["shop.provider.test"] = []netip.Addr{origin4}
				f.resolver["cdn.other.test"] = []netip.Addr{netip.MustParseAddr("203.0.113.7")}
			},
			want: []string{
				"example.com A 192.0.2.1 443/https ok 200 http",
				"gone.example.com CNAME  0/ FAIL 530 record",
				"shop.example.com CNAME 192.0.2.1 443/https ok 200 http",
				"www.example.com CNAME 192.0.2.1 443/https ok 200 http",
			},
			findings: []string{
				"warning: app.example.com is served through a Cloudflare Tunnel (1234.cfargotunnel.com), but no cloudflared process runs on this host",
				"info: cdn.example.com is a CNAME to cdn.other.test, which is itself behind Cloudflare (203.0.113.7)",
			},
		},
		{
			name: "origin 502 explained by the backend; passing path gets warnings",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", always, a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.1"))}
				f.probe.outcomes["http www.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 502, Cause: "origin answered 502"}
				f.up.outcomes["www.example.com:443"] = report.Outcome{Fail: true, Cause: "php-fpm is not running", Fix: "systemctl start php8.2-fpm"}
				f.up.outcomes["api.example.com:443"] = report.Outcome{Warnings: []string{"pool www reached pm.max_children"}}
			},
			want: []string{
				"api.example.com A 192.0.2.1 443/https ok 200 http",
				"www.example.com A 192.0.2.1 443/https FAIL 502 upstream",
			},
		},
		{
			name: "flexible with an https redirect: a finding, no failure",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", flexible, a("www.example.com", "192.0.2.1"))}
				f.probe.outcomes["http www.example.com 192.0.2.1:80"] = report.Outcome{Status: 301, Cause: "GET / answered 301", Evidence: []string{"Location: https://www.example.com/"}}
			},
			want: []string{"www.example.com A 192.0.2.1 80/http ok 301 http"},
			findings: []string{
				"error: www.example.com: under Flexible, Cloudflare speaks HTTP to the origin, which answers 301 with a redirect to https://",
			},
		},
		{
			name: "zone findings: paused has no paths, pending keeps them, ssl off with always_use_https",
			setup: func(f *fixture) {
				p := zoneWith("paused.example", strictSettings(), a("paused.example", "192.0.2.1"))
				p.zone.Paused = true
				q := zoneWith("pending.example", cloudflare.Settings{SSL: ModeOff, AlwaysUseHTTPS: true, Notes: []string{"proxy_read_timeout could not be read"}}, a("pending.example", "192.0.2.1"))
				q.zone.Status = "pending"
				f.api.zones = []fakeZone{p, q}
			},
			want: []string{"pending.example A 192.0.2.1 80/http ok 200 http"},
			findings: []string{
				"error: zone pending.example: SSL is off while Always Use HTTPS is on",
				"warning: zone paused.example is paused",
				"warning: zone pending.example is pending, not active",
				"info: zone pending.example: proxy_read_timeout could not be read",
			},
		},
		{
			name: "hostname filter",
			setup: func(f *fixture) {
				f.api.zones = []fakeZone{zoneWith("example.com", always, a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.1"))}
				f.cfg.Hostnames = []string{"WWW.example.com."}
			},
			want: []string{"www.example.com A 192.0.2.1 443/https ok 200 http"},
		},
		{
			name: "client certificate demanded: fails when tls_client_auth is off, cannot tell when on",
			setup: func(f *fixture) {
				on := always
				on.TLSClientAuth = true
				f.api.zones = []fakeZone{
					zoneWith("on.example", on, a("on.example", "192.0.2.1")),
					zoneWith("off.example", always, a("off.example", "192.0.2.1")),
				}
				for _, h := range []string{"on.example", "off.example"} {
					f.probe.outcomes["tls "+h+" 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 525, Cause: "client certificate demanded"}
					f.probe.certReq[h+" 192.0.2.1:443"] = true
				}
			},
			want: []string{
				"off.example A 192.0.2.1 443/https FAIL 525 tls",
				"on.example A 192.0.2.1 443/https ok 0 tls",
			},
			findings: []string{"info: zone on.example: Authenticated Origin Pulls (tls_client_auth) is on"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			tt.setup(f)
			rep := f.run(t)
			if d := cmp.Diff(tt.want, briefs(rep)); d != "" {
				t.Errorf("paths (-want +got):\n%s", d)
			}
			got := messages(rep)
			if len(got) != len(tt.findings) {
				t.Errorf("findings: got %d, want %d:\n%s", len(got), len(tt.findings), strings.Join(got, "\n"))
			}
			for i, w := range tt.findings {
				if i < len(got) && !strings.HasPrefix(got[i], w) {
					t.Errorf("finding %d:\n got %s\nwant %s…", i, got[i], w)
				}
			}
		})
	}
}

func TestUpstreamDetails(t *testing.T) {
	s := strictSettings()
	s.AlwaysUseHTTPS = true
	f := newFixture(zoneWith("example.com", s, a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.1")))
	f.probe.outcomes["http www.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 502, Cause: "origin answered 502", Evidence: []string{"HTTP/1.1 502 Bad Gateway"}}
	f.up.outcomes["www.example.com:443"] = report.Outcome{Fail: true, Cause: "php-fpm is not running", Fix: "systemctl start php8.2-fpm", Evidence: []string{"nginx logged …"}}
	f.up.outcomes["api.example.com:443"] = report.Outcome{Warnings: []string{"pool www reached pm.max_children"}}
	rep := f.run(t)
	api, www := rep.Paths[0], rep.Paths[1]
	if d := cmp.Diff([]string{"pool www reached pm.max_children"}, api.Warnings); d != "" {
		t.Errorf("api warnings (-want +got):\n%s", d)
	}
	want := report.Path{Zone: "example.com", Hostname: "www.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
		Status: 502, Stage: report.StageUpstream, Cause: "php-fpm is not running", Fix: "systemctl start php8.2-fpm",
		Evidence: []string{"HTTP/1.1 502 Bad Gateway", "nginx logged …"}}
	if d := cmp.Diff(want, www, cmpopts.IgnoreFields(report.Path{}, "Edge")); d != "" { // edge_test.go checks Edge
		t.Errorf("www (-want +got):\n%s", d)
	}
	if d := cmp.Diff(report.Summary{Paths: 2, Failing: 1, ByStatus: map[string]int{"502": 1}, Warnings: 1}, rep.Summary); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
}

// TestSharing: hundreds of hostnames on one origin share the listener and
// firewall stages per address and port, and run in parallel.
func TestSharing(t *testing.T) {
	var recs []cloudflare.Record
	for i := range 300 {
		recs = append(recs, a(fmt.Sprintf("h%03d.example.com", i), "192.0.2.1"))
	}
	f := newFixture(zoneWith("example.com", strictSettings(), recs...))
	f.probe.delay = 20 * time.Millisecond
	f.cfg.Concurrency = 16
	rep := f.run(t)
	if rep.Summary.Paths != 600 || rep.Summary.Failing != 0 {
		t.Errorf("summary %+v", rep.Summary)
	}
	want := map[string]int{"record": 2, "route": 2, "listener": 2, "tls": 300, "certificate": 300, "http": 600}
	if d := cmp.Diff(want, f.probe.calls); d != "" {
		t.Errorf("stage calls (-want +got):\n%s", d)
	}
	if f.fw.calls != 2 {
		t.Errorf("firewall checked %d times, want 2", f.fw.calls)
	}
	if f.probe.maxInFlight > 16 || f.probe.maxInFlight < 2 {
		t.Errorf("%d probes at once with Concurrency 16", f.probe.maxInFlight)
	}
}

func TestWithoutToken(t *testing.T) {
	f := newFixture()
	f.cfg = Config{Hostnames: []string{"www.example.com"}, SSLMode: ModeFull, Cloudflare: testCF,
		OriginIPs: []netip.Addr{netip.MustParseAddr("192.0.2.200")}}
	f.host.addrs = append(f.host.addrs, netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("fe80::1"))
	f.probe.outcomes["record 10.1.1.1"] = report.Outcome{Fail: true, Status: 403}
	rep := f.run(t)
	want := []string{
		"www.example.com A 192.0.2.1 80/http ok 200 http",
		"www.example.com A 192.0.2.1 443/https ok 200 http",
		"www.example.com A 192.0.2.200 80/http ok 200 http",
		"www.example.com A 192.0.2.200 443/https ok 200 http",
		"www.example.com AAAA 2001:db8:1::1 80/http ok 200 http",
		"www.example.com AAAA 2001:db8:1::1 443/https ok 200 http",
	}
	if d := cmp.Diff(want, briefs(rep)); d != "" {
		t.Errorf("paths (-want +got):\n%s", d)
	}
}

func TestCannotRun(t *testing.T) {
	tokenErr := &cloudflare.Error{Kind: cloudflare.KindToken, Code: 9109, APIMessage: "Invalid access token", Status: 403}
	tests := []struct {
		name string
		cfg  Config
		api  *fakeAPI
		host fakeHost
		want string
	}{
		{"refused token", Config{Token: "t", Cloudflare: testCF}, &fakeAPI{tokenErr: tokenErr}, fakeHost{},
			"the API token is not valid (Cloudflare said 9109 Invalid access token): create a token with Zone:Read, Zone Settings:Read, DNS:Read and pass it with --api-token-file or CLOUDFLARE_API_TOKEN"},
		{"no zones", Config{Token: "t", Cloudflare: testCF}, &fakeAPI{}, fakeHost{},
			"the API token can read no zone: give it Zone:Read for the zones of this origin, or name them with --zone"},
		{"no token, no hostname", Config{Cloudflare: testCF}, nil, fakeHost{},
			"no API token and no --hostname: give a token (--api-token-file or CLOUDFLARE_API_TOKEN) or name the hostnames with --hostname and --ssl-mode"},
		{"no token, no mode", Config{Hostnames: []string{"x.example"}, Cloudflare: testCF}, nil, fakeHost{},
			`without an API token, --ssl-mode must say the zone's SSL mode: off, flexible, full, strict or origin_pull (got "")`},
		{"no token, no public address", Config{Hostnames: []string{"x.example"}, SSLMode: "full", Cloudflare: testCF}, nil,
			fakeHost{addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.2")}},
			"this host has no public address to check (only 10.0.0.2): name the address Cloudflare connects to with --origin-ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProbe()
			p.outcomes["record 10.0.0.2"] = report.Outcome{Fail: true}
			d := deps{probe: p, host: tt.host, resolver: fakeResolver{}, now: time.Now}
			if tt.api != nil {
				d.api = tt.api
			}
			err := tt.cfg.validate()
			if err == nil {
				_, err = run(context.Background(), tt.cfg, d, nil, nil)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want *verify.Error", err, err)
			}
			if d := cmp.Diff(tt.want, err.Error()); d != "" {
				t.Errorf("message (-want +got):\n%s", d)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var recs []cloudflare.Record
	for i := range 50 {
		recs = append(recs, a(fmt.Sprintf("h%03d.example.com", i), "192.0.2.1"))
	}
	f := newFixture(zoneWith("example.com", strictSettings(), recs...))
	var calls, last, lastTotal int
	inCall := false
	f.cfg.Progress = func(done, total int) {
		if inCall {
			t.Error("Progress calls overlap")
		}
		inCall = true
		defer func() { inCall = false }()
		calls++
		if done != last+1 {
			t.Errorf("done went from %d to %d", last, done)
		}
		last, lastTotal = done, total
	}
	rep := f.run(t)
	if calls != rep.Summary.Paths || last != rep.Summary.Paths || lastTotal != rep.Summary.Paths {
		t.Errorf("%d calls, last %d/%d; want %d calls ending at %d/%d", calls, last, lastTotal, rep.Summary.Paths, rep.Summary.Paths, rep.Summary.Paths)
	}
}

// A --hostname that leads to no path is "could not check" (exit 3), never
// "no path to check" (exit 0, which a monitor reads as healthy).
func TestHostnameNotChecked(t *testing.T) {
	always := cloudflare.Settings{SSL: ModeFull, AlwaysUseHTTPS: true}
	dnsOnly := a("grey.example.com", "192.0.2.1")
	dnsOnly.Proxied = false
	paused := zoneWith("paused.example", always, a("www.paused.example", "192.0.2.1"))
	paused.zone.Paused = true
	zones := []fakeZone{zoneWith("example.com", always, a("www.example.com", "192.0.2.1"), dnsOnly), paused}
	const fix = "; check the name and the zone (--zone), that the token may read the zone (Zone:Read), and that the record is proxied (orange cloud)"
	for _, tt := range []struct {
		name      string
		hostnames []string
		zones     []string
		want      string
	}{
		{"in no zone the token reads", []string{"www.example.org"}, nil,
			"cannot check www.example.org: not in any zone the API token reads (zones: example.com, paused.example)" + fix},
		{"in none of the zones named", []string{"www.paused.example"}, []string{"example.com"},
			"cannot check www.paused.example: in none of the zones read (zones: example.com)" + fix},
		{"not proxied", []string{"grey.example.com"}, nil,
			"cannot check grey.example.com: no proxied A, AAAA or CNAME record in zone example.com" + fix},
		{"no record at all, beside one that is fine", []string{"www.example.com", "nope.example.com"}, nil,
			"cannot check nope.example.com: no proxied A, AAAA or CNAME record in zone example.com" + fix},
		{"paused zone", []string{"www.paused.example"}, nil,
			"cannot check www.paused.example: zone paused.example is paused, Cloudflare does not proxy it" + fix},
		{"a suffix that is not a parent zone", []string{"notexample.com"}, nil,
			"cannot check notexample.com: not in any zone the API token reads (zones: example.com, paused.example)" + fix},
		{"two names", []string{"a.example.org", "b.example.net"}, nil,
			"cannot check a.example.org: not in any zone the API token reads (zones: example.com, paused.example); b.example.net: not in any zone the API token reads (zones: example.com, paused.example)" + fix},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(zones...)
			f.cfg.Hostnames, f.cfg.Zones = tt.hostnames, tt.zones
			d := deps{api: f.api, probe: f.probe, firewall: f.fw, upstream: f.up, host: f.host, resolver: f.resolver, now: time.Now}
			rep, err := run(context.Background(), f.cfg, d, nil, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("run = %v, %v; want a *verify.Error", rep, err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}
