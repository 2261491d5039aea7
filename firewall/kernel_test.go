package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// generation is the namespace's nftables ruleset generation: every
// committed transaction, even one that changes nothing, increments it.
func generation(t testing.TB, ns *nstest.NS) uint32 {
	t.Helper()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: nftMsgType(unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   nfgenHeader(unix.AF_UNSPEC),
	})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("getgen: %v (%d replies)", err, len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID {
			return ad.Uint32()
		}
	}
	t.Fatal("getgen: no NFTA_GEN_ID")
	return 0
}

func TestReapplyWritesNothing(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	w := Want{Cloudflare: standIn.Cloudflare, Allow: pfx("192.0.2.10/32", "2001:db8:1::/64")}
	if c := mustApply(t, m, w); c.Empty() {
		t.Fatal("first apply reported no change")
	}
	before, gen := ns.Run("nft", "-a", "list", "ruleset"), generation(t, ns)

	// Again, on the same Manager and on a fresh one (a new process), with
	// the input in another order and unmerged.
	shuffled := Want{
		Cloudflare: pfx("2001:db8:cf1::/48", "203.0.113.0/25", "203.0.113.128/25", "2001:db8:cf::/48", "198.51.100.0/24"),
		Allow:      pfx("2001:db8:1::/64", "192.0.2.10/32"),
	}
	for i, mm := range []*Manager{m, manager(t, ns, testCfg), manager(t, ns, testCfg)} {
		flushes := mm.flushes
		c := mustApply(t, mm, shuffled)
		if !c.Empty() {
			t.Errorf("re-apply %d: change %+v, want none", i, c)
		}
		if mm.flushes != flushes {
			t.Errorf("re-apply %d sent %d transaction(s), want 0", i, mm.flushes-flushes)
		}
		p, err := mm.Plan(ctxT(t), shuffled)
		if err != nil || !p.Empty() {
			t.Errorf("plan %d: %+v, %v", i, p, err)
		}
	}
	if g := generation(t, ns); g != gen {
		t.Errorf("ruleset generation moved from %d to %d: something was committed", gen, g)
	}
	if diff := cmp.Diff(before, ns.Run("nft", "-a", "list", "ruleset")); diff != "" {
		t.Errorf("ruleset (with handles) changed (-before +after):\n%s", diff)
	}
}

func TestChange(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	mustApply(t, m, standIn)

	next := Want{
		Cloudflare: pfx("198.51.100.0/24", "2001:db8:cf::/48", "2001:db8:cf2::/48", "192.0.2.128/25"),
		Allow:      pfx("192.0.2.10/32"),
	}
	gen := generation(t, ns)
	dry, err := m.Plan(ctxT(t), next)
	if err != nil {
		t.Fatal(err)
	}
	if g := generation(t, ns); g != gen {
		t.Fatal("Plan committed a transaction")
	}
	c := mustApply(t, m, next)
	want := Change{
		Added:   pfx("192.0.2.128/25", "2001:db8:cf2::/48", "192.0.2.10/32"),
		Removed: pfx("203.0.113.0/24", "2001:db8:cf1::/48"),
	}
	if diff := cmp.Diff(want, c, prefixCmp); diff != "" {
		t.Errorf("Apply change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, dry, prefixCmp); diff != "" {
		t.Errorf("Plan change (-want +got):\n%s", diff)
	}
	if g := generation(t, ns); g != gen+1 {
		t.Errorf("generation %d -> %d: want exactly one transaction", gen, g)
	}
	st, err := m.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	wantSt := State{
		Present: true, Owned: true, Hooked: true,
		Cloudflare4: pfx("192.0.2.128/25", "198.51.100.0/24"),
		Cloudflare6: pfx("2001:db8:cf::/48", "2001:db8:cf2::/48"),
		Allow:       pfx("192.0.2.10/32"),
		Ports:       []uint16{80, 443},
	}
	if diff := cmp.Diff(wantSt, st, prefixCmp); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}

	// Ports only.
	cfg := testCfg
	cfg.Ports = []uint16{8443, 443}
	c = mustApply(t, manager(t, ns, cfg), next)
	if diff := cmp.Diff(Change{PortsChanged: true}, c, prefixCmp); diff != "" {
		t.Errorf("ports change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Render(cfg, next), listTable(t, ns)); diff != "" {
		t.Errorf("after the ports change (-want +got):\n%s", diff)
	}
}

var prefixCmp = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

// handleOf finds the handle of the first rule of chain whose text has substr.
func handleOf(t *testing.T, ns *nstest.NS, chain, substr string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*(.*) # handle (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(ns.Run("nft", "-a", "list", "chain", "inet", "cfguard", chain), -1) {
		if strings.Contains(m[1], substr) {
			return m[2]
		}
	}
	t.Fatalf("no rule %q in chain %s", substr, chain)
	return ""
}

func TestDriftRepair(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drift  func(t *testing.T, ns *nstest.NS) // by hand, with nft
		reason string                            // a line of RebuildReason; "" if content only
	}{
		{"priority", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete chain inet cfguard input; add chain inet cfguard input { type filter hook input priority 0; policy accept; }")
		}, "chain input: priority changed from 0 to -10"},
		{"hook", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete chain inet cfguard forward; add chain inet cfguard forward { type filter hook output priority -10; policy accept; }")
		}, "chain forward: hook output, want forward"},
		{"rule deleted", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete", "rule", "inet", "cfguard", "input", "handle", handleOf(t, ns, "input", "dport @web_ports drop"))
		}, "chain input: rule 6 missing (`tcp dport @web_ports drop`)"},
		{"udp drop deleted (a table made before cfguard dropped UDP)", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete", "rule", "inet", "cfguard", "input", "handle", handleOf(t, ns, "input", "udp dport @web_ports drop"))
		}, "chain input: rule 7 missing (`udp dport @web_ports drop`)"},
		{"forward udp drop deleted", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete", "rule", "inet", "cfguard", "forward", "handle", handleOf(t, ns, "forward", "l4proto udp"))
		}, "chain forward: rule 6 missing (`meta l4proto udp ct direction original ct status dnat ct original proto-dst @web_ports drop`)"},
		{"rule added", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "add rule inet cfguard input tcp dport 22 drop")
		}, "chain input: extra rule 8"},
		{"rule inserted first", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "insert rule inet cfguard forward accept")
		}, "chain forward: extra rule 1"},
		{"rule replaced", func(t *testing.T, ns *nstest.NS) {
			h := handleOf(t, ns, "input", "ip saddr @allow4 accept")
			ns.Run("nft", "replace", "rule", "inet", "cfguard", "input", "handle", h, "tcp dport @web_ports accept")
		}, "chain input: rule 3"},
		{"policy", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "add chain inet cfguard forward { policy drop; }")
		}, "chain forward: policy drop, want accept"},
		{"chain deleted", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete chain inet cfguard forward")
		}, "chain forward: missing"},
		{"foreign chain and set", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "add set inet cfguard extra { type ipv4_addr; }; add chain inet cfguard sneaky { type filter hook input priority -300; policy accept; }; add rule inet cfguard sneaky ip saddr @extra drop; add chain inet cfguard helper; add rule inet cfguard input jump helper")
		}, "chain sneaky: not cfguard's"},
		{"set type", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete chain inet cfguard input; delete chain inet cfguard forward; delete set inet cfguard allow4; add set inet cfguard allow4 { type ipv6_addr; flags interval; }")
		}, "set allow4: type ipv6_addr, want ipv4_addr"},
		{"set flags", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "delete chain inet cfguard input; delete chain inet cfguard forward; delete set inet cfguard web_ports; add set inet cfguard web_ports { type inet_service; flags constant; elements = { 80, 443 }; }")
		}, "set web_ports: flags constant, want none"},
		{"dormant", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "add table inet cfguard { flags dormant; }")
		}, "table is dormant"},
		{"set emptied (content, not drift)", func(t *testing.T, ns *nstest.NS) {
			ns.Run("nft", "flush set inet cfguard cloudflare4")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			m := manager(t, ns, testCfg)
			mustApply(t, m, standIn)
			tc.drift(t, ns)

			st, err := m.Read(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason != "" && (st.Hooked || !strings.Contains(strings.Join(st.Problems, "\n"), tc.reason)) {
				t.Errorf("state after drift: hooked %v, problems %q, want %q", st.Hooked, st.Problems, tc.reason)
			}
			if tc.reason == "" && (!st.Hooked || len(st.Problems) > 0) {
				t.Errorf("content change read as drift: %q", st.Problems)
			}
			gen := generation(t, ns)
			c := mustApply(t, m, standIn)
			if tc.reason != "" && (!c.ChainsRebuilt || !strings.Contains(c.RebuildReason, tc.reason)) {
				t.Errorf("change %+v, want ChainsRebuilt with reason %q", c, tc.reason)
			}
			if tc.reason == "" && (c.ChainsRebuilt || len(c.Added) != 2) {
				t.Errorf("change %+v, want the 2 IPv4 ranges added back and no rebuild", c)
			}
			if g := generation(t, ns); g != gen+1 {
				t.Errorf("generation %d -> %d: want one transaction", gen, g)
			}
			if diff := cmp.Diff(Render(testCfg, standIn), listTable(t, ns)); diff != "" {
				t.Errorf("after repair (-want +got):\n%s", diff)
			}
			if c := mustApply(t, m, standIn); !c.Empty() {
				t.Errorf("apply after repair: %+v, want none", c)
			}
		})
	}
}

const otherTables = `table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		tcp dport 22 accept
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8443 dnat to 192.0.2.50:443
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth9" masquerade
	}
}
table inet cfguard2 {
	set cloudflare4 {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.0/24 }
	}
}
`

// others is `nft -a list ruleset` without cfguard's own table.
func others(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	out := ns.Run("nft", "-a", "list", "ruleset")
	start := strings.Index(out, "table inet cfguard { #")
	if start < 0 {
		return out
	}
	end := strings.Index(out[start:], "\n}\n")
	return out[:start] + out[start+end+3:]
}

func TestOtherTablesUntouched(t *testing.T) {
	ns := kernelNS(t)
	f, err := os.CreateTemp(t.TempDir(), "*.nft")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(otherTables)
	f.Close()
	ns.Run("nft", "-f", f.Name())
	before := others(t, ns)
	if !strings.Contains(before, "table ip nat") || !strings.Contains(before, "table inet cfguard2") {
		t.Fatalf("setup: %s", before)
	}
	m := manager(t, ns, testCfg)
	check := func(step string) {
		t.Helper()
		if diff := cmp.Diff(before, others(t, ns)); diff != "" {
			t.Errorf("after %s, other tables changed (-before +after):\n%s", step, diff)
		}
	}
	mustApply(t, m, standIn)
	check("apply")
	mustApply(t, m, Want{Cloudflare: pfx("198.51.100.0/24", "2001:db8:cf::/48")})
	check("change")
	ns.Run("nft", "add rule inet cfguard input tcp dport 22 drop")
	mustApply(t, m, standIn)
	check("drift repair")
	if _, err := m.Remove(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	check("remove")
	if strings.Contains(ns.Run("nft", "list", "tables"), "table inet cfguard\n") {
		t.Error("table inet cfguard still there after Remove")
	}
}

func TestRemove(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	if existed, err := m.Remove(ctxT(t)); existed || err != nil {
		t.Fatalf("remove on a fresh namespace: existed %v, err %v; want false, nil", existed, err)
	}
	mustApply(t, m, standIn)
	if existed, err := m.Remove(ctxT(t)); !existed || err != nil {
		t.Fatalf("remove: existed %v, err %v; want true, nil", existed, err)
	}
	if out := ns.Run("nft", "list", "tables"); strings.Contains(out, "cfguard") {
		t.Fatalf("tables after remove: %s", out)
	}
	if existed, err := m.Remove(ctxT(t)); existed || err != nil {
		t.Fatalf("second remove: existed %v, err %v; want false, nil", existed, err)
	}
	st, err := m.Read(ctxT(t))
	if err != nil || st.Present || st.Hooked {
		t.Fatalf("read after remove: %+v, %v", st, err)
	}
	// And back: the next apply creates it again.
	if c := mustApply(t, m, standIn); !c.TableCreated {
		t.Errorf("apply after remove: %+v", c)
	}
}

func TestRead(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	st, err := m.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(State{Problems: []string{"table inet cfguard is missing"}}, st); diff != "" {
		t.Errorf("fresh namespace (-want +got):\n%s", diff)
	}
	mustApply(t, m, Want{Cloudflare: append(pfx("240.0.0.0/4"), standIn.Cloudflare...), Allow: pfx("2001:db8:1::/64", "192.0.2.5/32")})
	st, err = m.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := State{
		Present: true, Owned: true, Hooked: true,
		Cloudflare4: pfx("198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"),
		Cloudflare6: pfx("2001:db8:cf::/48", "2001:db8:cf1::/48"),
		Allow:       pfx("192.0.2.5/32", "2001:db8:1::/64"),
		Ports:       []uint16{80, 443},
	}
	if diff := cmp.Diff(want, st, prefixCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A transaction the kernel refuses leaves everything as it was: here an
// overlapping interval is slipped into the batch through the test seam.
func TestRefusedApplyChangesNothing(t *testing.T) {
	overlap := func(c *nftables.Conn, p *plan) {
		set := &nftables.Set{Table: &nftables.Table{Name: "cfguard", Family: familyINet}, Name: SetCF4, KeyType: nftables.TypeIPAddr, Interval: true}
		c.SetAddElements(set, elems("198.51.100.128", "198.51.101.128 end"))
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ns *nstest.NS, m *Manager)
	}{
		{"fresh namespace", func(t *testing.T, ns *nstest.NS, m *Manager) {}},
		{"change", func(t *testing.T, ns *nstest.NS, m *Manager) { mustApply(t, m, standIn) }},
		{"drift repair", func(t *testing.T, ns *nstest.NS, m *Manager) {
			mustApply(t, m, standIn)
			ns.Run("nft", "add rule inet cfguard input tcp dport 22 drop; add chain inet cfguard forward { policy drop; }")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			ns.Run("nft", "add table ip nat; add chain ip nat pre { type nat hook prerouting priority dstnat; }")
			m := manager(t, ns, testCfg)
			tc.setup(t, ns, m)
			before, gen := ns.Run("nft", "-a", "list", "ruleset"), generation(t, ns)
			m.beforeFlush = overlap
			_, err := m.Apply(ctxT(t), Want{Cloudflare: pfx("198.51.100.0/24", "2001:db8:cf::/48"), Allow: pfx("192.0.2.1/32")})
			if err == nil {
				t.Fatal("the kernel accepted an overlapping interval")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "applying table inet cfguard: netlink: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting \"applying table inet cfguard: netlink: \"", msg)
			}
			if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
				t.Logf("errno of %v is neither EEXIST nor ENOTEMPTY", err)
			}
			t.Logf("refused: %v", err)
			if g := generation(t, ns); g != gen {
				t.Errorf("generation moved %d -> %d", gen, g)
			}
			if diff := cmp.Diff(before, ns.Run("nft", "-a", "list", "ruleset")); diff != "" {
				t.Errorf("ruleset changed by a refused transaction (-before +after):\n%s", diff)
			}
			// The Manager is still usable.
			m.beforeFlush = nil
			mustApply(t, m, standIn)
			if diff := cmp.Diff(Render(testCfg, standIn), listTable(t, ns)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Apply(ctx, standIn); !errors.Is(err, context.Canceled) {
		t.Fatalf("apply with a cancelled context: %v", err)
	}
	if out := ns.Run("nft", "list", "tables"); out != "" {
		t.Fatalf("tables: %q", out)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Config
		want string
	}{
		{"ok", Config{Table: "cfguard", Ports: []uint16{80, 443}}, ""},
		{"ok one port", Config{Table: "web_guard-2", Ports: []uint16{8443}}, ""},
		{"empty table", Config{Ports: []uint16{443}}, `invalid table name ""`},
		{"table with space", Config{Table: "cf guard", Ports: []uint16{443}}, `invalid table name "cf guard"`},
		{"table too long", Config{Table: strings.Repeat("t", 40), Ports: []uint16{443}}, "invalid table name"},
		{"no ports", Config{Table: "cfguard"}, "no ports to guard"},
		{"port 0", Config{Table: "cfguard", Ports: []uint16{0}}, "invalid port 0"},
		{"duplicate", Config{Table: "cfguard", Ports: []uint16{443, 443}}, "port 443 given twice"},
		{"bad fd", Config{Table: "cfguard", Ports: []uint16{443}, NetNSFd: -1}, "invalid network namespace fd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.in)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				m.Close()
			}
			if !strings.Contains(got, tc.want) || (tc.want == "") != (got == "") {
				t.Errorf("New: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBadWant(t *testing.T) {
	ns := kernelNS(t)
	m := manager(t, ns, testCfg)
	for _, tc := range []struct {
		name string
		in   Want
		want string
	}{
		{"invalid prefix", Want{Cloudflare: append(pfx("198.51.100.0/24", "2001:db8:cf::/48"), netip.Prefix{})}, "cloudflare ranges: invalid prefix"},
		{"invalid allow", Want{Cloudflare: standIn.Cloudflare, Allow: pfx("::ffff:192.0.2.0/120")}, "allowed ranges: prefix ::ffff:192.0.2.0/120 is an IPv4-mapped"},
		{"no ranges", Want{}, "refusing to apply 0 IPv4 and 0 IPv6 Cloudflare ranges"},
		{"no IPv6", Want{Cloudflare: pfx("198.51.100.0/24"), Allow: pfx("2001:db8:1::/64")}, "refusing to apply 1 IPv4 and 0 IPv6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []func(context.Context, Want) (Change, error){m.Plan, m.Apply} {
				_, err := f(ctxT(t), tc.in)
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("err %v, want one line with %q", err, tc.want)
				}
			}
		})
	}
	if out := ns.Run("nft", "list", "tables"); out != "" {
		t.Fatalf("tables: %q", out)
	}
}

// A transaction whose answer is lost (the deadline passes between sending
// the batch and reading the kernel's acks) is read back: Apply succeeds
// when the kernel committed it, and fails saying nothing changed when the
// kernel refused it. The answer is dropped through the test seam.
func TestLostAnswerIsReadBack(t *testing.T) {
	overlap := func(c *nftables.Conn, p *plan) {
		set := &nftables.Set{Table: &nftables.Table{Name: "cfguard", Family: familyINet}, Name: SetCF4, KeyType: nftables.TypeIPAddr, Interval: true}
		c.SetAddElements(set, elems("198.51.100.128", "198.51.101.128 end"))
	}
	next := Want{Cloudflare: pfx("198.51.100.0/24", "2001:db8:cf::/48"), Allow: pfx("192.0.2.1/32")}
	t.Run("committed", func(t *testing.T) {
		ns := kernelNS(t)
		m := manager(t, ns, testCfg)
		mustApply(t, m, standIn)
		m.loseAnswer = true
		ch, err := m.Apply(ctxT(t), next)
		if err != nil {
			t.Fatalf("Apply after a lost answer: %v (the kernel committed it)", err)
		}
		if ch.Empty() {
			t.Error("Apply reported no change, but the sets changed")
		}
		if diff := cmp.Diff(Render(testCfg, next), listTable(t, ns)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ns := kernelNS(t)
		m := manager(t, ns, testCfg)
		mustApply(t, m, standIn)
		before := ns.Run("nft", "-a", "list", "ruleset")
		m.loseAnswer, m.beforeFlush = true, overlap
		_, err := m.Apply(ctxT(t), next)
		m.beforeFlush = nil
		if err == nil {
			t.Fatal("Apply succeeded, but the kernel refused the transaction")
		}
		t.Logf("refused: %v", err)
		if msg := err.Error(); !strings.Contains(msg, "does not hold the new list (nothing changed)") || strings.Contains(msg, "\n") {
			t.Errorf("error %q: want one line saying the kernel does not hold the new list", msg)
		}
		if diff := cmp.Diff(before, ns.Run("nft", "-a", "list", "ruleset")); diff != "" {
			t.Errorf("ruleset changed (-before +after):\n%s", diff)
		}
	})
}
