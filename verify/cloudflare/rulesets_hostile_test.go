package cloudflare

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

// Route parameters Cloudflare could not have sent make the Origin Rules
// unread, one line naming the rule and the value: a port outside 1–65535
// (0 is none), a Host header with CR LF (it would add headers to verify's
// request), an SNI or origin host that is no hostname.
func TestRulesHostileRoute(t *testing.T) {
	tests := []struct {
		name string
		ap   map[string]any
		want string // the Unread error; "" when the rule is read
	}{
		{"port 65536", map[string]any{"origin": map[string]any{"port": 65536}}, `rule o1 with origin port 65536, which is no port (1–65535)`},
		{"negative port", map[string]any{"origin": map[string]any{"port": -443}}, `rule o1 with origin port -443, which is no port (1–65535)`},
		{"port 0 is none", map[string]any{"origin": map[string]any{"port": 0}}, ""},
		{"Host header with CR LF", map[string]any{"host_header": "a.example.com\r\nX-Injected: 1"}, `rule o1 with host_header "a.example.com\r\nX-Injected: 1", which is no hostname`},
		{"SNI with a space", map[string]any{"sni": map[string]any{"value": "a .example.com"}}, `rule o1 with SNI "a .example.com", which is no hostname`},
		{"SNI with NUL", map[string]any{"sni": map[string]any{"value": "a\x00.example.com"}}, `rule o1 with SNI "a\x00.example.com", which is no hostname`},
		{"origin host localhost is a name", map[string]any{"origin": map[string]any{"host": "localhost"}}, ""},
		{"origin host with a slash", map[string]any{"origin": map[string]any{"host": "a.example.com/x"}}, `rule o1 with origin host "a.example.com/x", which is no hostname`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cfapitest.New(t)
			id := s.AddZone("example.com", nil)
			s.SetPhaseRules(id, PhaseOrigin, []cfapitest.Rule{{ID: "o1", Expression: "true", Action: "route", ActionParameters: tt.ap}})
			got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if len(got.Unread) != 0 || len(got.Origin) != 1 {
					t.Errorf("Unread %v, Origin %v: want the rule read", got.Unread, got.Origin)
				}
				return
			}
			if len(got.Unread) != 1 || len(got.Origin) != 0 {
				t.Fatalf("Unread %v, Origin %v: want the Origin Rules unread", got.Unread, got.Origin)
			}
			if want := "cannot read the Origin Rules: Cloudflare answered " + tt.want; got.Unread[0].Err.Error() != want {
				t.Errorf("Unread: %v\nwant      %s", got.Unread[0].Err, want)
			}
		})
	}
}

// A Page Rule whose Host header override holds CR LF: the Page Rules are
// unread.
func TestRulesHostilePageRule(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.SetPageRules(id, []cfapitest.PageRule{{ID: "p1", Target: "*example.com/*", Actions: map[string]any{"host_header_override": "a\r\nb"}}})
	got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := `cannot read the Page Rules: Cloudflare answered Page Rule p1 with host_header_override "a\r\nb", which is no hostname`
	if len(got.Unread) != 1 || got.Unread[0].Err.Error() != want {
		t.Errorf("Unread %v, want %s", got.Unread, want)
	}
}

// A description of 1 MB (each rule's is repeated on every path it
// changes) is kept to its first 200 bytes, cut at a rune; more than
// MaxRules rules in a phase are refused.
func TestRulesHostileSizes(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	long := "x" + strings.Repeat("é\u202e", 1<<18)
	s.SetPhaseRules(id, PhaseConfig, []cfapitest.Rule{{ID: "c1", Description: long, Expression: "true", Action: "set_config", ActionParameters: map[string]any{"ssl": "strict"}}})
	var many []cfapitest.Rule
	for i := range MaxRules + 1 {
		many = append(many, cfapitest.Rule{ID: fmt.Sprint("o", i), Expression: "true", Action: "route", ActionParameters: map[string]any{"origin": map[string]any{"port": 8443}}})
	}
	s.SetPhaseRules(id, PhaseOrigin, many)
	got, err := newClient(t, s, cfapitest.DefaultToken).Rules(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Config) != 1 {
		t.Fatalf("Config %d rules, want 1", len(got.Config))
	}
	d := got.Config[0].Description
	if len(d) > maxName+len("…") || !utf8.ValidString(d) || !strings.HasSuffix(d, "…") || !strings.HasPrefix(long, strings.TrimSuffix(d, "…")) {
		t.Errorf("description of %d bytes (%q…), want the first %d bytes of it, whole runes, and …", len(d), d[:min(len(d), 20)], maxName)
	}
	want := fmt.Sprintf("cannot read the Origin Rules: Cloudflare answered a ruleset of %d rules, more than the %d verify reads", MaxRules+1, MaxRules)
	if len(got.Unread) != 1 || got.Unread[0].Err.Error() != want {
		t.Errorf("Unread %v, want %s", got.Unread, want)
	}
}
