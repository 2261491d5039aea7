package backend

import (
	"net"
	"net/netip"

	"github.com/cfguard/cfguard/internal/procnet"
)

// Which process listens on a backend's address, to name its unit: the
// listening sockets of /proc/net/tcp, tcp6 and unix (their inodes), and the
// process whose /proc/PID/fd links to "socket:[INODE]". Only read when
// systemd is the service manager, and only for a backend no PHP-FPM pool
// explains.

// listenerUnits maps each listening socket under procRoot to the service
// unit of the process holding it: "tcp 127.0.0.1:3000" / "unix /run/x.sock"
// → "gunicorn.service". Processes of a user's own service manager
// (user@UID.service) are left out: `systemctl` does not manage them.
func listenerUnits(procRoot string, ps []*proc) map[string]string {
	if procRoot == "" {
		return nil
	}
	ls, _ := procnet.TCP(procRoot) // what cannot be read names no unit
	unix, _ := procnet.Unix(procRoot)
	ls = append(ls, unix...)
	if len(ls) == 0 {
		return nil
	}
	byInode := map[uint64]*procnet.Listener{}
	for i := range ls {
		byInode[ls[i].Inode] = &ls[i]
	}
	out := map[string]string{}
	for _, p := range ps {
		if p.unit == "" || p.userUnit {
			continue
		}
		held, _ := procnet.SocketInodes(procRoot, p.pid)
		for _, inode := range held {
			l, ok := byInode[inode]
			if !ok {
				continue
			}
			key := "unix " + l.Path
			if l.Path == "" {
				key = "tcp " + l.Addr.String()
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
