package procnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// /proc/net/tcp, tcp6 and unix as Linux 6.x writes them on a little-endian
// machine (captured, inodes renumbered): listeners on 127.0.0.1:3000 and
// 0.0.0.0:80, an established connection, listeners on [::]:8080 and
// [::1]:8081, a listening unix socket, a connected one and an abstract one.
const (
	procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 48213 1 00000000e2f93fd1 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21934 1 0000000052a1c3f0 100 0 0 10 0
   2: 0100007F:0BB8 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000    33        0 52001 1 00000000c0ffee00 20 4 30 10 -1
`
	procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30001 1 00000000a40159e8 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30002 1 00000000a40159e9 100 0 0 10 0
`
	procNetUnix = `Num       RefCount Protocol Flags    Type St Inode Path
00000000de09c8b0: 00000002 00000000 00010000 0001 01 40001 /run/app/gunicorn.sock
00000000de09c8c0: 00000003 00000000 00000000 0001 03 40002 /run/app/gunicorn.sock
00000000de09c8d0: 00000002 00000000 00010000 0001 01 40003 @/tmp/.X11-unix/X0
00000000de09c8e0: 00000002 00000000 00010000 0001 01 40004 /run/php/php8.2-fpm.sock
`
)

// fakeProc writes the fixtures as root/net/{tcp,tcp6,unix}.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, "net", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var cmpAddrPort = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestListeners(t *testing.T) {
	ap := netip.MustParseAddrPort
	root := fakeProc(t, map[string]string{"tcp": procNetTCP, "tcp6": procNetTCP6, "unix": procNetUnix})
	tcp, err := TCP(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Addr: ap("127.0.0.1:3000"), Inode: 48213},
		{Addr: ap("0.0.0.0:80"), Inode: 21934},
		{Addr: ap("[::]:8080"), Inode: 30001},
		{Addr: ap("[::1]:8081"), Inode: 30002},
	}
	if diff := cmp.Diff(want, tcp, cmpAddrPort); diff != "" {
		t.Errorf("tcp (-want +got)\n%s", diff)
	}
	unix, err := Unix(root)
	if err != nil {
		t.Fatal(err)
	}
	wantUnix := []Listener{{Path: "/run/app/gunicorn.sock", Inode: 40001}, {Path: "/run/php/php8.2-fpm.sock", Inode: 40004}}
	if diff := cmp.Diff(wantUnix, unix, cmpAddrPort); diff != "" {
		t.Errorf("unix (-want +got)\n%s", diff)
	}
}

func TestListenersMissingFiles(t *testing.T) {
	// IPv6 disabled: no tcp6, no error.
	tcp, err := TCP(fakeProc(t, map[string]string{"tcp": procNetTCP}))
	if err != nil || len(tcp) != 2 {
		t.Errorf("without tcp6: %v, %v; want the 2 IPv4 listeners", tcp, err)
	}
	if _, err := TCP(fakeProc(t, nil)); err == nil {
		t.Error("without tcp: no error")
	}
	if _, err := Unix(fakeProc(t, nil)); err == nil {
		t.Error("without unix: no error")
	}
}

// TestMappedUnspecified: a v6 socket bound to ::ffff:0.0.0.0 is the wildcard.
func TestMappedUnspecified(t *testing.T) {
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30009 1 00000000a40159e8 100 0 0 10 0
`
	tcp, err := TCP(fakeProc(t, map[string]string{"tcp": "  sl  local_address rem_address   st\n", "tcp6": tcp6}))
	if err != nil || len(tcp) != 1 || tcp[0].Addr != netip.MustParseAddrPort("[::]:80") {
		t.Errorf("got %v, %v; want [::]:80", tcp, err)
	}
}

// TestAddresses: the kernel prints each 32-bit word of an address in host
// byte order.
func TestAddresses(t *testing.T) {
	line := func(hex string) string {
		return "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: " + hex + " 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 100 0 0 10 0\n"
	}
	for _, tt := range []struct{ file, hex, want string }{
		{"tcp", "0100007F:0050", "127.0.0.1:80"},
		{"tcp", "010200C0:01BB", "192.0.2.1:443"},
		{"tcp", "00000000:0016", "0.0.0.0:22"},
		{"tcp6", "00000000000000000000000000000000:0050", "[::]:80"},
		{"tcp6", "B80D0120000001000000000001000000:01BB", "[2001:db8:1::1]:443"},
		{"tcp6", "0000000000000000FFFF00000100007F:0050", "[::ffff:127.0.0.1]:80"},
	} {
		files := map[string]string{tt.file: line(tt.hex)}
		if tt.file == "tcp6" {
			files["tcp"] = "  sl  local_address rem_address   st\n"
		}
		got, err := TCP(fakeProc(t, files))
		if err != nil || len(got) != 1 || got[0].Addr.String() != tt.want {
			t.Errorf("%s %s: %v, %v; want %s", tt.file, tt.hex, got, err, tt.want)
		}
	}
}

// TestThisNamespace reads the real files of this thread's namespace.
func TestThisNamespace(t *testing.T) {
	if _, err := os.Stat("/proc/thread-self/net/tcp"); err != nil {
		t.Skip("skipped: no /proc/thread-self/net/tcp")
	}
	if _, err := TCP("/proc/thread-self"); err != nil {
		t.Error(err)
	}
	if _, err := Unix("/proc/thread-self"); err != nil {
		t.Error(err)
	}
}

func TestSocketInodes(t *testing.T) {
	root := t.TempDir()
	fd := filepath.Join(root, "42", "fd")
	if err := os.MkdirAll(fd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"0": "/dev/null", "3": "socket:[1001]", "4": "pipe:[77]", "5": "socket:[1002]", "6": "socket:[x]",
	} {
		if err := os.Symlink(target, filepath.Join(fd, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := SocketInodes(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if d := cmp.Diff([]uint64{1001, 1002}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := SocketInodes(root, 43); err == nil {
		t.Error("a process that is not there: no error")
	}
}
