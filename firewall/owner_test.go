package firewall

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// debianFilter is an administrator's own table, as Debian's nftables.conf
// starts it and as a hardened host runs it: policy drop, SSH accepted, an
// output chain. cmd/cfguard's end-to-end tests load the same file.
var debianFilter = mustRead("testdata/debian-filter.nft")

func mustRead(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func loadNft(t *testing.T, ns *nstest.NS, text string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.nft")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(text)
	f.Close()
	ns.Run("nft", "-f", f.Name())
}

// legacyTable is the table an earlier cfguard made: Render without the
// mark and without the UDP rules.
func legacyTable(cfg Config, w Want) string {
	var keep []string
	for _, l := range strings.SplitAfter(Render(cfg, w), "\n") {
		if strings.Contains(l, "comment \""+Mark+"\"") || strings.Contains(l, "udp") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "")
}

// A table cfguard did not create is never written, repaired or deleted:
// Apply, Plan and Remove refuse with one line, the kernel's ruleset stays
// byte-identical and no transaction is committed.
func TestNotOwnedTableRefused(t *testing.T) {
	for _, tc := range []struct {
		name, table, nft string
		want             string // the refusal of Apply; Remove says "delete" for "change"
		problem          string // the status line
	}{
		{"debian inet filter", "filter", debianFilter,
			"table inet filter exists and was not created by cfguard (no cfguard mark); refusing to change it — choose another --table",
			"table inet filter exists and was not created by cfguard (no cfguard mark): cfguard does not guard it — choose another --table"},
		{"empty table named cfguard", "cfguard", "table inet cfguard {\n}\n",
			"table inet cfguard exists and was not created by cfguard (no cfguard mark); refusing to change it — choose another --table", ""},
		{"another tool's comment", "web", "table inet web {\n\tcomment \"made by ansible\tx\"\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n",
			`table inet web exists and was not created by cfguard (its comment is "made by ansible\tx", not cfguard's mark); refusing to change it — choose another --table`, ""},
		{"earlier cfguard's table, edited", "cfguard", strings.Replace(legacyTable(testCfg, standIn), "\t\ttcp dport @web_ports drop\n", "\t\ttcp dport 8080 accept\n\t\ttcp dport @web_ports drop\n", 1),
			"table inet cfguard exists and was not created by cfguard (no cfguard mark); refusing to change it — if an earlier cfguard made it and it was edited since, run `nft delete table inet cfguard` then `cfguard sync`; otherwise choose another --table", ""},
		{"earlier cfguard's layout plus a counter", "cfguard", legacyTable(testCfg, standIn) + "table inet cfguard {\n\tcounter c {\n\t}\n}\n",
			"refusing to change it — if an earlier cfguard made it", ""},
		{"earlier cfguard's layout, dormant", "cfguard", legacyTable(testCfg, standIn) + "table inet cfguard {\n\tflags dormant\n}\n",
			"refusing to change it — if an earlier cfguard made it", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			loadNft(t, ns, tc.nft)
			cfg := testCfg
			cfg.Table = tc.table
			m := manager(t, ns, cfg)
			before, gen := ns.Run("nft", "-a", "list", "ruleset"), generation(t, ns)

			st, err := m.Read(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if !st.Present || st.Owned || !st.Foreign || st.Hooked || len(st.Problems) != 1 || st.Ports != nil || st.Cloudflare4 != nil {
				t.Errorf("state %+v: want present, foreign, nothing of its content", st)
			}
			if tc.problem != "" && (len(st.Problems) != 1 || st.Problems[0] != tc.problem) {
				t.Errorf("problem %q, want %q", st.Problems, tc.problem)
			}
			_, errPlan := m.Plan(ctxT(t), standIn)
			_, errApply := m.Apply(ctxT(t), standIn)
			_, errRemove := m.Remove(ctxT(t))
			for _, x := range []struct {
				op   string
				err  error
				want string
			}{
				{"plan", errPlan, tc.want},
				{"apply", errApply, tc.want},
				{"remove", errRemove, strings.Replace(tc.want, "refusing to change", "refusing to delete", 1)},
			} {
				var refused *NotOwnedError
				if !errors.As(x.err, &refused) {
					t.Errorf("%s: %v, want a *NotOwnedError", x.op, x.err)
					continue
				}
				if msg := x.err.Error(); !strings.Contains(msg, x.want) || strings.Contains(msg, "\n") {
					t.Errorf("%s: %q\nwant one line with %q", x.op, msg, x.want)
				}
			}
			if g := generation(t, ns); g != gen {
				t.Errorf("generation moved %d -> %d: something was committed", gen, g)
			}
			if diff := cmp.Diff(before, ns.Run("nft", "-a", "list", "ruleset")); diff != "" {
				t.Errorf("ruleset changed (-before +after):\n%s", diff)
			}
		})
	}
}

// cfguard's own table sits next to the administrator's inet filter, and
// sync, drift repair and remove of it leave the filter table byte-identical.
func TestOwnedTableNextToFilter(t *testing.T) {
	ns := kernelNS(t)
	loadNft(t, ns, debianFilter)
	filter := func() string { return ns.Run("nft", "-a", "list", "table", "inet", "filter") }
	before := filter()
	m := manager(t, ns, testCfg)
	mustApply(t, m, standIn)
	ns.Run("nft", "add rule inet cfguard input tcp dport 22 drop")
	if c := mustApply(t, m, standIn); !c.ChainsRebuilt {
		t.Errorf("drift not repaired: %+v", c)
	}
	if _, err := m.Remove(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, filter()); diff != "" {
		t.Errorf("inet filter changed (-before +after):\n%s", diff)
	}
}

// The mark is in the kernel: nft shows it, and a table made with `nft -f`
// from Render's text (which carries it) is cfguard's.
func TestMarkInKernel(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	mustApply(t, m, standIn)
	if out := listTable(t, ns); !strings.Contains(out, "\tcomment \"managed by cfguard\"\n") {
		t.Errorf("nft does not show the mark:\n%s", out)
	}
	ns.Run("nft", "delete", "table", "inet", "cfguard")
	loadNft(t, ns, Render(testCfg, standIn))
	st, err := m.Read(ctxT(t))
	if err != nil || !st.Owned || !st.Hooked || st.Foreign {
		t.Fatalf("table loaded from Render: %+v, %v", st, err)
	}
	if c := mustApply(t, m, standIn); !c.Empty() {
		t.Errorf("apply on the table loaded from Render: %+v, want none", c)
	}
}

// An earlier cfguard's table (exactly its old layout, no mark) is adopted
// in one transaction: made again with the mark and the UDP rules, its
// content diffed honestly; status says so before.
func TestLegacyTableAdopted(t *testing.T) {
	ns := kernelNS(t)
	old := Want{Cloudflare: pfx("198.51.100.0/24", "2001:db8:cf::/48"), Allow: pfx("192.0.2.10/32")}
	loadNft(t, ns, legacyTable(testCfg, old))
	m := manager(t, ns, testCfg)
	st, err := m.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Owned || !st.Legacy || st.Hooked || st.Foreign {
		t.Errorf("legacy state %+v", st)
	}
	if got := strings.Join(st.Problems, "\n"); !strings.Contains(got, "rule 7 missing (`udp dport @web_ports drop`)") ||
		!strings.Contains(got, "was made by an earlier cfguard") {
		t.Errorf("problems %q", st.Problems)
	}
	gen := generation(t, ns)
	c := mustApply(t, m, standIn)
	want := Change{
		ChainsRebuilt: true,
		RebuildReason: "adopted table inet cfguard made by an earlier cfguard: re-created it with cfguard's mark and the UDP drop",
		Added:         pfx("203.0.113.0/24", "2001:db8:cf1::/48"),
		Removed:       pfx("192.0.2.10/32"),
	}
	if diff := cmp.Diff(want, c, prefixCmp); diff != "" {
		t.Errorf("adopt (-want +got):\n%s", diff)
	}
	if g := generation(t, ns); g != gen+1 {
		t.Errorf("generation %d -> %d: want one transaction", gen, g)
	}
	if diff := cmp.Diff(Render(testCfg, standIn), listTable(t, ns)); diff != "" {
		t.Errorf("after adoption (-want +got):\n%s", diff)
	}
	if c := mustApply(t, m, standIn); !c.Empty() {
		t.Errorf("apply after adoption: %+v", c)
	}

	// remove deletes an earlier cfguard's table too.
	ns.Run("nft", "delete", "table", "inet", "cfguard")
	loadNft(t, ns, legacyTable(testCfg, old))
	if existed, err := m.Remove(ctxT(t)); !existed || err != nil {
		t.Errorf("remove of a legacy table: %v, %v", existed, err)
	}
}

func TestTableComment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		udata []byte
		want  string
		ok    bool
	}{
		{"mark", markUserdata(), Mark, true},
		{"none", nil, "", false},
		{"other type first", append([]byte{5, 1, 9}, markUserdata()...), Mark, true},
		{"short", []byte{0, 10, 'a'}, "", false},
		{"one byte", []byte{0}, "", false},
		{"no NUL", []byte{0, 2, 'h', 'i'}, "hi", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tableComment(tc.udata)
			if got != tc.want || ok != tc.ok {
				t.Errorf("tableComment(%v) = %q, %v; want %q, %v", tc.udata, got, ok, tc.want, tc.ok)
			}
		})
	}
	if !(&tableInfo{udata: markUserdata()}).marked() || (&tableInfo{udata: []byte{0, 3, 'c', 'f', 0}}).marked() {
		t.Error("marked")
	}
}

// A table that takes cfguard's name between the read and the transaction
// is not written to: the create is exclusive, and the delete of an earlier
// cfguard's table names the table read by its handle.
func TestTableAppearingMeanwhileIsLeftAlone(t *testing.T) {
	foreign := "table inet cfguard {\n\tchain admin {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ns *nstest.NS)
		race  func(t *testing.T, ns *nstest.NS)
	}{
		{"created meanwhile", func(t *testing.T, ns *nstest.NS) {},
			func(t *testing.T, ns *nstest.NS) { loadNft(t, ns, foreign) }},
		{"an earlier cfguard's table replaced meanwhile", func(t *testing.T, ns *nstest.NS) { loadNft(t, ns, legacyTable(testCfg, standIn)) },
			func(t *testing.T, ns *nstest.NS) {
				ns.Run("nft", "delete", "table", "inet", "cfguard")
				loadNft(t, ns, foreign)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			tc.setup(t, ns)
			m := manager(t, ns, testCfg)
			var before string
			m.beforeFlush = func(*nftables.Conn, *plan) {
				tc.race(t, ns)
				before = ns.Run("nft", "-a", "list", "ruleset")
			}
			if _, err := m.Apply(ctxT(t), standIn); err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("apply over a table that appeared meanwhile: %v, want a one-line error", err)
			}
			if diff := cmp.Diff(before, ns.Run("nft", "-a", "list", "ruleset")); diff != "" {
				t.Errorf("the table that appeared was changed (-before +after):\n%s", diff)
			}
			m.beforeFlush = nil
			if _, err := m.Apply(ctxT(t), standIn); !errors.As(err, new(*NotOwnedError)) {
				t.Errorf("next apply: %v, want the refusal", err)
			}
		})
	}
}
