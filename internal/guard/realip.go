package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/cfranges/realip"
)

// maxRealIPBytes caps what is read of an existing real-IP file; a rendered
// one is a few KiB.
const maxRealIPBytes = 1 << 20

// RealIP names the web servers' trusted-proxy files that sync writes from
// the same validated list it puts in the firewall (Cloudflare's ranges, not
// the --allow extras). The zero value writes none.
type RealIP struct {
	Nginx  string    // file for nginx's set_real_ip_from / real_ip_header; "" = none
	Apache string    // file for Apache's RemoteIPHeader / RemoteIPTrustedProxy; "" = none
	Web    WebServer // tests and reloads the web server; nil = ExecWeb for this host
	Now    func() time.Time
}

// pendingPrefix names the marker, in the state directory, of a real-IP
// file whose reload failed: the next sync reloads even though the file is
// up to date.
const pendingPrefix = "realip-reload-pending."

func (r RealIP) files(stateDir string) []realIPTarget {
	var out []realIPTarget
	for _, f := range []struct {
		kind realip.Kind
		path string
	}{{realip.Nginx, r.Nginx}, {realip.Apache, r.Apache}} {
		if f.path == "" {
			continue
		}
		t := realIPTarget{kind: f.kind, path: f.path}
		if stateDir != "" {
			t.pending = filepath.Join(stateDir, pendingPrefix+string(f.kind))
		}
		out = append(out, t)
	}
	return out
}

type realIPTarget struct {
	kind    realip.Kind
	path    string
	pending string // marker of a failed reload; "" = none kept
}

// WebServer is the seam over the web server: the configuration test
// (nginx -t, apachectl configtest) and the graceful reload. An error names
// what the web server said, on one line.
type WebServer interface {
	Test(ctx context.Context, kind realip.Kind) error
	Reload(ctx context.Context, kind realip.Kind) error
}

// RealIPFile says what sync did (or, with DryRun, would do) to one file.
type RealIPFile struct {
	Server   realip.Kind `json:"server"`
	Path     string      `json:"path"`
	Changed  bool        `json:"changed"`  // written and reloaded (dry run: would be)
	Created  bool        `json:"created"`  // there was no file before
	Reloaded bool        `json:"reloaded"` // the web server was reloaded
	Retried  bool        `json:"retried"`  // up to date, but the last reload had failed: reloaded now (dry run: would be)
}

// Line is what a person reads, e.g. "nginx real-IP file /etc/nginx/conf.d/cloudflare.conf
// updated; nginx reloaded".
func (f RealIPFile) Line(dryRun bool) string {
	s := fmt.Sprintf("%s real-IP file %s", f.Server.Name(), f.Path)
	switch {
	case f.Retried && dryRun:
		return s + " already up to date, but " + f.Server.Name() + " would be reloaded (the last reload failed)"
	case f.Retried:
		return s + " already up to date; " + f.Server.Name() + " reloaded (the last reload had failed)"
	case !f.Changed:
		return s + " already up to date"
	case dryRun && f.Created:
		return s + " would be created (nothing was changed)"
	case dryRun:
		return s + " would change (nothing was changed)"
	case f.Created:
		s += " created"
	default:
		s += " updated"
	}
	if f.Reloaded {
		s += "; " + f.Server.Name() + " reloaded"
	}
	return s
}

// RealIPError is a real-IP step that failed after the firewall step
// succeeded. RolledBack: the previous file (or none) is back on disk.
type RealIPError struct {
	Server     realip.Kind
	Path       string
	Step       string // "refused", "write", "test", "reload"
	RolledBack bool
	Created    bool // there was no previous file: rolling back removes the new one
	DryRun     bool
	Err        error
}

func (e *RealIPError) Error() string {
	name := e.Server.Name()
	head := "the firewall was updated, but "
	if e.DryRun {
		head = "dry run: "
	}
	var what string
	switch e.Step {
	case "test":
		what = fmt.Sprintf("%s%s rejected the new real-IP file %s, so %s; %s was not reloaded and serves as before", head, name, e.Path, e.restored(), name)
	case "reload":
		what = fmt.Sprintf("the firewall was updated and %s accepted the new real-IP file %s, but reloading %s failed (it reads the new ranges when it next starts or reloads; the next sync tries again)", name, e.Path, name)
	case "retest":
		what = fmt.Sprintf("%s%s still has to load the real-IP file %s (the last reload failed), but its configuration test fails now, so it was not reloaded", head, name, e.Path)
	case "refused":
		what = fmt.Sprintf("%snot writing the %s real-IP file", head, name)
	default:
		what = fmt.Sprintf("%swriting the %s real-IP file %s failed (%s)", head, name, e.Path, e.restored())
	}
	return what + ": " + realIPLine(e.Err.Error())
}

func (e *RealIPError) restored() string {
	switch {
	case e.RolledBack && e.Created:
		return "it was removed again"
	case e.RolledBack:
		return "the previous file was put back"
	case e.Created:
		return "it could not be removed"
	}
	return "the previous file could not be put back"
}

func (e *RealIPError) Unwrap() error { return e.Err }

// withRealIP runs the real-IP step after a successful firewall step (err ==
// nil): the firewall goes first because it is the protection; a web server
// that refuses its file must not leave the host unguarded. Each file is
// handled on its own; the first failure is returned after all were tried.
func withRealIP(ctx context.Context, cfg Config, list cfranges.List, res Result, err error) (Result, error) {
	if err != nil {
		return res, err
	}
	targets := cfg.RealIP.files(cfg.StateDir)
	if len(targets) == 0 {
		return res, nil
	}
	web := cfg.RealIP.Web
	if web == nil {
		web = DefaultWeb()
	}
	now := time.Now
	if cfg.RealIP.Now != nil {
		now = cfg.RealIP.Now
	}
	var first error
	for _, t := range targets {
		f, err := writeRealIP(ctx, web, t, list, now(), cfg.DryRun)
		if err != nil {
			cfg.logger().Debug("real-IP step failed", "server", t.kind, "path", t.path, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		res.RealIP = append(res.RealIP, f)
	}
	return res, first
}

// writeRealIP renders kind's file from list and, when it says something
// new, writes it atomically, tests the web server's configuration and
// reloads it; a failed test puts the previous file back (or removes the new
// one) and does not reload.
func writeRealIP(ctx context.Context, web WebServer, t realIPTarget, list cfranges.List, now time.Time, dryRun bool) (RealIPFile, error) {
	out := RealIPFile{Server: t.kind, Path: t.path}
	fail := func(step string, rolledBack bool, err error) (RealIPFile, error) {
		return out, &RealIPError{Server: t.kind, Path: t.path, Step: step, RolledBack: rolledBack, Created: out.Created, DryRun: dryRun, Err: err}
	}
	data, err := realip.Render(t.kind, list.All(), now)
	if err != nil {
		return fail("refused", true, err)
	}
	prev, err := readPrevious(t.path)
	if err != nil {
		return fail("refused", true, err)
	}
	if prev.exists && realip.Same(prev.data, data) {
		if t.pending == "" || !exists(t.pending) {
			return out, nil
		}
		out.Retried = true
		if dryRun {
			return out, nil
		}
		if err := web.Test(ctx, t.kind); err != nil {
			return fail("retest", true, err)
		}
		return out, reload(ctx, web, t, &out, fail)
	}
	out.Changed, out.Created = true, !prev.exists
	if dryRun {
		return out, nil
	}
	if err := writeFileAtomic(t.path, data, prev); err != nil {
		return fail("write", true, err) // the rename did not happen: the old file stands
	}
	if err := web.Test(ctx, t.kind); err != nil {
		if rerr := rollback(t.path, prev); rerr != nil {
			return fail("test", false, fmt.Errorf("%s (and putting the previous file back failed: %v)", realIPLine(err.Error()), rerr))
		}
		return fail("test", true, withHint(t.kind, err))
	}
	return out, reload(ctx, web, t, &out, fail)
}

// reload reloads the web server, keeping the pending marker while it fails
// so that the next sync tries again.
func reload(ctx context.Context, web WebServer, t realIPTarget, out *RealIPFile, fail func(string, bool, error) (RealIPFile, error)) error {
	if err := web.Reload(ctx, t.kind); err != nil {
		if t.pending != "" {
			if werr := os.WriteFile(t.pending, []byte(t.path+"\n"), 0o644); werr != nil {
				err = fmt.Errorf("%w (and the next sync will not know: %v)", err, werr)
			}
		}
		_, ferr := fail("reload", false, err)
		return ferr
	}
	out.Reloaded = true
	if t.pending != "" {
		os.Remove(t.pending) // gone or removed: either way nothing is pending
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// previous is the file as it was before sync touched it.
type previous struct {
	exists   bool
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

// readPrevious reads the file at path, refusing one that is not a regular
// file, is too large, or was not written by cfguard (and is not empty): an
// administrator who names nginx.conf by mistake must not lose it.
func readPrevious(path string) (previous, error) {
	if !filepath.IsAbs(path) {
		return previous{}, fmt.Errorf("%s is not an absolute path", path)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return previous{}, fmt.Errorf("the directory %s does not exist (is the web server installed?)", dir)
	}
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return previous{mode: 0o644}, nil
	}
	if err != nil {
		return previous{}, err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		to, _ := os.Readlink(path)
		return previous{}, fmt.Errorf("%s is a symbolic link (to %s): name the file itself; nothing was written", path, to)
	}
	if !st.Mode().IsRegular() {
		return previous{}, fmt.Errorf("%s is not a regular file (%s); nothing was written", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return previous{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRealIPBytes+1))
	if err != nil {
		return previous{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxRealIPBytes || (len(data) > 0 && !realip.Generated(data)) {
		return previous{}, fmt.Errorf("%s exists and was not written by cfguard (its first line is not %q); move it away or name another file", path, realip.Marker+" …")
	}
	p := previous{exists: true, data: data, mode: st.Mode().Perm(), uid: -1, gid: -1}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		p.uid, p.gid = int(sys.Uid), int(sys.Gid)
	}
	return p, nil
}

// rollback puts prev back at path, or removes path when there was none.
func rollback(path string, prev previous) error {
	if !prev.exists {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return writeFileAtomic(path, prev.data, prev)
}

// writeFileAtomic replaces path with data: a temp file in the same
// directory with prev's mode and owner, fsync, rename, fsync of the
// directory. On error the old file is untouched.
func writeFileAtomic(path string, data []byte, prev previous) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".cfguard-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(prev.mode); err != nil {
		return err
	}
	if prev.exists && prev.uid >= 0 {
		if err = tmp.Chown(prev.uid, prev.gid); err != nil {
			return err
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: the rename is done
		d.Close()
	}
	return nil
}

// realIPLine keeps the first line of s, without control characters.
func realIPLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// withHint adds the fix to the web server's complaints that have an
// obvious one.
func withHint(kind realip.Kind, err error) error {
	msg := err.Error()
	switch {
	case kind == realip.Apache && strings.Contains(msg, "Invalid command 'RemoteIP"):
		return fmt.Errorf("%w (mod_remoteip is not loaded: a2enmod remoteip)", err)
	case kind == realip.Nginx && strings.Contains(msg, "directive is not allowed here"):
		return fmt.Errorf("%w (include the file inside http {}, e.g. from /etc/nginx/conf.d/)", err)
	case kind == realip.Nginx && strings.Contains(msg, "unknown directive \"set_real_ip_from\""):
		return fmt.Errorf("%w (this nginx lacks the realip module)", err)
	}
	return err
}
