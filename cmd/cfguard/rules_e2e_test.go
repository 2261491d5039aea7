package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

// The real binary against the stand-in API's rulesets: an Origin Rule
// sends api.example.com to port 8443 with another Host header, and the
// origin on 8443 (in the namespace) sees that request; a Configuration
// Rule makes www.example.com Full, so its HTTPS path to 443 is checked and
// fails (nothing listens there); a rule on the URI path is a warning. A
// token without the rules permissions gets one finding, and the paths are
// walked on the zone settings.
func TestVerifyRules(t *testing.T) {
	v := newVerifySite(t)
	var ln net.Listener
	if err := v.origin.Do(func() (err error) {
		ln, err = net.Listen("tcp", "192.0.2.1:8443")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hosts []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		w.Write([]byte("api\n"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	zone := v.api.ZoneID("example.com")
	v.api.SetPhaseRules(zone, cloudflare.PhaseOrigin, []cfapitest.Rule{
		{ID: "o1", Description: "api to 8443", Expression: `http.host eq "api.example.com"`, Action: "route",
			ActionParameters: map[string]any{"origin": map[string]any{"port": 8443}, "host_header": "backend.example.com"}},
		{ID: "o2", Description: "www admin", Expression: `http.host eq "www.example.com" and starts_with(http.request.uri.path, "/admin")`, Action: "route",
			ActionParameters: map[string]any{"origin": map[string]any{"port": 9000}}},
	})
	v.api.SetPhaseRules(zone, cloudflare.PhaseConfig, []cfapitest.Rule{
		{ID: "c1", Description: "www full", Expression: `http.host in {"www.example.com"}`, Action: "set_config", ActionParameters: map[string]any{"ssl": "full"}},
	})

	out, errOut, code := v.verify(cfapitest.DefaultToken, "--json", "--timeout", "3s")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s\nstderr: %s", err, out, errOut)
	}
	got := map[string]report.Path{}
	for _, p := range rep.Paths {
		if p.Port == 9000 {
			got[p.Hostname+" "+p.Scheme+" admin"] = p
			continue
		}
		got[p.Hostname+" "+p.Scheme] = p
	}
	if code != 1 || len(rep.Paths) != 5 {
		t.Fatalf("exit %d, %d paths, want 1 and 5 (api http, www http and https, and both again to 9000 for /admin)\n%s", code, len(rep.Paths), out)
	}
	if admin := got["www.example.com https admin"]; admin.OK || admin.Status != 521 || len(admin.Warnings) == 0 || !strings.HasPrefix(admin.Warnings[0], `only for the requests that Origin Rule "www admin"`) || !strings.Contains(admin.Fix, `Port 9000 comes from Origin Rule "www admin"`) {
		t.Errorf("www /admin path (nothing on 9000): %+v", admin)
	}
	api := got["api.example.com http"]
	if !api.OK || api.Port != 8443 || api.Status != 200 || len(api.Rules) != 1 || !strings.Contains(api.Rules[0], `Origin Rule "api to 8443"`) {
		t.Errorf("api path: %+v", api)
	}
	mu.Lock()
	if len(hosts) == 0 || hosts[0] != "backend.example.com" {
		t.Errorf("the origin on 8443 saw Host %q, want backend.example.com (the rule's)", hosts)
	}
	mu.Unlock()
	www := got["www.example.com https"]
	if www.OK || www.Port != 443 || www.Status != 521 || !strings.Contains(www.Fix, `the SSL mode in Configuration Rule "www full"`) {
		t.Errorf("www https path (Full by the rule, nothing on 443): %+v", www)
	}
	if w := strings.Join(got["www.example.com http"].Warnings, "\n"); !strings.Contains(w, `depends on the request: Origin Rule "www admin"`) || !strings.Contains(w, "http.request.uri.path") {
		t.Errorf("www http warnings: %q", w)
	}

	// The text says which rule changed a passing path.
	text, _, _ := v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	if !strings.Contains(text, `· as changed by Origin Rule "api to 8443"`) || !strings.Contains(text, "sets SSL mode full") {
		t.Errorf("text output does not name the rules:\n%s", text)
	}
	t.Logf("verify:\n%s", text)

	// A token that may not read rules: one finding, the paths on the zone
	// settings (flexible: port 80 only, all pass).
	v.api.AddToken(cfapitest.Token{Value: "no-rules-token-0123456789", Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermZoneSettingsRead, cfapitest.PermDNSRead, cfapitest.PermAnalyticsRead}})
	out, errOut, code = v.verify("no-rules-token-0123456789", "--json", "--timeout", "3s")
	rep = report.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s\nstderr: %s", err, out, errOut)
	}
	var lines []string
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, "not read") {
			lines = append(lines, f.Message+" | "+f.Fix)
		}
	}
	want := "Configuration Rules, Origin Rules and Page Rules not read (zones: example.com); the paths assume the zone settings for them | Give the API token Zone → Config Rules:Read, Zone → Origin Rules:Read, Zone → Page Rules:Read (read-only), or ignore this if the zones use no such rules."
	if code != 0 || rep.Summary.Paths != 2 || len(lines) != 1 || lines[0] != want {
		t.Errorf("no rules permission: exit %d, %d paths, findings %q\n%s", code, rep.Summary.Paths, lines, out)
	}
}
