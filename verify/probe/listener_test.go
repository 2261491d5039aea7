package probe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// TestListenerNotJudgedByTheFirewall: a firewall that drops every source
// but Cloudflare's on the web ports also drops this host's own connect to
// itself (over loopback, from the origin's address). The listener stage
// reads the socket table and passes with a warning instead of a false 522;
// a port nothing listens on still fails with 521, without a connect.
func TestListenerNotJudgedByTheFirewall(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	origin, peer := nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, peer, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	rules := filepath.Join(t.TempDir(), "cf-only.nft")
	if err := os.WriteFile(rules, []byte(`flush ruleset
table inet f {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport { 8443, 8444 } ip saddr != 198.51.100.0/24 drop
		tcp dport 8445 ip saddr != 198.51.100.0/24 reject with tcp reset
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	origin.Run("nft", "-f", rules)
	for _, port := range []string{"8443", "8445"} {
		var ln net.Listener
		if err := origin.Do(func() (err error) {
			ln, err = net.Listen("tcp", "192.0.2.1:"+port)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	at := func(port int) Target {
		return Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: port, Scheme: "https", SSLMode: ModeFull}
	}
	tests := []struct {
		name                  string
		port                  int
		fail                  bool
		status                int
		cause, warn, evidence string
	}{
		{"dropped locally", 8443, false, 0, "something listens on 192.0.2.1:8443: 192.0.2.1:8443", "got no answer within", "connect from this host:"},
		{"rejected locally", 8445, false, 0, "something listens on 192.0.2.1:8445", "refused although 192.0.2.1:8445", "connection refused"},
		{"nothing listens", 8444, true, 521, "nothing listens on 192.0.2.1:8444", "", "listening: 192.0.2.1:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o report.Outcome
			origin.Do(func() error {
				// The caller's --timeout bounds the connect.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				o = Listener(ctx, at(tt.port))
				return nil
			})
			if o.Fail != tt.fail || o.Status != tt.status {
				t.Errorf("fail %v status %d, want %v %d: %+v", o.Fail, o.Status, tt.fail, tt.status, o)
			}
			if !strings.Contains(o.Cause, tt.cause) {
				t.Errorf("cause %q does not contain %q", o.Cause, tt.cause)
			}
			if w := strings.Join(o.Warnings, "\n"); (tt.warn == "") != (w == "") || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
			if e := strings.Join(o.Evidence, "\n"); !strings.Contains(e, tt.evidence) {
				t.Errorf("evidence %q does not contain %q", e, tt.evidence)
			}
		})
	}
}
