package backend

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/fpm"
)

// startVerb is "start" as a command (not "restart", not "started").
var startVerb = regexp.MustCompile(`(^|[^a-z])start( |$)`)

// TestProbeVerdictFixFitsCause: for every probe result, the cause names
// what is wrong and the fix fits it — above all, a backend that runs but
// hangs is never told to "start".
func TestProbeVerdictFixFitsCause(t *testing.T) {
	const sock = "/run/php/php8.2-fpm.sock"
	web := &webServer{kind: "nginx", unit: "nginx", hasCred: true, workers: cred{name: "www-data", uid: 33, gids: []uint32{33}}}
	newPool := func() *fpm.Pool {
		return &fpm.Pool{Name: "www", File: "/etc/php/8.2/fpm/pool.d/www.conf", Listen: sock, MaxChildren: 5}
	}
	running := func(p *fpm.Pool) []*fpmInstance {
		return []*fpmInstance{{cfg: &fpm.Config{File: "/etc/php/8.2/fpm/php-fpm.conf", ErrorLog: "/var/log/php8.2-fpm.log", Pools: []*fpm.Pool{p}}, master: &proc{pid: 4321}, unit: "php8.2-fpm"}}
	}
	stopped := func(p *fpm.Pool) []*fpmInstance {
		f := running(p)
		f[0].master = nil
		return f
	}
	withSlowlog := newPool()
	withSlowlog.Slowlog, withSlowlog.RequestSlowlogTimeout = "log/www.log.slow", 3*time.Second

	fcgi := &route{web: web, module: "fastcgi", pass: "fastcgi_pass unix:" + sock + " (/etc/nginx/sites-enabled/default:60)", passArg: "unix:" + sock,
		targets: []target{{"unix", sock, ""}}, readTimeout: 60 * time.Second, readTimeoutName: "fastcgi_read_timeout"}
	proxyTo := func(network, addr string) *route {
		return &route{web: web, module: "proxy", pass: "proxy_pass http://" + addr + " (/etc/nginx/sites-enabled/app:12)", passArg: "http://" + addr,
			targets: []target{{network, addr, "http"}}, readTimeout: 60 * time.Second, readTimeoutName: "proxy_read_timeout"}
	}
	local, remote, gunicorn := proxyTo("tcp", "127.0.0.1:3000"), proxyTo("tcp", "192.0.2.10:3000"), proxyTo("unix", "/run/app/gunicorn.sock")

	tests := []struct {
		name     string
		rt       *route
		fpms     []*fpmInstance
		kind     probeKind
		status   int
		cause    []string // fragments
		fix      []string // fragments
		notInFix []string
	}{
		{"php-fpm hung", fcgi, running(newPool()), probeNoAnswer, 504,
			[]string{"php-fpm pool www", "runs (it accepts connections)", "all 5 children", "busy or hung"},
			[]string{"set request_slowlog_timeout = 5s and slowlog = /var/log/php-fpm-www.slow.log in pool www (/etc/php/8.2/fpm/pool.d/www.conf)", "`systemctl restart php8.2-fpm` frees them", "raise pm.max_children", "only if the work is legitimately long"},
			[]string{"start the backend"}},
		{"php-fpm hung, slow log on", fcgi, running(withSlowlog), probeNoAnswer, 504,
			[]string{"busy or hung"},
			[]string{"the pool's slow log /var/log/www.log.slow has a stack trace of every request running over 3s"},
			[]string{"set request_slowlog_timeout"}},
		{"HTTP backend hung", local, nil, probeNoAnswer, 504,
			[]string{"the backend at 127.0.0.1:3000 runs", "did not answer a trivial request within 2s", "busy or hung"},
			[]string{"find what the backend at 127.0.0.1:3000 waits for", "restart the service that listens on 127.0.0.1:3000", "raise proxy_read_timeout only if the work is legitimately long"},
			[]string{"start the backend"}},
		{"local backend's accept queue full", local, nil, probeConnTimeout, 504,
			[]string{"although it is on this host", "listen queue is full"},
			[]string{"waits for"}, []string{"firewall"}},
		{"php-fpm socket, connect timed out", fcgi, running(newPool()), probeConnTimeout, 504,
			[]string{"listen queue is full"},
			[]string{"request_slowlog_timeout", "systemctl restart php8.2-fpm"}, nil},
		{"remote backend does not answer the SYN", remote, nil, probeConnTimeout, 504,
			[]string{"192.0.2.10:3000 does not answer connection attempts within 2s"},
			[]string{"is up", "firewall"}, nil},
		{"gunicorn socket queue full", gunicorn, nil, probeQueueFull, 502,
			[]string{"the backend at /run/app/gunicorn.sock is saturated", "EAGAIN"},
			[]string{"waits for", "restart the service that listens on /run/app/gunicorn.sock"}, []string{"start the backend"}},
		{"php-fpm queue full", fcgi, running(newPool()), probeQueueFull, 502,
			[]string{"php-fpm pool www is saturated", "pm.max_children = 5"},
			[]string{"request_slowlog_timeout", "systemctl restart php8.2-fpm", "raise pm.max_children"}, nil},
		{"php-fpm stopped", fcgi, stopped(newPool()), probeNoSocket, 502,
			[]string{"php-fpm is not running", sock, "does not exist"},
			[]string{"systemctl start php8.2-fpm"}, nil},
		{"socket removed under a running php-fpm", fcgi, running(newPool()), probeNoSocket, 502,
			[]string{"php-fpm (pid 4321) runs pool www", "the socket file was removed"},
			[]string{"systemctl restart php8.2-fpm"}, nil},
		{"stale socket", fcgi, stopped(newPool()), probeStale, 502,
			[]string{"php-fpm is not running", "connection refused"},
			[]string{"systemctl restart php8.2-fpm"}, nil},
		{"HTTP backend down", local, nil, probeRefused, 502,
			[]string{"the backend is not running", "connection refused"},
			[]string{"start the service that should listen on 127.0.0.1:3000"}, nil},
		{"socket permissions", fcgi, running(newPool()), probeDenied, 502,
			[]string{"may not connect to " + sock},
			[]string{"listen.owner = www-data", "systemctl restart php8.2-fpm"}, nil},
		{"php-fpm worker crashed", fcgi, running(newPool()), probeReset, 502,
			[]string{"closed the connection without answering"},
			[]string{"/var/log/php8.2-fpm.log", "OOM"}, []string{"start"}},
		{"not FastCGI", fcgi, running(newPool()), probeBadAnswer, 502,
			[]string{"does not answer as fastcgi expects"},
			[]string{"check that fastcgi_pass unix:" + sock}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Analyzer{opts: Options{Timeout: 2 * time.Second, Since: DefaultSince, CloudflareReadTimeout: DefaultCloudflareReadTimeout},
				now: time.Now(), fpms: tt.fpms, systemd: true, probes: map[string]*probeOnce{}}
			v := a.probeVerdict(tt.rt, tt.rt.targets[0], probeResult{kind: tt.kind, detail: "the socket is root:root 0660"}, nil)
			if diff := cmp.Diff(tt.status, v.status); diff != "" {
				t.Errorf("status (-want +got)\n%s", diff)
			}
			for _, w := range tt.cause {
				if !strings.Contains(v.cause, w) {
					t.Errorf("cause %q lacks %q", v.cause, w)
				}
			}
			for _, w := range tt.fix {
				if !strings.Contains(v.fix, w) {
					t.Errorf("fix %q lacks %q", v.fix, w)
				}
			}
			for _, w := range tt.notInFix {
				if strings.Contains(v.fix, w) {
					t.Errorf("fix %q says %q", v.fix, w)
				}
			}
			checkFixFitsCause(t, v.cause, v.fix)
			t.Logf("cause: %s\nfix: %s", v.cause, v.fix)
		})
	}
}

// noUnit is "there is no unit X.service" in a cause.
var noUnit = regexp.MustCompile(`there is no unit ([^ ]+)\.service`)

// checkFixFitsCause holds every cause/fix pair to the rules: a fix that
// starts something only for what is not running; what systemd said (failed,
// restarting over and over, disabled, masked, not found, OOM-killed) gets
// the fix for exactly that.
func checkFixFitsCause(t *testing.T, cause, fix string) {
	t.Helper()
	has := func(s, sub string) bool { return strings.Contains(s, sub) }
	if startVerb.MatchString(fix) && !has(cause, "not running") {
		t.Errorf("fix %q starts a backend whose cause %q does not say it is stopped", fix, cause)
	}
	if has(cause, ".service failed") && !has(fix, "restart") && !has(fix, " -t`") {
		t.Errorf("cause %q says the unit failed; fix %q neither restarts it nor checks its configuration", cause, fix)
	}
	if has(cause, "restarting over and over") && (!has(fix, "journalctl") || strings.HasPrefix(fix, "systemctl restart")) {
		t.Errorf("cause %q: a unit in a restart loop needs its reason found (journalctl), not a restart: %q", cause, fix)
	}
	if has(cause, "disabled") && !has(fix, "enable --now") {
		t.Errorf("cause %q says disabled; fix %q does not enable it", cause, fix)
	}
	if has(cause, "is masked") && !has(fix, "systemctl unmask") {
		t.Errorf("cause %q says masked; fix %q does not unmask it", cause, fix)
	}
	if has(cause, "OOM killer") && !has(fix, "memory") {
		t.Errorf("cause %q names the OOM killer; fix %q says nothing of memory", cause, fix)
	}
	if m := noUnit.FindStringSubmatch(cause); m != nil && (has(fix, "systemctl start "+m[1]) || has(fix, "systemctl restart "+m[1])) {
		t.Errorf("cause %q says there is no unit %s; fix %q starts it", cause, m[1], fix)
	}
}

// TestProbeVerdictUnits: what systemd says about the unit of a backend
// that is not running changes the cause and the fix; a running unit, or no
// systemd, leaves today's wording.
func TestProbeVerdictUnits(t *testing.T) {
	const (
		sock = "/run/php/php8.2-fpm.sock"
		conf = "/etc/php/8.2/fpm/php-fpm.conf"
		pool = "/etc/php/8.2/fpm/pool.d/www.conf"
	)
	web := &webServer{kind: "nginx", unit: "nginx", hasCred: true, workers: cred{name: "www-data", uid: 33, gids: []uint32{33}}}
	fpmAt := func(listen string, running bool, others ...string) []*fpmInstance {
		f := &fpmInstance{cfg: &fpm.Config{File: conf, Pools: []*fpm.Pool{{Name: "www", File: pool, Listen: listen, MaxChildren: 5}}},
			unit: "php8.2-fpm", unitFrom: "the path of " + conf}
		if running {
			f.master, f.unitFrom = &proc{pid: 4321, unit: "php8.2-fpm.service"}, ""
		}
		out := []*fpmInstance{f}
		for _, o := range others {
			out = append(out, &fpmInstance{cfg: &fpm.Config{File: "/etc/php/" + o + "/fpm/php-fpm.conf"}, unit: "php" + o + "-fpm"})
		}
		return out
	}
	fcgi := func(network, addr string) *route {
		pass := addr
		if network == "unix" {
			pass = "unix:" + addr
		}
		return &route{web: web, module: "fastcgi", pass: "fastcgi_pass " + pass + " (/etc/nginx/sites-enabled/default:60)", passArg: pass,
			targets: []target{{network, addr, ""}}, readTimeout: 60 * time.Second, readTimeoutName: "fastcgi_read_timeout"}
	}
	unixRoute, tcpRoute := fcgi("unix", sock), fcgi("tcp", "127.0.0.1:9000")
	type cf struct{ Cause, Fix string }
	tests := []struct {
		name    string
		systemd bool
		rt      *route
		fpms    []*fpmInstance
		units   map[string]string
		kind    probeKind
		want    cf
	}{
		{"no systemd: today's wording", false, unixRoute, fpmAt(sock, false), map[string]string{"php8.2-fpm.service": showOOM}, probeNoSocket, cf{
			"php-fpm is not running: " + sock + " does not exist (pool www in " + pool + " listens there)",
			"service php8.2-fpm start"}},
		{"unit active (running): today's wording", true, unixRoute, fpmAt(sock, false), map[string]string{"php8.2-fpm.service": showRunning}, probeNoSocket, cf{
			"php-fpm is not running: " + sock + " does not exist (pool www in " + pool + " listens there)",
			"systemctl start php8.2-fpm"}},
		{"socket removed under a running unit: today's wording", true, unixRoute, fpmAt(sock, true), map[string]string{"php8.2-fpm.service": showRunning}, probeNoSocket, cf{
			sock + " does not exist although php-fpm (pid 4321) runs pool www for it: the socket file was removed",
			"systemctl restart php8.2-fpm"}},
		{"hung under a running unit: today's wording", true, unixRoute, fpmAt(sock, true), map[string]string{"php8.2-fpm.service": showRunning}, probeNoAnswer, cf{
			"php-fpm pool www at " + sock + " runs (it accepts connections) but did not answer a trivial request within 2s: all 5 children (pm.max_children) are busy or hung",
			"find what the busy children wait for: set request_slowlog_timeout = 5s and slowlog = /var/log/php-fpm-www.slow.log in pool www (" + pool + ") and reload php-fpm: the slow log then has a stack trace of every request running over 5s; if every worker is stuck, `systemctl restart php8.2-fpm` frees them now; raise pm.max_children in " + pool + " only if memory allows, and fastcgi_read_timeout / request_terminate_timeout only if the work is legitimately long"}},
		{"socket missing, unit OOM-killed", true, unixRoute, fpmAt(sock, false), map[string]string{"php8.2-fpm.service": showOOM}, probeNoSocket, cf{
			"php-fpm is not running: php8.2-fpm.service failed at 20:41:07 (the kernel's OOM killer ended it); " + sock + " does not exist (pool www in " + pool + " listens there)",
			"systemctl restart php8.2-fpm; then, before it happens again: lower pm.max_children or memory_limit, or add memory"}},
		{"stale socket, unit killed by SIGKILL", true, unixRoute, fpmAt(sock, false), map[string]string{"php8.2-fpm.service": with(showOOM, "Result", "signal", "ExecMainStatus", "9")}, probeStale, cf{
			"php-fpm is not running: php8.2-fpm.service failed at 20:41:07 (it was killed by SIGKILL); nothing accepts on " + sock + " (connection refused; the socket file is left over)",
			"systemctl restart php8.2-fpm (`journalctl -u php8.2-fpm -n 50` shows why it failed)"}},
		{"TCP pool refused, unit disabled", true, tcpRoute, fpmAt("127.0.0.1:9000", false), map[string]string{"php8.2-fpm.service": showDisabled}, probeRefused, cf{
			"php-fpm is not running: php8.2-fpm.service is stopped and disabled (it does not start at boot); nothing listens on 127.0.0.1:9000 (connection refused)",
			"systemctl enable --now php8.2-fpm"}},
		{"TCP pool refused, restarting over and over", true, tcpRoute, fpmAt("127.0.0.1:9000", false), map[string]string{"php8.2-fpm.service": showLoop}, probeRefused, cf{
			"php-fpm is not running: php8.2-fpm.service is restarting over and over (7 restarts; the last time it exited with status 78, a configuration error); nothing listens on 127.0.0.1:9000 (connection refused)",
			"`journalctl -u php8.2-fpm -n 50` shows why it keeps failing (`php-fpm8.2 -t` checks the configuration); fix that — systemd keeps restarting it, but a restart alone will not hold"}},
		{"package removed, its configuration left; php8.3-fpm installed", true, unixRoute, fpmAt(sock, false, "8.3"),
			map[string]string{"php8.2-fpm.service": showNotFound, "php8.3-fpm.service": with(showRunning, "Id", "php8.3-fpm.service")}, probeNoSocket, cf{
				"php-fpm is not running: there is no unit php8.2-fpm.service on this host (the name is a guess from the path of " + conf + "); " + sock + " does not exist (pool www in " + pool + " listens there)",
				"the units that exist are php8.3-fpm: start the one that should serve this (`systemctl start php8.3-fpm`) and point the web server at its socket, or install php8.2-fpm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Analyzer{opts: Options{Timeout: 2 * time.Second, Since: DefaultSince, CloudflareReadTimeout: DefaultCloudflareReadTimeout},
				now: sdNow, fpms: tt.fpms, systemd: tt.systemd, probes: map[string]*probeOnce{}, units: map[string]*unitState{}}
			for u, fx := range tt.units {
				a.units[u] = mustShow(fx)
			}
			v := a.probeVerdict(tt.rt, tt.rt.targets[0], probeResult{kind: tt.kind}, nil)
			if diff := cmp.Diff(tt.want, cf{v.cause, v.fix}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			checkFixFitsCause(t, v.cause, v.fix)
		})
	}
}
