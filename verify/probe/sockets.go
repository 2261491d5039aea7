package probe

import (
	"cmp"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cfguard/cfguard/internal/procnet"
)

// Socket is a listening TCP socket of this host (its network namespace).
type Socket struct {
	Addr    netip.Addr
	Port    int
	Process string // command name of a process holding it, "" if unknown
	inode   uint64
}

// String is "0.0.0.0:80 (nginx)" or "[::]:443".
func (s Socket) String() string {
	a := netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()
	if s.Process != "" {
		return a + " (" + s.Process + ")"
	}
	return a
}

// ListeningSockets reads the listening TCP sockets of the calling thread's
// network namespace (/proc/thread-self/net/tcp and tcp6, read by
// internal/procnet), sorted by port and address, with the name of a process
// that holds each (as far as /proc/PID/fd shows it).
func ListeningSockets() ([]Socket, error) {
	base := "/proc/thread-self"
	if _, err := os.Stat(filepath.Join(base, "net")); err != nil {
		base = "/proc"
	}
	ls, err := procnet.TCP(base)
	if err != nil {
		return nil, err
	}
	socks := make([]Socket, 0, len(ls))
	for _, l := range ls {
		socks = append(socks, Socket{Addr: l.Addr.Addr(), Port: int(l.Addr.Port()), inode: l.Inode})
	}
	nameProcesses(socks)
	slices.SortFunc(socks, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), a.Addr.Compare(b.Addr))
	})
	return slices.CompactFunc(socks, func(a, b Socket) bool { return a.Addr == b.Addr && a.Port == b.Port }), nil
}

// nameProcesses fills Socket.Process from /proc/PID/fd links
// ("socket:[INODE]"). Unreadable processes are skipped.
func nameProcesses(socks []Socket) {
	want := map[uint64][]int{}
	for i, s := range socks {
		want[s.inode] = append(want[s.inode], i)
	}
	if len(want) == 0 {
		return
	}
	pids, _ := os.ReadDir("/proc")
	for _, pid := range pids {
		n, err := strconv.Atoi(pid.Name())
		if err != nil {
			continue
		}
		held, _ := procnet.SocketInodes("/proc", n)
		var comm string
		for _, ino := range held {
			idx, ok := want[ino]
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
