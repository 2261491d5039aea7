package cloudflare

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

func TestRules(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	off := false
	s.SetPhaseRules(id, PhaseConfig, []cfapitest.Rule{
		{ID: "c1", Description: "api strict", Expression: `http.host eq "api.example.com"`, Action: "set_config", ActionParameters: map[string]any{"ssl": "strict", "rocket_loader": false}},
		{ID: "c2", Description: "off one", Expression: `true`, Action: "set_config", ActionParameters: map[string]any{"ssl": "off"}, Enabled: &off},
	})
	s.SetPhaseRules(id, PhaseOrigin, []cfapitest.Rule{
		{ID: "o1", Description: "api to 8443", Expression: `http.host eq "api.example.com"`, Action: "route",
			ActionParameters: map[string]any{"origin": map[string]any{"host": "backend.example.com", "port": 8443}, "host_header": "backend.example.com", "sni": map[string]any{"value": "sni.example.com"}}},
	})
	s.SetPageRules(id, []cfapitest.PageRule{
		{ID: "p-low", Target: "*example.com/*", Priority: 1, Actions: map[string]any{"ssl": "flexible", "cache_level": "bypass"}},
		{ID: "p-high", Target: "www.example.com/*", Priority: 5, Actions: map[string]any{"resolve_override": "old.example.com", "host_header_override": "old.example.com"}, Status: "disabled"},
	})
	got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	rsC, rsO := got.Config[0].RulesetID, got.Origin[0].RulesetID
	if rsC == "" || rsO == "" || rsC == rsO {
		t.Errorf("ruleset ids %q %q, want two different ones", rsC, rsO)
	}
	want := Rules{
		Config: []Rule{
			{Phase: PhaseConfig, RulesetID: rsC, ID: "c1", Description: "api strict", Expression: `http.host eq "api.example.com"`, Enabled: true, Action: "set_config", SSL: "strict"},
			{Phase: PhaseConfig, RulesetID: rsC, ID: "c2", Description: "off one", Expression: `true`, Enabled: false, Action: "set_config", SSL: "off"},
		},
		Origin: []Rule{{Phase: PhaseOrigin, RulesetID: rsO, ID: "o1", Description: "api to 8443", Expression: `http.host eq "api.example.com"`, Enabled: true, Action: "route",
			OriginHost: "backend.example.com", OriginPort: 8443, HostHeader: "backend.example.com", SNI: "sni.example.com"}},
		Page: []PageRule{
			{ID: "p-high", Target: "www.example.com/*", Priority: 5, Status: "disabled", ResolveOverride: "old.example.com", HostHeaderOverride: "old.example.com"},
			{ID: "p-low", Target: "*example.com/*", Priority: 1, Status: "active", SSL: "flexible"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rules (-want +got):\n%s", diff)
	}
}

// A zone that never had a rule has no entrypoint ruleset: 404, no rules,
// nothing unread.
func TestRulesNoEntrypoint(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Rules{}, got); diff != "" {
		t.Errorf("Rules (-want +got):\n%s", diff)
	}
	if n := s.Requests["/zones/"+id+"/rulesets/phases/"+PhaseOrigin+"/entrypoint"]; n != 1 {
		t.Errorf("the origin phase was asked %d times, want once (a 404 is not retried)", n)
	}
}

// A token without the rules permissions: each kind goes to Unread with the
// permission it needs, and what may be read still is.
func TestRulesPermission(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.SetPhaseRules(id, PhaseConfig, []cfapitest.Rule{{ID: "c1", Expression: "true", Action: "set_config", ActionParameters: map[string]any{"ssl": "strict"}}})
	s.AddToken(cfapitest.Token{Value: "narrow", Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermConfigRulesRead}})
	got, err := newClient(t, s, "narrow").Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Config) != 1 {
		t.Errorf("Config = %v, want the one rule the token may read", got.Config)
	}
	var unread []string
	for _, u := range got.Unread {
		unread = append(unread, u.What+" | "+u.Need+" | "+u.Err.Error())
	}
	want := []string{
		"Origin Rules | Origin Rules:Read | the API token may not read the Origin Rules (Cloudflare said 10000 Authentication error): give the token Origin Rules:Read",
		"Page Rules | Page Rules:Read | the API token may not read the Page Rules (Cloudflare said 10000 Authentication error): give the token Page Rules:Read",
	}
	if diff := cmp.Diff(want, unread); diff != "" {
		t.Errorf("Unread (-want +got):\n%s", diff)
	}
}

func TestRulesMalformed(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.SetRawPhase(id, PhaseOrigin, `{"success":true,"errors":[],"messages":[],"result":{"id":"r","rules":[{"id":"x","action":"route","action_parameters":{"origin":{"port":"eighty"}}}]}}`)
	s.SetRawPhase(id, PhaseConfig, `<html>502 Bad Gateway</html>`)
	got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Unread) != 2 {
		t.Fatalf("Unread = %v, want both rulesets", got.Unread)
	}
	want := []string{
		"cannot read the Configuration Rules: Cloudflare answered something that is not JSON (invalid character '<' looking for beginning of value)",
		"cannot read the Origin Rules: Cloudflare answered rule x with action_parameters verify cannot read (json: cannot unmarshal string into Go struct field .origin.port of type int)",
	}
	for i, u := range got.Unread {
		if u.Err.Error() != want[i] {
			t.Errorf("%s: %v, want %s", u.What, u.Err, want[i])
		}
	}
}

func TestRulesBadToken(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	_, err := newClient(t, s, "wrong").Rules(context.Background(), id)
	if !IsToken(err) {
		t.Errorf("Rules with a refused token: %v, want a token error", err)
	}
}
