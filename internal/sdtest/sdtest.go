// Package sdtest boots a real systemd as PID 1 for a test, on a throwaway
// overlay of / in new pid, mount, uts, ipc and network namespaces (the
// recipe of /work/shared/reference/systemd-sandbox.md): every write the
// sandbox makes, deletions included, goes to an upper directory under
// /var/lib/cfguard-test that the test removes; /run, /tmp and /var/tmp are
// fresh tmpfs. The host's files, services, ruleset and /tmp are untouched.
//
// Booting takes seconds and a share of the machine: boot one sandbox per
// test function and run its cases as subtests.
package sdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds.
const (
	// BootTimeout bounds the boot, until is-system-running leaves "starting".
	BootTimeout = 120 * time.Second
	// ExecTimeout bounds one command run inside by Exec.
	ExecTimeout = 60 * time.Second
	// PoweroffTimeout bounds a clean poweroff before PID 1 is killed.
	PoweroffTimeout = 30 * time.Second
	// maxOutput bounds what Exec keeps of a command's output.
	maxOutput = 1 << 20
)

// BaseDir holds the sandboxes' upper and work directories. It must be on a
// real filesystem (overlayfs refuses tmpfs uppers on some kernels, and /tmp
// is emptied by systemd-tmpfiles).
const BaseDir = "/var/lib/cfguard-test"

const systemdBin = "/lib/systemd/systemd"

// File is a file put into the sandbox before it boots.
type File struct {
	Path    string      // inside the sandbox, absolute
	Data    []byte      // contents (when Src and Symlink are empty)
	Src     string      // a host file to copy instead
	Symlink string      // make a symlink to this instead
	Mode    os.FileMode // 0644 when zero
}

// Options shape a sandbox.
type Options struct {
	// Mask lists units masked before boot (apache2.service fails without
	// free ports, so it is always masked).
	Mask []string
	// Files are written into the overlay before boot.
	Files []File
}

// Sandbox is one booted systemd.
type Sandbox struct {
	Dir string // BaseDir/<random>: upper, work, root, console.log
	PID int    // the sandbox's PID 1, as the host sees it

	t   testing.TB
	cmd *exec.Cmd
	// done is closed when the unshare process has exited.
	done chan struct{}
	exe  string // the test binary inside, once copied
}

// Require skips t unless a sandbox can be booted here: root, unshare,
// nsenter and systemd.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: booting systemd in a sandbox needs root")
	}
	for _, p := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipped: %s is not installed (package util-linux)", p)
		}
	}
	if _, err := os.Stat(systemdBin); err != nil {
		t.Skipf("skipped: %s is not installed (package systemd)", systemdBin)
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(b, []byte("overlay")) {
		t.Skip("skipped: the kernel has no overlay filesystem")
	}
}

// bootScript is the recipe: overlay of /, fresh tmpfs for /run, /tmp and
// /var/tmp, pivot_root, then systemd as PID 1. $W is the sandbox directory.
const bootScript = `R=$W/root
mount -t overlay overlay -o lowerdir=/,upperdir=$W/upper,workdir=$W/work "$R"
mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"; mount -t tmpfs tmpfs "$R/tmp"; mount -t tmpfs tmpfs "$R/var/tmp"
cd "$R"; mkdir -p old; pivot_root . old; umount -l /old
exec ` + systemdBin + ` --system --unit=multi-user.target`

// Boot starts a sandbox and waits until systemd has finished booting. It
// is powered off and removed when t ends.
func Boot(t testing.TB, opt Options) *Sandbox {
	t.Helper()
	Require(t)
	if err := os.MkdirAll(BaseDir, 0o700); err != nil {
		t.Fatal(err)
	}
	reapStale()
	dir, err := os.MkdirTemp(BaseDir, "sd-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sandbox{Dir: dir, t: t, done: make(chan struct{})}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := append([]File{}, opt.Files...)
	for _, u := range append([]string{"apache2.service"}, opt.Mask...) {
		files = append(files, File{Path: "/etc/systemd/system/" + u, Symlink: "/dev/null"})
	}
	for _, f := range files {
		if err := s.writeUpper(f); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	s.cmd = exec.Command("unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--uts", "--ipc", "--net",
		"--propagation", "private", "bash", "-euc", bootScript)
	s.cmd.Env = []string{"W=" + dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	s.cmd.Stdout, s.cmd.Stderr = console, console
	// Its own session (no terminal signals); killed if the test binary dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("starting unshare: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "unshare.pid"), []byte(strconv.Itoa(s.cmd.Process.Pid)), 0o644)
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.cleanup)
	if err := s.findPID1(); err != nil {
		t.Fatalf("sandbox: %v\n%s", err, s.console())
	}
	if err := s.waitBooted(); err != nil {
		t.Fatalf("sandbox: %v\n%s", err, s.console())
	}
	return s
}

// findPID1 finds the sandbox's PID 1: the child of the unshare started,
// once it has become systemd.
func (s *Sandbox) findPID1() error {
	up := s.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-s.done:
			return fmt.Errorf("unshare exited before systemd started")
		default:
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", up, up))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 1 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == "systemd" {
			s.PID = pid
			return nil
		}
	}
	return fmt.Errorf("no systemd child of unshare (pid %d) within 20s", up)
}

// waitBooted polls is-system-running until it says "running" or
// "degraded" ("offline" until systemd answers on its socket), at most
// BootTimeout.
func (s *Sandbox) waitBooted() error {
	deadline := time.Now().Add(BootTimeout)
	var last string
	for ; time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		select {
		case <-s.done:
			return fmt.Errorf("systemd exited while booting")
		default:
		}
		out, _ := s.Exec("systemctl", "is-system-running")
		last = strings.TrimSpace(out)
		switch last {
		case "running", "degraded":
			return nil
		case "maintenance", "stopping":
			return fmt.Errorf("systemd is %s after boot", last)
		}
	}
	return fmt.Errorf("systemd still %q after %s", last, BootTimeout)
}

// Command is a command run inside the sandbox (through nsenter into all its
// namespaces), with a small fixed environment.
func (s *Sandbox) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(s.PID), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root",
		"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Exec runs args inside the sandbox, bounded by ExecTimeout, and returns
// its combined output.
func (s *Sandbox) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	cmd := s.Command(ctx, args...)
	out := &bounded{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("in the sandbox, %s: %w", strings.Join(args, " "), err)
	}
	return out.buf.String(), err
}

// MustExec is Exec that fails t on an error.
func (s *Sandbox) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Exec(args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// Install puts the host file src into the sandbox at dst (parents made)
// with mode; it goes through the sandbox's own filesystem, so it is safe
// after boot.
func (s *Sandbox) Install(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.write(t, f, dst, mode)
}

// WriteFile writes data into the sandbox at dst (parents made) with mode.
func (s *Sandbox) WriteFile(t testing.TB, dst string, data []byte, mode os.FileMode) {
	t.Helper()
	s.write(t, bytes.NewReader(data), dst, mode)
}

func (s *Sandbox) write(t testing.TB, r interface{ Read([]byte) (int, error) }, dst string, mode os.FileMode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	cmd := s.Command(ctx, "sh", "-euc", `mkdir -p "$(dirname "$1")"; cat > "$1.sdtest"; chmod "$2" "$1.sdtest"; mv -f "$1.sdtest" "$1"`,
		"sh", dst, strconv.FormatUint(uint64(mode.Perm()), 8))
	cmd.Stdin = r
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing %s in the sandbox: %v\n%s", dst, err, out)
	}
}

// WaitFor polls cond every 200 ms until it is true, failing t with what
// after timeout.
func (s *Sandbox) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s still not: %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Journal returns the journal of unit inside the sandbox (messages only).
func (s *Sandbox) Journal(unit string) string {
	out, _ := s.Exec("journalctl", "--no-pager", "-o", "cat", "-u", unit)
	return out
}

// writeUpper puts f into the upper directory before boot. Parent
// directories copy the mode and owner of the host's (lower) directory, so
// the merged view keeps them.
func (s *Sandbox) writeUpper(f File) error {
	if !filepath.IsAbs(f.Path) {
		return fmt.Errorf("sdtest: file path %q is not absolute", f.Path)
	}
	upper := filepath.Join(s.Dir, "upper")
	parent := filepath.Dir(filepath.Clean(f.Path))
	cur := upper
	for _, part := range strings.Split(strings.TrimPrefix(parent, "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		lower := "/" + strings.TrimPrefix(strings.TrimPrefix(cur, upper), "/")
		if _, err := os.Lstat(cur); err == nil {
			continue
		}
		mode, uid, gid := os.FileMode(0o755), 0, 0
		if fi, err := os.Stat(lower); err == nil {
			mode = fi.Mode().Perm()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid, gid = int(st.Uid), int(st.Gid)
			}
		}
		if err := os.Mkdir(cur, mode); err != nil {
			return err
		}
		os.Chmod(cur, mode)
		os.Chown(cur, uid, gid)
	}
	dst := filepath.Join(upper, f.Path)
	if f.Symlink != "" {
		return os.Symlink(f.Symlink, dst)
	}
	data := f.Data
	if f.Src != "" {
		var err error
		if data, err = os.ReadFile(f.Src); err != nil {
			return err
		}
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

func (s *Sandbox) console() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "console.log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// cleanup powers the sandbox off (SIGKILL to its PID 1 when that does not
// end it in PoweroffTimeout), checks that none of its mounts is visible
// on the host and removes its directory.
func (s *Sandbox) cleanup() {
	t := s.t
	if s.PID > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.Command(ctx, "systemctl", "--no-block", "poweroff").Run()
		cancel()
	}
	select {
	case <-s.done:
	case <-time.After(PoweroffTimeout):
		t.Logf("sandbox: no poweroff within %s; killing its PID 1", PoweroffTimeout)
		if s.PID > 0 {
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
		s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("sandbox: unshare (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
			return
		}
	}
	if m := mountsUnder(s.Dir); len(m) > 0 {
		t.Errorf("sandbox: mounts leaked onto the host: %v", m)
		for i := len(m) - 1; i >= 0; i-- {
			syscall.Unmount(m[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Errorf("sandbox: removing %s: %v", s.Dir, err)
	}
}

// mountsUnder lists the host's mount points at or under dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// reapStale removes sandboxes left by test binaries that died (their
// unshare is gone and nothing is mounted there).
func reapStale() {
	entries, _ := os.ReadDir(BaseDir)
	for _, e := range entries {
		dir := filepath.Join(BaseDir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "unshare.pid"))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(string(b))
		if pid <= 0 || syscall.Kill(pid, 0) == nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if len(mountsUnder(dir)) == 0 {
			os.RemoveAll(dir)
		}
	}
}

type bounded struct {
	buf bytes.Buffer
	max int
}

func (b *bounded) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
