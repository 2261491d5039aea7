package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

func origin(id, desc, expr string, f func(*cloudflare.Rule)) cloudflare.Rule {
	r := cloudflare.Rule{Phase: cloudflare.PhaseOrigin, RulesetID: "rs-o", ID: id, Description: desc, Expression: expr, Enabled: true, Action: "route"}
	f(&r)
	return r
}

func config(id, desc, expr, ssl string) cloudflare.Rule {
	return cloudflare.Rule{Phase: cloudflare.PhaseConfig, RulesetID: "rs-c", ID: id, Description: desc, Expression: expr, Enabled: true, Action: "set_config", SSL: ssl}
}

func TestFor(t *testing.T) {
	rs := cloudflare.Rules{
		Config: []cloudflare.Rule{
			config("c1", "api strict", `http.host eq "api.example.com"`, "strict"),
			config("c2", "all flexible", `ends_with(http.host, ".example.com")`, "flexible"),
			config("c3", "api back to strict", `http.host in {"api.example.com"}`, "strict"),
			config("c4", "off", `http.host eq "api.example.com"`, "off"),
		},
		Origin: []cloudflare.Rule{
			origin("o1", "api to 8443", `http.host eq "api.example.com"`, func(r *cloudflare.Rule) { r.OriginPort = 8443 }),
			origin("o2", "api host", `http.host eq "api.example.com"`, func(r *cloudflare.Rule) { r.HostHeader = "backend.example.net" }),
			origin("o3", "shop by path", `http.host eq "www.example.com" and starts_with(http.request.uri.path, "/shop")`, func(r *cloudflare.Rule) { r.OriginPort = 9000 }),
		},
		Page: []cloudflare.PageRule{
			{ID: "p1", Target: "*api.example.com/*", Priority: 2, Status: "active", SSL: "full", ResolveOverride: "old.example.com"},
			{ID: "p2", Target: "www.example.com/*", Priority: 1, Status: "active", SSL: "off"},
		},
	}
	rs.Config[3].Enabled = false

	got := For(rs, "api.example.com")
	want := Override{SSL: "strict", Port: 8443, OriginHost: "old.example.com", HostHeader: "backend.example.net", SNI: "backend.example.net"}
	if diff := cmp.Diff(want, got, cmpIgnoreNotes, cmpopts.IgnoreUnexported(Override{})); diff != "" {
		t.Errorf("api (-want +got):\n%s", diff)
	}
	var applied []string
	for _, a := range got.Applied {
		applied = append(applied, a.String())
	}
	wantApplied := []string{
		`Page Rule "*api.example.com/*" (id p1) sets SSL mode full, origin old.example.com`,
		`Configuration Rule "api strict" (ruleset rs-c, rule id c1) sets SSL mode strict`,
		`Configuration Rule "all flexible" (ruleset rs-c, rule id c2) sets SSL mode flexible`,
		`Configuration Rule "api back to strict" (ruleset rs-c, rule id c3) sets SSL mode strict`,
		`Origin Rule "api to 8443" (ruleset rs-o, rule id o1) sets port 8443`,
		`Origin Rule "api host" (ruleset rs-o, rule id o2) sets Host header backend.example.net`,
	}
	if diff := cmp.Diff(wantApplied, applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}

	www := For(rs, "www.example.com")
	if www.SSL != "flexible" || www.Port != 0 {
		t.Errorf("www: SSL %q port %d, want flexible (config rule beats page rule) and no port", www.SSL, www.Port)
	}
	if len(www.Depends) != 1 || !strings.Contains(www.Depends[0], `Origin Rule "shop by path"`) || !strings.Contains(www.Depends[0], "http.request.uri.path") || !strings.Contains(www.Depends[0], "port 9000") {
		t.Errorf("www depends = %q, want the shop rule, its field and its port", www.Depends)
	}

	other := For(rs, "other.example.org")
	if diff := cmp.Diff(Override{}, other, cmpopts.IgnoreUnexported(Override{})); diff != "" {
		t.Errorf("other (-want +got):\n%s", diff)
	}

	wild := For(rs, "*.example.com")
	if wild.SSL != "" || len(wild.Depends) == 0 {
		t.Errorf("wildcard: %+v, want nothing applied and the rules named as depending", wild)
	}
}

var cmpIgnoreNotes = cmp.FilterPath(func(p cmp.Path) bool {
	n := p.Last().String()
	return n == ".Applied" || n == ".Depends"
}, cmp.Ignore())

func TestForExplicitSNI(t *testing.T) {
	rs := cloudflare.Rules{Origin: []cloudflare.Rule{
		origin("o1", "sni", `true`, func(r *cloudflare.Rule) { r.SNI = "sni.example.net" }),
		origin("o2", "host", `true`, func(r *cloudflare.Rule) { r.HostHeader = "host.example.net" }),
	}}
	got := For(rs, "a.example.com")
	if got.SNI != "sni.example.net" || got.HostHeader != "host.example.net" {
		t.Errorf("SNI %q Host %q, want the explicit SNI to stay", got.SNI, got.HostHeader)
	}
}

func TestForUnreadableExpression(t *testing.T) {
	rs := cloudflare.Rules{Config: []cloudflare.Rule{config("c1", "broken", `http.host eq "a`, "strict")}}
	got := For(rs, "a.example.com")
	if got.SSL != "" || len(got.Depends) != 1 || !strings.Contains(got.Depends[0], "cannot read its expression") {
		t.Errorf("got %+v", got)
	}
}

func TestMatchPageTarget(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          Truth
	}{
		{"www.example.com/*", "www.example.com", True},
		{"*example.com/*", "www.example.com", True},
		{"*example.com/*", "example.com", True},
		{"*.example.com/*", "example.com", False},
		{"WWW.Example.com/*", "www.example.com", True},
		{"www.example.com/shop/*", "www.example.com", Unknown},
		{"www.example.com", "www.example.com", Unknown},
		{"https://www.example.com/*", "www.example.com", Unknown},
		{"*://www.example.com/*", "www.example.com", True},
		{"www.example.com:8080/*", "www.example.com", Unknown},
		{"api.example.com/shop/*", "www.example.com", False},
	}
	for _, tt := range tests {
		if got := MatchPageTarget(tt.pattern, tt.host); got.Truth != tt.want {
			t.Errorf("MatchPageTarget(%q, %q) = %v, want %v", tt.pattern, tt.host, got.Truth, tt.want)
		}
	}
}

func TestAlternatives(t *testing.T) {
	rs := cloudflare.Rules{
		Config: []cloudflare.Rule{config("c1", "admin strict", `http.host eq "www.example.com" and http.request.uri.path eq "/admin"`, "strict")},
		Origin: []cloudflare.Rule{
			origin("o1", "api by path", `starts_with(http.request.uri.path, "/api/")`, func(r *cloudflare.Rule) { r.OriginPort = 9000 }),
			origin("o2", "same port", `ip.src.country eq "DE"`, func(r *cloudflare.Rule) { r.OriginPort = 8443 }),
			origin("o3", "all to 8443", `true`, func(r *cloudflare.Rule) { r.OriginPort = 8443 }),
		},
	}
	var got []string
	for _, a := range Alternatives(rs, "www.example.com") {
		got = append(got, fmt.Sprintf("%s | %s | ssl=%s port=%d", a.Rule.ID, a.Only(), a.Override.SSL, a.Override.Port))
	}
	want := []string{
		`c1 | only for the requests that Configuration Rule "admin strict" (ruleset rs-c, rule id c1) matches (on http.request.uri.path); the others take the path without it | ssl=strict port=8443`,
		// o1 is overridden by o3 (later wins): the same port 8443, no alternative; o2 likewise.
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Alternatives (-want +got):\n%s", diff)
	}
	rs.Origin = rs.Origin[:1]
	alts := Alternatives(rs, "www.example.com")
	if len(alts) != 2 || alts[1].Override.Port != 9000 || alts[1].Override.SSL != "" {
		t.Errorf("without o3: %+v, want c1 and o1 (port 9000)", alts)
	}
}
