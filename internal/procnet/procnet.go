// Package procnet lists the listening sockets of a network namespace from
// /proc/net/tcp, tcp6 and unix, through github.com/prometheus/procfs: the one
// reader of these files for verify's listener stage, the backend analysis
// and (with its own states) internal/sshport.
//
// procfs marks its /proc/net/tcp readers deprecated in favour of sock_diag
// over netlink. They are used on purpose: the tests read fake /proc trees,
// the inodes they give are what /proc/PID/fd names (sock_diag does not name
// processes either), and the files are there without CAP_NET_ADMIN.
package procnet

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = 10

// unixAcceptCon is __SO_ACCEPTCON in /proc/net/unix's Flags: listening.
const unixAcceptCon = 1 << 16

// Listener is one listening socket: TCP (Addr) or unix bound to a path (Path).
type Listener struct {
	Addr  netip.AddrPort
	Path  string
	Inode uint64
}

// TCP reads the listening TCP sockets of root/net/tcp and tcp6, where root
// is "/proc" (the namespace of the process), "/proc/thread-self" (of the
// calling thread) or a test's tree. A missing tcp6 (IPv6 disabled) is no
// error; a missing tcp is. An address of "::ffff:0.0.0.0" is read as "::".
func TCP(root string) ([]Listener, error) {
	p, err := procfs.NewFS(root)
	if err != nil {
		return nil, err
	}
	var out []Listener
	//lint:ignore SA1019 /proc/net/tcp on purpose (see the package doc)
	for i, read := range []func() (procfs.NetTCP, error){p.NetTCP, p.NetTCP6} {
		lines, err := read()
		if err != nil {
			if i == 1 && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", filepath.Join(root, "net", []string{"tcp", "tcp6"}[i]), err)
		}
		for _, l := range lines {
			if l.St != tcpListen || l.Inode == 0 {
				continue
			}
			a, ok := netip.AddrFromSlice(l.LocalAddr)
			if !ok || l.LocalPort > 0xffff {
				continue
			}
			if a.Is4In6() && a.Unmap().IsUnspecified() {
				a = netip.IPv6Unspecified()
			}
			out = append(out, Listener{Addr: netip.AddrPortFrom(a, uint16(l.LocalPort)), Inode: l.Inode})
		}
	}
	return out, nil
}

// Unix reads the listening unix sockets bound to a path from root/net/unix.
func Unix(root string) ([]Listener, error) {
	p, err := procfs.NewFS(root)
	if err != nil {
		return nil, err
	}
	u, err := p.NetUNIX()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(root, "net", "unix"), err)
	}
	var out []Listener
	for _, l := range u.Rows {
		if uint64(l.Flags)&unixAcceptCon == 0 || l.Inode == 0 || len(l.Path) == 0 || l.Path[0] != '/' {
			continue
		}
		out = append(out, Listener{Path: l.Path, Inode: l.Inode})
	}
	return out, nil
}

// SocketInodes lists the socket inodes process pid holds open, from the
// "socket:[INODE]" links of root/PID/fd (root: "/proc" or a test's tree).
// A process whose descriptors cannot be read (gone, or another user's
// without the capability) is an error.
func SocketInodes(root string, pid int) ([]uint64, error) {
	dir := filepath.Join(root, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		in, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		if ino, err := strconv.ParseUint(strings.TrimSuffix(in, "]"), 10, 64); err == nil {
			out = append(out, ino)
		}
	}
	return out, nil
}
