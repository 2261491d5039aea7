package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUnitFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "systemd")
	os.Mkdir(dir, 0o755)
	for _, u := range []string{"cfguard-sync.service", "cfguard-restore.service", "cfguard-sync.timer", "cfguard-watch.service", "cfguard.default", "other.service"} {
		os.WriteFile(filepath.Join(dir, u), nil, 0o644)
	}
	got, err := unitFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cfguard-sync.timer", "cfguard-restore.service", "cfguard-sync.service", "cfguard-watch.service"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unitFiles (-want +got):\n%s", diff)
	}
	os.Remove(filepath.Join(dir, "cfguard-restore.service"))
	if _, err := unitFiles(root); err == nil || !strings.Contains(err.Error(), "cfguard-restore.service is missing") {
		t.Errorf("a missing unit to enable: err = %v", err)
	}
}

func TestUnlicensed(t *testing.T) {
	bi := &buildinfo.BuildInfo{Deps: []*debug.Module{{Path: "github.com/a/b"}, {Path: "github.com/a/bc"}, {Path: "golang.org/x/sys"}}}
	copyright := "Files: vendor/github.com/a/b/*\n vendor/golang.org/x/sys/*\n"
	if diff := cmp.Diff([]string{"github.com/a/bc"}, unlicensed(bi, copyright)); diff != "" {
		t.Errorf("unlicensed (-want +got):\n%s", diff)
	}
}

func TestDebArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "wasm": ""} {
		bi := &buildinfo.BuildInfo{Settings: []debug.BuildSetting{{Key: "GOARCH", Value: goarch}}}
		got, err := debArch(bi)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("debArch(%s) = %q, %v; want %q", goarch, got, err, want)
		}
	}
}

// TestGzipMax: the header says best compression (XFL 2) and carries no
// name and no time, as `gzip -9n` writes it and lintian wants.
func TestGzipMax(t *testing.T) {
	b, err := gzipMax([]byte(strings.Repeat("cfguard ", 100)))
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x1f || b[1] != 0x8b || b[3]&0x08 != 0 || string(b[4:8]) != "\x00\x00\x00\x00" || b[8] != 2 {
		t.Errorf("gzip header % x: want magic, no FNAME, MTIME 0, XFL 2", b[:10])
	}
}

func TestChangelog(t *testing.T) {
	got := string(changelog("1.2.3", "A <a@example.org>", time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC)))
	want := "cfguard (1.2.3) unstable; urgency=medium\n\n" +
		"  * Built from the cfguard source tree; see the git history for changes.\n\n" +
		" -- A <a@example.org>  Tue, 02 Dec 2025 00:00:00 +0000\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changelog (-want +got):\n%s", diff)
	}
}
