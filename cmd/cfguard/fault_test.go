package main

// Fault injection with the built binary against the real kernel, inside the
// namespaces of newSite: runs killed (SIGKILL) or stopped (SIGTERM) at
// random points, a full, a read-only state directory (a tmpfs or a
// read-only bind mount inside a mount namespace of the run's own, via
// unshare: nothing is mounted on the host), a FIFO in place of the cache or
// the lock, and a hostile API. Each run is bounded by faultRunTimeout; a
// run that reaches it has hung, and the test fails saying so. No assertion
// is about time.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/firewall"
	"github.com/cfguard/cfguard/internal/cfapitest"
)

// faultRunTimeout bounds one run of the binary in these tests. A run that
// reaches it has hung (the FIFO cases); the slowest legitimate run is the
// drip, which sync gives up on after cfranges.FetchTimeout.
const faultRunTimeout = cfranges.FetchTimeout + 30*time.Second

// faultIterations is how many runs each kill loop interrupts.
const faultIterations = 30

// run is one finished run of the binary.
type run struct {
	stdout, stderr string
	code           int  // -1: killed by a signal
	signaled       bool // ended by a signal it did not handle
}

// runOpts describe how to start one run.
type runOpts struct {
	env       []string
	setup     string         // shell run first in a private mount namespace ("": none)
	after     string         // shell run after cfguard in that namespace, e.g. copy a file out
	state     string         // state directory ("": the site's)
	kill      syscall.Signal // sent after killAfter (0: none)
	killAfter time.Duration
}

// start runs cfguard in the origin namespace, optionally inside a private
// mount namespace prepared by setup, and returns the started command.
func (s *site) startRun(ctx context.Context, o runOpts, args ...string) (*exec.Cmd, *strings.Builder, *strings.Builder) {
	s.t.Helper()
	state := o.state
	if state == "" {
		state = s.state
	}
	full := append([]string{"--state-dir", state, "--api-url", s.api.URL}, args...)
	var cmd *exec.Cmd
	if o.setup == "" && o.after == "" {
		cmd = s.origin.Command(ctx, cfguardBin, full...)
	} else {
		script := "set -e\n" + o.setup + "\nset +e\n\"$0\" \"$@\"\nrc=$?\n" + o.after + "\nexit $rc\n"
		cmd = s.origin.Command(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, cfguardBin}, full...)...)
	}
	cmd.Env = append(os.Environ(), o.env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting cfguard %v: %v", args, err)
	}
	return cmd, &out, &errb
}

func (s *site) runWith(o runOpts, args ...string) run {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultRunTimeout)
	defer cancel()
	cmd, out, errb := s.startRun(ctx, o, args...)
	if o.kill != 0 {
		time.Sleep(o.killAfter)
		cmd.Process.Signal(o.kill)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		s.t.Fatalf("cfguard %v hung: still running after %s\nstderr: %s", args, faultRunTimeout, errb.String())
	}
	r := run{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signaled = true
		}
	default:
		s.t.Fatalf("running cfguard %v: %v", args, err)
	}
	return r
}

// oneLine checks that stderr is exactly one "cfguard: " line containing want.
func wantOneLine(t *testing.T, what, stderr, want string) {
	t.Helper()
	t.Logf("%s: %s", what, strings.TrimSpace(stderr))
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "cfguard: ") || !strings.Contains(lines[0], want) {
		t.Errorf("%s: stderr %q, want one line containing %q", what, stderr, want)
	}
}

// kernelSets reads cfguard's Cloudflare sets from the origin namespace's
// kernel (not through the binary) as merged prefixes; present is false
// when there is no table.
func (s *site) kernelSets() (present, hooked bool, cf []netip.Prefix) {
	s.t.Helper()
	fw, err := firewall.New(firewall.Config{Table: defaultTable, Ports: []uint16{80, 443}, NetNSFd: s.origin.Fd()})
	if err != nil {
		s.t.Fatal(err)
	}
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := fw.Read(ctx)
	if err != nil {
		s.t.Fatalf("reading the kernel: %v", err)
	}
	return st.Present, st.Hooked, merged(append(st.Cloudflare4, st.Cloudflare6...))
}

func merged(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

func pfxs(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Two complete, valid lists the kill loops switch between.
var (
	listA4, listA6 = []string{"198.51.100.0/24", "203.0.113.0/24"}, []string{"2001:db8:cf::/48", "2001:db8:cf1::/48"}
	listB4, listB6 = []string{"198.51.100.0/24", "203.0.113.0/25", "198.18.0.0/15"}, []string{"2001:db8:cf::/48", "2001:db8:cf2::/48"}
	listA          = merged(pfxs(append(slices.Clone(listA4), listA6...)...))
	listB          = merged(pfxs(append(slices.Clone(listB4), listB6...)...))
)

func which(got []netip.Prefix) string {
	switch {
	case slices.Equal(got, listA):
		return "A"
	case slices.Equal(got, listB):
		return "B"
	}
	return fmt.Sprintf("neither A nor B: %v", got)
}

func (s *site) cacheList() (string, error) {
	l, err := cfranges.Load(s.state)
	if err != nil {
		return "", err
	}
	return which(merged(l.All())), nil
}

func (s *site) tempFiles() []string {
	names, _ := filepath.Glob(filepath.Join(s.state, ".ranges.json.tmp-*"))
	return names
}

// timeRun measures how long a normal run takes here, to spread the kill
// points over it (a measurement to aim with, never asserted).
func (s *site) timeRun(args ...string) time.Duration {
	start := time.Now()
	if r := s.runWith(runOpts{}, args...); r.code != 0 {
		s.t.Fatalf("cfguard %v: exit %d: %s", args, r.code, r.stderr)
	}
	return time.Since(start)
}

// repair is the run after an interrupted one: it must put everything right.
func (s *site) repair(t *testing.T, i int) {
	t.Helper()
	if r := s.runWith(runOpts{}, "sync"); r.code != 0 {
		t.Fatalf("iteration %d: the repairing sync: exit %d: %s", i, r.code, r.stderr)
	}
	if r := s.runWith(runOpts{}, "status"); r.code != 0 {
		t.Fatalf("iteration %d: status after the repair: exit %d\n%s", i, r.code, r.stdout)
	}
	if tmp := s.tempFiles(); len(tmp) != 0 {
		t.Fatalf("iteration %d: temp files left after the repair: %v", i, tmp)
	}
}

// TestFaultKilledSync: a sync killed (SIGKILL) at any point leaves the
// kernel holding the old or the new list, complete; the cache parses; the
// next sync repairs everything, stale temp files included.
func TestFaultKilledSync(t *testing.T) {
	s := newSite(t)
	rng := rand.New(rand.NewPCG(8, 1))
	s.api.SetIPs(listA4, listA6, nil, "")
	span := s.timeRun("sync") * 3 / 2
	cur := "A"
	killed := 0
	defer func() {
		t.Logf("%d of %d runs killed before they ended (the others had finished)", killed, faultIterations)
	}()
	for i := range faultIterations {
		next := map[string]string{"A": "B", "B": "A"}[cur]
		if next == "A" {
			s.api.SetIPs(listA4, listA6, nil, "")
		} else {
			s.api.SetIPs(listB4, listB6, nil, "")
		}
		at := time.Duration(rng.Int64N(int64(span)))
		if r := s.runWith(runOpts{kill: syscall.SIGKILL, killAfter: at}, "sync"); r.signaled {
			killed++
		}
		present, hooked, got := s.kernelSets()
		k := which(got)
		if !present || !hooked || (k != cur && k != next) {
			t.Fatalf("iteration %d (killed at %s): table present=%v hooked=%v holding %s; want the old (%s) or new (%s) list, complete", i, at, present, hooked, k, cur, next)
		}
		c, err := s.cacheList()
		if err != nil || (c != cur && c != next) {
			t.Fatalf("iteration %d (killed at %s): cache %q, %v; want it to parse and hold %s or %s", i, at, c, err, cur, next)
		}
		s.repair(t, i)
		if _, _, got := s.kernelSets(); which(got) != next {
			t.Fatalf("iteration %d: after the repair the kernel holds %s, want %s", i, which(got), next)
		}
		cur = next
	}
}

// TestFaultKilledRestore: likewise for restore (kernel B, cache A).
func TestFaultKilledRestore(t *testing.T) {
	s := newSite(t)
	rng := rand.New(rand.NewPCG(8, 2))
	s.api.SetIPs(listA4, listA6, nil, "")
	span := s.timeRun("sync") * 3 / 2
	killed := 0
	defer func() {
		t.Logf("%d of %d runs killed before they ended (the others had finished)", killed, faultIterations)
	}()
	for i := range faultIterations {
		s.api.SetIPs(listB4, listB6, nil, "")
		s.mustRun(t, "sync")
		s.saveCache(t, listA4, listA6, time.Now())
		at := time.Duration(rng.Int64N(int64(span)))
		if r := s.runWith(runOpts{kill: syscall.SIGKILL, killAfter: at}, "restore"); r.signaled {
			killed++
		}
		present, hooked, got := s.kernelSets()
		if k := which(got); !present || !hooked || (k != "A" && k != "B") {
			t.Fatalf("iteration %d (killed at %s): table present=%v hooked=%v holding %s", i, at, present, hooked, k)
		}
		if c, err := s.cacheList(); err != nil || c != "A" {
			t.Fatalf("iteration %d: restore changed the cache: %q, %v", i, c, err)
		}
		s.mustRun(t, "restore")
		if _, _, got := s.kernelSets(); which(got) != "A" {
			t.Fatalf("iteration %d: the next restore left %s", i, which(got))
		}
	}
}

// TestFaultTerminated: SIGTERM (and SIGINT) at a random point; the exit
// code says what the kernel holds: 0 the new list (and the cache holds it
// too), 1 the old one (and the old cache). A signal that arrives before
// cfguard's handler is installed kills it like SIGKILL: old or new.
func TestFaultTerminated(t *testing.T) {
	s := newSite(t)
	rng := rand.New(rand.NewPCG(8, 3))
	s.api.SetIPs(listA4, listA6, nil, "")
	span := s.timeRun("sync") * 3 / 2
	cur := "A"
	counts := map[string]int{}
	for i := range faultIterations {
		next := map[string]string{"A": "B", "B": "A"}[cur]
		if next == "A" {
			s.api.SetIPs(listA4, listA6, nil, "")
		} else {
			s.api.SetIPs(listB4, listB6, nil, "")
		}
		sig := syscall.SIGTERM
		if i%3 == 2 {
			sig = syscall.SIGINT
		}
		at := time.Duration(rng.Int64N(int64(span)))
		r := s.runWith(runOpts{kill: sig, killAfter: at}, "sync")
		_, _, got := s.kernelSets()
		k := which(got)
		c, err := s.cacheList()
		if err != nil {
			t.Fatalf("iteration %d: cache: %v", i, err)
		}
		switch {
		case r.signaled:
			counts["died of the signal"]++
			if k != cur && k != next {
				t.Fatalf("iteration %d: killed by %v before its handler: kernel %s", i, sig, k)
			}
			s.repair(t, i)
		case r.code == 0:
			counts["exit 0"]++
			if k != next || c != next {
				t.Fatalf("iteration %d (%v at %s): exit 0 but the kernel holds %s and the cache %s; want both %s\nstderr: %s", i, sig, at, k, c, next, r.stderr)
			}
		case r.code == 1:
			counts["exit 1"]++
			if k != cur || c != cur {
				t.Fatalf("iteration %d (%v at %s): exit 1 but the kernel holds %s and the cache %s; want both the old %s\nstderr: %s", i, sig, at, k, c, cur, r.stderr)
			}
			wantOneLine(t, fmt.Sprintf("iteration %d", i), r.stderr, "nothing")
			s.repair(t, i)
		default:
			t.Fatalf("iteration %d: exit %d: %s", i, r.code, r.stderr)
		}
		if tmp := s.tempFiles(); r.code == 0 && len(tmp) != 0 {
			t.Fatalf("iteration %d: a finished run left %v", i, tmp)
		}
		cur = next
	}
	t.Logf("outcomes: %v", counts)
}

// TestFaultTerminatedRestore: SIGTERM during restore (kernel B, cache A):
// exit 0 means the kernel holds A, exit 1 that it still holds B.
func TestFaultTerminatedRestore(t *testing.T) {
	s := newSite(t)
	rng := rand.New(rand.NewPCG(8, 4))
	s.api.SetIPs(listA4, listA6, nil, "")
	span := s.timeRun("sync") * 3 / 2
	counts := map[string]int{}
	for i := range faultIterations {
		s.api.SetIPs(listB4, listB6, nil, "")
		s.mustRun(t, "sync")
		s.saveCache(t, listA4, listA6, time.Now())
		at := time.Duration(rng.Int64N(int64(span)))
		r := s.runWith(runOpts{kill: syscall.SIGTERM, killAfter: at}, "restore")
		_, _, got := s.kernelSets()
		k := which(got)
		switch {
		case r.signaled:
			counts["died of the signal"]++
			if k != "A" && k != "B" {
				t.Fatalf("iteration %d: kernel %s", i, k)
			}
		case r.code == 0:
			counts["exit 0"]++
			if k != "A" {
				t.Fatalf("iteration %d (SIGTERM at %s): exit 0 but the kernel holds %s, want A\nstderr: %s", i, at, k, r.stderr)
			}
		case r.code == 1:
			counts["exit 1"]++
			if k != "B" {
				t.Fatalf("iteration %d (SIGTERM at %s): exit 1 but the kernel holds %s, want the old B\nstderr: %s", i, at, k, r.stderr)
			}
			wantOneLine(t, fmt.Sprintf("iteration %d", i), r.stderr, "nothing changed")
		default:
			t.Fatalf("iteration %d: exit %d: %s", i, r.code, r.stderr)
		}
		if c, err := s.cacheList(); err != nil || c != "A" {
			t.Fatalf("iteration %d: restore changed the cache: %q, %v", i, c, err)
		}
	}
	t.Logf("outcomes: %v", counts)
}

func (s *site) mustRun(t *testing.T, args ...string) run {
	t.Helper()
	r := s.runWith(runOpts{}, args...)
	if r.code != 0 {
		t.Fatalf("cfguard %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func (s *site) saveCache(t *testing.T, v4, v6 []string, at time.Time) {
	t.Helper()
	l := cfranges.List{IPv4: pfxs(v4...), IPv6: pfxs(v6...), FetchedAt: at, Source: cfranges.SourceAPI, Etag: "test"}
	if err := cfranges.Save(s.state, l); err != nil {
		t.Fatal(err)
	}
}

// TestFaultFullStateDir: a sync that cannot write its cache refuses before
// it touches the kernel (exit 1, kernel and cache as they were); remove,
// restore and dry runs still work.
func TestFaultFullStateDir(t *testing.T) {
	s := newSite(t)
	s.api.SetIPs(listA4, listA6, nil, "")
	s.mustRun(t, "sync")
	s.api.SetIPs(listB4, listB6, nil, "")
	before := s.ruleset()
	full := t.TempDir() // mount point, private to each run
	out := t.TempDir()  // where the run copies the tmpfs out before it ends
	// A tmpfs of 16 KiB holding a copy of the state, then filled to the brim.
	setup := fmt.Sprintf("mount -t tmpfs -o size=16k,mode=0755 cfguard-full %[1]s\ncp -a %[2]s/. %[1]s/\n(head -c 1048576 /dev/zero > %[1]s/fill) 2>/dev/null || true", full, s.state)
	copyOut := fmt.Sprintf("cp -a %s/. %s/", full, out)
	r := s.runWith(runOpts{setup: setup, after: copyOut, state: full}, "sync")
	if r.code != 1 {
		t.Fatalf("sync on a full disk: exit %d, want 1\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	wantOneLine(t, "sync on a full disk", r.stderr, "no space left on device; nothing changed")
	if got := s.ruleset(); got != before {
		t.Errorf("sync on a full disk changed the ruleset:\n%s", got)
	}
	if c, err := cfranges.Load(out); err != nil || which(merged(c.All())) != "A" {
		t.Errorf("the cache on the full disk: %v, %v; want the old list A", err, c.All())
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, ".ranges.json.tmp-*")); len(tmp) != 0 {
		t.Errorf("a refused sync left %v", tmp)
	}
	for _, args := range [][]string{{"sync", "--dry-run"}, {"restore", "--dry-run"}, {"status"}, {"restore"}, {"remove"}} {
		r := s.runWith(runOpts{setup: setup, state: full}, args...)
		if r.code != 0 {
			t.Errorf("cfguard %v on a full disk: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if present, _, _ := s.kernelSets(); present {
		t.Error("remove on a full disk left the table")
	}
}

// TestFaultReadOnlyStateDir: a read-only state directory, with a lock file
// (flock works on a read-only descriptor) and without one (remove, restore
// and dry runs go on with a warning; sync refuses and changes nothing).
func TestFaultReadOnlyStateDir(t *testing.T) {
	s := newSite(t)
	s.api.SetIPs(listA4, listA6, nil, "")
	s.mustRun(t, "sync")
	s.api.SetIPs(listB4, listB6, nil, "")
	ro := fmt.Sprintf("mount --bind %[1]s %[1]s\nmount -o remount,bind,ro %[1]s", s.state)
	before := s.ruleset()

	r := s.runWith(runOpts{setup: ro}, "sync")
	if r.code != 1 {
		t.Fatalf("sync on a read-only state dir: exit %d\n%s", r.code, r.stderr)
	}
	wantOneLine(t, "sync on a read-only state dir", r.stderr, "read-only file system; nothing changed")
	if s.ruleset() != before {
		t.Error("a refused sync changed the ruleset")
	}
	if r := s.runWith(runOpts{setup: ro}, "sync", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "+ 198.18.0.0/15") || r.stderr != "" {
		t.Errorf("dry run on a read-only state dir: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := s.runWith(runOpts{setup: ro}, "remove"); r.code != 0 || r.stderr != "" {
		t.Errorf("remove on a read-only state dir (lock file present): exit %d, %s", r.code, r.stderr)
	}
	if r := s.runWith(runOpts{setup: ro}, "restore"); r.code != 0 || r.stderr != "" {
		t.Errorf("restore on a read-only state dir: exit %d, %s", r.code, r.stderr)
	}

	// No lock file yet, and none can be made.
	os.Remove(filepath.Join(s.state, "lock"))
	for _, args := range [][]string{{"sync", "--dry-run"}, {"remove"}, {"restore"}} {
		r := s.runWith(runOpts{setup: ro}, args...)
		if r.code != 0 {
			t.Errorf("cfguard %v on a read-only state dir without a lock: exit %d\n%s", args, r.code, r.stderr)
		}
		wantOneLine(t, fmt.Sprint(args), r.stderr, "cfguard: warning: cannot take the lock "+filepath.Join(s.state, "lock")+": read-only file system; going on without it")
	}
	r = s.runWith(runOpts{setup: ro}, "sync")
	if r.code != 1 {
		t.Errorf("sync without a lock: exit %d", r.code)
	}
	wantOneLine(t, "sync without a lock", r.stderr, "read-only file system; nothing changed (sync needs its lock and a writable state directory)")
}

// TestFaultFIFOs: a FIFO where the cache or the lock should be answers at
// once (a plain open would wait for a writer for ever, holding the lock).
func TestFaultFIFOs(t *testing.T) {
	s := newSite(t)
	cache := filepath.Join(s.state, cfranges.CacheFile)
	if err := syscall.Mkfifo(cache, 0o644); err != nil {
		t.Fatal(err)
	}
	fifoSays := cache + " is a FIFO, not a regular file"

	r := s.runWith(runOpts{}, "restore")
	if r.code != 0 || !strings.Contains(r.stdout, "15 IPv4 + 7 IPv6") {
		t.Errorf("restore with a FIFO cache: exit %d, %q; want the built-in list", r.code, r.stdout)
	}
	wantOneLine(t, "restore with a FIFO cache", r.stderr, fifoSays)
	r = s.runWith(runOpts{}, "status")
	if r.code != 1 || !strings.Contains(r.stdout, fifoSays) {
		t.Errorf("status with a FIFO cache: exit %d, %q; want 1 naming the FIFO", r.code, r.stdout)
	}
	r = s.runWith(runOpts{}, "ranges", "--offline")
	if r.code != 0 || len(strings.Fields(r.stdout)) != 22 {
		t.Errorf("ranges --offline with a FIFO cache: exit %d, %q", r.code, r.stdout)
	}
	wantOneLine(t, "ranges --offline with a FIFO cache", r.stderr, fifoSays)
	before := s.ruleset()
	r = s.runWith(runOpts{}, "sync")
	if r.code != 1 || s.ruleset() != before {
		t.Errorf("sync with a FIFO cache: exit %d; want 1 and nothing changed", r.code)
	}
	wantOneLine(t, "sync with a FIFO cache", r.stderr, fifoSays)
	os.Remove(cache)

	lock := filepath.Join(s.state, "lock")
	os.Remove(lock)
	if err := syscall.Mkfifo(lock, 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.runWith(runOpts{}, "sync")
	if r.code != 1 || s.ruleset() != before {
		t.Errorf("sync with a FIFO lock: exit %d; want 1 and nothing changed", r.code)
	}
	wantOneLine(t, "sync with a FIFO lock", r.stderr, lock+" is a FIFO, not a regular file")
	r = s.runWith(runOpts{}, "remove")
	if r.code != 0 || !strings.Contains(r.stdout, "removed table inet cfguard") {
		t.Errorf("remove with a FIFO lock: exit %d, %q", r.code, r.stdout)
	}
	wantOneLine(t, "remove with a FIFO lock", r.stderr, "cfguard: warning: cannot take the lock")
}

// TestFaultStaleTempFiles: the temp files of killed runs are removed by
// the next run that holds the lock.
func TestFaultStaleTempFiles(t *testing.T) {
	s := newSite(t)
	s.mustRun(t, "sync")
	for _, n := range []string{".ranges.json.tmp-111", ".ranges.json.tmp-222"} {
		os.WriteFile(filepath.Join(s.state, n), []byte(`{"format":1,`), 0o644)
	}
	s.mustRun(t, "sync", "--dry-run")
	if n := len(s.tempFiles()); n != 2 {
		t.Errorf("a dry run removed temp files (%d left): it does not write the state dir", n)
	}
	s.mustRun(t, "sync")
	if tmp := s.tempFiles(); len(tmp) != 0 {
		t.Errorf("left after sync: %v", tmp)
	}
}

// TestFaultStatusMaxAge: a last good sync older than --max-age (default 3
// days; CFGUARD_MAX_AGE) is a problem: exit 1, though the kernel protects.
func TestFaultStatusMaxAge(t *testing.T) {
	s := newSite(t)
	s.mustRun(t, "sync")
	s.saveCache(t, cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, time.Now().Add(-4*24*time.Hour))
	r := s.runWith(runOpts{}, "status")
	if r.code != 1 || !strings.Contains(r.stdout, "protected, but by a list that may be out of date") || !strings.Contains(r.stdout, "more than the maximum age 72h0m0s") {
		t.Errorf("status with a 4-day-old sync: exit %d\n%s", r.code, r.stdout)
	}
	if r := s.runWith(runOpts{}, "status", "--json"); r.code != 1 || !strings.Contains(r.stdout, `"stale": true`) || !strings.Contains(r.stdout, `"protected": true`) {
		t.Errorf("status --json: exit %d\n%s", r.code, r.stdout)
	}
	for _, o := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"status", "--max-age", "5d"}},
		{nil, []string{"status", "--max-age", "120h"}},
		{nil, []string{"status", "--max-age", "0"}},
		{[]string{"CFGUARD_MAX_AGE=5d"}, []string{"status"}},
	} {
		if r := s.runWith(runOpts{env: o.env}, o.args...); r.code != 0 {
			t.Errorf("%v %v: exit %d\n%s", o.env, o.args, r.code, r.stdout)
		}
	}
	if r := s.runWith(runOpts{}, "status", "--max-age", "three days"); r.code != 2 {
		t.Errorf("--max-age 'three days': exit %d, want 2", r.code)
	}
	// Dated in the future: its age cannot be told, which is no better.
	s.saveCache(t, cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, time.Now().Add(30*24*time.Hour))
	if r := s.runWith(runOpts{}, "status"); r.code != 1 || !strings.Contains(r.stdout, "in the future") {
		t.Errorf("status with a sync dated in 30 days: exit %d\n%s", r.code, r.stdout)
	}
	s.mustRun(t, "sync")
	s.mustRun(t, "status")
}

// hostile serves handler inside the origin namespace and returns its URL.
func (s *site) hostile(t *testing.T, h http.Handler, useTLS bool) (url string, certFile string) {
	t.Helper()
	var ln net.Listener
	if err := s.origin.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	if useTLS {
		certPEM, cert := selfSignedCert(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		certFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), certFile
}

// TestFaultHostileAPI: answers built to widen, stall or redirect are
// refused with one line, and the kernel and the cache stay as they were.
func TestFaultHostileAPI(t *testing.T) {
	s := newSite(t)
	s.mustRun(t, "sync")
	before := s.ruleset()
	cache, _ := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile))
	unchanged := func(what string) {
		t.Helper()
		if s.ruleset() != before {
			t.Errorf("%s changed the ruleset", what)
		}
		if got, _ := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile)); string(got) != string(cache) {
			t.Errorf("%s changed the cache", what)
		}
	}
	sixteen := slices.Clone(cfapitest.DefaultIPv4)
	scattered := slices.Clone(cfapitest.DefaultIPv4)
	for i := range 16 {
		sixteen = append(sixteen, fmt.Sprintf("%d.0.0.0/8", 11+i))
		scattered = append(scattered, fmt.Sprintf("%d.0.0.0/8", 130+2*i))
	}

	t.Run("sixteen contiguous /8s", func(t *testing.T) {
		s.api.SetIPs(sixteen, cfapitest.DefaultIPv6, nil, "")
		for _, args := range [][]string{{"sync"}, {"sync", "--force"}} {
			r := s.runWith(runOpts{}, args...)
			if r.code != 1 {
				t.Errorf("%v: exit %d", args, r.code)
			}
			wantOneLine(t, fmt.Sprint(args), r.stderr, "the ranges of the answer together cover 11.0.0.0-26.255.255.255 (268435456 addresses), more than one /8")
		}
		unchanged("sixteen /8s")
	})
	t.Run("sixteen scattered /8s", func(t *testing.T) {
		s.api.SetIPs(scattered, cfapitest.DefaultIPv6, nil, "")
		r := s.runWith(runOpts{}, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "scattered", r.stderr, "the new list covers 268435968 IPv4 addresses, more than 4 times the 1524736 of the built-in list (larger than what is installed)")
		if !strings.Contains(r.stderr, "run `cfguard sync --force`") {
			t.Errorf("no hint at --force: %s", r.stderr)
		}
		unchanged("scattered /8s")
		if r := s.runWith(runOpts{}, "sync", "--dry-run", "--force"); r.code != 0 || !strings.Contains(r.stdout, "+ 130.0.0.0/8") {
			t.Errorf("--dry-run --force: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		unchanged("a dry run")
	})
	t.Run("allow halves of the Internet", func(t *testing.T) {
		s.api.SetIPs(cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, nil, "")
		r := s.runWith(runOpts{}, "sync", "--allow", "0.0.0.0/1", "--allow", "128.0.0.0/1")
		if r.code != 2 {
			t.Errorf("exit %d, want 2", r.code)
		}
		wantOneLine(t, "allow halves", r.stderr, "the --allow sources together cover every address (0.0.0.0-255.255.255.255)")
		r = s.runWith(runOpts{}, "restore", "--allow", "::/1,8000::/1")
		if r.code != 2 {
			t.Errorf("restore: exit %d, want 2", r.code)
		}
		// 197.128.0.0-198.128.255.255 without Cloudflare's 198.51.100.0/24:
		// two ranges of less than a /8 each, one of more than a /8 with
		// Cloudflare's. Refused by the merged check of the whole set.
		var b netipx.IPSetBuilder
		b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr("197.128.0.0"), netip.MustParseAddr("198.128.255.255")))
		b.RemovePrefix(netip.MustParsePrefix("198.51.100.0/24"))
		set, _ := b.IPSet()
		var allow []string
		for _, p := range set.Prefixes() {
			allow = append(allow, p.String())
		}
		r = s.runWith(runOpts{}, "sync", "--allow", strings.Join(allow, ","))
		if r.code != 1 {
			t.Errorf("allow next to Cloudflare: exit %d, want 1", r.code)
		}
		wantOneLine(t, "allow next to Cloudflare", r.stderr, "Cloudflare's ranges and --allow together cover")
		unchanged("--allow halves")
	})
	t.Run("slow drip", func(t *testing.T) {
		var served atomic.Int64
		url, _ := s.hostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for { // JSON allows any amount of leading white space
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				served.Add(1)
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "drip", r.stderr, "gave up after 30s without a complete answer")
		unchanged("the drip")
		r = s.runWith(runOpts{}, "--api-url", url, "ranges")
		if r.code != 0 || !strings.Contains(r.stderr, "gave up after 5s") || !strings.Contains(r.stderr, "cached by the sync") {
			t.Errorf("ranges against the drip: exit %d, %s", r.code, r.stderr)
		}
	})
	t.Run("endless body", func(t *testing.T) {
		var sent atomic.Int64
		url, _ := s.hostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"success":true,"result":{"ipv4_cidrs":["`))
			chunk := []byte(strings.Repeat("1", 64<<10))
			for sent.Load() < 1<<30 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				sent.Add(int64(len(chunk)))
			}
		}), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 || sent.Load() >= 1<<30 {
			t.Errorf("exit %d after %d bytes sent", r.code, sent.Load())
		}
		wantOneLine(t, "endless body", r.stderr, "the answer is larger than 1048576 bytes")
		unchanged("the endless body")
	})
	t.Run("redirect to another host", func(t *testing.T) {
		before := s.api.Requests["/ips"]
		url, _ := s.hostile(t, http.RedirectHandler(s.api.URL+"/ips", http.StatusFound), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "redirect", r.stderr, "the API redirected to "+s.api.URL+"/ips, another host; not followed")
		if n := s.api.Requests["/ips"]; n != before {
			t.Errorf("the redirect was followed")
		}
		unchanged("the redirect")
	})
	t.Run("redirect from https to http", func(t *testing.T) {
		mux := http.NewServeMux()
		url, ca := s.hostile(t, mux, true)
		plain := strings.Replace(url, "https://", "http://", 1)
		mux.Handle("/", http.RedirectHandler(plain+"/ips", http.StatusFound))
		r := s.runWith(runOpts{env: []string{"SSL_CERT_FILE=" + ca}}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "downgrade", r.stderr, "from https to plain http; not followed")
		unchanged("the downgrade")
	})
}

// selfSignedCert makes a CA certificate for 127.0.0.1 that the binary is
// told to trust with SSL_CERT_FILE.
func selfSignedCert(t *testing.T) (certPEM []byte, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cfguard fault test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestFaultStatusWideOpenTable: a table that lets everyone in (written by
// an older cfguard that took --allow 0.0.0.0/1 --allow 128.0.0.0/1, or by
// hand) is not "protected", whatever its shape.
func TestFaultStatusWideOpenTable(t *testing.T) {
	s := newSite(t)
	s.mustRun(t, "sync")
	fw, err := firewall.New(firewall.Config{Table: defaultTable, Ports: []uint16{80, 443}, NetNSFd: s.origin.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := fw.Apply(ctx, firewall.Want{Cloudflare: pfxs("198.51.100.0/24", "2001:db8:cf::/48"), Allow: pfxs("0.0.0.0/1", "128.0.0.0/1")}); err != nil {
		t.Fatal(err)
	}
	if !s.reaches(strangerV4, originV4, 443) {
		t.Fatal("setup: the wide-open table does not let the stranger in")
	}
	r := s.runWith(runOpts{}, "status")
	if r.code != 1 || !strings.Contains(r.stdout, "NOT protected") || !strings.Contains(r.stdout, "together cover every address (0.0.0.0-255.255.255.255)") {
		t.Errorf("status of a wide-open table: exit %d\n%s", r.code, r.stdout)
	}
	t.Logf("status:\n%s", r.stdout)
}
