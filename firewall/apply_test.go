package firewall

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// What Apply writes, listed by the real nft, is exactly Render's text.
func TestApplyListsAsRender(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	w := Want{
		Cloudflare: pfx("198.51.100.0/24", "203.0.113.0/25", "203.0.113.128/25", "192.0.2.7/32",
			"240.0.0.0/4", "2001:db8:cf::/48", "2001:db8:cf1::/48", "2001:db8:ce::/47"),
		Allow: pfx("192.0.2.10/31", "192.0.2.12/32", "2001:db8:1::5/128"),
	}
	c := mustApply(t, m, w)
	if !c.TableCreated {
		t.Errorf("TableCreated = false on a fresh namespace: %+v", c)
	}
	got := listTable(t, ns)
	if diff := cmp.Diff(Render(testCfg, w), got); diff != "" {
		t.Errorf("nft list table vs Render (-want +got):\n%s", diff)
	}
}

// A table loaded from Render's text with the real nft reads back as
// cfguard's own: hooked, no drift, nothing to apply.
func TestNftLoadedRenderIsHooked(t *testing.T) {
	ns := kernelNS(t)
	f, err := os.CreateTemp(t.TempDir(), "*.nft")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(Render(testCfg, standIn))
	f.Close()
	ns.Run("nft", "-f", f.Name())
	m := manager(t, ns, testCfg)
	st, err := m.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Present || !st.Hooked || len(st.Problems) > 0 {
		t.Fatalf("state of an nft-loaded table: %+v", st)
	}
	c, err := m.Plan(ctxT(t), standIn)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Empty() {
		t.Errorf("plan over an nft-loaded table is not empty: %+v", c)
	}
}
