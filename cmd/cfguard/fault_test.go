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
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/firewall"
)

// faultRunTimeout bounds one run of the binary in these tests. A run that
// reaches it has hung (the FIFO cases); the slowest legitimate run is the
// drip, which sync gives up on after cfranges.FetchTimeout.
const faultRunTimeout = cfranges.FetchTimeout + 30*time.Second

// faultIterations is how many runs each kill loop interrupts.
const faultIterations = 30

// binRun is one finished run of the binary.
type binRun struct {
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

func (s *site) runWith(o runOpts, args ...string) binRun {
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
	r := binRun{stdout: out.String(), stderr: errb.String()}
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

// wantOneLine checks that stderr is exactly one "cfguard: " line containing want.
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

func (s *site) mustRun(t *testing.T, args ...string) binRun {
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
