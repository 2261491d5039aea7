package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sourceDate makes every build of the test package byte-for-byte the same.
const sourceDate = "1764633600" // 2025-12-02

// debs are the packages the tests build once: two versions, so that an
// upgrade can be tried, and the first version built twice to check that a
// build is reproducible.
type debs struct {
	v1, v1again, v2 string
}

// workDir holds what buildDebs built, for every test of the package.
var (
	workDir string
	built   *debs
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// buildDebs builds cfguard as `make deb` does (static PIE) at two versions
// and packages each with mkdeb, once for all tests. It skips without the go
// tool or dpkg-deb.
func buildDebs(t *testing.T) debs {
	t.Helper()
	if built != nil {
		return *built
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go tool in PATH")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("skipped: dpkg-deb is not installed (package dpkg)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	if workDir, err = os.MkdirTemp("", "cfguard-packaging-"); err != nil {
		t.Fatal(err)
	}
	dir := workDir
	run := func(cmdDir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = cmdDir
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	mkdeb := filepath.Join(dir, "mkdeb")
	run(filepath.Join(root, "internal/cmd/mkdeb"), nil, goBin, "build", "-o", mkdeb, ".")
	var d debs
	for _, b := range []struct {
		version string
		out     *string
		sub     string
	}{{"1.0.0", &d.v1, "a"}, {"1.0.0", &d.v1again, "b"}, {"1.0.1", &d.v2, "c"}} {
		bin := filepath.Join(dir, b.sub, "cfguard")
		run(root, []string{"CGO_ENABLED=0"}, goBin, "build", "-buildmode=pie", "-trimpath",
			"-ldflags", "-s -w -X main.version="+b.version+" -X main.commit=0123456789ab", "-o", bin, "./cmd/cfguard")
		*b.out = run(root, []string{"SOURCE_DATE_EPOCH=" + sourceDate}, mkdeb,
			"-root", root, "-bin", bin, "-version", b.version, "-out", filepath.Join(dir, b.sub))
	}
	built = &d
	return d
}

// TestPackageContents checks the package as dpkg-deb sees it: the files and
// their modes, the conffile, the maintainer scripts with the unit lists
// filled in, the generated man page and completions, and that two builds of
// one version are identical. Then lintian, when installed, must report no
// error.
func TestPackageContents(t *testing.T) {
	d := buildDebs(t)
	listing := dpkgDeb(t, "-c", d.v1)
	mode := map[string]string{}
	for _, l := range strings.Split(listing, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 {
			mode[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
		}
	}
	want := map[string]string{
		"/usr/bin/cfguard":                                  "-rwxr-xr-x root/root",
		"/etc/default/cfguard":                              "-rw-r--r-- root/root",
		"/lib/systemd/system/cfguard-sync.service":          "-rw-r--r-- root/root",
		"/lib/systemd/system/cfguard-sync.timer":            "-rw-r--r-- root/root",
		"/lib/systemd/system/cfguard-restore.service":       "-rw-r--r-- root/root",
		"/usr/share/man/man1/cfguard.1.gz":                  "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/cfguard":    "-rw-r--r-- root/root",
		"/usr/share/zsh/vendor-completions/_cfguard":        "-rw-r--r-- root/root",
		"/usr/share/fish/vendor_completions.d/cfguard.fish": "-rw-r--r-- root/root",
		"/usr/share/doc/cfguard/copyright":                  "-rw-r--r-- root/root",
		"/usr/share/doc/cfguard/changelog.gz":               "-rw-r--r-- root/root",
		"/usr/share/lintian/overrides/cfguard":              "-rw-r--r-- root/root",
	}
	if _, err := os.Stat("../systemd/cfguard-watch.service"); err == nil {
		want["/lib/systemd/system/cfguard-watch.service"] = "-rw-r--r-- root/root"
	}
	for p, m := range want {
		if mode[p] != m {
			t.Errorf("%s: %q in the package, want %q", p, mode[p], m)
		}
	}
	for p := range mode {
		if strings.HasPrefix(p, "/etc/cfguard") || strings.HasPrefix(p, "/var/") {
			t.Errorf("%s is in the package: the token and the state are made on the host, never shipped", p)
		}
	}
	if got := dpkgDeb(t, "-f", d.v1, "Version"); got != "1.0.0" {
		t.Errorf("Version = %q", got)
	}
	ctl := t.TempDir()
	dpkgDeb(t, "-e", d.v1, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/default/cfguard\n" {
		t.Errorf("conffiles = %q, want only /etc/default/cfguard", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		b, err := os.ReadFile(filepath.Join(ctl, s))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("@")) {
			t.Errorf("%s has an unfilled placeholder:\n%s", s, b)
		}
		if out, err := exec.Command("sh", "-n", filepath.Join(ctl, s)).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "postinst")); !bytes.Contains(b, []byte(`ENABLE="cfguard-restore.service cfguard-sync.timer"`)) {
		t.Errorf("postinst enables the wrong units:\n%s", b)
	}
	data := t.TempDir()
	dpkgDeb(t, "-x", d.v1, data)
	page := gunzip(t, filepath.Join(data, "usr/share/man/man1/cfguard.1.gz"))
	if !strings.HasPrefix(page, `.TH "CFGUARD" 1 "2025-12-02" "cfguard 1.0.0"`) {
		t.Errorf("man page starts %.60q", page)
	}
	for _, c := range []struct{ file, want string }{
		{"usr/share/bash-completion/completions/cfguard", "complete "},
		{"usr/share/zsh/vendor-completions/_cfguard", "#compdef cfguard"},
		{"usr/share/fish/vendor_completions.d/cfguard.fish", "complete -c cfguard"},
	} {
		if b, _ := os.ReadFile(filepath.Join(data, c.file)); !bytes.Contains(b, []byte(c.want)) {
			t.Errorf("%s lacks %q:\n%.300s", c.file, c.want, b)
		}
	}
	if cl := gunzip(t, filepath.Join(data, "usr/share/doc/cfguard/changelog.gz")); !strings.HasPrefix(cl, "cfguard (1.0.0) unstable; urgency=medium\n") {
		t.Errorf("changelog: %q", cl)
	}
	a, _ := os.ReadFile(d.v1)
	b, _ := os.ReadFile(d.v1again)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of 1.0.0 differ (%d and %d bytes): the build is not reproducible", len(a), len(b))
	}

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian is not installed; not run")
		return
	}
	out, _ := exec.Command("lintian", "--allow-root", "-I", "-E", "--pedantic", "--tag-display-limit", "0", d.v1).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("gzip", "-dc", path).Output()
	if err != nil {
		t.Fatalf("gzip -dc %s: %v", path, err)
	}
	return string(out)
}

// TestMkdebModule runs go vet and the tests of internal/cmd/mkdeb, a module
// of its own that `go test ./...` at the root does not reach.
func TestMkdebModule(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go tool in PATH")
	}
	for _, args := range [][]string{{"vet", "./..."}, {"test", "-count=1", "./..."}, {"mod", "tidy", "-diff"}} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = "../internal/cmd/mkdeb"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %s in internal/cmd/mkdeb: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
