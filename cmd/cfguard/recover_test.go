package main

import (
	"os"
	"strings"
	"testing"
)

// TestWatchRecoverNoSystemd: with the D-Bus recovery built in, --recover on
// a machine whose init is not systemd refuses to start, in one line.
func TestWatchRecoverNoSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("skipped: this machine runs systemd (the sandbox tests cover --recover)")
	}
	t.Setenv("CFGUARD_RECOVER", "yes")
	msg, code := runApp(t, "watch", "--kernel-log", "off", "--metrics-listen", "off")
	if code != exitFailed || strings.TrimSpace(msg) != "watch --recover: systemd is not running here (no /run/systemd/system)" {
		t.Errorf("exit %d, %q", code, msg)
	}
}
