package main

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

type options struct {
	root, bin, version, out, maintainer string
}

// enabled are the units postinst enables and starts; every other unit in
// systemd/ (cfguard-watch.service) is installed and left for the
// administrator to enable.
var enabled = []string{"cfguard-restore.service", "cfguard-sync.timer"}

const description = `keep an origin reachable from Cloudflare only, explain every 52x
 cfguard keeps Cloudflare's published IP ranges in its own nftables table so
 that the web ports of an origin behind Cloudflare's proxy answer Cloudflare
 and nobody else (cfguard sync, run by a timer; cfguard restore at boot,
 with no network). It never locks Cloudflare or the administrator out: a bad
 answer changes nothing. cfguard verify reports every path from Cloudflare's
 edge to this origin that would end in a 52x, with its cause and fix.`

// build stages the generated files, assembles the package and writes it to
// o.out, returning its path.
func build(o options) (string, error) {
	bi, err := buildinfo.ReadFile(o.bin)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", o.bin, err)
	}
	arch, err := debArch(bi)
	if err != nil {
		return "", err
	}
	copyright, err := os.ReadFile(filepath.Join(o.root, "packaging/deb/copyright"))
	if err != nil {
		return "", err
	}
	if missing := unlicensed(bi, string(copyright)); len(missing) > 0 {
		return "", fmt.Errorf("packaging/deb/copyright has no stanza for %s, which the binary links: add `Files: vendor/<module>/*`", strings.Join(missing, ", "))
	}
	epoch, err := sourceDate(o.root)
	if err != nil {
		return "", err
	}
	version := o.version
	if version == "" {
		if version, err = gitVersion(o.root); err != nil {
			return "", err
		}
	} else if !debianVersion.MatchString(version) {
		return "", fmt.Errorf("-version %q is not a native Debian version", version)
	}

	stage, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	put := func(name string, b []byte) (string, error) {
		p := filepath.Join(stage, name)
		return p, os.WriteFile(p, b, 0o644)
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(o.bin, args...)
		// A clean environment: the page shows defaults, not this shell's.
		cmd.Env = []string{"PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch.Unix(), 10), "NO_COLOR=1"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("cfguard %s: %v %s (the binary must run on this machine)", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}

	var contents files.Contents
	add := func(src, dst, typ string, mode os.FileMode) {
		contents = append(contents, &files.Content{Source: src, Destination: dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Mode: mode, MTime: epoch, Owner: "root", Group: "root"}})
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return "", err
	}
	add(bin, "/usr/bin/cfguard", "", 0o755)

	for _, c := range []struct{ shell, dst string }{
		{"bash", "/usr/share/bash-completion/completions/cfguard"},
		{"zsh", "/usr/share/zsh/vendor-completions/_cfguard"},
		{"fish", "/usr/share/fish/vendor_completions.d/cfguard.fish"},
	} {
		b, err := run("completion", c.shell)
		if err != nil {
			return "", err
		}
		p, err := put("completion."+c.shell, b)
		if err != nil {
			return "", err
		}
		add(p, c.dst, "", 0o644)
	}
	page, err := run("man")
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(page, []byte(".TH ")) {
		return "", fmt.Errorf("cfguard man printed no man page (%.40q)", page)
	}
	for _, f := range []struct {
		name, dst string
		body      []byte
	}{
		{"cfguard.1.gz", "/usr/share/man/man1/cfguard.1.gz", page},
		{"changelog.gz", "/usr/share/doc/cfguard/changelog.gz", changelog(version, o.maintainer, epoch)},
	} {
		gz, err := gzipMax(f.body)
		if err != nil {
			return "", err
		}
		p, err := put(f.name, gz)
		if err != nil {
			return "", err
		}
		add(p, f.dst, "", 0o644)
	}
	add(filepath.Join(o.root, "packaging/deb/copyright"), "/usr/share/doc/cfguard/copyright", "", 0o644)
	add(filepath.Join(o.root, "packaging/deb/lintian-overrides"), "/usr/share/lintian/overrides/cfguard", "", 0o644)
	add(filepath.Join(o.root, "systemd/cfguard.default"), "/etc/default/cfguard", files.TypeConfig, 0o644)

	units, err := unitFiles(o.root)
	if err != nil {
		return "", err
	}
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(o.root, "systemd", u))
		if err != nil {
			return "", err
		}
		p, err := put(u, bytes.ReplaceAll(b, []byte("@BINDIR@"), []byte("/usr/bin")))
		if err != nil {
			return "", err
		}
		add(p, "/lib/systemd/system/"+u, "", 0o644)
	}
	scripts := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		b, err := os.ReadFile(filepath.Join(o.root, "packaging/deb", s))
		if err != nil {
			return "", err
		}
		body := strings.NewReplacer("@ENABLE@", strings.Join(enabled, " "), "@UNITS@", strings.Join(units, " ")).Replace(string(b))
		if scripts[s], err = put(s, []byte(body)); err != nil {
			return "", err
		}
		if err := os.Chmod(scripts[s], 0o755); err != nil {
			return "", err
		}
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "cfguard",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Description:   description,
		License:       "Apache-2.0",
		MTime:         epoch,
		Overridables: nfpm.Overridables{
			Depends:    []string{"init-system-helpers (>= 1.54)"},
			Recommends: []string{"nftables"},
			Contents:   contents,
			Umask:      0o022,
			Scripts:    nfpm.Scripts{PostInstall: scripts["postinst"], PreRemove: scripts["prerm"], PostRemove: scripts["postrm"]},
		},
	})
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, fmt.Sprintf("cfguard_%s_%s.deb", version, arch))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("building the package: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// unitFiles is every cfguard unit in systemd/, timers first so that prerm
// stops a timer before the service it starts.
func unitFiles(root string) ([]string, error) {
	var units []string
	for _, pat := range []string{"cfguard-*.timer", "cfguard-*.service"} {
		m, err := filepath.Glob(filepath.Join(root, "systemd", pat))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		for _, p := range m {
			units = append(units, filepath.Base(p))
		}
	}
	for _, want := range enabled {
		found := false
		for _, u := range units {
			found = found || u == want
		}
		if !found {
			return nil, fmt.Errorf("systemd/%s is missing", want)
		}
	}
	return units, nil
}

// debArch maps the binary's GOARCH to Debian's name for it.
func debArch(bi *buildinfo.BuildInfo) (string, error) {
	goarch := ""
	for _, s := range bi.Settings {
		if s.Key == "GOARCH" {
			goarch = s.Value
		}
	}
	m := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "ppc64le": "ppc64el", "riscv64": "riscv64", "s390x": "s390x"}
	if a, ok := m[goarch]; ok {
		return a, nil
	}
	return "", fmt.Errorf("the binary's GOARCH %q has no Debian architecture here", goarch)
}

// unlicensed lists modules linked into the binary that the copyright file
// has no `vendor/<module>/*` stanza for.
func unlicensed(bi *buildinfo.BuildInfo, copyright string) []string {
	var out []string
	for _, d := range bi.Deps {
		if !strings.Contains(copyright, "vendor/"+d.Path+"/*") {
			out = append(out, d.Path)
		}
	}
	return out
}

// sourceDate is SOURCE_DATE_EPOCH, else the time of HEAD's commit, so that
// two builds of one commit give the same package.
func sourceDate(root string) (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH and no git commit time in %s: %v", root, err)
		}
		s = strings.TrimSpace(string(out))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func gitVersion(root string) (string, error) {
	desc, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "", fmt.Errorf("git describe in %s: %v (pass -version)", root, err)
	}
	count, err := exec.Command("git", "-C", root, "rev-list", "--count", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-list --count: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(count)))
	return debVersion(string(desc), n)
}

// changelog is the one-entry Debian changelog of a native package built
// from a commit.
func changelog(version, maintainer string, date time.Time) []byte {
	return []byte(fmt.Sprintf("cfguard (%s) unstable; urgency=medium\n\n  * Built from the cfguard source tree; see the git history for changes.\n\n -- %s  %s\n",
		version, maintainer, date.Format(time.RFC1123Z)))
}

// gzipMax compresses as `gzip -9n` does: best compression, no name or time
// in the header (lintian checks both).
func gzipMax(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
