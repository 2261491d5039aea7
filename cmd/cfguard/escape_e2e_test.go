package main

import (
	"strings"
	"testing"
)

// API text that sync stores and status and sync print later (the etag) is
// escaped on the terminal, and kept exact in JSON.
func TestSyncAndStatusEscapeAPIText(t *testing.T) {
	s := newSite(t)
	const etag = "e\x1b]0;pwned\x07\u202e"
	s.api.SetIPs([]string{"198.51.100.0/24", "203.0.113.0/24"}, []string{"2001:db8:cf::/48"}, nil, etag)
	out := s.must("sync")
	out += s.must("status")
	if c := rawControls(out); c != "" {
		t.Errorf("sync and status printed %q raw:\n%s", c, out)
	}
	if !strings.Contains(out, `etag e\x1b]0;pwned\x07\u202e`) {
		t.Errorf("status does not show the escaped etag:\n%s", out)
	}
	js := s.must("status", "--json")
	if c := rawControls(js); c != "" {
		t.Errorf("status --json printed %q raw:\n%s", c, js)
	}
	if !strings.Contains(js, `"etag": "e\u001b]0;pwned\u0007\u202e"`) {
		t.Errorf("status --json does not carry the etag as JSON escapes:\n%s", js)
	}
}
