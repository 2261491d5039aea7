package packaging

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/sdtest"
)

// TestInstallUnderSystemd installs the package with dpkg under a real
// systemd booted on a throwaway overlay of / (internal/sdtest), then
// upgrades, removes and purges it, checking at each step what the units,
// the files and the kernel's ruleset hold. The sandbox has no network, so
// restore uses the list built into the binary.
func TestInstallUnderSystemd(t *testing.T) {
	sdtest.Require(t)
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("skipped: dpkg is not installed")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipped: nft is not installed (package nftables): the test reads the ruleset with it")
	}
	d := buildDebs(t)
	_, watch := os.Stat("../systemd/cfguard-watch.service")
	hasWatch := watch == nil

	sb := sdtest.Boot(t, sdtest.Options{
		// Nothing the package does needs the web servers; boot less.
		Mask: []string{"nginx.service", "php8.2-fpm.service", "prometheus.service", "monit.service", "nftables.service"},
		// The host's policy-rc.d forbids starting services (so that its
		// nginx stays down); inside, deb-systemd-invoke must be allowed to.
		Files: []sdtest.File{{Path: "/usr/sbin/policy-rc.d", Data: []byte("#!/bin/sh\nexit 0\n"), Mode: 0o755}},
	})
	sb.Install(t, d.v1, "/root/cfguard_1.0.0.deb", 0o644)
	sb.Install(t, d.v2, "/root/cfguard_1.0.1.deb", 0o644)

	sh := func(script string) (string, error) { return sb.Exec("sh", "-c", script) }
	must := func(script string) string {
		t.Helper()
		out, err := sh(script)
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(out)
	}
	state := func(verb, unit string) string {
		out, _ := sb.Exec("systemctl", verb, unit)
		return strings.TrimSpace(out)
	}
	tableExists := func(name string) bool {
		_, err := sb.Exec("nft", "list", "table", "inet", name)
		return err == nil
	}

	t.Run("install", func(t *testing.T) {
		out := must("dpkg -i /root/cfguard_1.0.0.deb 2>&1")
		t.Logf("dpkg -i:\n%s", out)
		for _, u := range []string{"cfguard-restore.service", "cfguard-sync.timer"} {
			if got := state("is-enabled", u); got != "enabled" {
				t.Errorf("%s is %q, want enabled", u, got)
			}
			if got := state("is-active", u); got != "active" {
				t.Errorf("%s is %q, want active\n%s", u, got, sb.Journal(u))
			}
		}
		if hasWatch {
			if got := state("is-enabled", "cfguard-watch.service"); got == "enabled" {
				t.Errorf("cfguard-watch.service is enabled; the package must leave it to the administrator")
			}
			if got := state("is-active", "cfguard-watch.service"); got == "active" {
				t.Errorf("cfguard-watch.service is running")
			}
		}
		if !tableExists("cfguard") {
			t.Fatalf("restore ran but table inet cfguard is missing\n%s", sb.Journal("cfguard-restore.service"))
		}
		// No network in the sandbox: restore applied the built-in list and
		// no sync ever succeeded, so plain status is protected but of unknown
		// age (exit 1); without the age limit it is protected (exit 0).
		st := must("cfguard status --max-age 0")
		t.Logf("cfguard status --max-age 0:\n%s", st)
		if !strings.HasPrefix(st, "cfguard: protected: ") {
			t.Errorf("cfguard status --max-age 0:\n%s", st)
		}
		if st := must("cfguard status; echo exit $?"); !strings.Contains(st, "cannot be told") || !strings.HasSuffix(st, "exit 1") {
			t.Errorf("cfguard status before any sync:\n%s\nwant the unknown age and exit 1", st)
		}
		if v := must("cfguard --version"); !strings.HasPrefix(v, "cfguard 1.0.0 (commit 0123456789ab") {
			t.Errorf("cfguard --version = %q", v)
		}
		// The token file: made by postinst, empty, root's only.
		if got := must("stat -c '%a %U %s' /etc/cfguard/api-token"); got != "600 root 0" {
			t.Errorf("/etc/cfguard/api-token: %q, want mode 600, root, empty", got)
		}
		if got := must("zcat /usr/share/man/man1/cfguard.1.gz | head -n 1"); !strings.HasPrefix(got, `.TH "CFGUARD" 1`) {
			t.Errorf("man page starts %q", got)
		}
		if _, err := exec.LookPath("man"); err == nil {
			if got := must("MANWIDTH=80 man -P cat cfguard 2>/dev/null | grep -c 'cfguard sync'"); got == "0" {
				t.Error("man cfguard does not show cfguard sync")
			}
		}
		must("test -s /usr/share/zsh/vendor-completions/_cfguard && test -s /usr/share/fish/vendor_completions.d/cfguard.fish")
		if got := must("bash -c '. /usr/share/bash-completion/completions/cfguard && complete -p cfguard'"); !strings.Contains(got, "cfguard") {
			t.Errorf("bash completion not registered: %q", got)
		}
	})

	t.Run("upgrade keeps the edited conffile, the token and a disabled timer", func(t *testing.T) {
		must("echo 'CFGUARD_PORTS=80,443,8443' >> /etc/default/cfguard")
		must("printf 'not-a-real-token\\n' > /etc/cfguard/api-token")
		must("systemctl disable cfguard-sync.timer 2>&1")
		out := must("dpkg -i /root/cfguard_1.0.1.deb 2>&1")
		t.Logf("dpkg -i (upgrade):\n%s", out)
		if v := must("dpkg-query -W -f '${Version} ${db:Status-Abbrev}' cfguard"); v != "1.0.1 ii" {
			t.Errorf("dpkg-query: %q", v)
		}
		if v := must("cfguard version"); !strings.HasPrefix(v, "cfguard 1.0.1 ") {
			t.Errorf("cfguard version after the upgrade: %q", v)
		}
		if got := must("tail -n 1 /etc/default/cfguard"); got != "CFGUARD_PORTS=80,443,8443" {
			t.Errorf("the edited conffile was replaced: last line %q", got)
		}
		if got := must("cat /etc/cfguard/api-token"); got != "not-a-real-token" {
			t.Errorf("the token was overwritten: %q", got)
		}
		if got := state("is-enabled", "cfguard-sync.timer"); got != "disabled" {
			t.Errorf("cfguard-sync.timer is %q after the upgrade; the administrator disabled it", got)
		}
		if got := state("is-enabled", "cfguard-restore.service"); got != "enabled" {
			t.Errorf("cfguard-restore.service is %q after the upgrade", got)
		}
		// postinst restarted restore with the new binary and the edited
		// settings: the third port is guarded now.
		if st := must("set -a; . /etc/default/cfguard; cfguard status --max-age 0"); !strings.Contains(st, "8443") {
			t.Errorf("restore did not run again after the upgrade:\n%s\n%s", st, sb.Journal("cfguard-restore.service"))
		}
		must("systemctl enable --now cfguard-sync.timer 2>&1")
	})

	t.Run("remove stops the units and leaves the table", func(t *testing.T) {
		out := must("dpkg -r cfguard 2>&1")
		t.Logf("dpkg -r:\n%s", out)
		for _, u := range []string{"cfguard-restore.service", "cfguard-sync.timer"} {
			if got := state("is-active", u); got == "active" {
				t.Errorf("%s is still active after dpkg -r", u)
			}
		}
		if _, err := sh("test -e /usr/bin/cfguard"); err == nil {
			t.Error("/usr/bin/cfguard is still there")
		}
		if !tableExists("cfguard") {
			t.Error("dpkg -r deleted the table: removing the package must not open the web ports")
		}
		must("test -f /etc/default/cfguard && test -f /etc/cfguard/api-token && test -d /var/lib/cfguard")
	})

	t.Run("purge deletes the table and the state", func(t *testing.T) {
		out := must("dpkg -P cfguard 2>&1")
		t.Logf("dpkg -P:\n%s", out)
		if tableExists("cfguard") {
			t.Error("table inet cfguard is still there after dpkg -P")
		}
		for _, p := range []string{"/var/lib/cfguard", "/etc/cfguard", "/etc/default/cfguard"} {
			if _, err := sh("test -e " + p); err == nil {
				t.Errorf("%s is still there after dpkg -P", p)
			}
		}
		if _, err := sb.Exec("dpkg", "-s", "cfguard"); err == nil {
			t.Error("dpkg -s cfguard still finds the package")
		}
		if got := state("is-enabled", "cfguard-restore.service"); got == "enabled" || got == "masked" {
			t.Errorf("cfguard-restore.service is %q after the purge", got)
		}
	})

	t.Run("purge deletes the configured table, not another", func(t *testing.T) {
		must("dpkg -i /root/cfguard_1.0.0.deb 2>&1")
		must("echo 'CFGUARD_TABLE=cfg2' >> /etc/default/cfguard && systemctl restart cfguard-restore.service")
		if !tableExists("cfg2") || !tableExists("cfguard") {
			t.Fatalf("want both tables before the purge:\n%s", must("nft list tables"))
		}
		must("dpkg -P cfguard 2>&1")
		if tableExists("cfg2") {
			t.Error("the configured table inet cfg2 survived the purge")
		}
		if !tableExists("cfguard") {
			t.Error("the purge deleted table inet cfguard, which the settings did not name")
		}
		must("nft delete table inet cfguard")
	})

	t.Run("purge leaves a table that is not cfguard's", func(t *testing.T) {
		must("dpkg -i /root/cfguard_1.0.0.deb 2>&1")
		must("dpkg -r cfguard 2>&1")
		// Someone else's table under cfguard's name.
		must("nft delete table inet cfguard && nft add table inet cfguard && nft add set inet cfguard other '{ type ipv4_addr; }'")
		out := must("dpkg -P cfguard 2>&1")
		if !tableExists("cfguard") {
			t.Error("the purge deleted a table that is not cfguard's")
		}
		if !strings.Contains(out, "table inet cfguard is not cfguard's") {
			t.Errorf("the purge did not say why it left the table:\n%s", out)
		}
	})
}
