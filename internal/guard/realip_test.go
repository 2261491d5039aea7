package guard

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/cfranges/realip"
)

// fakeWeb records the calls and fails the steps it is told to.
type fakeWeb struct {
	calls              []string
	testErr, reloadErr error
	// seen is the file's content when Test ran (what the web server read).
	seen map[realip.Kind]string
	path map[realip.Kind]string
}

var _ WebServer = (*fakeWeb)(nil)

func (f *fakeWeb) Test(_ context.Context, k realip.Kind) error {
	f.calls = append(f.calls, "test "+string(k))
	if f.seen == nil {
		f.seen = map[realip.Kind]string{}
	}
	b, _ := os.ReadFile(f.path[k])
	f.seen[k] = string(b)
	return f.testErr
}

func (f *fakeWeb) Reload(_ context.Context, k realip.Kind) error {
	f.calls = append(f.calls, "reload "+string(k))
	return f.reloadErr
}

var (
	t0    = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	listA = cfranges.List{IPv4: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, IPv6: []netip.Prefix{netip.MustParsePrefix("2001:db8:cf::/48")}}
	listB = cfranges.List{IPv4: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.0/25")}, IPv6: listA.IPv6}
)

func render(t *testing.T, k realip.Kind, l cfranges.List, at time.Time) string {
	t.Helper()
	b, err := realip.Render(k, l.All(), at)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirFiles lists the names in dir, to prove no temp file is left behind.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteRealIP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		before    string // "" = no file
		mode      os.FileMode
		list      cfranges.List
		dryRun    bool
		testErr   error
		reloadErr error
		wantFile  string // "" = no file
		wantRes   RealIPFile
		wantCalls []string
		wantErr   string // substring; "" = no error
	}{
		{
			name: "first write", list: listA,
			wantFile:  render(t, realip.Nginx, listA, t0.Add(time.Hour)),
			wantRes:   RealIPFile{Changed: true, Created: true, Reloaded: true},
			wantCalls: []string{"test nginx", "reload nginx"},
		},
		{
			name: "same ranges, older stamp: untouched, no test, no reload", list: listA,
			before: render(t, realip.Nginx, listA, t0), mode: 0o640,
			wantFile: render(t, realip.Nginx, listA, t0),
		},
		{
			name: "a range added: rewritten, tested, reloaded", list: listB,
			before: render(t, realip.Nginx, listA, t0), mode: 0o640,
			wantFile:  render(t, realip.Nginx, listB, t0.Add(time.Hour)),
			wantRes:   RealIPFile{Changed: true, Reloaded: true},
			wantCalls: []string{"test nginx", "reload nginx"},
		},
		{
			name: "test fails: previous file back, no reload", list: listB,
			before: render(t, realip.Nginx, listA, t0), mode: 0o640,
			testErr:   errors.New(`nginx -t -q: [emerg] "set_real_ip_from" directive is not allowed here in /etc/nginx/x.conf:4`),
			wantFile:  render(t, realip.Nginx, listA, t0),
			wantCalls: []string{"test nginx"},
			wantErr:   `the firewall was updated, but nginx rejected the new real-IP file FILE, so the previous file was put back; nginx was not reloaded and serves as before: nginx -t -q: [emerg] "set_real_ip_from" directive is not allowed here in /etc/nginx/x.conf:4 (include the file inside http {}, e.g. from /etc/nginx/conf.d/)`,
		},
		{
			name: "test fails with no previous file: the new one removed", list: listA,
			testErr:   errors.New("nginx -t -q: [emerg] unexpected end of file"),
			wantCalls: []string{"test nginx"},
			wantErr:   "so it was removed again; nginx was not reloaded",
		},
		{
			name: "reload fails: the tested file stays", list: listB,
			before: render(t, realip.Nginx, listA, t0), mode: 0o644,
			reloadErr: errors.New("systemctl reload nginx: nginx.service is not active, cannot reload."),
			wantFile:  render(t, realip.Nginx, listB, t0.Add(time.Hour)),
			wantCalls: []string{"test nginx", "reload nginx"},
			wantErr:   "the firewall was updated and nginx accepted the new real-IP file FILE, but reloading nginx failed (it reads the new ranges when it next starts or reloads; the next sync tries again): systemctl reload nginx: nginx.service is not active, cannot reload.",
		},
		{
			name: "dry run: would change, nothing touched", list: listB, dryRun: true,
			before: render(t, realip.Nginx, listA, t0), mode: 0o644,
			wantFile: render(t, realip.Nginx, listA, t0),
			wantRes:  RealIPFile{Changed: true},
		},
		{
			name: "dry run, no file: would be created", list: listA, dryRun: true,
			wantRes: RealIPFile{Changed: true, Created: true},
		},
		{
			name: "a file cfguard did not write is never overwritten", list: listA,
			before: "user www-data;\nevents {}\n", mode: 0o644,
			wantFile: "user www-data;\nevents {}\n",
			wantErr:  "not writing the nginx real-IP file: FILE exists and was not written by cfguard",
		},
		{
			name: "an empty file is taken over", list: listA,
			before: "", mode: 0o600,
			wantFile:  render(t, realip.Nginx, listA, t0.Add(time.Hour)),
			wantRes:   RealIPFile{Changed: true, Reloaded: true},
			wantCalls: []string{"test nginx", "reload nginx"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "cloudflare-realip.conf")
			if tc.before != "" || tc.mode != 0 {
				if err := os.WriteFile(path, []byte(tc.before), tc.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, tc.mode)
				if os.Geteuid() == 0 {
					os.Chown(path, 1, 1) // daemon:daemon; kept across writes
				}
			}
			web := &fakeWeb{testErr: tc.testErr, reloadErr: tc.reloadErr, path: map[realip.Kind]string{realip.Nginx: path}}
			got, err := writeRealIP(context.Background(), web, realIPTarget{kind: realip.Nginx, path: path}, tc.list, t0.Add(time.Hour), tc.dryRun)
			tc.wantRes.Server, tc.wantRes.Path = realip.Nginx, path
			if diff := cmp.Diff(tc.wantRes, got); diff != "" && err == nil {
				t.Errorf("result (-want +got)\n%s", diff)
			}
			want := strings.ReplaceAll(tc.wantErr, "FILE", path)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("error %v, want one containing %q", err, want)
			}
			if diff := cmp.Diff(tc.wantCalls, web.calls); diff != "" {
				t.Errorf("calls to the web server (-want +got)\n%s", diff)
			}
			if tc.testErr != nil && web.seen[realip.Nginx] != render(t, realip.Nginx, tc.list, t0.Add(time.Hour)) {
				t.Errorf("the web server tested %q, not the new file", web.seen[realip.Nginx])
			}
			b, rerr := os.ReadFile(path)
			switch {
			case tc.wantFile == "" && tc.before == "" && tc.mode == 0:
				if !errors.Is(rerr, os.ErrNotExist) {
					t.Errorf("file exists (%v): %q", rerr, b)
				}
			default:
				if diff := cmp.Diff(tc.wantFile, string(b)); diff != "" {
					t.Errorf("file (-want +got)\n%s", diff)
				}
			}
			if tc.mode != 0 {
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != tc.mode {
					t.Errorf("mode %v, want %v kept", st.Mode().Perm(), tc.mode)
				}
				if sys := st.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (sys.Uid != 1 || sys.Gid != 1) {
					t.Errorf("owner %d:%d, want 1:1 kept", sys.Uid, sys.Gid)
				}
			} else if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o644 {
				t.Errorf("new file has mode %v, want 0644", st.Mode().Perm())
			}
			for _, name := range dirFiles(t, dir) {
				if name != "cloudflare-realip.conf" {
					t.Errorf("left behind in the directory: %s", name)
				}
			}
		})
	}
}

func TestWriteRealIPRefuses(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.conf")
	os.WriteFile(target, []byte(render(t, realip.Nginx, listA, t0)), 0o644)
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "adir")
	os.Mkdir(sub, 0o755)
	for _, tc := range []struct{ name, path, want string }{
		{"symlink", link, "is a symbolic link (to " + target + "): name the file itself; nothing was written"},
		{"directory", sub, "is not a regular file"},
		{"missing directory", filepath.Join(dir, "nope", "x.conf"), "does not exist (is the web server installed?)"},
		{"relative", "x.conf", "is not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			web := &fakeWeb{}
			_, err := writeRealIP(context.Background(), web, realIPTarget{kind: realip.Nginx, path: tc.path}, listB, t0, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if len(web.calls) != 0 {
				t.Errorf("the web server was called: %v", web.calls)
			}
		})
	}
	if b, _ := os.ReadFile(target); string(b) != render(t, realip.Nginx, listA, t0) {
		t.Errorf("the symlink's target changed: %q", b)
	}
}

// TestWithRealIP: the step runs only after a successful firewall step,
// handles every file, and reports the first failure after trying all.
func TestWithRealIP(t *testing.T) {
	dir := t.TempDir()
	ng, ap := filepath.Join(dir, "nginx.conf"), filepath.Join(dir, "apache.conf")
	web := &fakeWeb{path: map[realip.Kind]string{realip.Nginx: ng, realip.Apache: ap}}
	cfg := Config{RealIP: RealIP{Nginx: ng, Apache: ap, Web: web, Now: func() time.Time { return t0 }}}

	fwErr := errors.New("firewall failed")
	if _, err := withRealIP(context.Background(), cfg, listA, Result{}, fwErr); err != fwErr || len(web.calls) != 0 {
		t.Fatalf("after a failed firewall step: err %v, calls %v; want the firewall's error and no calls", err, web.calls)
	}
	res, err := withRealIP(context.Background(), cfg, listA, Result{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"test nginx", "reload nginx", "test apache", "reload apache"}, web.calls); diff != "" {
		t.Errorf("calls (-want +got)\n%s", diff)
	}
	if len(res.RealIP) != 2 || !res.RealIP[0].Changed || !res.RealIP[1].Changed {
		t.Errorf("result %+v", res.RealIP)
	}
	if got := res.RealIP[1].Line(false); got != "Apache real-IP file "+ap+" created; Apache reloaded" {
		t.Errorf("line %q", got)
	}

	// nginx's file was edited by hand into something else: refused; Apache's still handled.
	os.WriteFile(ng, []byte("# mine\n"), 0o644)
	web.calls = nil
	res, err = withRealIP(context.Background(), cfg, listB, Result{}, nil)
	var rerr *RealIPError
	if !errors.As(err, &rerr) || rerr.Server != realip.Nginx || rerr.Step != "refused" {
		t.Errorf("error %v, want nginx's refusal", err)
	}
	if diff := cmp.Diff([]string{"test apache", "reload apache"}, web.calls); diff != "" {
		t.Errorf("calls (-want +got)\n%s", diff)
	}
	if len(res.RealIP) != 1 || res.RealIP[0].Server != realip.Apache {
		t.Errorf("result %+v", res.RealIP)
	}
}

func TestWebSaid(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"nginx -t -q", "2026/12/02 02:49:10 [emerg] 6583#6583: \"set_real_ip_from\" directive is not allowed here in /tmp/rt/bad.conf:3\nnginx: configuration file /tmp/rt/bad.conf test failed\n",
			`[emerg] "set_real_ip_from" directive is not allowed here in /tmp/rt/bad.conf:3`},
		{"apachectl configtest", "AH00526: Syntax error on line 1 of /tmp/rt/inc.conf:\nInvalid command 'RemoteIPHeader', perhaps misspelled or defined by a module not included in the server configuration\nAction 'configtest' failed.\nThe Apache error log may have more information.\n",
			"AH00526: Syntax error on line 1 of /tmp/rt/inc.conf: Invalid command 'RemoteIPHeader', perhaps misspelled or defined by a module not included in the server configuration"},
		{"systemctl", "nginx.service is not active, cannot reload.\n", "nginx.service is not active, cannot reload."},
		{"control characters", "bad\x1b[31m red\x07\n", "bad[31m red"},
		{"nothing", "\n", ""},
	} {
		if got := webSaid(tc.out); got != tc.want {
			t.Errorf("%s: webSaid = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestExecWeb runs real programs through the seam: the exit status decides,
// the words come back on one line, and a hung command is cut off.
func TestExecWeb(t *testing.T) {
	w := ExecWeb{
		TestCmd:   map[realip.Kind][]string{realip.Nginx: {"sh", "-c", "echo 'nginx: [emerg] bad thing' >&2; exit 1"}, realip.Apache: {"true"}},
		ReloadCmd: map[realip.Kind][]string{realip.Nginx: {"false"}},
	}
	if err := w.Test(context.Background(), realip.Nginx); err == nil || !strings.HasSuffix(err.Error(), ": [emerg] bad thing") {
		t.Errorf("Test nginx: %v", err)
	}
	if err := w.Test(context.Background(), realip.Apache); err != nil {
		t.Errorf("Test apache: %v", err)
	}
	if err := w.Reload(context.Background(), realip.Nginx); err == nil || err.Error() != "false: exit status 1" {
		t.Errorf("Reload nginx: %v", err)
	}
	if err := w.Reload(context.Background(), realip.Apache); err == nil || err.Error() != "no command configured" {
		t.Errorf("Reload apache: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	hung := ExecWeb{TestCmd: map[realip.Kind][]string{realip.Nginx: {"sleep", "60"}}}
	if err := hung.Test(ctx, realip.Nginx); err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("hung Test: %v", err)
	}
}

func TestDefaultWeb(t *testing.T) {
	for _, tc := range []struct {
		systemd bool
		want    [][]string
	}{
		{false, [][]string{{"nginx", "-t", "-q"}, {"apachectl", "configtest"}, {"nginx", "-s", "reload"}, {"apachectl", "graceful"}}},
		{true, [][]string{{"nginx", "-t", "-q"}, {"apachectl", "configtest"}, {"systemctl", "reload", "nginx"}, {"systemctl", "reload", "apache2"}}},
	} {
		w := defaultWeb(tc.systemd)
		got := [][]string{w.TestCmd[realip.Nginx], w.TestCmd[realip.Apache], w.ReloadCmd[realip.Nginx], w.ReloadCmd[realip.Apache]}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("systemd=%v (-want +got)\n%s", tc.systemd, diff)
		}
	}
}

// TestRealIPReloadRetried: a failed reload leaves a marker in the state
// directory, so the next sync reloads although the file is up to date; a
// successful reload removes it.
func TestRealIPReloadRetried(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "cloudflare-realip.conf")
	web := &fakeWeb{reloadErr: errors.New("systemctl reload nginx: nginx.service is not active, cannot reload."), path: map[realip.Kind]string{realip.Nginx: path}}
	cfg := Config{StateDir: state, RealIP: RealIP{Nginx: path, Web: web, Now: func() time.Time { return t0 }}}
	marker := filepath.Join(state, pendingPrefix+"nginx")
	step := func(dryRun bool) (Result, error) {
		web.calls = nil
		c := cfg
		c.DryRun = dryRun
		return withRealIP(context.Background(), c, listA, Result{DryRun: dryRun}, nil)
	}
	if _, err := step(false); err == nil || !strings.Contains(err.Error(), "the next sync tries again") {
		t.Fatalf("first sync: %v, want the reload failure", err)
	}
	if !exists(marker) {
		t.Fatal("no marker after the failed reload")
	}
	// Dry run: says a reload would happen, does nothing.
	res, err := step(true)
	if err != nil || len(web.calls) != 0 || len(res.RealIP) != 1 || res.RealIP[0].Line(true) != "nginx real-IP file "+path+" already up to date, but nginx would be reloaded (the last reload failed)" {
		t.Errorf("dry run: %v, calls %v, %+v", err, web.calls, res.RealIP)
	}
	// Still failing: tried again, still pending.
	if _, err := step(false); err == nil || !exists(marker) {
		t.Errorf("second sync, reload still failing: %v, marker %v", err, exists(marker))
	}
	if diff := cmp.Diff([]string{"test nginx", "reload nginx"}, web.calls); diff != "" {
		t.Errorf("calls (-want +got)\n%s", diff)
	}
	// nginx runs again: reloaded, marker gone; then nothing more to do.
	web.reloadErr = nil
	res, err = step(false)
	if err != nil || exists(marker) || res.RealIP[0].Line(false) != "nginx real-IP file "+path+" already up to date; nginx reloaded (the last reload had failed)" {
		t.Errorf("third sync: %v, marker %v, %+v", err, exists(marker), res.RealIP)
	}
	if res, err = step(false); err != nil || len(web.calls) != 0 || res.RealIP[0].Line(false) != "nginx real-IP file "+path+" already up to date" {
		t.Errorf("fourth sync: %v, calls %v, %+v", err, web.calls, res.RealIP)
	}
	// The configuration broke meanwhile: not reloaded, still pending.
	os.WriteFile(marker, nil, 0o644)
	web.testErr = errors.New("nginx -t -q: [emerg] unknown directive \"foo\"")
	if _, err := step(false); err == nil || !strings.Contains(err.Error(), "nginx still has to load the real-IP file "+path+" (the last reload failed), but its configuration test fails now, so it was not reloaded: nginx -t -q") || !exists(marker) {
		t.Errorf("broken config while pending: %v, marker %v", err, exists(marker))
	}
	if diff := cmp.Diff([]string{"test nginx"}, web.calls); diff != "" {
		t.Errorf("calls (-want +got)\n%s", diff)
	}
}
