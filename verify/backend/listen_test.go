package backend

import (
	"os"
	"path/filepath"
	"strconv"
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

// fakeFDs makes /proc/PID/fd/N links to "socket:[INODE]" under root.
func fakeFDs(t *testing.T, root string, pid int, inodes ...uint64) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid), "fd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, ino := range inodes {
		if err := os.Symlink("socket:["+strconv.FormatUint(ino, 10)+"]", filepath.Join(dir, strconv.Itoa(i+3))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/dev/null", filepath.Join(dir, "0")); err != nil {
		t.Fatal(err)
	}
}

func TestListenerUnit(t *testing.T) {
	root := fakeProc(t, map[string]string{"net/tcp": procNetTCP, "net/tcp6": procNetTCP6, "net/unix": procNetUnix})
	fakeFDs(t, root, 300, 48213, 40001) // gunicorn: 127.0.0.1:3000 and its socket
	fakeFDs(t, root, 400, 21934, 52001) // nginx: :80 and a connection
	fakeFDs(t, root, 500, 30001, 30002) // node, a user's service: [::]:8080, [::1]:8081
	fakeFDs(t, root, 600, 40004)        // php-fpm started by hand: no unit
	ps := []*proc{
		{pid: 300, unit: "gunicorn.service"},
		{pid: 400, unit: "nginx.service"},
		{pid: 500, unit: "node.service", userUnit: true},
		{pid: 600},
	}
	units := listenerUnits(root, ps)
	if diff := cmp.Diff(map[string]string{"tcp 127.0.0.1:3000": "gunicorn.service", "unix /run/app/gunicorn.sock": "gunicorn.service", "tcp 0.0.0.0:80": "nginx.service"}, units); diff != "" {
		t.Errorf("listeners (-want +got)\n%s", diff)
	}
	units["tcp [::]:8080"] = "app.service" // as if from a system service
	units["tcp [::1]:8081"] = "api.service"
	tests := []struct {
		name string
		in   target
		want string
	}{
		{"loopback, exact", target{"tcp", "127.0.0.1:3000", "http"}, "gunicorn.service"},
		{"localhost", target{"tcp", "localhost:3000", "http"}, "gunicorn.service"},
		{"loopback, IPv4 wildcard listener", target{"tcp", "127.0.0.1:80", "http"}, "nginx.service"},
		{"loopback, IPv6 wildcard listener", target{"tcp", "127.0.0.1:8080", "http"}, "app.service"},
		{"IPv6 loopback", target{"tcp", "[::1]:8081", "http"}, "api.service"},
		{"localhost over IPv6", target{"tcp", "localhost:8081", "http"}, "api.service"},
		{"unix socket", target{"unix", "/run/app/gunicorn.sock", ""}, "gunicorn.service"},
		{"nobody listens", target{"tcp", "127.0.0.1:3001", "http"}, ""},
		{"another host: a local wildcard listener is not it", target{"tcp", "192.0.2.10:80", "http"}, ""},
		{"a host name", target{"tcp", "app.internal:3000", "http"}, ""},
		{"no port", target{"tcp", "127.0.0.1", "http"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, listenerUnit(units, tt.in)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
