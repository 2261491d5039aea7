package main

// End-to-end tests of cfguard's refusals: a table it did not create, a
// port SSH depends on, and --ports that differ from the kernel's.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// fakeSSHDEnv makes the test binary, started through a symlink named sshd,
// listen on the address it holds and do nothing else (init runs before
// TestMain builds the binary).
const fakeSSHDEnv = "CFGUARD_E2E_FAKE_SSHD"

func init() {
	addr := os.Getenv(fakeSSHDEnv)
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

// debianFilter is the administrator's own table: policy drop, SSH accepted,
// an output chain (the firewall package's tests load the same file).
var debianFilter = func() string {
	b, err := os.ReadFile("../../firewall/testdata/debian-filter.nft")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func (s *site) load(text string) {
	s.t.Helper()
	f := filepath.Join(s.t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.origin.Run("nft", "-f", f)
}

// expectRefusal runs cfguard and wants exit 1, nothing on stdout, and
// exactly the one line want on stderr.
func (s *site) expectRefusal(want string, args ...string) {
	s.t.Helper()
	out, errOut, code := s.cfguard(args...)
	if code != 1 || out != "" || errOut != "cfguard: "+want+"\n" {
		s.t.Errorf("cfguard %s: exit %d\nstdout %q\nstderr %q\nwant exit 1 and stderr %q", strings.Join(args, " "), code, out, errOut, "cfguard: "+want+"\n")
	}
}

func TestForeignTableRefusedEndToEnd(t *testing.T) {
	s := newSite(t)
	s.load(debianFilter)
	before := s.origin.Run("nft", "-a", "list", "table", "inet", "filter")
	if !s.reaches(strangerV4, originV4, 22) || s.reaches(strangerV4, originV4, 443) {
		t.Fatal("setup: the filter table should accept 22 and drop 443")
	}
	change := "table inet filter exists and was not created by cfguard (no cfguard mark); refusing to change it — choose another --table"
	s.expectRefusal(change, "--table", "filter", "sync")
	s.expectRefusal(change, "--table", "filter", "sync", "--dry-run")
	s.expectRefusal(change, "--table", "filter", "restore")
	s.expectRefusal("table inet filter exists and was not created by cfguard (no cfguard mark); refusing to delete it — choose another --table", "--table", "filter", "remove")
	out, errOut, code := s.cfguard("--table", "filter", "status")
	want := "cfguard: NOT protected (table inet filter)\n" +
		"  last sync: no successful sync recorded yet\n" +
		"  problem:   table inet filter exists and was not created by cfguard (no cfguard mark): cfguard does not guard it — choose another --table\n"
	if code != 1 || out != want || errOut != "" {
		t.Errorf("status: exit %d\nstdout %q\nstderr %q\nwant exit 1 and\n%q", code, out, errOut, want)
	}
	if after := s.origin.Run("nft", "-a", "list", "table", "inet", "filter"); after != before {
		t.Errorf("inet filter changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if tables := s.origin.Run("nft", "list", "tables"); tables != "table inet filter\n" {
		t.Errorf("tables: %q", tables)
	}
	if _, err := os.Stat(filepath.Join(s.state, "ranges.json")); err == nil {
		t.Error("a refused sync wrote the cache")
	}
	if !s.reaches(strangerV4, originV4, 22) || s.reaches(strangerV4, originV4, 443) {
		t.Error("after the refusals: 22 should still answer and 443 still be dropped by the filter table")
	}

	// With its own table next to it, cfguard works and leaves filter alone.
	s.must("sync")
	s.must("remove")
	if after := s.origin.Run("nft", "-a", "list", "table", "inet", "filter"); after != before {
		t.Errorf("inet filter changed by sync/remove of cfguard's own table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// An earlier cfguard's table (no mark, exactly the old layout) is adopted
// by sync.
func TestLegacyTableAdoptedEndToEnd(t *testing.T) {
	s := newSite(t)
	s.must("sync")
	var old []string
	for _, l := range strings.SplitAfter(s.origin.Run("nft", "list", "table", "inet", "cfguard"), "\n") {
		if !strings.Contains(l, "comment") && !strings.Contains(l, "udp") {
			old = append(old, l)
		}
	}
	s.origin.Run("nft", "delete", "table", "inet", "cfguard")
	s.load(strings.Join(old, ""))
	if out, _, code := s.cfguard("status"); code != 1 || !strings.Contains(out, "was made by an earlier cfguard") {
		t.Errorf("status of an old table: exit %d\n%s", code, out)
	}
	out := s.must("sync")
	if !strings.Contains(out, "adopted table inet cfguard made by an earlier cfguard") {
		t.Errorf("sync of an old table said %q", out)
	}
	if out := s.must("status"); !strings.HasPrefix(out, "cfguard: protected: ports 80,443 of this host answer only Cloudflare over TCP, and nobody over UDP (table inet cfguard)\n") {
		t.Errorf("status after adoption: %q", out)
	}
}

func TestSSHPortRefusedEndToEnd(t *testing.T) {
	s := newSite(t)
	std := "refusing to guard port 22: it is SSH's standard port, and a guarded port answers only Cloudflare, so SSH on it would be cut for everyone else; nothing changed — take 22 out of --ports, or pass --guard-ssh-port 22 if you mean it"
	s.expectRefusal(std, "--ports", "22,80,443", "sync")
	s.expectRefusal(std, "--ports", "22,80,443", "restore")
	if tables := s.origin.Run("nft", "list", "tables"); tables != "" {
		t.Errorf("a refused run made tables: %q", tables)
	}

	// A process named sshd listening on 2222 in the origin's namespace.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sshd := filepath.Join(t.TempDir(), "sshd")
	if err := os.Symlink(exe, sshd); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeSSHDEnv, "[::]:2222")
	s.origin.Start(sshd)
	os.Unsetenv(fakeSSHDEnv)
	for i := 0; !s.reaches(strangerV4, originV4, 2222); i++ {
		if i == 100 {
			t.Fatal("the fake sshd never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, errOut, code := s.cfguard("--ports", "80,443,2222", "sync")
	if want := "cfguard: refusing to guard port 2222: sshd (pid "; code != 1 || out != "" || !strings.HasPrefix(errOut, want) ||
		!strings.Contains(errOut, ") listens on it ([::]:2222), and a guarded port answers only Cloudflare") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("sync --ports 80,443,2222 with sshd on 2222: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	// The session's own port, from SSH_CONNECTION.
	cmd := s.origin.Command(t.Context(), cfguardBin, "--state-dir", s.state, "--api-url", s.api.URL, "--ports", "80,443,8022", "restore")
	cmd.Env = append(os.Environ(), "SSH_CONNECTION=192.0.2.2 50000 192.0.2.1 8022")
	b, _ := cmd.CombinedOutput()
	if want := "cfguard: refusing to guard port 8022: the SSH session running this command arrived on it (SSH_CONNECTION), and"; cmd.ProcessState.ExitCode() != 1 || !strings.HasPrefix(string(b), want) {
		t.Errorf("restore in a session on 8022: exit %d, %q", cmd.ProcessState.ExitCode(), b)
	}
	if tables := s.origin.Run("nft", "list", "tables"); tables != "" {
		t.Errorf("a refused run made tables: %q", tables)
	}
	// Named explicitly, it is guarded (flag, and environment variable).
	s.must("--ports", "80,443,2222", "sync", "--guard-ssh-port", "2222")
	if s.reaches(strangerV4, originV4, 2222) {
		t.Error("--guard-ssh-port 2222: 2222 still answers a stranger")
	}
	t.Setenv("CFGUARD_GUARD_SSH_PORTS", "22,2222")
	s.must("--ports", "22,80,443,2222", "restore")
	if s.reaches(strangerV4, originV4, 22) || !s.reaches(edgeV4, originV4, 22) {
		t.Error("CFGUARD_GUARD_SSH_PORTS=22,2222: 22 should answer Cloudflare only")
	}
	if _, errOut, code := s.cfguard("sync", "--guard-ssh-port", "ssh"); code != 2 || !strings.Contains(errOut, `--guard-ssh-port "ssh"`) {
		t.Errorf("--guard-ssh-port ssh: exit %d, %q; want a usage error", code, errOut)
	}
}

func TestStatusPortsDifferEndToEnd(t *testing.T) {
	s := newSite(t)
	s.must("sync")
	out, _, code := s.cfguard("--ports", "443,80,8443", "status")
	want := "  problem:   the kernel guards ports 80,443 but --ports is 80,443,8443: run `cfguard sync` (or `cfguard restore`) to guard 80,443,8443, or set --ports 80,443\n"
	if code != 1 || !strings.HasPrefix(out, "cfguard: NOT protected (table inet cfguard)\n") || !strings.HasSuffix(out, want) {
		t.Errorf("status with other --ports: exit %d\n%s\nwant the problem line\n%s", code, out, want)
	}
	if out, _, code := s.cfguard("--ports", "443,80", "status"); code != 0 || !strings.HasPrefix(out, "cfguard: protected: ports 80,443 of this host answer only Cloudflare over TCP, and nobody over UDP") {
		t.Errorf("status with the same ports in another order: exit %d\n%s", code, out)
	}
	if out, _, _ := s.cfguard("--ports", "443", "status", "--json"); !strings.Contains(out, `"configured_ports": [
    443
  ]`) || !strings.Contains(out, `"protected": false`) {
		t.Errorf("status --json: %s", out)
	}
}

var _ = nstest.RequireRoot
