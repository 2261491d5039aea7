package sshport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/google/go-cmp/cmp"
)

// The test binary doubles as a fake sshd (started through a symlink named
// sshd, so that its command name is sshd) and as the command such an
// sshd runs for a session.
const modeEnv = "SSHPORT_TEST_MODE"

func TestMain(m *testing.M) {
	switch os.Getenv(modeEnv) {
	case "sshd":
		fakeSSHD()
		return
	case "session":
		ports, err := System().Find()
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		json.NewEncoder(os.Stdout).Encode(ports)
		return
	}
	os.Exit(m.Run())
}

// fakeSSHD listens on $SSHPORT_LISTEN, and for the first connection runs
// the session command with its output going to the connection.
func fakeSSHD() {
	ln, err := net.Listen("tcp", os.Getenv("SSHPORT_LISTEN"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ready")
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), modeEnv+"=session", "SSH_CONNECTION=")
	cmd.Stdout = c
	cmd.Run()
}

func TestCheck(t *testing.T) {
	found := Fake{
		{22, "it is SSH's standard port"},
		{2222, "sshd (pid 812) listens on it (0.0.0.0:2222)"},
		{8022, "the SSH session running this command arrived on it (SSH_CONNECTION)"},
	}
	ssh, _ := found.Find()
	for _, tc := range []struct {
		name     string
		guarded  []uint16
		override []uint16
		want     string
	}{
		{"web ports", []uint16{80, 443}, nil, ""},
		{"22", []uint16{22, 80, 443}, nil, "refusing to guard port 22: it is SSH's standard port, and a guarded port answers only Cloudflare, so SSH on it would be cut for everyone else; nothing changed — take 22 out of --ports, or pass --guard-ssh-port 22 if you mean it"},
		{"sshd's other port", []uint16{443, 2222}, nil, "refusing to guard port 2222: sshd (pid 812) listens on it (0.0.0.0:2222), and"},
		{"session port", []uint16{8022}, nil, "refusing to guard port 8022: the SSH session running this command arrived on it (SSH_CONNECTION)"},
		{"override names it", []uint16{443, 2222}, []uint16{2222}, ""},
		{"override names another", []uint16{443, 2222}, []uint16{22}, "refusing to guard port 2222"},
		{"first in --ports order", []uint16{8022, 22}, []uint16{}, "refusing to guard port 8022"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.guarded, ssh, tc.override)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
				t.Errorf("Check(%v, override %v) = %q, want %q", tc.guarded, tc.override, got, tc.want)
			}
		})
	}
}

// fakeProc writes a /proc tree: processes with a comm, a parent and
// socket file descriptors, and net/tcp, net/tcp6.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T, tcp, tcp6 string) fakeProc {
	f := fakeProc{t, t.TempDir()}
	os.MkdirAll(filepath.Join(f.root, "net"), 0o755)
	hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	os.WriteFile(filepath.Join(f.root, "net", "tcp"), []byte(hdr+tcp), 0o644)
	if tcp6 != "" {
		os.WriteFile(filepath.Join(f.root, "net", "tcp6"), []byte(hdr+tcp6), 0o644)
	}
	return f
}

func (f fakeProc) proc(pid, ppid int, comm string, inodes ...int) {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	os.MkdirAll(filepath.Join(dir, "fd"), 0o755)
	os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644)
	stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 100 1000 100 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", pid, comm, ppid, pid, pid)
	os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
	for i, in := range inodes {
		if err := os.Symlink(fmt.Sprintf("socket:[%d]", in), filepath.Join(dir, "fd", fmt.Sprint(i+3))); err != nil {
			f.t.Fatal(err)
		}
	}
	os.Symlink("/dev/null", filepath.Join(dir, "fd", "0"))
}

// tcpLine is a /proc/net/tcp line: local hex address:port, state, inode.
func tcpLine(local, remote string, state string, inode int) string {
	return fmt.Sprintf("   0: %s %s %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", local, remote, state, inode)
}

func TestFindFakeProc(t *testing.T) {
	tcp := tcpLine("00000000:08AE", "00000000:0000", "0A", 101) + // 0.0.0.0:2222 LISTEN (sshd)
		tcpLine("00000000:0050", "00000000:0000", "0A", 102) + // 0.0.0.0:80 LISTEN (nginx)
		tcpLine("0100007F:1F40", "0100007F:C350", "01", 103) + // 127.0.0.1:8000 ESTABLISHED (the session's)
		tcpLine("0100007F:0016", "0100007F:C351", "01", 104) // 127.0.0.1:22 ESTABLISHED (someone else's session)
	tcp6 := tcpLine("00000000000000000000000000000000:08AE", "00000000000000000000000000000000:0000", "0A", 105)
	f := newFakeProc(t, tcp, tcp6)
	f.proc(1, 0, "systemd")
	f.proc(500, 1, "sshd", 101, 105)
	f.proc(600, 1, "nginx", 102)
	f.proc(700, 500, "sshd", 103) // the session's [priv] process
	f.proc(701, 700, "bash")
	f.proc(702, 701, "sudo")
	f.proc(703, 702, "cfguard")
	f.proc(800, 500, "sshd-session", 104) // another session: not an ancestor
	for _, tc := range []struct {
		name string
		env  map[string]string
		self int
		want []Port
	}{
		{"in a session under sudo", nil, 703, []Port{
			{22, "it is SSH's standard port"},
			{2222, "sshd (pid 500) listens on it (0.0.0.0:2222)"},
			{2222, "sshd (pid 500) listens on it ([::]:2222)"},
			{8000, "the SSH session running this command is connected on it (sshd, pid 700)"},
		}},
		{"from a timer", nil, 600, []Port{
			{22, "it is SSH's standard port"},
			{2222, "sshd (pid 500) listens on it (0.0.0.0:2222)"},
			{2222, "sshd (pid 500) listens on it ([::]:2222)"},
		}},
		{"SSH_CONNECTION", map[string]string{"SSH_CONNECTION": "192.0.2.2 50000 192.0.2.1 8022"}, 600, []Port{
			{22, "it is SSH's standard port"},
			{8022, "the SSH session running this command arrived on it (SSH_CONNECTION)"},
			{2222, "sshd (pid 500) listens on it (0.0.0.0:2222)"},
			{2222, "sshd (pid 500) listens on it ([::]:2222)"},
		}},
		{"SSH_CONNECTION malformed", map[string]string{"SSH_CONNECTION": "192.0.2.2 50000 192.0.2.1 99999"}, 1, []Port{
			{22, "it is SSH's standard port"},
			{2222, "sshd (pid 500) listens on it (0.0.0.0:2222)"},
			{2222, "sshd (pid 500) listens on it ([::]:2222)"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Proc{ProcRoot: f.root, NetRoot: f.root, Self: tc.self, Getenv: func(k string) string { return tc.env[k] }}
			got, err := p.Find()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A real process named sshd listening in a network namespace, and a
// session command it runs: the command finds sshd's listener and its own
// session's port; other listeners are not reported.
func TestFindRealSSHD(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	ns.Serve(t, "[::]:8080") // held by the test binary, not sshd
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sshd := filepath.Join(t.TempDir(), "sshd")
	if err := os.Symlink(exe, sshd); err != nil {
		t.Fatal(err)
	}
	t.Setenv(modeEnv, "sshd")
	t.Setenv("SSHPORT_LISTEN", "[::]:2222")
	cmd := ns.Start(sshd)
	_ = cmd
	// Wait for the listener: connect until it answers (bounded).
	var c net.Conn
	for i := 0; i < 100 && c == nil; i++ {
		ns.Do(func() error {
			c, err = net.DialTimeout("tcp", "127.0.0.1:2222", time.Second)
			return nil
		})
		if c == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if c == nil {
		t.Fatalf("fake sshd never listened: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 1<<16)).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the session's report: %v (%q)", err, line)
	}
	var got []Port
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%v: %q", err, line)
	}
	var listen, session bool
	for _, p := range got {
		if p.Port == 8080 {
			t.Errorf("a listener that is not sshd's reported: %+v", p)
		}
		if p.Port == 2222 && strings.HasPrefix(p.Why, "sshd (pid ") && strings.HasSuffix(p.Why, "listens on it ([::]:2222)") {
			listen = true
		}
		if p.Port == 2222 && strings.HasPrefix(p.Why, "the SSH session running this command is connected on it (sshd, pid ") {
			session = true
		}
	}
	if !listen || !session {
		t.Errorf("ports %+v: want sshd's listener on 2222 and the session on 2222", got)
	}
}

func TestConfigPorts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("sshd_config.d/10-port.conf", "Port=2222\n")
	write("sshd_config.d/20-listen.conf", "ListenAddress [2001:db8::1]:2200 rdomain x\nListenAddress 192.0.2.1\n")
	main := write("sshd_config", "# Port 9999\nInclude "+dir+"/sshd_config.d/*.conf\n  port 22022\nPort 99999\nPort\nMatch User backup\n\tPort 4444\n")
	got := configPorts(main)
	want := []Port{
		{2222, "sshd is configured to listen on it (Port, " + dir + "/sshd_config.d/10-port.conf:1)"},
		{2200, "sshd is configured to listen on it (ListenAddress [2001:db8::1]:2200, " + dir + "/sshd_config.d/20-listen.conf:1)"},
		{22022, "sshd is configured to listen on it (Port, " + main + ":3)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := configPorts(filepath.Join(dir, "missing")); got != nil {
		t.Errorf("missing file: %v", got)
	}
	// An Include loop is bounded.
	loop := write("loop.conf", "Port 2022\nInclude "+dir+"/loop.conf\n")
	if got := configPorts(loop); len(got) != maxIncludes+1 {
		t.Errorf("include loop: %d ports, want %d", len(got), maxIncludes+1)
	}
	// Through Find.
	f := newFakeProc(t, "", "")
	f.proc(1, 0, "systemd")
	ports, err := Proc{ProcRoot: f.root, NetRoot: f.root, Self: 1, Getenv: func(string) string { return "" }, Config: main}.Find()
	if err != nil || len(ports) != 4 || ports[1].Port != 2222 {
		t.Errorf("Find with a config: %+v, %v", ports, err)
	}
}
