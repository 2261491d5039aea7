package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var units = []string{"cfguard-sync.service", "cfguard-sync.timer", "cfguard-restore.service"}

// install writes the units as `make install` would, with @BINDIR@ pointing at
// a stand-in executable, so systemd-analyze can check ExecStart too.
func install(t *testing.T) string {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "cfguard"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "@BINDIR@", bin)
		if err := os.WriteFile(filepath.Join(dir, u), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("skipped: systemd-analyze is not installed (package systemd)")
	}
	dir := install(t)
	args := []string{"verify", "--man=no"}
	for _, u := range units {
		args = append(args, filepath.Join(dir, u))
	}
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	// systemd-analyze only warns about unknown keys: any output is a failure.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// directives reads KEY=VALUE lines of a unit (all sections), in order.
func directives(t *testing.T, unit string) map[string][]string {
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", unit, line)
		}
		m[k] = append(m[k], v)
	}
	return m
}

func TestUnitsHardened(t *testing.T) {
	want := map[string]string{
		"CapabilityBoundingSet": "CAP_NET_ADMIN",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"StateDirectory":        "cfguard",
		"EnvironmentFile":       "-/etc/default/cfguard",
		"PrivateTmp":            "yes",
	}
	for _, u := range []string{"cfguard-sync.service", "cfguard-restore.service"} {
		d := directives(t, u)
		for k, v := range want {
			if len(d[k]) != 1 || d[k][0] != v {
				t.Errorf("%s: %s = %q, want %q", u, k, d[k], v)
			}
		}
		fams := strings.Fields(strings.Join(d["RestrictAddressFamilies"], " "))
		for _, f := range fams {
			if f != "AF_NETLINK" && f != "AF_INET" && f != "AF_INET6" && f != "AF_UNIX" {
				t.Errorf("%s: address family %s allowed", u, f)
			}
		}
		if len(fams) == 0 {
			t.Errorf("%s: RestrictAddressFamilies missing", u)
		}
	}
	// restore runs before the network: it must not be able to use it.
	for _, f := range directives(t, "cfguard-restore.service")["RestrictAddressFamilies"] {
		if strings.Contains(f, "AF_INET") {
			t.Errorf("cfguard-restore.service may open inet sockets: %s", f)
		}
	}
	r := directives(t, "cfguard-restore.service")
	if !strings.Contains(strings.Join(r["After"], " "), "nftables.service") || !strings.Contains(strings.Join(r["Before"], " "), "network-pre.target") {
		t.Errorf("cfguard-restore.service must run after nftables.service and before network-pre.target: After=%q Before=%q", r["After"], r["Before"])
	}
	// `systemctl restart/reload nftables` flushes the ruleset: restore must follow it.
	if strings.Join(r["PartOf"], " ") != "nftables.service" || strings.Join(r["ReloadPropagatedFrom"], " ") != "nftables.service" || len(r["ExecReload"]) != 1 {
		t.Errorf("cfguard-restore.service must be PartOf= and ReloadPropagatedFrom=nftables.service with an ExecReload: %q %q %q", r["PartOf"], r["ReloadPropagatedFrom"], r["ExecReload"])
	}
	s := directives(t, "cfguard-sync.service")
	if !strings.HasPrefix(strings.Join(s["LoadCredential"], ""), "cloudflare-api-token:") {
		t.Errorf("cfguard-sync.service: the token must come through LoadCredential=cloudflare-api-token:…, got %q", s["LoadCredential"])
	}
	tm := directives(t, "cfguard-sync.timer")
	if tm["Persistent"][0] != "true" || len(tm["RandomizedDelaySec"]) != 1 || len(tm["OnCalendar"]) != 1 {
		t.Errorf("cfguard-sync.timer: want OnCalendar, RandomizedDelaySec and Persistent=true, got %v", tm)
	}
}
