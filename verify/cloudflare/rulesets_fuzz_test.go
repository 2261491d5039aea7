package cloudflare

import (
	"testing"
)

// FuzzParseRuleset: the rulesets' and Page Rules' answers are read without
// panicking, and what is read stays within what Cloudflare could send: a
// port in 0–65535, hostnames without CR, LF, space or NUL, names of at
// most 200 bytes (and …), at most MaxRules rules.
func FuzzParseRuleset(f *testing.F) {
	f.Add([]byte(`{"success":true,"result":{"id":"rs","rules":[{"id":"o1","description":"api","expression":"http.host eq \"api.example.com\"","action":"route","action_parameters":{"origin":{"host":"b.example.com","port":8443},"host_header":"b.example.com","sni":{"value":"b.example.com"}}}]}}`))
	f.Add([]byte(`{"success":true,"result":{"id":"rs","rules":[{"id":"c1","expression":"true","action":"set_config","action_parameters":{"ssl":"strict"},"enabled":false}]}}`))
	f.Add([]byte(`{"success":true,"result":[{"id":"p1","targets":[{"target":"url","constraint":{"operator":"matches","value":"*example.com/*"}}],"actions":[{"id":"ssl","value":"full"},{"id":"host_header_override","value":"a.example.com"}],"priority":1,"status":"active"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rules, err := parsePhase(body, PhaseOrigin, "read the Origin Rules")
		if err != nil {
			if _, ok := err.(*Error); !ok || rules != nil {
				t.Fatalf("parsePhase: %T %v with %d rules", err, err, len(rules))
			}
		}
		if len(rules) > MaxRules {
			t.Fatalf("%d rules", len(rules))
		}
		for _, r := range rules {
			if r.OriginPort < 0 || r.OriginPort > 65535 || badRoute(r) != "" || len(r.Description) > maxName+len("…") || len(r.ID) > maxName+len("…") {
				t.Fatalf("a rule outside the checks: %+v", r)
			}
		}
		pages, err := parsePageRules(body)
		if err != nil {
			if _, ok := err.(*Error); !ok || pages != nil {
				t.Fatalf("parsePageRules: %T %v with %d rules", err, err, len(pages))
			}
		}
		for i, p := range pages {
			if p.ResolveOverride != "" && !validName(p.ResolveOverride) || p.HostHeaderOverride != "" && !validName(p.HostHeaderOverride) {
				t.Fatalf("a Page Rule outside the checks: %+v", p)
			}
			if i > 0 && pages[i-1].Priority < p.Priority {
				t.Fatalf("Page Rules not by priority: %+v", pages)
			}
		}
	})
}
