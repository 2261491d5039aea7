package main

// Fault injection, the state directory side: full, read-only, a FIFO in
// place of the cache or the lock, stale temp files, an old last sync, a
// table that lets everyone in. See fault_test.go for the harness.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/firewall"
	"github.com/cfguard/cfguard/internal/cfapitest"
)

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
