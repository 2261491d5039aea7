package probe

import (
	"bufio"
	"cmp"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Socket is a listening TCP socket of this host (its network namespace).
type Socket struct {
	Addr    netip.Addr
	Port    int
	Process string // command name of a process holding it, "" if unknown
	inode   string
}

// String is "0.0.0.0:80 (nginx)" or "[::]:443".
func (s Socket) String() string {
	a := netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()
	if s.Process != "" {
		return a + " (" + s.Process + ")"
	}
	return a
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// ListeningSockets reads the listening TCP sockets of the calling thread's
// network namespace from /proc/thread-self/net/tcp and tcp6, sorted by port
// and address, with the name of a process that holds each (as far as
// /proc/PID/fd shows it).
func ListeningSockets() ([]Socket, error) {
	base := "/proc/thread-self/net"
	if _, err := os.Stat(base); err != nil {
		base = "/proc/net"
	}
	var socks []Socket
	var found bool
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(base, name))
		if err != nil {
			continue // tcp6 is absent when IPv6 is disabled
		}
		found = true
		s, err := parseProcNetTCP(bufio.NewScanner(f))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s/%s: %w", base, name, err)
		}
		socks = append(socks, s...)
	}
	if !found {
		return nil, fmt.Errorf("reading %s/tcp: not available", base)
	}
	nameProcesses(socks)
	slices.SortFunc(socks, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), a.Addr.Compare(b.Addr))
	})
	return slices.CompactFunc(socks, func(a, b Socket) bool { return a.Addr == b.Addr && a.Port == b.Port }), nil
}

// parseProcNetTCP reads the LISTEN lines of /proc/net/tcp or tcp6.
func parseProcNetTCP(sc *bufio.Scanner) ([]Socket, error) {
	var out []Socket
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		ap, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		out = append(out, Socket{Addr: ap.Addr(), Port: int(ap.Port()), inode: f[9]})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes "0100007F:0050" (v4) or the 32-hex-digit v6
// form: the address as host-endian 32-bit words (little-endian here).
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad socket address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address in %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	if a.Is4In6() && a.Unmap().IsUnspecified() {
		a = netip.IPv6Unspecified()
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// nameProcesses fills Socket.Process from /proc/PID/fd links
// ("socket:[INODE]"). Unreadable processes are skipped.
func nameProcesses(socks []Socket) {
	want := map[string][]int{}
	for i, s := range socks {
		want[s.inode] = append(want[s.inode], i)
	}
	if len(want) == 0 {
		return
	}
	pids, _ := os.ReadDir("/proc")
	for _, pid := range pids {
		if pid.Name()[0] < '0' || pid.Name()[0] > '9' {
			continue
		}
		dir := filepath.Join("/proc", pid.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			idx, ok := want[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
			if !ok {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join("/proc", pid.Name(), "comm"))
				comm = strings.TrimSpace(string(b))
			}
			for _, i := range idx {
				if socks[i].Process == "" {
					socks[i].Process = comm
				}
			}
		}
	}
}
