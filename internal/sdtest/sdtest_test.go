package sdtest

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	Main(m, map[string]func() error{
		// Inside: PID 1 is systemd, and the file written before boot is here.
		"inside": func() error {
			if b, err := os.ReadFile("/proc/1/comm"); err != nil || strings.TrimSpace(string(b)) != "systemd" {
				return errors.New("PID 1 is not systemd: " + string(b))
			}
			b, err := os.ReadFile("/etc/cfguard-sdtest-marker")
			if err != nil {
				return err
			}
			os.Stdout.Write(b)
			return nil
		},
	})
}

// TestSandbox boots one systemd and checks that it is isolated: its own
// PID 1, its own /tmp, writes that stay in the overlay, files put in before
// and after boot, a masked unit, a child run inside, and that nothing is
// left on the host afterwards.
func TestSandbox(t *testing.T) {
	hostTmp := "/tmp/cfguard-sdtest-host-marker"
	if err := os.WriteFile(hostTmp, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(hostTmp)
	var dir string
	t.Run("sandbox", func(t *testing.T) {
		sb := Boot(t, Options{
			Mask:  []string{"nginx.service"},
			Files: []File{{Path: "/etc/cfguard-sdtest-marker", Data: []byte("before boot\n")}},
		})
		dir = sb.Dir
		if sb.PID <= 1 {
			t.Fatalf("PID 1 = %d", sb.PID)
		}
		out, _ := sb.Exec("systemctl", "is-system-running")
		if s := strings.TrimSpace(out); s != "running" && s != "degraded" {
			t.Errorf("is-system-running = %q", s)
		}
		if out, _ := sb.Exec("systemctl", "is-enabled", "nginx.service"); strings.TrimSpace(out) != "masked" {
			t.Errorf("nginx.service is %q, want masked", out)
		}
		if out := sb.MustExec(t, "systemctl", "is-active", "dbus.service"); strings.TrimSpace(out) != "active" {
			t.Errorf("dbus.service is %q", out)
		}
		if _, err := sb.Exec("test", "-e", hostTmp); err == nil {
			t.Errorf("the sandbox sees the host's /tmp")
		}
		sb.WriteFile(t, "/etc/cfguard-sdtest-after", []byte("after boot\n"), 0o600)
		if out := sb.MustExec(t, "stat", "-c", "%a %s", "/etc/cfguard-sdtest-after"); out != "600 11\n" {
			t.Errorf("file written after boot: %q", out)
		}
		for _, p := range []string{"/etc/cfguard-sdtest-after", "/etc/cfguard-sdtest-marker"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s, written in the sandbox, appeared on the host", p)
			}
		}
		if out, err := sb.RunChild(t, "inside"); err != nil || out != "before boot\n" {
			t.Errorf("child: %q, %v", out, err)
		}
		if out, err := sb.RunChild(t, "nosuch"); err == nil || !strings.Contains(out, `no child function "nosuch"`) {
			t.Errorf("unknown child: %q, %v", out, err)
		}
	})
	if dir == "" {
		return
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the sandbox ended: %v", dir, err)
	}
	if m := mountsUnder(dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(hostTmp); err != nil {
		t.Errorf("the host's /tmp lost a file while the sandbox ran: %v", err)
	}
}
