package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildCommit(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	vcs := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	for _, c := range []struct {
		name, stamped string
		bi            *debug.BuildInfo
		want          string
	}{
		{"stamp wins", "abc1234", vcs("vcs.revision", rev), "abc1234"},
		{"vcs fallback", "", vcs("vcs", "git", "vcs.revision", rev, "vcs.modified", "false"), "0123456789ab"},
		{"vcs dirty", "", vcs("vcs.revision", rev, "vcs.modified", "true"), "0123456789ab-dirty"},
		{"short revision kept", "", vcs("vcs.revision", "abc"), "abc"},
		{"no vcs stamp", "", vcs("-buildmode", "exe"), "unknown"},
		{"no build info", "", nil, "unknown"},
	} {
		if got := buildCommit(c.stamped, c.bi); got != c.want {
			t.Errorf("%s: buildCommit = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVersionShowsCommit builds the binary the two ways people do: with the
// Makefile's -X stamps, and with a plain `go build` in a git checkout, where
// the commit comes from Go's own VCS stamp. Both `version` and `--version`
// must name it.
func TestVersionShowsCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: builds the binary twice")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go tool in PATH")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("skipped: not in a git checkout")
	}
	dir := t.TempDir()
	// Go stamps vcs.revision only where .git is a directory; a git worktree
	// (.git is a file) gets no stamp, so build a fresh clone of HEAD there,
	// as CI's checkout is.
	src := strings.TrimSpace(string(top))
	if fi, err := os.Stat(filepath.Join(src, ".git")); err != nil || !fi.IsDir() {
		clone := filepath.Join(dir, "src")
		if b, err := exec.Command("git", "clone", "-q", "--shared", src, clone).CombinedOutput(); err != nil {
			t.Fatalf("git clone: %v\n%s", err, b)
		}
		src = clone
	}
	git := func(args ...string) string {
		b, err := exec.Command("git", append([]string{"-C", src}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(b))
	}
	want := git("rev-parse", "HEAD")[:12]
	if git("status", "--porcelain") != "" { // as Go decides vcs.modified
		want += "-dirty"
	}
	build := func(name string, args ...string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command(goBin, append(append([]string{"build", "-o", out}, args...), "./cmd/cfguard")...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, b)
		}
		return out
	}
	run := func(bin string, args ...string) string {
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"stamped", []string{"-buildvcs=false", "-ldflags", "-X main.version=9.8.7 -X main.commit=feedc0ffee12"}, `^cfguard 9\.8\.7 \(commit feedc0ffee12, go`},
		{"plain", []string{"-buildvcs=true"}, `^cfguard dev \(commit ` + regexp.QuoteMeta(want) + `, go`},
		{"no vcs", []string{"-buildvcs=false"}, `^cfguard dev \(commit unknown, go`},
	} {
		bin := build(c.name, c.args...)
		for _, arg := range []string{"version", "--version"} {
			if got := run(bin, arg); !regexp.MustCompile(c.want).MatchString(got) {
				t.Errorf("%s build: cfguard %s = %q, want match %s", c.name, arg, got, c.want)
			}
		}
	}
}
