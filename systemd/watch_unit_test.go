package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const watchUnit = "cfguard-watch.service"

func TestWatchUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("skipped: systemd-analyze is not installed (package systemd)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cfguard")
	os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	b, err := os.ReadFile(watchUnit)
	if err != nil {
		t.Fatal(err)
	}
	u := filepath.Join(dir, watchUnit)
	os.WriteFile(u, []byte(strings.ReplaceAll(string(b), "@BINDIR@", dir)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", u).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestWatchUnit(t *testing.T) {
	d := directives(t, watchUnit)
	want := map[string]string{
		"Type":            "notify",
		"NotifyAccess":    "main",
		"WatchdogSec":     "60s",
		"ExecStart":       "@BINDIR@/cfguard watch",
		"ExecReload":      "/bin/kill -HUP $MAINPID",
		"EnvironmentFile": "-/etc/default/cfguard",
		"StateDirectory":  "cfguard",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"DevicePolicy":    "closed",
		"DeviceAllow":     "/dev/kmsg r",
		"Restart":         "on-failure",
		"TimeoutStopSec":  "15s",
		"WantedBy":        "multi-user.target",
	}
	for k, v := range want {
		if len(d[k]) != 1 || d[k][0] != v {
			t.Errorf("%s = %q, want %q", k, d[k], v)
		}
	}
	if !strings.HasPrefix(strings.Join(d["LoadCredential"], ""), "cloudflare-api-token:") {
		t.Errorf("the token must come through LoadCredential=cloudflare-api-token:…, got %q", d["LoadCredential"])
	}
	for _, c := range strings.Fields(strings.Join(d["CapabilityBoundingSet"], " ")) {
		switch c {
		case "CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE", "CAP_SYSLOG":
		default:
			t.Errorf("capability %s is more than the watch needs", c)
		}
	}
	for _, f := range strings.Fields(strings.Join(d["RestrictAddressFamilies"], " ")) {
		if f != "AF_NETLINK" && f != "AF_INET" && f != "AF_INET6" && f != "AF_UNIX" {
			t.Errorf("address family %s allowed", f)
		}
	}
	// The watch must see the web server's sockets and the kernel log.
	for _, k := range []string{"PrivateTmp", "PrivateDevices", "ProtectKernelLogs"} {
		if len(d[k]) > 0 && d[k][0] == "yes" {
			t.Errorf("%s=yes hides what the watch must see", k)
		}
	}
}

// TestWatchInstalledNotEnabled: make install puts the unit under DESTDIR
// with the binary's path, and enables nothing.
func TestWatchInstalledNotEnabled(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("skipped: make is not installed")
	}
	out, err := exec.Command("make", "-C", "..", "-n", "install", "DESTDIR=/DEST", "BINDIR=/usr/bin").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n install: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"cfguard-watch.service; do", "sed 's#@BINDIR@#/usr/bin#g' systemd/$u > /DEST/etc/systemd/system/$u"} {
		if !strings.Contains(s, want) {
			t.Errorf("make install lacks %q:\n%s", want, s)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "systemctl enable") && !strings.Contains(line, "echo") || strings.Contains(line, ".wants") {
			t.Errorf("make install enables a unit: %s", line)
		}
		if f := strings.Fields(line); len(f) > 0 && f[0] == "install" && !strings.Contains(line, "/DEST/") {
			t.Errorf("make install writes outside DESTDIR: %s", line)
		}
	}
}
