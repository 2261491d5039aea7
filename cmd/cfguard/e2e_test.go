package main

// End-to-end tests of the cfguard binary: built once, run with `ip netns
// exec` inside an "origin" namespace that a second "edge" namespace reaches
// over a veth. The stand-in Cloudflare API listens inside the origin
// namespace. Nothing here touches the host's own ruleset or network.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/internal/nstest"
)

var cfguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfguardBin = filepath.Join(dir, "cfguard")
	if out, err := exec.Command("go", "build", "-o", cfguardBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cfguard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Addresses of the test hosts (documentation prefixes only).
var (
	originV4   = netip.MustParseAddr("192.0.2.1")
	originV6   = netip.MustParseAddr("2001:db8:1::1")
	strangerV4 = netip.MustParseAddr("192.0.2.2")       // not Cloudflare
	strangerV6 = netip.MustParseAddr("2001:db8:1::2")   // not Cloudflare
	edgeV4     = netip.MustParseAddr("198.51.100.10")   // inside the stand-in Cloudflare 198.51.100.0/24
	edgeV6     = netip.MustParseAddr("2001:db8:cf::10") // inside the stand-in Cloudflare 2001:db8:cf::/48
)

// site is an origin namespace with listeners on 22, 80 and 443, an edge
// namespace holding a Cloudflare and a stranger address of each family, and
// the stand-in API inside the origin namespace.
type site struct {
	t      *testing.T
	origin *nstest.NS
	edge   *nstest.NS
	api    *cfapitest.Server
	state  string
}

func newSite(t *testing.T) *site {
	nstest.RequireRoot(t, "nft")
	s := &site{t: t, origin: nstest.New(t), edge: nstest.New(t), state: t.TempDir()}
	nstest.Link(t, s.origin, s.edge,
		[]string{originV4.String() + "/24", originV6.String() + "/64"},
		[]string{strangerV4.String() + "/24", strangerV6.String() + "/64"})
	s.edge.Run("ip", "addr", "add", edgeV4.String()+"/32", "dev", "lo")
	s.edge.Run("ip", "addr", "add", edgeV6.String()+"/128", "dev", "lo")
	s.origin.Run("ip", "route", "add", "198.51.100.0/24", "via", strangerV4.String())
	s.origin.Run("ip", "-6", "route", "add", "2001:db8:cf::/48", "via", strangerV6.String())

	for _, port := range []string{"22", "80", "443"} {
		s.origin.Serve(t, ":"+port)
	}
	var apiLn net.Listener
	if err := s.origin.Do(func() (err error) { apiLn, err = net.Listen("tcp", "127.0.0.1:0"); return }); err != nil {
		t.Fatal(err)
	}
	s.api = cfapitest.NewOn(t, apiLn)
	return s
}

// cfguard runs the binary inside the origin namespace and returns its
// stdout, stderr and exit code.
func (s *site) cfguard(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"--state-dir", s.state, "--api-url", s.api.URL}, args...)
	return runCmd(s.t, s.origin.Command(ctx, cfguardBin, full...))
}

// runCmd runs cmd (not yet started) to its end and returns its stdout,
// stderr and exit code; a command that cannot run at all fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running %v: %v", cmd.Args, err)
	}
	return out.String(), errb.String(), code
}

// must runs cfguard and fails the test unless it exits 0.
func (s *site) must(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.cfguard(args...)
	if code != 0 {
		s.t.Fatalf("cfguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// reaches reports whether a TCP connection from src (in the edge namespace)
// to the origin's dst:port is accepted.
func (s *site) reaches(src, dst netip.Addr, port int) bool {
	s.t.Helper()
	ok := false
	err := s.edge.Do(func() error {
		d := net.Dialer{Timeout: 500 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err := d.Dial("tcp", netip.AddrPortFrom(dst, uint16(port)).String())
		if err == nil {
			ok = true
			c.Close()
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return ok
}

// ruleset is `nft list ruleset` in the origin namespace.
func (s *site) ruleset() string { return s.origin.Run("nft", "list", "ruleset") }

// otherTables is the ruleset without cfguard's own table.
func (s *site) otherTables() string {
	var keep []string
	for _, block := range strings.SplitAfter(s.ruleset(), "\n}\n") {
		if !strings.HasPrefix(strings.TrimSpace(block), "table inet cfguard ") {
			keep = append(keep, block)
		}
	}
	return strings.Join(keep, "")
}

func TestSyncGuardsWebPortsEndToEnd(t *testing.T) {
	s := newSite(t)
	// Before: everyone reaches everything.
	if !s.reaches(strangerV4, originV4, 443) {
		t.Fatal("setup: the stranger cannot reach 443 before cfguard runs")
	}
	out := s.must("sync")
	want := "cfguard: 2 IPv4 + 2 IPv6 Cloudflare ranges in table inet cfguard (table created)\n"
	if out != want {
		t.Errorf("sync said %q, want %q", out, want)
	}
	for _, c := range []struct {
		name    string
		src     netip.Addr
		dst     netip.Addr
		port    int
		reaches bool
	}{
		{"cloudflare v4 to 443", edgeV4, originV4, 443, true},
		{"cloudflare v4 to 80", edgeV4, originV4, 80, true},
		{"cloudflare v4 to 22", edgeV4, originV4, 22, true},
		{"stranger v4 to 443", strangerV4, originV4, 443, false},
		{"stranger v4 to 80", strangerV4, originV4, 80, false},
		{"stranger v4 to 22 (SSH untouched)", strangerV4, originV4, 22, true},
		{"cloudflare v6 to 443", edgeV6, originV6, 443, true},
		{"cloudflare v6 to 80", edgeV6, originV6, 80, true},
		{"cloudflare v6 to 22", edgeV6, originV6, 22, true},
		{"stranger v6 to 443", strangerV6, originV6, 443, false},
		{"stranger v6 to 80", strangerV6, originV6, 80, false},
		{"stranger v6 to 22 (SSH untouched)", strangerV6, originV6, 22, true},
	} {
		if got := s.reaches(c.src, c.dst, c.port); got != c.reaches {
			t.Errorf("%s: reaches = %v, want %v", c.name, got, c.reaches)
		}
	}
	// Loopback is always accepted.
	if err := s.origin.Do(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:443", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Errorf("loopback to 443 after sync: %v", err)
	}
	if out := s.must("sync"); !strings.Contains(out, "(already up to date)") {
		t.Errorf("second sync: %q, want already up to date", out)
	}
	// --allow lets the stranger in, and nobody else.
	s.must("sync", "--allow", strangerV4.String())
	if !s.reaches(strangerV4, originV4, 443) || s.reaches(strangerV6, originV6, 443) {
		t.Error("--allow 192.0.2.2: want exactly the v4 stranger allowed")
	}
}

func TestSyncRefusesBadAnswersAndChangesNothing(t *testing.T) {
	s := newSite(t)
	s.must("sync")
	before := s.ruleset()
	cache, err := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fault cfapitest.IPsFault
		says  string
	}{
		{cfapitest.Fault500, "500"},
		{cfapitest.FaultHTML, "HTML"},
		{cfapitest.FaultTruncated, ""},
		{cfapitest.FaultSuccessFalse, ""},
		{cfapitest.FaultEmpty, ""},
		{cfapitest.FaultBadCIDR, ""},
	} {
		s.api.SetIPsFault(c.fault)
		out, errOut, code := s.cfguard("sync")
		if code != 1 {
			t.Errorf("fault %v: exit %d, want 1", c.fault, code)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "cfguard: ") || !strings.Contains(lines[0], c.says) || strings.Contains(errOut, "goroutine") {
			t.Errorf("fault %v: stderr %q, want one line naming the reason", c.fault, errOut)
		}
		if out != "" {
			t.Errorf("fault %v: stdout %q, want nothing", c.fault, out)
		}
		if got := s.ruleset(); got != before {
			t.Errorf("fault %v changed the ruleset:\n%s", c.fault, got)
		}
		if got, _ := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile)); string(got) != string(cache) {
			t.Errorf("fault %v changed the cache", c.fault)
		}
	}
	// A list that drops more than half of what is installed is refused
	// without --force, taken with it.
	s.api.SetIPsFault(cfapitest.FaultNone)
	// Both stand-in IPv4 ranges are gone (one unrelated new one), one of two IPv6.
	s.api.SetIPs([]string{"198.18.0.0/15"}, []string{"2001:db8:cf::/48"}, nil, "shrunk")
	if _, errOut, code := s.cfguard("sync"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("shrinking sync: exit %d, stderr %q; want 1 and a hint at --force", code, errOut)
	}
	if s.ruleset() != before {
		t.Error("a refused shrinking sync changed the ruleset")
	}
	if _, errOut, code := s.cfguard("sync", "--dry-run"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("dry run of a shrinking sync: exit %d, stderr %q; want the same refusal as sync", code, errOut)
	}
	if out := s.must("sync", "--dry-run", "--force"); !strings.Contains(out, "- 203.0.113.0/24") || !strings.Contains(out, "+ 198.18.0.0/15") || s.ruleset() != before {
		t.Errorf("dry run: %q; it must list the removed range and change nothing", out)
	}
	out := s.must("sync", "--force", "--json")
	var res struct {
		Removed []string `json:"removed"`
		Changed bool     `json:"changed"`
		IPv4    int      `json:"ipv4"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("sync --json: %v\n%s", err, out)
	}
	if !res.Changed || res.IPv4 != 1 || len(res.Removed) != 3 {
		t.Errorf("sync --force --json = %+v, want changed, 1 IPv4, 3 removed", res)
	}
}

func TestRestoreOfflineAndStatus(t *testing.T) {
	s := newSite(t)
	if _, _, code := s.cfguard("status"); code != 1 {
		t.Errorf("status before any sync: exit %d, want 1 (not protected)", code)
	}
	// No cache: the built-in list, with a warning naming its date.
	out, errOut, code := s.cfguard("--api-url", "http://127.0.0.1:9", "restore")
	if code != 0 || !strings.Contains(errOut, "built-in list") || !strings.Contains(out, "15 IPv4 + 7 IPv6") {
		t.Fatalf("restore without cache: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	s.must("remove")
	// With a cache from a sync: exactly that list, no network needed.
	s.must("sync")
	s.must("remove")
	s.api.Close() // no API any more
	if out := s.must("restore"); !strings.Contains(out, "2 IPv4 + 2 IPv6") {
		t.Errorf("restore from cache: %q", out)
	}
	if !s.reaches(edgeV4, originV4, 443) || s.reaches(strangerV4, originV4, 443) {
		t.Error("after restore: Cloudflare must reach 443 and the stranger must not")
	}
	st := s.must("status")
	if !strings.Contains(st, "protected") || strings.Contains(st, "NOT") {
		t.Errorf("status after restore: %q", st)
	}
	// A corrupt cache is reported and ignored, never applied.
	if err := os.WriteFile(filepath.Join(s.state, cfranges.CacheFile), []byte(`{"ipv4_cidrs":["10.0.0.0/8"`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.must("remove")
	out, errOut, code = s.cfguard("restore")
	if code != 0 || !strings.Contains(errOut, "corrupt") || !strings.Contains(out, "15 IPv4 + 7 IPv6") {
		t.Errorf("restore with a corrupt cache: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	// status is not protected once the table is gone.
	s.must("remove")
	if out, _, code := s.cfguard("status", "--json"); code != 1 || !strings.Contains(out, `"protected": false`) {
		t.Errorf("status --json after remove: exit %d, %s", code, out)
	}
}

func TestOtherTablesUntouched(t *testing.T) {
	s := newSite(t)
	rules := `table inet filter {
	chain input { type filter hook input priority 0; policy accept; tcp dport 22 counter accept; }
}
table ip nat {
	chain prerouting { type nat hook prerouting priority -100; policy accept; tcp dport 8080 dnat to 192.0.2.1:80; }
}
`
	f := filepath.Join(t.TempDir(), "other.nft")
	os.WriteFile(f, []byte(rules), 0o644)
	s.origin.Run("nft", "-f", f)
	before := s.ruleset()
	s.must("sync")
	s.api.SetIPs([]string{"198.51.100.0/24", "203.0.113.0/25"}, []string{"2001:db8:cf::/48"}, nil, "changed")
	s.must("sync")
	mid := s.otherTables()
	s.must("remove")
	after := s.ruleset()
	if mid != before || after != before {
		t.Errorf("other tables changed:\nbefore:\n%s\nduring:\n%s\nafter:\n%s", before, mid, after)
	}
	if out := s.must("remove"); !strings.Contains(out, "already gone") {
		t.Errorf("second remove: %q", out)
	}
}

func TestConcurrentRunsSerialise(t *testing.T) {
	s := newSite(t)
	s.must("sync") // so that restore applies the same (cached) list as sync
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, _, codes[i] = s.cfguard("sync")
			} else {
				_, _, codes[i] = s.cfguard("restore")
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Errorf("run %d: exit %d", i, c)
		}
	}
	if !strings.Contains(s.must("status"), "protected") {
		t.Error("not protected after concurrent runs")
	}
}

func TestUsageErrors(t *testing.T) {
	s := newSite(t)
	for _, args := range [][]string{
		{"sync", "--bogus"},
		{"--ports", "80,http", "sync"},
		{"--ports", "70000", "status"},
		{"--table", "bad name", "sync"},
		{"sync", "--allow", "not-an-address"},
		{"sync", "--allow", "0.0.0.0/0"},
		{"ranges", "--format", "xml"},
		{"sync", "--allow", "::ffff:192.0.2.1"},
		{"sync", "--allow", "fe80::1%veth0"},
		{"sync", "extra"},
		{"restore", "extra"},
		{"--state-dir", "", "sync"},
		{"synk"},
	} {
		out, errOut, code := s.cfguard(args...)
		if code != 2 {
			t.Errorf("cfguard %v: exit %d, want 2\nstdout %q\nstderr %q", args, code, out, errOut)
		}
		if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
			t.Errorf("cfguard %v: stack trace on stderr: %s", args, errOut)
		}
	}
	if strings.Contains(s.ruleset(), "cfguard") {
		t.Error("a usage error created the table")
	}
}

func TestRangesSaysWhereTheListCameFrom(t *testing.T) {
	s := newSite(t)
	out, errOut, code := s.cfguard("ranges", "--offline")
	if code != 0 || !strings.Contains(errOut, "built-in list") || len(strings.Fields(out)) != 22 {
		t.Errorf("ranges with no cache, offline: exit %d, %d ranges, stderr %q", code, len(strings.Fields(out)), errOut)
	}
	out, errOut, _ = s.cfguard("ranges")
	if want := "198.51.100.0/24\n203.0.113.0/24\n2001:db8:cf::/48\n2001:db8:cf1::/48\n"; out != want || !strings.Contains(errOut, "fresh from") {
		t.Errorf("ranges fresh: %q (stderr %q), want %q", out, errOut, want)
	}
	s.must("sync")
	s.api.SetIPsFault(cfapitest.Fault500)
	out, errOut, _ = s.cfguard("ranges", "--format", "nft")
	if !strings.Contains(out, "define CLOUDFLARE_IPV4 = { 198.51.100.0/24, 203.0.113.0/24 }") || !strings.Contains(errOut, "could not fetch") || !strings.Contains(errOut, "cached by the sync") {
		t.Errorf("ranges with the API failing: %q, stderr %q", out, errOut)
	}
	out, _, _ = s.cfguard("ranges", "--offline", "--format", "json")
	var l cfranges.List
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.IPv4) != 2 || l.Source != cfranges.SourceCache {
		t.Errorf("ranges --format json: %v, %+v", err, l)
	}
}
