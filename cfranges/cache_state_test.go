package cfranges

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/statefile"
)

// TestLoadRefusesNonRegular: whatever sits in place of the cache, Load
// answers at once (a FIFO with no writer would block a plain open or read
// for ever) with one line naming what it is.
func TestLoadRefusesNonRegular(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(path string) error
		what string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "a FIFO"},
		{"symlink", func(p string) error { return os.Symlink("/etc/hostname", p) }, "a symbolic link"},
		{"dangling symlink", func(p string) error { return os.Symlink("/nonexistent", p) }, "a symbolic link"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "a directory"},
		{"char device", func(p string) error { return os.Symlink("/dev/zero", p) }, "a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CacheFile)
			if err := c.make(path); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir)
			if !errors.Is(err, ErrCorruptCache) || !errors.Is(err, statefile.ErrNotRegular) {
				t.Fatalf("Load = %v, want ErrCorruptCache and ErrNotRegular", err)
			}
			want := "cache " + path + " is " + c.what + ", not a regular file (remove it)"
			if diff := cmp.Diff(want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(List{}, got, cmpPrefix); diff != "" {
				t.Errorf("partly filled List:\n%s", diff)
			}
			// Save refuses to replace it, before writing anything.
			if err := Save(dir, sampleList()); !errors.Is(err, statefile.ErrNotRegular) {
				t.Errorf("Save over %s = %v, want ErrNotRegular", c.what, err)
			}
			if names := tempFiles(t, dir); len(names) != 0 {
				t.Errorf("a refused Save left %v", names)
			}
		})
	}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPrepareCommitDiscard(t *testing.T) {
	dir := t.TempDir()
	old := Builtin()
	if err := Save(dir, old); err != nil {
		t.Fatal(err)
	}
	// Prepared, not committed: the cache is still the old one, the new one
	// is complete on disk in a temp file.
	p, err := Prepare(dir, sampleList())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Load(dir); len(got.IPv4) != len(old.IPv4) {
		t.Errorf("Prepare changed the cache: %v", got.IPv4)
	}
	if n := len(tempFiles(t, dir)); n != 1 {
		t.Fatalf("%d temp files after Prepare, want 1", n)
	}
	p.Discard()
	p.Discard()
	if n := len(tempFiles(t, dir)); n != 0 {
		t.Errorf("%d temp files after Discard", n)
	}
	if err := p.Commit(); err != nil {
		t.Errorf("Commit after Discard: %v, want a no-op", err)
	}
	if got, _ := Load(dir); len(got.IPv4) != len(old.IPv4) {
		t.Errorf("Commit after Discard changed the cache")
	}
	p, err = Prepare(dir, sampleList())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	p.Discard() // no-op after Commit
	if got, err := Load(dir); err != nil || got.Etag != sampleList().Etag {
		t.Errorf("after Commit: %v %q", err, got.Etag)
	}
	if n := len(tempFiles(t, dir)); n != 0 {
		t.Errorf("%d temp files after Commit", n)
	}
}

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, sampleList()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".ranges.json.tmp-1", ".ranges.json.tmp-2"} {
		os.WriteFile(filepath.Join(dir, n), []byte(`{"format":1,"ipv4`), 0o644)
	}
	// Not ours, or not a regular file: left alone.
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, ".ranges.json.tmp-dir"), 0o755)
	n, err := CleanStale(dir)
	if err != nil || n != 2 {
		t.Errorf("CleanStale = %d, %v; want 2, nil", n, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{".ranges.json.tmp-dir", "notes.txt", CacheFile}, names); diff != "" {
		t.Errorf("left in the state dir (-want +got):\n%s", diff)
	}
	if _, err := Load(dir); err != nil {
		t.Errorf("the cache itself: %v", err)
	}
}

func TestLoadRefusesMergedWidening(t *testing.T) {
	dir := t.TempDir()
	body := `{"format":1,"ipv4_cidrs":["11.0.0.0/8","12.0.0.0/8"],"ipv6_cidrs":["2001:db8:cf::/48"]}`
	os.WriteFile(filepath.Join(dir, CacheFile), []byte(body), 0o644)
	_, err := Load(dir)
	if !errors.Is(err, ErrCorruptCache) || !errors.Is(err, ErrTooBroad) || !strings.Contains(err.Error(), "the cached ranges together cover 11.0.0.0-12.255.255.255") {
		t.Errorf("Load = %v", err)
	}
}
