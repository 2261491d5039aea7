package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the terminal side of a new pseudo-terminal.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("skipped: no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("skipped: unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("skipped: ptsname: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("skipped: open the terminal side: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

func TestColorOutputOnlyOnATerminal(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	tty := openPTY(t)
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		name   string
		w      any
		getenv func(string) string
		want   bool
	}{
		{"terminal", tty, env(), true},
		{"terminal, NO_COLOR", tty, env("NO_COLOR", "1"), false},
		{"terminal, TERM=dumb", tty, env("TERM", "dumb"), false},
		{"pipe", pw, env(), false},
		{"/dev/null (a character device, not a terminal)", devnull, env(), false},
		{"buffer", &bytes.Buffer{}, env(), false},
	} {
		w := c.w.(interface{ Write([]byte) (int, error) })
		if got := colorOutput(w, c.getenv); got != c.want {
			t.Errorf("%s: colorOutput = %v, want %v", c.name, got, c.want)
		}
	}
}
