package sim

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

// TestInterfaceAndIngress checks, against the kernel, that naming the
// arrival interface resolves `iifname` rules, and that an ingress chain
// (which runs before prerouting) makes the answer "cannot tell".
func TestInterfaceAndIngress(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	t.Parallel()
	origin, client := pair(t)
	path, err := filepath.Abs(filepath.Join("testdata", "cannot_tell.nft"))
	if err != nil {
		t.Fatal(err)
	}
	origin.Run("nft", "-f", path)
	var (
		index uint32
		name  string
	)
	out := origin.Run("ip", "-o", "link", "show", "type", "veth")
	if _, err := fmt.Sscanf(out, "%d: %s", &index, &name); err != nil {
		t.Fatalf("finding the origin's veth in %q: %v", out, err)
	}
	name, _, _ = strings.Cut(strings.TrimSuffix(name, ":"), "@")

	ctx, cancel := context.WithTimeout(context.Background(), readCtxTimeout)
	defer cancel()
	rs, err := Read(ctx, origin.Fd())
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr(cfA)
	if got := rs.Check(src, origin4, 82); got.Verdict != CannotTell {
		t.Errorf(`iifname "eth0" without the interface: got %+v, want cannot tell`, got)
	}
	rs.SetInterface(name, index)
	real := dial(t, client, src, 82)
	if got := rs.Check(src, origin4, 82); got.Verdict != Accept || real != Accept {
		t.Errorf(`iifname "eth0" on %s: simulator %v (%+v), kernel %v, want accept from both`, name, got.Verdict, got, real)
	}

	ingress := filepath.Join(t.TempDir(), "ingress.nft")
	rules := fmt.Sprintf("table netdev ing {\n\tchain in {\n\t\ttype filter hook ingress device %q priority 0; policy accept;\n\t\ttcp dport 9000 drop\n\t}\n}\n", name)
	if err := os.WriteFile(ingress, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	origin.Run("nft", "-f", ingress)
	if rs, err = Read(ctx, origin.Fd()); err != nil {
		t.Fatal(err)
	}
	real = dial(t, client, netip.MustParseAddr(other4), 9000)
	got := rs.Check(netip.MustParseAddr(other4), origin4, 9000)
	if got.Verdict != CannotTell || real != Drop || !strings.Contains(got.Reason, "ingress") {
		t.Errorf("netdev ingress drop: simulator %+v, kernel %v; want cannot tell (naming ingress) and drop", got, real)
	}
	t.Logf("ingress: %+v", got)
}
