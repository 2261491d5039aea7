package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/sdtest"
)

// The units as they really run: installed (as `make install` does) in a
// sandbox whose PID 1 is a real systemd (internal/sdtest), with
// nftables.service enabled there and nowhere else.

const (
	binDir    = "/usr/local/bin"
	unitDir   = "/etc/systemd/system"
	standinIP = "127.0.0.1:8788"
)

// nftablesConf is Debian's /etc/nftables.conf: it flushes the whole ruleset.
const nftablesConf = `#!/usr/sbin/nft -f
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter;
	}
}
`

// goBuild builds pkg (relative to this directory) into dir.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// bootFiles is what goes into the sandbox before boot: the binary, the
// units with @BINDIR@ filled in, and nftables.service and
// cfguard-restore.service enabled.
func bootFiles(t *testing.T) []sdtest.File {
	dir := t.TempDir()
	files := []sdtest.File{
		{Path: binDir + "/cfguard", Src: goBuild(t, dir, "../cmd/cfguard"), Mode: 0o755},
		{Path: binDir + "/cfapi-standin", Src: goBuild(t, dir, "../internal/cmd/cfapi-standin"), Mode: 0o755},
		{Path: "/etc/nftables.conf", Data: []byte(nftablesConf), Mode: 0o755},
		{Path: unitDir + "/sysinit.target.wants/nftables.service", Symlink: "/lib/systemd/system/nftables.service"},
		{Path: unitDir + "/sysinit.target.wants/cfguard-restore.service", Symlink: unitDir + "/cfguard-restore.service"},
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, sdtest.File{Path: unitDir + "/" + u, Data: []byte(strings.ReplaceAll(string(b), "@BINDIR@", binDir))})
	}
	return files
}

func show(sb *sdtest.Sandbox, unit, prop string) string {
	out, _ := sb.Exec("systemctl", "show", "-p", prop, "--value", unit)
	return strings.TrimSpace(out)
}

func showInt(t *testing.T, sb *sdtest.Sandbox, unit, prop string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(show(sb, unit, prop), 10, 64)
	if err != nil {
		t.Fatalf("%s %s: %v", unit, prop, err)
	}
	return n
}

// table is `nft list table inet cfguard` inside the sandbox ("" when absent).
func table(sb *sdtest.Sandbox) string {
	out, err := sb.Exec("nft", "list", "table", "inet", "cfguard")
	if err != nil {
		return ""
	}
	return out
}

// A range of the built-in list, and one of the stand-in API's.
const (
	builtinRange = "173.245.48.0/20"
	standinRange = "198.51.100.0/24"
)

func TestUnitsUnderSystemd(t *testing.T) {
	sdtest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipped: nft is not installed (package nftables)")
	}
	sb := sdtest.Boot(t, sdtest.Options{
		Mask:  []string{"nginx.service", "php8.2-fpm.service"},
		Files: bootFiles(t),
	})
	defer func() {
		if t.Failed() {
			out, _ := sb.Exec("journalctl", "--no-pager", "-o", "short-monotonic", "-b")
			t.Logf("journal:\n%s", out)
		}
	}()

	t.Run("restore at boot after nftables", func(t *testing.T) {
		if s := show(sb, "cfguard-restore.service", "ActiveState") + " " + show(sb, "cfguard-restore.service", "Result"); s != "active success" {
			t.Fatalf("cfguard-restore.service: %s", s)
		}
		if s := show(sb, "nftables.service", "ActiveState"); s != "active" {
			t.Fatalf("nftables.service: %s", s)
		}
		nftUp := showInt(t, sb, "nftables.service", "ActiveEnterTimestampMonotonic")
		restoreStart := showInt(t, sb, "cfguard-restore.service", "InactiveExitTimestampMonotonic")
		if restoreStart < nftUp {
			t.Errorf("cfguard-restore started (%d µs) before nftables.service was up (%d µs)", restoreStart, nftUp)
		}
		if tb := table(sb); !strings.Contains(tb, builtinRange) {
			t.Errorf("after boot, table inet cfguard does not hold the built-in list:\n%s", tb)
		}
		// The network came up after the table was there.
		if pre := showInt(t, sb, "network-pre.target", "ActiveEnterTimestampMonotonic"); pre != 0 && pre < showInt(t, sb, "cfguard-restore.service", "ActiveEnterTimestampMonotonic") {
			t.Errorf("network-pre.target reached before cfguard-restore finished")
		}
	})

	t.Run("nftables restart puts the table back", func(t *testing.T) {
		before := showInt(t, sb, "cfguard-restore.service", "InactiveExitTimestampMonotonic")
		// systemctl returns when nftables' own job is done; restore's
		// job, ordered after it, follows a few milliseconds later.
		sb.MustExec(t, "systemctl", "restart", "nftables.service")
		sb.WaitFor(t, 20*time.Second, "table inet cfguard back after systemctl restart nftables", func() bool {
			return strings.Contains(table(sb), builtinRange)
		})
		if after := showInt(t, sb, "cfguard-restore.service", "InactiveExitTimestampMonotonic"); after <= before {
			t.Errorf("cfguard-restore.service did not run again (%d, %d)", before, after)
		}
		sb.MustExec(t, "systemctl", "reload", "nftables.service")
		sb.WaitFor(t, 20*time.Second, "table inet cfguard back after systemctl reload nftables", func() bool {
			return strings.Contains(table(sb), builtinRange)
		})
		if j := sb.Journal("cfguard-restore.service"); !strings.Contains(j, "Reloaded cfguard-restore.service") {
			t.Errorf("restore was not reloaded with nftables:\n%s", j)
		}
	})

	t.Run("sync with LoadCredential against the stand-in API", func(t *testing.T) {
		sb.MustExec(t, "systemd-run", "--unit=cfapi-standin", binDir+"/cfapi-standin", "--listen", standinIP)
		sb.WaitFor(t, 10*time.Second, "the stand-in API listening", func() bool {
			_, err := sb.Exec("curl", "-fsS", "-o", "/dev/null", "http://"+standinIP+"/ips")
			return err == nil
		})
		sb.WriteFile(t, "/etc/default/cfguard", []byte("CFGUARD_API_URL=http://"+standinIP+"\n"), 0o644)
		sb.WriteFile(t, "/etc/cfguard/api-token", []byte("not-a-real-token\n"), 0o600)

		// The stand-in's list is far shorter than the built-in one the
		// boot installed: the shrink guard refuses it, the unit fails, the
		// table is unchanged.
		out, err := sb.Exec("systemctl", "start", "cfguard-sync.service")
		if err == nil {
			t.Fatalf("sync of a list that drops more than half succeeded:\n%s", out)
		}
		if s := show(sb, "cfguard-sync.service", "Result"); s != "exit-code" {
			t.Errorf("cfguard-sync.service Result=%s, want exit-code", s)
		}
		if tb := table(sb); !strings.Contains(tb, builtinRange) || strings.Contains(tb, standinRange) {
			t.Errorf("a refused sync changed the table:\n%s", tb)
		}

		// From an empty start it applies.
		sb.MustExec(t, binDir+"/cfguard", "remove")
		sb.MustExec(t, "systemctl", "reset-failed", "cfguard-sync.service")
		if out, err := sb.Exec("systemctl", "start", "cfguard-sync.service"); err != nil {
			t.Fatalf("cfguard-sync.service: %v\n%s", err, out)
		}
		if s := show(sb, "cfguard-sync.service", "Result"); s != "success" {
			t.Errorf("cfguard-sync.service Result=%s", s)
		}
		if tb := table(sb); !strings.Contains(tb, standinRange) || strings.Contains(tb, builtinRange) {
			t.Errorf("after sync, table inet cfguard:\n%s", tb)
		}
		// The credential reached the unit, and the unit's view of it is
		// gone once it ended.
		if j := sb.Journal("cfguard-sync.service"); strings.Contains(j, "243/CREDENTIALS") || strings.Contains(j, "not-a-real-token") {
			t.Errorf("journal:\n%s", j)
		}

		// restore now puts back the last good list (the stand-in's).
		sb.MustExec(t, "systemctl", "restart", "nftables.service")
		sb.WaitFor(t, 20*time.Second, "restore putting the last good list (the stand-in's) back", func() bool {
			return strings.Contains(table(sb), standinRange)
		})
	})

	t.Run("sync fails without its credential", func(t *testing.T) {
		sb.MustExec(t, "rm", "-f", "/etc/cfguard/api-token")
		if _, err := sb.Exec("systemctl", "start", "cfguard-sync.service"); err == nil {
			t.Fatal("cfguard-sync.service started without /etc/cfguard/api-token")
		}
		if s := show(sb, "cfguard-sync.service", "Result"); s != "exit-code" {
			t.Errorf("Result=%s", s)
		}
		if j := sb.Journal("cfguard-sync.service"); !strings.Contains(j, "status=243/CREDENTIALS") {
			t.Errorf("journal does not say the credential was missing:\n%s", j)
		}
		if tb := table(sb); !strings.Contains(tb, standinRange) {
			t.Errorf("the table changed:\n%s", tb)
		}
	})
}
