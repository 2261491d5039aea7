package backend

import (
	"context"
	"errors"
	"fmt"

	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/internal/procnet"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

// Web servers in containers. A process in another network namespace does
// not serve this host's sockets (scanProcs leaves it out of discovery); one
// whose root directory is not this host's (a container with host
// networking, a chroot) serves them, but its configuration lives in its own
// file system: it is named in an info line, not analysed. No command
// (`nginx -T`) is ever run for either: nginx -T opens and creates the log
// files, pid file and temp directories its configuration names, which for
// a container's configuration run on the host would write into the host's
// or the container's files. What listens behind a port this host publishes
// by DNAT is found and, for nginx, analysed from files and connects only
// (Behind, containerconf.go).

// errOtherRoot is why a web server whose root is not this host's is not
// loaded.
var errOtherRoot = errors.New("it runs in its own file system")

// sameRoot reports whether the process's root directory is this
// process's (procRoot/PID/root and procRoot/self/root are the same
// directory); known is false when that cannot be read (no permission):
// then no command is run for it either. A tree without root links at all
// (a test's) is taken as one root.
func sameRoot(procRoot string, pid int) (same, known bool) {
	mine, errM := os.Stat(filepath.Join(procRoot, "self", "root"))
	theirs, errT := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid), "root"))
	switch {
	case os.IsNotExist(errM) && os.IsNotExist(errT):
		return true, true
	case errM != nil || errT != nil:
		return false, false
	}
	return os.SameFile(mine, theirs), true
}

// otherRootFinding is the info line for a web server in its own file
// system.
func otherRootFinding(kind string, p *proc) report.Finding {
	return report.Finding{Severity: report.SeverityInfo,
		Message: fmt.Sprintf("the web server in container %s (%s, pid %d) is not analysed: it runs in its own file system (/proc/%d/root), and cfguard runs no command on a container's configuration and does not read it yet",
			containerName(p), kind, p.pid, p.pid),
		Fix: "run cfguard verify inside the container to analyse its backends"}
}

// containerName names the container a process belongs to: its cgroup
// scope ("docker-0123456789ab"), else its network namespace.
func containerName(p *proc) string {
	if p.scope != "" {
		return p.scope
	}
	if p.netns != "" {
		return p.netns
	}
	return "?"
}

// behindProc is a process listening behind a DNAT target.
type behindProc struct {
	pid   int
	comm  string
	scope string // cgroup scope or slice, "" when none
	netns string // "net:[4026532…]"
}

// Behind analyses what listens on to, an address this host's DNAT sends
// Cloudflare's connections to, in another network namespace (a
// container): it finds the process from /proc (the namespaces' socket
// tables and file descriptors, the namespace's addresses over netlink from
// a thread switched into it) and, for nginx, reads its configuration
// inside its root and connects to the backends of "/" from the
// container's side (containerconf.go). Nothing is run. Another web server,
// or a configuration that cannot be read, is named as not analysed.
func (a *Analyzer) Behind(ctx context.Context, to netip.AddrPort, host string, status int) report.Outcome {
	out := report.Outcome{Stage: report.StageUpstream}
	b, ok := findBehind(a.opts.ProcRoot, to)
	if !ok {
		out.Evidence = append(out.Evidence, fmt.Sprintf("the web server behind %s (published by DNAT) is not analysed: no process in a network namespace holding %s was found listening there", to, to.Addr()))
		return out
	}
	name := containerLabel(b)
	why := "only nginx in a container is analysed"
	if b.comm == "nginx" {
		o, err := analyseContainer(ctx, a.opts.ProcRoot, b, to, host, status)
		if err == nil {
			return o
		}
		why = err.Error()
	}
	out.Evidence = append(out.Evidence, fmt.Sprintf("the web server in container %s (%s, pid %d, listening on %s) is not analysed: %s; cfguard runs no command on a container's configuration",
		name, b.comm, b.pid, to, why))
	return out
}

// findBehind looks through the network namespaces other than this one for
// a process listening on to (the address itself or a wildcard) in a
// namespace that holds to's address.
func findBehind(procRoot string, to netip.AddrPort) (behindProc, bool) {
	own, _ := os.Readlink(filepath.Join(procRoot, "thread-self", "ns", "net"))
	ents, err := os.ReadDir(procRoot)
	if err != nil || own == "" {
		return behindProc{}, false
	}
	byNS := map[string][]int{}
	var order []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink(filepath.Join(procRoot, e.Name(), "ns", "net"))
		if err != nil || ns == own {
			continue
		}
		if _, ok := byNS[ns]; !ok {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], pid)
	}
	for _, ns := range order {
		pids := byNS[ns]
		ls, err := procnet.TCP(filepath.Join(procRoot, strconv.Itoa(pids[0])))
		if err != nil {
			continue
		}
		inodes := map[uint64]bool{}
		exact := false
		for _, l := range ls {
			if l.Addr.Port() != to.Port() {
				continue
			}
			switch a := l.Addr.Addr(); {
			case a.Unmap() == to.Addr().Unmap():
				inodes[l.Inode], exact = true, true
			case a.IsUnspecified() && (a.Is6() || to.Addr().Unmap().Is4()):
				inodes[l.Inode] = true
			}
		}
		if len(inodes) == 0 {
			continue
		}
		if !exact && !nsHasAddr(filepath.Join(procRoot, strconv.Itoa(pids[0]), "ns", "net"), to.Addr()) {
			continue
		}
		if pid, ok := socketHolder(procRoot, pids, inodes); ok {
			b := behindProc{pid: pid, netns: ns}
			if p, err := readProc(procRoot, pid); err == nil {
				b.comm = p.comm
				// the master, not a worker: the oldest ancestor of the
				// same name in the namespace
				for {
					parent, err := readProc(procRoot, p.ppid)
					if err != nil || parent.comm != p.comm || !inNS(procRoot, parent.pid, ns) {
						break
					}
					p = parent
				}
				b.pid = p.pid
				if cg, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(p.pid), "cgroup")); err == nil {
					b.scope = cgroupScope(string(cg))
				}
			}
			return b, true
		}
	}
	return behindProc{}, false
}

func inNS(procRoot string, pid int, ns string) bool {
	l, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "net"))
	return err == nil && l == ns
}

// socketHolder is the first of pids holding one of the socket inodes.
func socketHolder(procRoot string, pids []int, inodes map[uint64]bool) (int, bool) {
	for _, pid := range pids {
		held, _ := procnet.SocketInodes(procRoot, pid)
		for _, ino := range held {
			if inodes[ino] {
				return pid, true
			}
		}
	}
	return 0, false
}

// cgroupScope is the last element of the process's cgroup path that names
// a container ("docker-<id>.scope" shortened to "docker-<12 hex>",
// "libpod-…", any ".scope"), "" when none.
func cgroupScope(cg string) string {
	for _, line := range strings.Split(cg, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		parts := strings.Split(strings.Trim(f[2], "/"), "/")
		for i := len(parts) - 1; i >= 0; i-- {
			s := parts[i]
			if name, ok := strings.CutSuffix(s, ".scope"); ok {
				if pre, id, ok := strings.Cut(name, "-"); ok && len(id) > 12 {
					return pre + "-" + id[:12]
				}
				return name
			}
		}
	}
	return ""
}

// nsHasAddr reports whether the network namespace (a /proc/PID/ns/net
// path) has addr on an interface. It reads the addresses over netlink from
// an OS thread switched into the namespace (read only; needs
// CAP_SYS_ADMIN), and answers false when it cannot.
func nsHasAddr(nsPath string, addr netip.Addr) bool {
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	found := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(orig)
		if unix.Setns(fd, unix.CLONE_NEWNET) != nil {
			runtime.UnlockOSThread()
			return
		}
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, a := range as {
				if n, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr.Unmap() {
						found = true
					}
				}
			}
		}
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: the thread stays locked and the runtime discards it
	}()
	<-done
	return found
}

// testWritesNothing reports whether `nginx -T` of conf would change
// nothing: every file and directory it opens or creates (logs, the pid
// file, temp directories, as the files show them) exists. A running nginx
// has them all; a deleted log, or a configuration never started, is read
// from the files instead.
func testWritesNothing(ctx context.Context, conf string) bool {
	cfg, err := nginxconf.Load(ctx, conf)
	if err != nil {
		return false
	}
	paths, ok := cfg.TestWrites()
	if !ok {
		return false
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return false
		}
	}
	return true
}
