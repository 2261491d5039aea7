package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

func runApp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := newApp(&out, &errb).Run(context.Background(), append([]string{"cfguard", "--state-dir", t.TempDir()}, args...))
	msg := errb.String()
	if err != nil {
		msg += err.Error()
	}
	return msg, exitCode(err)
}

func TestWatchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"watch", "--interval", "1ms"}, "", "--interval must be at least 100ms"},
		{[]string{"watch", "--interval", "10s", "--full-every", "5s"}, "", "--full-every at least --interval"},
		{[]string{"watch", "--hung-after", "0"}, "", "--hung-after"},
		{[]string{"watch", "--paths-every", "10m"}, "", "--paths-every must be between --interval and --full-every"},
		{[]string{"watch", "--interval", "10s", "--paths-every", "1s"}, "", "--paths-every must be between"},
		{[]string{"watch", "--metrics-listen", "9847"}, "", `--metrics-listen "9847": want host:port or off`},
		{[]string{"watch"}, "maybe", `CFGUARD_RECOVER="maybe": want yes or no`},
		{[]string{"watch", "--interval", "soon"}, "", "invalid value"},
	} {
		t.Setenv("CFGUARD_RECOVER", c.env)
		msg, code := runApp(t, c.args...)
		if code != exitUsage || !strings.Contains(msg, c.want) {
			t.Errorf("%v (CFGUARD_RECOVER=%q): exit %d, %q; want 2 and %q", c.args, c.env, code, msg, c.want)
		}
	}
}

func TestRecoverEnv(t *testing.T) {
	for in, want := range map[string]bool{"": false, "no": false, "yes": true, "YES": true, "true": true, "1": true, "0": false, " yes ": true} {
		got, err := recoverEnv(in)
		if err != nil || got != want {
			t.Errorf("recoverEnv(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestWatchMetricsPortTaken: a metrics address in use is one line and exit
// 1, before any check runs.
func TestWatchMetricsPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("CFGUARD_RECOVER", "")
	msg, code := runApp(t, "watch", "--kernel-log", "off", "--metrics-listen", ln.Addr().String())
	if code != exitFailed || !strings.Contains(msg, "serving metrics") || !strings.Contains(msg, "address already in use") {
		t.Errorf("exit %d, %q", code, msg)
	}
}

// TestWatchRecoverWithoutSystemd: --recover where systemd cannot be
// reached refuses to start rather than watch without the recovery asked for.
func TestWatchRecoverWithoutRecoverer(t *testing.T) {
	if newRecoverer != nil {
		t.Skip("skipped: this build has the systemd recovery; the sandbox tests cover it")
	}
	t.Setenv("CFGUARD_RECOVER", "yes")
	msg, code := runApp(t, "watch", "--kernel-log", "off", "--metrics-listen", "off")
	if code != exitFailed || !strings.Contains(msg, "--recover") {
		t.Errorf("exit %d, %q", code, msg)
	}
}
