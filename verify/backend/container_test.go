package backend

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

// execRecorder is the nginxDump seam, recording every command asked for.
type execRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (e *execRecorder) dump(_ context.Context, bin string, args ...string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, bin+" "+strings.Join(args, " "))
	return nil, fmt.Errorf("not run in this test")
}

func (e *execRecorder) ran(conf string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, c := range e.calls {
		if strings.Contains(c, conf) {
			out = append(out, c)
		}
	}
	return out
}

func quietSystem(rec *execRecorder) system {
	return system{
		readKernel:  func(context.Context, time.Time) ([]logs.Entry, string, error) { return nil, "", nil },
		fpmConfGlob: "/nonexistent/*.conf",
		nginxDump:   rec.dump,
		statfs:      fakeStatfs(nil),
	}
}

// TestContainerNginxNotJudged runs a real nginx in another network
// namespace (a container) and discovers from this one: it is not this
// host's web server, no command is run for its configuration, and its
// files are untouched (nginx -T would recreate the access log deleted
// after its start). Behind names it as what listens behind a DNAT target.
func TestContainerNginxNotJudged(t *testing.T) {
	s := newSite(t)
	ctr := s.ns
	nstest.Link(t, nstest.New(t), ctr, []string{"192.0.2.129/25"}, []string{"192.0.2.130/25"})
	conf := s.write("nginx.conf", fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
daemon off;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp-body;
    fastcgi_temp_path %[1]s/tmp-fastcgi;
    proxy_temp_path %[1]s/tmp-proxy;
    uwsgi_temp_path %[1]s/tmp-uwsgi;
    scgi_temp_path %[1]s/tmp-scgi;
    server { listen 8080; root %[1]s/www; }
}
`, s.dir))
	s.startNginxOn(conf, "192.0.2.130:8080")
	accessLog := s.path("access.log")
	if err := os.Remove(accessLog); err != nil {
		t.Fatal(err)
	}

	rec := &execRecorder{}
	a, findings, err := discover(context.Background(), Options{ProcRoot: "/proc", Timeout: time.Second, NginxConfig: ""}, quietSystem(rec))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range a.webs {
		if w.conf == conf {
			t.Errorf("the container's nginx (%s) was taken as this host's web server", conf)
		}
	}
	for _, f := range findings {
		if strings.Contains(f.Message, conf) {
			t.Errorf("a finding judges the container's nginx: %s", f.Message)
		}
	}
	if calls := rec.ran(conf); len(calls) > 0 {
		t.Errorf("commands were run on the container's configuration: %q", calls)
	}
	if _, err := os.Stat(accessLog); err == nil {
		t.Errorf("%s was recreated: something opened the container's configuration's logs", accessLog)
	}

	b, ok := findBehind("/proc", netip.MustParseAddrPort("192.0.2.130:8080"))
	if !ok || b.comm != "nginx" || !strings.HasPrefix(b.netns, "net:[") {
		t.Errorf("findBehind(192.0.2.130:8080) = %+v, %v", b, ok)
	}
	// The master, not a worker.
	if pid := strings.TrimSpace(readFile(t, s.path("nginx.pid"))); strconv.Itoa(b.pid) != pid {
		t.Errorf("findBehind names pid %d, not the master %s", b.pid, pid)
	}
	out := a.Behind(context.Background(), netip.MustParseAddrPort("192.0.2.130:8080"), "www.example.com", 200)
	ev := strings.Join(out.Evidence, "\n")
	if out.Fail || !strings.Contains(ev, "in container net:[") || !strings.Contains(ev, "nothing was run") {
		t.Errorf("Behind(192.0.2.130:8080) = %+v", out)
	}
	// An address the namespace does not hold is not its.
	if b, ok := findBehind("/proc", netip.MustParseAddrPort("192.0.2.131:8080")); ok {
		t.Errorf("findBehind(192.0.2.131:8080) = %+v", b)
	}
}

func (s *site) startNginxOn(conf, addr string) {
	s.t.Helper()
	s.ns.Start("nginx", "-c", conf)
	deadline := time.Now().Add(startWait)
	for {
		if out, _ := s.ns.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "http://"+addr+"/"); strings.TrimSpace(out) != "000" && out != "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nginx does not answer on %s after %s", addr, startWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOtherRootNotAnalysed: a web server in this network namespace whose
// root directory is not this host's (a container with host networking) is
// named in one info line; no command runs for it and its configuration
// (a path in its own file system) is not read from the host's.
func TestOtherRootNotAnalysed(t *testing.T) {
	status := func(name string, ppid, uid int) string {
		return fmt.Sprintf("Name:\t%s\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\n", name, ppid, uid, uid, uid, uid, uid, uid, uid, uid)
	}
	dir := t.TempDir()
	nginxConf := filepath.Join(dir, "nginx.conf") // exists on the "host": must not be read for it
	os.WriteFile(nginxConf, []byte("events {}\nhttp { server { listen 80; } }\n"), 0o644)
	root := fakeProc(t, map[string]string{
		"100/status": status("nginx", 1, 0), "100/cmdline": "nginx: master process /usr/sbin/nginx -c " + nginxConf + "\x00",
		"100/cgroup": "0::/system.slice/docker-0123456789abcdef0123456789abcdef.scope\n",
		"200/status": status("php-fpm8.2", 1, 0), "200/cmdline": "php-fpm: master process (" + filepath.Join(dir, "php-fpm.conf") + ")\x00",
		"200/cgroup": "0::/system.slice/docker-fedcba9876543210fedcba9876543210.scope\n",
	})
	hostRoot, ctrRoot := t.TempDir(), t.TempDir()
	for pid, r := range map[string]string{"self": hostRoot, "100": ctrRoot, "200": ctrRoot} {
		os.MkdirAll(filepath.Join(root, pid), 0o755)
		if err := os.Symlink(r, filepath.Join(root, pid, "root")); err != nil {
			t.Fatal(err)
		}
	}
	rec := &execRecorder{}
	a, findings, err := discover(context.Background(), Options{ProcRoot: root, Timeout: time.Second}, quietSystem(rec))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.webs) != 0 || len(a.fpms) != 0 {
		t.Errorf("analysed %d web servers and %d PHP-FPM of another root", len(a.webs), len(a.fpms))
	}
	if len(rec.calls) > 0 {
		t.Errorf("commands were run: %q", rec.calls)
	}
	var got []brief
	for _, b := range briefs(t, findings) {
		if strings.Contains(b.Message, "container") {
			got = append(got, b)
		}
	}
	want := []brief{
		{report.SeverityInfo, "the web server in container docker-0123456789ab (nginx, pid 100) is not analysed: it runs in its own file system (/proc/100/root), and cfguard runs no command on a container's configuration and does not read it yet"},
		{report.SeverityInfo, "the web server in container docker-fedcba987654 (PHP-FPM, pid 200) is not analysed: it runs in its own file system (/proc/200/root), and cfguard runs no command on a container's configuration and does not read it yet"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

// TestTestWrites lists what `nginx -T` would create, so that it runs only
// when all of it exists.
func TestTestWrites(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string
		ok         bool
	}{
		{"defaults", "events {}\nhttp {}\n", []string{"/var/log/nginx/error.log", "/run/nginx.pid", "/var/log/nginx/access.log",
			"/var/lib/nginx/body", "/var/lib/nginx/fastcgi", "/var/lib/nginx/proxy", "/var/lib/nginx/uwsgi", "/var/lib/nginx/scgi"}, true},
		{"set", "pid /t/p;\nerror_log /t/e;\nevents {}\nhttp { access_log off; client_body_temp_path /t/b; fastcgi_temp_path /t/f; proxy_temp_path /t/p2; uwsgi_temp_path /t/u; scgi_temp_path /t/s;\n server { access_log logs/a.log; } }\n",
			[]string{"/t/e", "/t/b", "/t/f", "/t/p2", "/t/u", "/t/s", "/etc/nginx/logs/a.log", "/t/p"}, true},
		{"variable", "events {}\nhttp { access_log /var/log/$host.log; }\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := nginxconf.Parse("/etc/nginx/nginx.conf", tt.conf)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := cfg.TestWrites()
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			if tt.ok {
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
			}
		})
	}
}

// FuzzCgroup feeds /proc/PID/cgroup text to the readers of the unit and
// the container scope: no panic, and a scope is one path element.
func FuzzCgroup(f *testing.F) {
	for _, s := range []string{
		"0::/system.slice/docker-0123456789abcdef0123456789abcdef.scope\n",
		"0::/user.slice/user-1000.slice/user@1000.service/app.slice/app.service\n",
		"12:pids:/machine.slice/libpod-fedcba9876543210.scope/container\n0::/\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cg string) {
		cgroupUnit(cg)
		if s := cgroupScope(cg); strings.Contains(s, "/") {
			t.Errorf("scope %q of %q spans path elements", s, cg)
		}
	})
}

// TestRootFS reads a container's configuration inside its root: an
// absolute symbolic link (Debian's sites-enabled) resolves in the root,
// not on the host, and ".." cannot climb out.
func TestRootFS(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"etc/nginx/nginx.conf":                     "events {}\nhttp { include /etc/nginx/sites-enabled/*; }\n",
		"etc/nginx/sites-available/cfguard-rootfs": "server { listen 8080; location / { proxy_pass http://127.0.0.1:9; } }\n",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "etc/nginx/sites-enabled"), 0o755)
	if err := os.Symlink("/etc/nginx/sites-available/cfguard-rootfs", filepath.Join(root, "etc/nginx/sites-enabled/site")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../etc/hostname", filepath.Join(root, "etc/escape")); err != nil {
		t.Fatal(err)
	}
	fsys := rootFS{dir: root}
	cfg, err := nginxconf.LoadWith("/etc/nginx/nginx.conf", fsys.glob, fsys.read)
	if err != nil {
		t.Fatal(err)
	}
	rt := cfg.Route(netip.MustParseAddr("192.0.2.130"), 8080, "www.example.com")
	if rt == nil || rt.Backend == nil || rt.Backend.Pass != "http://127.0.0.1:9" {
		t.Fatalf("route through the symlinked site: %+v", rt)
	}
	if got, err := fsys.read("/etc/escape"); err == nil && got != "" {
		if host, _ := os.ReadFile("/etc/hostname"); string(host) == got {
			t.Errorf("a relative link climbed out of the root and read the host's /etc/hostname")
		}
	}
}
