package firewall

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// testTimeout bounds every kernel operation of a test.
const testTimeout = 30 * time.Second

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// Stand-in Cloudflare ranges (documentation prefixes only).
var standIn = Want{Cloudflare: pfx("198.51.100.0/24", "203.0.113.0/24", "2001:db8:cf::/48", "2001:db8:cf1::/48")}

var testCfg = Config{Table: "cfguard", Ports: []uint16{80, 443}}

// kernelNS is a throwaway namespace for a test that needs nft.
func kernelNS(t testing.TB) *nstest.NS {
	t.Helper()
	nstest.RequireRoot(t, "nft")
	return nstest.New(t)
}

// manager opens a Manager on ns.
func manager(t testing.TB, ns *nstest.NS, cfg Config) *Manager {
	t.Helper()
	cfg.NetNSFd = ns.Fd()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mustApply(t testing.TB, m *Manager, w Want) Change {
	t.Helper()
	c, err := m.Apply(ctxT(t), w)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listTable(t testing.TB, ns *nstest.NS) string {
	t.Helper()
	return ns.Run("nft", "list", "table", "inet", "cfguard")
}
