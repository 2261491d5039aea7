package nstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NS is a network namespace made for one test.
type NS struct {
	Name string
	t    testing.TB
	fd   int
}

// RequireRoot skips the test, with the reason, unless it runs as root with
// the tools a namespace test needs.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces (run `sudo make test`)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (.ci/run installs it)", tool)
		}
	}
}

// New makes a namespace with loopback up. It is deleted when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &NS{Name: "cfgt-" + hex.EncodeToString(b[:]), t: t, fd: -1}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.Name, err, out)
	}
	t.Cleanup(func() {
		if n.fd >= 0 {
			unix.Close(n.fd)
		}
		// Kill whatever is still running inside, then delete the namespace.
		if out, err := exec.Command("ip", "netns", "pids", n.Name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				var p int
				fmt.Sscan(pid, &p)
				if p > 0 {
					unix.Kill(p, unix.SIGKILL)
				}
			}
		}
		exec.Command("ip", "netns", "del", n.Name).Run()
	})
	fd, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open namespace %s: %v", n.Name, err)
	}
	n.fd = fd
	n.Run("ip", "link", "set", "lo", "up")
	return n
}

// Fd is a file descriptor of the namespace, for nftables.WithNetNSFd.
func (n *NS) Fd() int { return n.fd }

// Command returns a command that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and fails the test if it fails.
// It returns the command's standard output.
func (n *NS) Run(name string, args ...string) string {
	n.t.Helper()
	out, err := n.Try(name, args...)
	if err != nil {
		n.t.Fatalf("in %s: %s %s: %v", n.Name, name, strings.Join(args, " "), err)
	}
	return out
}

// Try runs a command inside the namespace and returns its output and error
// (the error carries standard error).
func (n *NS) Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := n.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Start starts a long-running command inside the namespace. It is killed
// when the test ends.
func (n *NS) Start(name string, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := n.Command(context.Background(), name, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("in %s: start %s: %v", n.Name, name, err)
	}
	n.t.Cleanup(func() {
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

// Do runs fn on an OS thread switched into the namespace. Sockets that fn
// opens (listeners, connections) stay in the namespace after Do returns.
func (n *NS) Do(fn func() error) error {
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		orig, e := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if e != nil {
			err = e
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(orig)
		if e := unix.Setns(n.fd, unix.CLONE_NEWNET); e != nil {
			err = fmt.Errorf("setns %s: %w", n.Name, e)
			runtime.UnlockOSThread()
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: leave the thread locked so the runtime discards it.
	}()
	wg.Wait()
	return err
}

// Link joins a and b with a veth pair and gives each side the addresses
// (CIDR notation, e.g. "192.0.2.1/24", "2001:db8::1/64"). IPv6 duplicate
// address detection is turned off so the addresses are usable at once.
func Link(t testing.TB, a, b *NS, aAddrs, bAddrs []string) {
	t.Helper()
	var r [3]byte
	rand.Read(r[:])
	ifA, ifB := "va"+hex.EncodeToString(r[:]), "vb"+hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "link", "add", ifA, "netns", a.Name, "type", "veth", "peer", "name", ifB, "netns", b.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip link add veth: %v: %s", err, out)
	}
	for _, side := range []struct {
		ns    *NS
		ifc   string
		addrs []string
	}{{a, ifA, aAddrs}, {b, ifB, bAddrs}} {
		side.ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
		side.ns.Run("sysctl", "-qw", "net.ipv6.conf."+side.ifc+".accept_dad=0")
		for _, addr := range side.addrs {
			args := []string{"addr", "add", addr, "dev", side.ifc}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad")
			}
			side.ns.Run("ip", args...)
		}
		side.ns.Run("ip", "link", "set", side.ifc, "up")
	}
}
