package backend

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Which process listens on a backend's address, to name its unit: the
// listening sockets of /proc/net/tcp, tcp6 and unix (their inodes), and the
// process whose /proc/PID/fd links to "socket:[INODE]". Only read when
// systemd is the service manager, and only for a backend no PHP-FPM pool
// explains.

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// unixAcceptCon is __SO_ACCEPTCON in /proc/net/unix's Flags: listening.
const unixAcceptCon = 0x10000

// listener is one listening socket.
type listener struct {
	addr  netip.AddrPort // TCP
	path  string         // unix
	inode uint64
}

// parseProcNetTCP reads /proc/net/tcp or tcp6 and returns the listening
// sockets. Addresses are hex words in the kernel's byte order.
func parseProcNetTCP(text string) []listener {
	var out []listener
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 || f[3] != tcpListen {
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			continue
		}
		raw, err := hex.DecodeString(host)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		// Each 32-bit word was printed as a number in host byte order.
		ip := make([]byte, len(raw))
		for w := 0; w < len(raw); w += 4 {
			binary.NativeEndian.PutUint32(ip[w:], binary.BigEndian.Uint32(raw[w:]))
		}
		addr, _ := netip.AddrFromSlice(ip)
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		out = append(out, listener{addr: netip.AddrPortFrom(addr, uint16(p)), inode: inode})
	}
	return out
}

// parseProcNetUnix reads /proc/net/unix and returns the listening sockets
// bound to a path.
func parseProcNetUnix(text string) []listener {
	var out []listener
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 || !strings.HasPrefix(f[7], "/") {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&unixAcceptCon == 0 {
			continue
		}
		inode, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		out = append(out, listener{path: strings.Join(f[7:], " "), inode: inode})
	}
	return out
}

// listenerUnits maps each listening socket under procRoot to the service
// unit of the process holding it: "tcp 127.0.0.1:3000" / "unix /run/x.sock"
// → "gunicorn.service". Processes of a user's own service manager
// (user@UID.service) are left out: `systemctl` does not manage them.
func listenerUnits(procRoot string, ps []*proc) map[string]string {
	if procRoot == "" {
		return nil
	}
	var ls []listener
	for _, f := range []string{"tcp", "tcp6"} {
		if b, err := os.ReadFile(filepath.Join(procRoot, "net", f)); err == nil {
			ls = append(ls, parseProcNetTCP(string(b))...)
		}
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "net", "unix")); err == nil {
		ls = append(ls, parseProcNetUnix(string(b))...)
	}
	if len(ls) == 0 {
		return nil
	}
	byInode := map[uint64]*listener{}
	for i := range ls {
		byInode[ls[i].inode] = &ls[i]
	}
	out := map[string]string{}
	for _, p := range ps {
		if p.unit == "" || p.userUnit {
			continue
		}
		dir := filepath.Join(procRoot, strconv.Itoa(p.pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			l, ok := byInode[inode]
			if !ok {
				continue
			}
			key := "unix " + l.path
			if l.path == "" {
				key = "tcp " + l.addr.String()
			}
			if _, seen := out[key]; !seen {
				out[key] = p.unit
			}
		}
	}
	return out
}

// listenerUnit finds the unit listening at a backend address. A TCP
// backend on loopback ("localhost" too) is served by a listener on its
// address or on the wildcard; any other address only by a listener bound
// to exactly it.
func listenerUnit(units map[string]string, t target) string {
	if len(units) == 0 {
		return ""
	}
	if t.network == "unix" {
		return units["unix "+t.address]
	}
	host, port, err := net.SplitHostPort(t.address)
	if err != nil {
		return ""
	}
	var addrs []netip.Addr
	if host == "localhost" {
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	}
	for _, a := range addrs {
		cands := []netip.Addr{a}
		if a.Is4() {
			cands = append(cands, netip.AddrFrom16(a.As16())) // ::ffff:a
		}
		if a.IsLoopback() {
			cands = append(cands, netip.IPv4Unspecified(), netip.IPv6Unspecified())
		}
		for _, c := range cands {
			if u := units["tcp "+net.JoinHostPort(c.String(), port)]; u != "" {
				return u
			}
		}
	}
	return ""
}
