package verify

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

func cfgRule(id, desc, expr, ssl string) cloudflare.Rule {
	return cloudflare.Rule{Phase: cloudflare.PhaseConfig, RulesetID: "rs-config", ID: id, Description: desc,
		Expression: expr, Enabled: true, Action: "set_config", SSL: ssl}
}

func routeRule(id, desc, expr string, set func(*cloudflare.Rule)) cloudflare.Rule {
	r := cloudflare.Rule{Phase: cloudflare.PhaseOrigin, RulesetID: "rs-origin", ID: id, Description: desc,
		Expression: expr, Enabled: true, Action: "route"}
	set(&r)
	return r
}

func withRules(z fakeZone, rs cloudflare.Rules) fakeZone {
	z.rules = rs
	return z
}

func TestRunRules(t *testing.T) {
	full := cloudflare.Settings{SSL: ModeFull}
	tests := []struct {
		name     string
		zone     fakeZone
		setup    func(f *fixture)
		want     []string
		evidence string // a substring of some path's evidence
		warning  string // a substring of some path's warnings
		only     string // the first warning of every path on a port that is not 80 or 443
		rules    []string
	}{
		{
			name: "a Configuration Rule makes api strict: its certificate is checked, www's is not",
			zone: withRules(zoneWith("example.com", full, a("api.example.com", "192.0.2.1"), a("www.example.com", "192.0.2.1")),
				cloudflare.Rules{Config: []cloudflare.Rule{cfgRule("c1", "api strict", `http.host eq "api.example.com"`, ModeStrict)}}),
			setup: func(f *fixture) {
				f.probe.outcomes["certificate api.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 526, Cause: "self-signed"}
				f.probe.outcomes["certificate www.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 526, Cause: "self-signed"}
			},
			want: []string{
				"api.example.com A 192.0.2.1 80/http ok 200 http",
				"api.example.com A 192.0.2.1 443/https FAIL 526 certificate",
				"www.example.com A 192.0.2.1 80/http ok 200 http",
				"www.example.com A 192.0.2.1 443/https ok 200 http",
			},
			evidence: `Configuration Rule "api strict" (ruleset rs-config, rule id c1) sets SSL mode strict`,
			rules:    []string{`Configuration Rule "api strict" (ruleset rs-config, rule id c1)`},
		},
		{
			name: "an Origin Rule sends api to port 8443: both schemes go there, 8443 is probed",
			zone: withRules(zoneWith("example.com", full, a("api.example.com", "192.0.2.1")),
				cloudflare.Rules{Origin: []cloudflare.Rule{routeRule("o1", "api to 8443", `ends_with(http.host, ".example.com") and http.host ne "www.example.com"`,
					func(r *cloudflare.Rule) { r.OriginPort = 8443 })}}),
			setup: func(f *fixture) {
				f.probe.outcomes["listener 192.0.2.1:8443"] = report.Outcome{Fail: true, Status: 521, Cause: "nothing listens on 8443"}
			},
			want: []string{
				"api.example.com A 192.0.2.1 8443/http FAIL 521 listener",
				"api.example.com A 192.0.2.1 8443/https FAIL 521 listener",
			},
			evidence: `Origin Rule "api to 8443" (ruleset rs-origin, rule id o1) sets port 8443`,
			rules:    []string{`Origin Rule "api to 8443" (ruleset rs-origin, rule id o1)`},
		},
		{
			name: "a rule on the URI path: a warning naming the rule and the field, and the requests it matches walked as paths of their own",
			zone: withRules(zoneWith("example.com", strictSettings(), a("www.example.com", "192.0.2.1")),
				cloudflare.Rules{Origin: []cloudflare.Rule{routeRule("o2", "api by path", `http.host eq "www.example.com" and starts_with(http.request.uri.path, "/api/")`,
					func(r *cloudflare.Rule) { r.OriginPort = 9000 })}}),
			setup: func(f *fixture) {
				f.probe.outcomes["listener 192.0.2.1:9000"] = report.Outcome{Fail: true, Status: 521, Cause: "nothing listens on 9000"}
			},
			want: []string{
				"www.example.com A 192.0.2.1 80/http ok 200 http",
				"www.example.com A 192.0.2.1 443/https ok 200 http",
				"www.example.com A 192.0.2.1 9000/http FAIL 521 listener",
				"www.example.com A 192.0.2.1 9000/https FAIL 521 listener",
			},
			warning: `depends on the request: Origin Rule "api by path" (ruleset rs-origin, rule id o2) matches on http.request.uri.path; the requests it matches get port 9000, the others this path`,
			only:    `only for the requests that Origin Rule "api by path" (ruleset rs-origin, rule id o2) matches (on http.request.uri.path); the others take the path without it`,
		},
		{
			name: "a rule on the path that only changes the SSL mode: a warning on the path, no second path of the same port",
			zone: withRules(zoneWith("example.com", full, a("www.example.com", "192.0.2.1")),
				cloudflare.Rules{Config: []cloudflare.Rule{cfgRule("c2", "admin strict", `http.request.uri.path eq "/admin"`, ModeStrict)}}),
			want: []string{
				"www.example.com A 192.0.2.1 80/http ok 200 http",
				"www.example.com A 192.0.2.1 443/https ok 200 http",
			},
			warning: `the requests that Configuration Rule "admin strict" (ruleset rs-config, rule id c2) matches are not walked separately: they reach the same address, port and scheme`,
		},
		{
			name: "an Origin Rule's origin host: the paths go to that host's address",
			zone: withRules(zoneWith("example.com", strictSettings(), a("shop.example.com", "192.0.2.1"), a("backend.example.com", "192.0.2.7")),
				cloudflare.Rules{Origin: []cloudflare.Rule{routeRule("o3", "shop to backend", `http.host eq "shop.example.com"`,
					func(r *cloudflare.Rule) { r.OriginHost = "backend.example.com" })}}),
			setup: func(f *fixture) {
				f.host.addrs = append(f.host.addrs, netip.MustParseAddr("192.0.2.7"))
			},
			want: []string{
				"backend.example.com A 192.0.2.7 80/http ok 200 http",
				"backend.example.com A 192.0.2.7 443/https ok 200 http",
				"shop.example.com A 192.0.2.7 80/http ok 200 http",
				"shop.example.com A 192.0.2.7 443/https ok 200 http",
			},
			evidence: "Cloudflare connects to 192.0.2.7 (an address of backend.example.com), not to the record of shop.example.com",
		},
		{
			name: "a wildcard record: the rules see the name it is probed with (no record of its own)",
			zone: withRules(zoneWith("example.com", full, a("*.example.com", "192.0.2.1")),
				cloudflare.Rules{Origin: []cloudflare.Rule{
					routeRule("o4", "api only", `http.host eq "api.example.com"`, func(r *cloudflare.Rule) { r.OriginPort = 8443 }),
					routeRule("o5", "all subdomains", `ends_with(http.host, ".example.com")`, func(r *cloudflare.Rule) { r.OriginPort = 2053 }),
				}}),
			want: []string{
				"*.example.com A 192.0.2.1 2053/http ok 200 http",
				"*.example.com A 192.0.2.1 2053/https ok 200 http",
			},
			rules: []string{`Origin Rule "all subdomains" (ruleset rs-origin, rule id o5)`},
		},
		{
			name: "an origin host that does not resolve: 530 (1016)",
			zone: withRules(zoneWith("example.com", strictSettings(), a("shop.example.com", "192.0.2.1")),
				cloudflare.Rules{Page: []cloudflare.PageRule{{ID: "p1", Target: "shop.example.com/*", Status: "active", ResolveOverride: "gone.example.com"}}}),
			want: []string{"shop.example.com A  0/ FAIL 530 record"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(tt.zone)
			if tt.setup != nil {
				tt.setup(f)
			}
			rep := f.run(t)
			if diff := cmp.Diff(tt.want, briefs(rep)); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			var ev, warns []string
			var rules []string
			for _, p := range rep.Paths {
				ev = append(ev, p.Evidence...)
				warns = append(warns, p.Warnings...)
				for _, r := range p.Rules {
					if !slices.Contains(rules, r) {
						rules = append(rules, r)
					}
				}
			}
			if tt.evidence != "" && !slices.ContainsFunc(ev, func(s string) bool { return strings.Contains(s, tt.evidence) }) {
				t.Errorf("no evidence %q in %q", tt.evidence, ev)
			}
			if tt.warning != "" && !slices.ContainsFunc(warns, func(s string) bool { return strings.Contains(s, tt.warning) }) {
				t.Errorf("no warning %q in %q", tt.warning, warns)
			}
			for _, p := range rep.Paths {
				if tt.only != "" && p.Port != 80 && p.Port != 443 && (len(p.Warnings) == 0 || p.Warnings[0] != tt.only) {
					t.Errorf("path %s: warnings %q, want first %q", brief(p), p.Warnings, tt.only)
				}
				if tt.only != "" && (p.Port == 80 || p.Port == 443) && slices.Contains(p.Warnings, tt.only) {
					t.Errorf("path %s: the default path says it is only for some requests", brief(p))
				}
			}
			if tt.rules != nil {
				if diff := cmp.Diff(tt.rules, rules); diff != "" {
					t.Errorf("rules (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// The probe sends the Host header and SNI the rules set: a Host header
// override sets both, an explicit SNI wins for the SNI.
func TestRunRulesHostAndSNI(t *testing.T) {
	z := withRules(zoneWith("example.com", strictSettings(), a("api.example.com", "192.0.2.1")), cloudflare.Rules{Origin: []cloudflare.Rule{
		routeRule("o1", "host", `http.host eq "api.example.com"`, func(r *cloudflare.Rule) { r.HostHeader = "internal.example.net" }),
		routeRule("o2", "sni", `http.host in {"api.example.com"}`, func(r *cloudflare.Rule) { r.SNI = "tls.example.net" }),
	}})
	f := newFixture(z)
	f.run(t)
	if len(f.probe.targets) == 0 {
		t.Fatal("the http stage never ran")
	}
	for _, tg := range f.probe.targets {
		if tg.Host != "internal.example.net" || tg.SNI != "tls.example.net" || tg.Hostname != "api.example.com" {
			t.Errorf("target %+v: want Host internal.example.net, SNI tls.example.net", tg)
		}
	}
}

// A token without the rules permissions: one finding for the run, naming
// what was not read and what to grant, and the paths still walked.
func TestRunRulesUnread(t *testing.T) {
	perm := func(what, need string) cloudflare.Unread {
		return cloudflare.Unread{What: what, Need: need, Err: &cloudflare.Error{Kind: cloudflare.KindPermission, What: "read the " + what, Status: 403, Code: 10000, APIMessage: "Authentication error", Need: need}}
	}
	unread := cloudflare.Rules{Unread: []cloudflare.Unread{
		perm("Configuration Rules", cloudflare.PermConfigRulesRead), perm("Origin Rules", cloudflare.PermOriginRulesRead)}}
	f := newFixture(
		withRules(zoneWith("a.example", strictSettings(), a("a.example", "192.0.2.1")), unread),
		withRules(zoneWith("b.example", strictSettings(), a("b.example", "192.0.2.1")), unread),
	)
	f.api.zones[1].zone.ID = "id-b"
	rep := f.run(t)
	if len(rep.Paths) != 4 {
		t.Errorf("%d paths, want 4: the rest still runs", len(rep.Paths))
	}
	var got []report.Finding
	for _, fd := range rep.Findings {
		if strings.Contains(fd.Message, "not read") {
			got = append(got, fd)
		}
	}
	want := []report.Finding{{Severity: report.SeverityWarning,
		Message: "Configuration Rules and Origin Rules not read (zones: a.example, b.example); the paths assume the zone settings for them",
		Fix:     "Give the API token Zone → Config Rules:Read, Zone → Origin Rules:Read (read-only), or ignore this if the zones use no such rules."}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// A kind of rules the API would not give for another reason: the line
// says what Cloudflare answered, with no permission to grant.
func TestRunRulesUnreadOther(t *testing.T) {
	rs := cloudflare.Rules{Unread: []cloudflare.Unread{{What: "Page Rules", Need: cloudflare.PermPageRulesRead,
		Err: &cloudflare.Error{Kind: cloudflare.KindAPI, What: "read the Page Rules", Status: 500, Code: 10001, APIMessage: "Internal error"}}}}
	f := newFixture(withRules(zoneWith("a.example", strictSettings(), a("a.example", "192.0.2.1")), rs))
	rep := f.run(t)
	var got []report.Finding
	for _, fd := range rep.Findings {
		if strings.Contains(fd.Message, "not read") {
			got = append(got, fd)
		}
	}
	want := []report.Finding{{Severity: report.SeverityWarning,
		Message: "Page Rules not read (zones: a.example); the paths assume the zone settings for them — Page Rules of a.example: cannot read the Page Rules: Cloudflare answered 10001 Internal error"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// Rules that cannot be read at all are a warning for the zone; the run goes on.
func TestRunRulesError(t *testing.T) {
	z := zoneWith("example.com", strictSettings(), a("www.example.com", "192.0.2.1"))
	z.rulesErr = errors.New("cannot read the Origin Rules: Cloudflare answered HTTP 500")
	f := newFixture(z)
	rep := f.run(t)
	if len(rep.Paths) != 2 {
		t.Errorf("%d paths, want 2", len(rep.Paths))
	}
	if !slices.ContainsFunc(messages(rep), func(s string) bool {
		return strings.Contains(s, "warning: zone example.com: the Configuration, Origin and Page Rules were not read (cannot read the Origin Rules: Cloudflare answered HTTP 500)")
	}) {
		t.Errorf("findings %q", messages(rep))
	}
}
