package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCapEffHas(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want, err    bool
	}{
		{"root", "Name:\tx\nCapEff:\t000001ffffffffff\n", true, false},
		{"net_admin only", "CapEff:\t0000000000001000\n", true, false},
		{"nobody", "CapEff:\t0000000000000000\n", false, false},
		{"other caps", "CapEff:\t0000000000000fff\n", false, false},
		{"garbage", "CapEff:\tzz\n", false, true},
		{"missing", "Name:\tx\n", false, true},
	} {
		got, err := capEffHas(tc.status, capNetAdmin)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: got %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestKernelCommandsNeedNetAdmin(t *testing.T) {
	saved := hasNetAdmin
	defer func() { hasNetAdmin = saved }()
	hasNetAdmin = func() (bool, error) { return false, nil }
	for _, args := range [][]string{{"status"}, {"sync", "--dry-run"}, {"restore"}, {"remove"}} {
		var stdout, stderr bytes.Buffer
		err := newApp(&stdout, &stderr).Run(t.Context(), append([]string{"cfguard", "--state-dir", t.TempDir()}, args...))
		if code := exitCode(err); code != exitCannotGo {
			t.Errorf("%v: exit %d, want %d (%v)", args, code, exitCannotGo, err)
		}
		if err == nil || !strings.Contains(err.Error(), "needs root (CAP_NET_ADMIN)") {
			t.Errorf("%v: error %v, want it to say it needs root", args, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: printed %q on stdout", args, stdout.String())
		}
	}
	// Commands that do not touch the kernel run without it.
	var stdout, stderr bytes.Buffer
	if err := newApp(&stdout, &stderr).Run(t.Context(), []string{"cfguard", "ranges", "--offline"}); err != nil {
		t.Errorf("ranges --offline without CAP_NET_ADMIN: %v", err)
	}
}

// TestStatusAsNobody runs the built binary as an unprivileged user: one line,
// exit 3, and no mkdir or netlink error instead.
func TestStatusAsNobody(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipped: needs root to switch to nobody")
	}
	// The test binary's directory is private (0700); nobody must reach the binary.
	if err := os.Chmod(filepath.Dir(cfguardBin), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"sync"}} {
		cmd := exec.Command(cfguardBin, append([]string{"--state-dir", "/nonexistent/cfguard"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitCannotGo {
			t.Fatalf("%v as nobody: %v, want exit 3; stderr %q", args, err, stderr.String())
		}
		want := "cfguard: " + args[0] + " needs root (CAP_NET_ADMIN)"
		if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v as nobody: stderr %q, want one line starting %q", args, stderr.String(), want)
		}
	}
}
