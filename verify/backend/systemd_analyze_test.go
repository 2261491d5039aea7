package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// TestAnalyzeFakeSystemd is TestAnalyzeFakeProcRoot's sibling for the
// service manager: discovery and Analyze end to end over a fake procfs and
// a fake systemd (the system seam answers `systemctl show` from
// real-format fixtures). nginx passes example.test to a php-fpm socket that
// does not exist (no php-fpm runs, no pool is configured: the unit name is
// read off the socket path) and app.test to a loopback HTTP backend that
// accepts but never answers, run by gunicorn.service (found through
// /proc/net/tcp and the process's fds).
func TestAnalyzeFakeSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "php8.2-fpm.sock") // never created
	hung, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel does), never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	app := hung.Addr().String()
	port := hung.Addr().(*net.TCPAddr).Port

	nginxConf := filepath.Join(dir, "nginx.conf")
	conf := strings.NewReplacer("DIR", dir, "SOCK", sock, "APP", app).Replace(`worker_processes 1;
error_log DIR/error.log;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:80;
        server_name example.test;
        root DIR/www;
        location / { fastcgi_pass unix:SOCK; }
    }
    server {
        listen 127.0.0.1:80;
        server_name app.test;
        location / { proxy_pass http://APP; proxy_read_timeout 30s; }
    }
}
`)
	if err := os.WriteFile(nginxConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	status := func(name string, ppid, uid int) string {
		return fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nGroups:\t%d\n", name, ppid, uid, uid, uid, uid, uid, uid, uid, uid, uid)
	}
	// 127.0.0.1:port listening, socket inode 777, held by pid 300.
	tcp := fmt.Sprintf("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
		"   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 777 1 00000000e2f93fd1 100 0 0 10 0\n", port)
	procs := map[string]string{
		"1/status": status("systemd", 0, 0), "1/cmdline": "/sbin/init\x00",
		"100/status": status("nginx", 1, 0), "100/cmdline": "nginx: master process /usr/sbin/nginx -c " + nginxConf + "\x00", "100/cgroup": "0::/system.slice/nginx.service\n",
		"101/status": status("nginx", 100, 33), "101/cmdline": "nginx: worker process\x00", "101/cgroup": "0::/system.slice/nginx.service\n",
		"300/status": status("gunicorn", 1, 33), "300/cmdline": "/usr/bin/python3\x00/usr/bin/gunicorn\x00app:app\x00", "300/cgroup": "0::/system.slice/gunicorn.service\n",
		"net/tcp": tcp,
	}
	stamp, clock := recently()
	fixture := func(fx string, kv ...string) string {
		return with(fx, append([]string{"StateChangeTimestamp", stamp}, kv...)...)
	}
	nginxUp := with(showRunning, "Id", "nginx.service")
	gunicornUp := with(showRunning, "Id", "gunicorn.service")

	tests := []struct {
		name      string
		systemd   bool
		units     map[string]string
		host      string
		cause     []string // fragments
		fix       string   // exact
		warnings  []string // fragments, each in some warning
		noWarning string
	}{
		{name: "no systemd: today's wording, nothing asked", host: testHost,
			cause: []string{"php-fpm is not running: " + sock + " does not exist"},
			fix:   "service php8.2-fpm start", noWarning: "systemd"},
		{name: "php8.2-fpm.service active (running): nothing added", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": showRunning},
			cause: []string{"php-fpm is not running: " + sock + " does not exist"},
			fix:   "systemctl start php8.2-fpm"},
		{name: "php8.2-fpm.service OOM-killed", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": fixture(showOOM)},
			cause: []string{"php-fpm is not running: php8.2-fpm.service failed at " + clock + " (the kernel's OOM killer ended it); " + sock + " does not exist"},
			fix:   "systemctl restart php8.2-fpm; then, before it happens again: lower pm.max_children or memory_limit, or add memory"},
		{name: "php8.2-fpm.service exited 78", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": fixture(showExit78)},
			cause: []string{"php-fpm is not running: php8.2-fpm.service failed at " + clock + " (it exited with status 78, a configuration error); " + sock + " does not exist"},
			fix:   "`php-fpm8.2 -t` names the configuration error; correct it, then systemctl restart php8.2-fpm"},
		{name: "php8.2-fpm.service restarting over and over", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": fixture(showLoop)},
			cause: []string{"php-fpm is not running: php8.2-fpm.service is restarting over and over (7 restarts; the last time it exited with status 78, a configuration error); " + sock + " does not exist"},
			fix:   "`journalctl -u php8.2-fpm -n 50` shows why it keeps failing (`php-fpm8.2 -t` checks the configuration); fix that — systemd keeps restarting it, but a restart alone will not hold"},
		{name: "php8.2-fpm.service stopped and disabled", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": showDisabled},
			cause: []string{"php-fpm is not running: php8.2-fpm.service is stopped and disabled (it does not start at boot); " + sock + " does not exist"},
			fix:   "systemctl enable --now php8.2-fpm"},
		{name: "php8.2-fpm.service masked", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp, "php8.2-fpm.service": showMasked},
			cause: []string{"php-fpm is not running: php8.2-fpm.service is masked (systemd will not start it); " + sock + " does not exist"},
			fix:   "systemctl unmask php8.2-fpm && systemctl enable --now php8.2-fpm (if it was masked on purpose, point the web server at the backend that replaced it)"},
		{name: "no php8.2-fpm.service at all", systemd: true, host: testHost,
			units: map[string]string{"nginx.service": nginxUp},
			cause: []string{"php-fpm is not running: there is no unit php8.2-fpm.service on this host (the name is a guess from the socket path); " + sock + " does not exist"},
			fix:   "install it (apt install php8.2-fpm) and start it, or point the web server at the backend that should serve this"},
		{name: "hung backend, no systemd: today's wording", host: "app.test",
			cause: []string{"the backend at " + app + " runs (it accepts connections)"},
			fix:   "find what the backend at " + app + " waits for (its own log, a slow database or API call, a lock); if every worker is stuck, restart the service that listens on " + app + "; raise proxy_read_timeout only if the work is legitimately long"},
		{name: "hung backend: its unit named from the listening socket", systemd: true, host: "app.test",
			units:     map[string]string{"nginx.service": nginxUp, "gunicorn.service": gunicornUp},
			cause:     []string{"the backend at " + app + " runs (it accepts connections)"},
			fix:       "find what the backend at " + app + " waits for (its own log, a slow database or API call, a lock); if every worker is stuck, `systemctl restart gunicorn` frees them now; raise proxy_read_timeout only if the work is legitimately long",
			noWarning: "restarted"},
		{name: "hung backend restarted 5 times", systemd: true, host: "app.test",
			units:    map[string]string{"nginx.service": nginxUp, "gunicorn.service": with(gunicornUp, "NRestarts", "5")},
			cause:    []string{"the backend at " + app + " runs (it accepts connections)"},
			fix:      "find what the backend at " + app + " waits for (its own log, a slow database or API call, a lock); if every worker is stuck, `systemctl restart gunicorn` frees them now; raise proxy_read_timeout only if the work is legitimately long",
			warnings: []string{"gunicorn.service runs now, but systemd has restarted it 5 times since it was last started by hand: it keeps dying (`journalctl -u gunicorn -n 50` shows why)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProc(t, procs)
			fakeFDs(t, root, 300, 777)
			sd := &fakeSystemctl{t: t, units: tt.units, forbid: !tt.systemd}
			sys := system{
				readKernel:  func(context.Context, time.Time) ([]logs.Entry, string, error) { return nil, "", nil },
				fpmConfGlob: filepath.Join(dir, "none", "*.conf"),
				nginxDump: func(context.Context, string, ...string) ([]byte, error) {
					return nil, fmt.Errorf("no nginx binary in this test")
				},
				statfs:    fakeStatfs(nil),
				booted:    func() bool { return tt.systemd },
				showUnits: sd.show,
			}
			a, findings, err := discover(context.Background(), Options{ProcRoot: root, Timeout: 200 * time.Millisecond}, sys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]brief(nil), briefs(t, findings)); diff != "" {
				t.Errorf("findings (-want +got)\n%s", diff)
			}
			out := a.Analyze(context.Background(), loopback, 80, tt.host, "http", 502, probemark.Mark{})
			t.Logf("cause: %s\nfix: %s\nwarnings: %q", out.Cause, out.Fix, out.Warnings)
			if !out.Fail || out.Stage != report.StageUpstream {
				t.Errorf("fail=%v stage=%s, want a failing upstream stage", out.Fail, out.Stage)
			}
			for _, w := range tt.cause {
				if !strings.Contains(out.Cause, w) {
					t.Errorf("cause %q lacks %q", out.Cause, w)
				}
			}
			if diff := cmp.Diff(tt.fix, out.Fix); diff != "" {
				t.Errorf("fix (-want +got)\n%s", diff)
			}
			all := strings.Join(out.Warnings, "\n")
			for _, w := range tt.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("warnings %q lack %q", out.Warnings, w)
				}
			}
			if tt.noWarning != "" && strings.Contains(all, tt.noWarning) {
				t.Errorf("warnings %q mention %q", out.Warnings, tt.noWarning)
			}
			checkFixFitsCause(t, out.Cause, out.Fix)
			if tt.systemd && len(sd.calls) > 2 {
				t.Errorf("systemctl show ran %d times (%v); want at most one in discovery and one for the path", len(sd.calls), sd.calls)
			}
		})
	}
}

// recently is a state change 3 minutes ago: as systemctl writes it, and as
// a cause says it (the clock; the date too if that was yesterday).
func recently() (stamp, clock string) {
	now := time.Now()
	changed := now.Add(-3 * time.Minute).Truncate(time.Second)
	clock = changed.Format("15:04:05")
	if y, m, d := changed.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		clock = changed.Format("2006-01-02 15:04:05")
	}
	return changed.Format(systemdTimestamp), clock
}

// TestDiscoverWebUnits: with no web server running, a failed nginx.service
// is the error (every site on the host gets 521s); not installed or merely
// stopped units say nothing; no systemd asks nothing.
func TestDiscoverWebUnits(t *testing.T) {
	stamp, clock := recently()
	noWeb := brief{report.SeverityInfo, "no running nginx or Apache found: the backends behind the web server were not examined"}
	tests := []struct {
		name    string
		systemd bool
		units   map[string]string
		want    []brief
		err     error
	}{
		{"no systemd", false, nil, []brief{noWeb}, nil},
		{"systemctl fails: said once", true, nil, []brief{noWeb, {report.SeverityInfo,
			"could not ask systemd for the state of the web server's and backends' units (systemctl show: Failed to connect to bus: Connection refused): fixes name units without knowing whether they failed"}},
			errors.New("systemctl show: Failed to connect to bus: Connection refused")},
		{"nothing installed", true, nil, []brief{noWeb}, nil},
		{"nginx stopped, apache2 stopped", true, map[string]string{
			"nginx.service":   with(showDisabled, "Id", "nginx.service"),
			"apache2.service": with(showDisabled, "Id", "apache2.service", "UnitFileState", "enabled"),
		}, []brief{noWeb}, nil},
		{"nginx failed", true, map[string]string{"nginx.service": with(showNginxFailed, "StateChangeTimestamp", stamp)}, []brief{noWeb, {report.SeverityError,
			"the web server is not running: nginx.service failed at " + clock + " (it exited with status 1); Cloudflare gets refused connections (521) for every site on this host"}}, nil},
		{"apache2 restarting over and over", true, map[string]string{"apache2.service": with(showLoop, "Id", "apache2.service", "ExecMainStatus", "1", "NRestarts", "12")}, []brief{noWeb, {report.SeverityError,
			"the web server is not running: apache2.service is restarting over and over (12 restarts; the last time it exited with status 1); Cloudflare gets refused connections (521) for every site on this host"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd := &fakeSystemctl{t: t, units: tt.units, forbid: !tt.systemd, err: tt.err}
			sys := system{
				readKernel:  func(context.Context, time.Time) ([]logs.Entry, string, error) { return nil, "", nil },
				fpmConfGlob: filepath.Join(t.TempDir(), "*.conf"),
				statfs:      fakeStatfs(nil),
				booted:      func() bool { return tt.systemd },
				showUnits:   sd.show,
			}
			_, findings, err := discover(context.Background(), Options{ProcRoot: fakeProc(t, map[string]string{"1/status": "Name:\tinit\nPPid:\t0\n", "1/cmdline": "/sbin/init\x00"})}, sys)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, briefs(t, findings)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			for _, f := range findings {
				checkFixFitsCause(t, f.Message, f.Fix)
			}
		})
	}
}
