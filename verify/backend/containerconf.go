package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

// The backends of an nginx in a container, found without running anything:
// its configuration is read inside its own root directory (/proc/PID/root,
// every path resolved there, absolute symbolic links included:
// openat2 RESOLVE_IN_ROOT), the route for "/" followed as for this host's
// nginx, and each backend connected to from the container's side: a TCP
// backend from a thread switched into the container's network namespace,
// a unix socket through its root.

// maxContainerConf bounds one configuration file read from a container.
const maxContainerConf = 4 << 20

// containerBackendTimeout bounds one connect to a container's backend.
const containerBackendTimeout = 3 * time.Second

// rootFS reads files inside a process's root directory.
type rootFS struct {
	dir string // procRoot/PID/root
}

// read returns the regular file name (a path inside the root), at most
// maxContainerConf bytes, resolved inside the root.
func (r rootFS) read(name string) (string, error) {
	dfd, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, strings.TrimPrefix(name, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxContainerConf+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxContainerConf {
		return "", fmt.Errorf("%s is larger than %d MiB", name, maxContainerConf>>20)
	}
	return string(b), nil
}

// glob lists the names matching pattern inside the root.
func (r rootFS) glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(r.dir, pattern))
	var out []string
	for _, p := range m {
		out = append(out, "/"+strings.TrimPrefix(strings.TrimPrefix(p, r.dir), "/"))
	}
	return out, err
}

// containerRoute reads the nginx configuration of the master pid inside
// its root and follows "/" for to and host.
func containerRoute(ctx context.Context, procRoot string, pid int, to netip.AddrPort, host string) (*nginxconf.Route, error) {
	p, err := readProc(procRoot, pid)
	if err != nil {
		return nil, err
	}
	conf := nginxConfOf(p)
	fsys := rootFS{dir: filepath.Join(procRoot, strconv.Itoa(pid), "root")}
	cfg, err := nginxconf.LoadWith(conf, fsys.glob, func(name string) (string, error) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		return fsys.read(name)
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s inside its root: %w", conf, err)
	}
	rt := cfg.Route(to.Addr(), int(to.Port()), host)
	if rt == nil {
		return nil, fmt.Errorf("no server of %s listens on %s", conf, to)
	}
	return rt, nil
}

// dialInContainer connects to a backend of the container: TCP from a
// thread in its network namespace, a unix socket through its root.
func dialInContainer(ctx context.Context, procRoot string, pid int, t nginxconf.Target) error {
	dctx, cancel := context.WithTimeout(ctx, containerBackendTimeout)
	defer cancel()
	if t.Network == "unix" {
		c, err := (&net.Dialer{}).DialContext(dctx, "unix", filepath.Join(procRoot, strconv.Itoa(pid), "root", t.Address))
		if err == nil {
			c.Close()
		}
		return err
	}
	fd, err := unix.Open(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "net"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering the container's network namespace: %w", err)
			return
		}
		// The socket is made on this thread, so in the container's namespace.
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", t.Address)
		if err == nil {
			c.Close()
		}
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: the thread stays locked and the runtime discards it
		errc <- err
	}()
	return <-errc
}

// analyseContainer is Behind's analysis of an nginx in a container: the
// route for "/" and whether its backends accept connections. It fails the
// path only when the web server answered a 502/503/504 and every backend
// of the route refuses or does not answer.
func analyseContainer(ctx context.Context, procRoot string, b behindProc, to netip.AddrPort, host string, status int) (report.Outcome, error) {
	out := report.Outcome{Stage: report.StageUpstream}
	rt, err := containerRoute(ctx, procRoot, b.pid, to, host)
	if err != nil {
		return out, err
	}
	name := containerLabel(b)
	out.Evidence = append(out.Evidence, fmt.Sprintf("in container %s: %s (read inside /proc/%d/root; nothing was run)", name, rt.Where(), b.pid))
	if rt.Backend == nil || len(rt.Backend.Targets) == 0 {
		return out, nil
	}
	var down []string
	for _, t := range rt.Backend.Targets {
		if err := dialInContainer(ctx, procRoot, b.pid, t); err != nil {
			why := "cannot be connected to (" + err.Error() + ")"
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				why = "refuses connections"
			case errors.Is(err, os.ErrNotExist):
				why = "does not exist"
			case errors.Is(err, context.DeadlineExceeded):
				why = "does not answer a connect within " + containerBackendTimeout.String()
			}
			down = append(down, fmt.Sprintf("%s %s", t, why))
			continue
		}
		out.Evidence = append(out.Evidence, fmt.Sprintf("in container %s: %s accepts connections", name, t))
	}
	if len(down) == 0 {
		return out, nil
	}
	cause := fmt.Sprintf("the backend of nginx in container %s is down: %s %s: %s",
		name, rt.Backend.Directive(), rt.Backend.Pass, strings.Join(down, ", "))
	if len(down) < len(rt.Backend.Targets) || (status != 502 && status != 503 && status != 504) {
		out.Warnings = append(out.Warnings, cause)
		return out, nil
	}
	out.Fail, out.Status, out.Cause = true, status, cause
	out.Fix = fmt.Sprintf("start the backend inside container %s (docker ps -a; docker logs; docker restart), or correct %s in its nginx configuration", name, rt.Backend.Directive())
	return out, nil
}

// containerLabel names a container for messages.
func containerLabel(b behindProc) string {
	if b.scope != "" {
		return b.scope
	}
	return b.netns
}
