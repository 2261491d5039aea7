package main

// End-to-end test of `cfguard watch`: a real nginx and php-fpm started by
// the test in a network namespace, the watch binary running there too; the
// test kills php-fpm, restarts it, and flushes the ruleset, and reads what
// the watch says on /metrics and in its log. No timing is asserted: every
// wait polls with a bound.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/internal/nstest"
)

// watchWait bounds every wait for the watch to notice something (it checks
// every 200ms in this test).
const watchWait = 30 * time.Second

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type watchSite struct {
	t         *testing.T
	ns        *nstest.NS
	dir       string
	fpm       *exec.Cmd
	sock      string
	nginxConf string
	state     string
}

func (s *watchSite) write(rel, text string) string {
	s.t.Helper()
	p := filepath.Join(s.dir, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *watchSite) startFPM() {
	s.t.Helper()
	s.fpm = s.ns.Start("php-fpm8.2", "-F", "-R", "-y", filepath.Join(s.dir, "php-fpm.conf"))
	deadline := time.Now().Add(watchWait)
	for {
		if _, err := os.Stat(s.sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("php-fpm did not create %s", s.sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killFPM kills the php-fpm the test started (its process group) and
// removes nothing: the socket file is left over, as after a crash.
func (s *watchSite) killFPM() {
	syscall.Kill(-s.fpm.Process.Pid, syscall.SIGKILL)
	s.fpm.Wait()
}

// scrape reads /metrics inside the namespace and returns the value of the
// series whose name and labels match, and whether it exists.
func (s *watchSite) scrape(name string, labels map[string]string) (float64, bool) {
	var val float64
	var found bool
	// curl inside the namespace: net/http would dial from another thread,
	// outside it.
	body, err := s.ns.Try("curl", "-sf", "--max-time", "5", "http://127.0.0.1:9847/metrics")
	if err == nil {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, perr := p.TextToMetricFamilies(strings.NewReader(body))
		if perr != nil {
			s.t.Errorf("/metrics does not parse: %v", perr)
		}
		for _, m := range fams[name].GetMetric() {
			ok := true
			for _, l := range m.GetLabel() {
				if want, has := labels[l.GetName()]; has && want != l.GetValue() {
					ok = false
				}
			}
			if ok {
				found = true
				if m.Gauge != nil {
					val = m.GetGauge().GetValue()
				} else {
					val = m.GetCounter().GetValue()
				}
			}
		}
	}
	if err != nil {
		return 0, false
	}
	return val, found
}

func (s *watchSite) waitMetric(name string, labels map[string]string, want float64, log *lockedBuf) {
	s.t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		if v, ok := s.scrape(name, labels); ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			v, ok := s.scrape(name, labels)
			s.t.Fatalf("%s%v = %v (present %v) after %s, want %v\nwatch log:\n%s", name, labels, v, ok, watchWait, want, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newWatchSite starts php-fpm (pm = static, children) with index.php and
// nginx passing to it on 127.0.0.1:8080, in a namespace of its own. The
// pool is not called www: other tests' verify reads every php-fpm's log it
// finds in /proc, by pool name, and a saturated "www" here would be theirs.
func newWatchSite(t *testing.T, children int, php string) *watchSite {
	nstest.RequireRoot(t, "nginx", "php-fpm8.2", "nft", "curl")
	s := &watchSite{t: t, ns: nstest.New(t), dir: t.TempDir()}
	for _, d := range []string{filepath.Dir(s.dir), s.dir} {
		os.Chmod(d, 0o755) // the www-data workers reach the sockets
	}
	s.sock = filepath.Join(s.dir, "php.sock")
	s.write("www/index.php", php)
	s.write("php-fpm.conf", fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = %[1]s/fpm.log
daemonize = no
[watchtest]
user = www-data
group = www-data
listen = %[2]s
listen.owner = www-data
listen.group = www-data
pm = static
pm.max_children = %[3]d
ping.path = /ping
pm.status_path = /status
`, s.dir, s.sock, children))
	s.nginxConf = s.write("nginx.conf", fmt.Sprintf(`user www-data;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
daemon off;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp-body;
    fastcgi_temp_path %[1]s/tmp-fastcgi;
    proxy_temp_path %[1]s/tmp-proxy;
    uwsgi_temp_path %[1]s/tmp-uwsgi;
    scgi_temp_path %[1]s/tmp-scgi;
    server {
        listen 127.0.0.1:8080;
        server_name example.test;
        root %[1]s/www;
        index index.php;
        location / { try_files $uri $uri/ /index.php?$args; }
        location ~ \.php$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:%[2]s;
        }
    }
}
`, s.dir, s.sock))
	s.startFPM()
	s.ns.Start("nginx", "-c", s.nginxConf)
	s.state = t.TempDir()
	return s
}

// startWatch runs `cfguard watch` in the namespace every 200ms; its log
// goes to the returned buffer, and exited delivers its end.
func (s *watchSite) startWatch(args ...string) (w *exec.Cmd, log *lockedBuf, exited chan error) {
	log = &lockedBuf{}
	w = s.ns.Command(context.Background(), cfguardBin, append([]string{"--state-dir", s.state, "watch", "--interval", "200ms",
		"--nginx-config", s.nginxConf, "--kernel-log", "off"}, args...)...)
	w.Stdout, w.Stderr = log, log
	w.Env = append(os.Environ(), "NOTIFY_SOCKET=", "CFGUARD_RECOVER=") // no systemd here
	if err := w.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- w.Wait() }()
	s.t.Cleanup(func() { w.Process.Kill(); <-exited })
	return w, log, exited
}

func TestWatchSeesFPMDieAndComeBack(t *testing.T) {
	s := newWatchSite(t, 2, "<?php echo 'ok';\n")
	// The guard, from the built-in list, so that a flush has something to take.
	if out, err := s.ns.Try(cfguardBin, "--state-dir", s.state, "restore"); err != nil {
		t.Fatalf("cfguard restore: %v\n%s", err, out)
	}
	w, log, exited := s.startWatch()

	labels := map[string]string{"backend": "unix:" + s.sock}
	s.waitMetric("cfguard_backend_up", labels, 1, log)
	// Two children, one of them serving the status page itself.
	s.waitMetric("cfguard_fpm_idle_processes", labels, 1, log)
	s.waitMetric("cfguard_guard_protected", nil, 1, log)
	s.waitMetric("cfguard_listener_up", map[string]string{"address": "127.0.0.1:8080"}, 1, log)
	if v, ok := s.scrape("process_resident_memory_bytes", nil); !ok || v <= 0 {
		t.Errorf("the watch does not expose its own memory: %v %v", v, ok)
	}

	s.killFPM()
	s.waitMetric("cfguard_backend_up", labels, 0, log)
	s.startFPM()
	s.waitMetric("cfguard_backend_up", labels, 1, log)

	// A new backend in the configuration is watched after a reload (SIGHUP).
	conf, _ := os.ReadFile(s.nginxConf)
	os.WriteFile(s.nginxConf, []byte(strings.Replace(string(conf), "    server {", "    server { listen 127.0.0.1:8081; server_name api.example.test; location / { proxy_pass http://127.0.0.1:9; } }\n    server {", 1)), 0o644)
	w.Process.Signal(syscall.SIGHUP)
	s.waitMetric("cfguard_backend_up", map[string]string{"backend": "127.0.0.1:9"}, 0, log)

	// nft flush ruleset: the table is back from the cache at once.
	s.ns.Run("nft", "flush", "ruleset")
	s.waitMetric("cfguard_guard_restores_total", map[string]string{"result": "ok"}, 1, log)
	if out := s.ns.Run("nft", "list", "tables"); !strings.Contains(out, "table inet cfguard") {
		t.Errorf("after the flush the watch reported a restore, but the tables are %q", out)
	}

	// SIGTERM: a clean, bounded exit.
	w.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("watch exited with %v after SIGTERM\n%s", err, log)
		}
	case <-time.After(watchWait):
		t.Fatalf("watch did not exit within %s of SIGTERM", watchWait)
	}
	out := log.String()
	t.Logf("watch log:\n%s", out)
	for _, want := range []string{"backend is down", "backend answers again", "vanished: put back from the cache", "the guard protects this origin", "configuration again (reload)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the watch log lacks %q", want)
		}
	}
}

// TestWatchSeesHungPool: the only child of the pool is busy with a slow
// page; the watch's probes time out, and after --hung-after of them in a
// row it calls the backend hung (and, with no systemd unit known here, says
// it cannot bring it back).
func TestWatchSeesHungPool(t *testing.T) {
	s := newWatchSite(t, 1, "<?php sleep(60); echo 'slow';\n")
	_, log, _ := s.startWatch("--probe-timeout", "300ms")
	labels := map[string]string{"backend": "unix:" + s.sock}
	s.waitMetric("cfguard_backend_up", labels, 1, log)
	busy := s.ns.Start("curl", "-s", "-o", "/dev/null", "--max-time", "120", "-H", "Host: example.test", "http://127.0.0.1:8080/")
	defer syscall.Kill(-busy.Process.Pid, syscall.SIGKILL)
	s.waitMetric("cfguard_backend_up", labels, 0, log)
	deadline := time.Now().Add(watchWait)
	for {
		v, _ := s.scrape("cfguard_backend_hung_probes", labels)
		if v >= 3 && strings.Contains(log.String(), "it cannot be brought back") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hung probes = %v after %s\nwatch log:\n%s", v, watchWait, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := log.String(); !strings.Contains(out, "backend is hung") || !strings.Contains(out, "no answer within 300ms") {
		t.Errorf("the watch log does not say the backend is hung:\n%s", out)
	}
}

// TestWatchFullVerify: with a token the watch walks every path every
// --paths-every (the API read every --full-every) and exposes them; a
// firewall rule that drops a Cloudflare range turns the paths' metrics to
// 522 at the next walk, and a record added to the zone shows up once the
// cached zone data is read again.
func TestWatchFullVerify(t *testing.T) {
	v := newVerifySite(t)
	s := &watchSite{t: t, ns: v.origin, state: v.state}
	log := &lockedBuf{}
	w := v.origin.Command(context.Background(), cfguardBin, "--state-dir", v.state, "--api-url", v.api.URL,
		"watch", "--interval", "200ms", "--full-every", "2s", "--paths-every", "300ms", "--timeout", "2s", "--kernel-log", "off")
	w.Stdout, w.Stderr = log, log
	w.Env = append(os.Environ(), "NOTIFY_SOCKET=", "CFGUARD_RECOVER=", "CLOUDFLARE_API_TOKEN="+cfapitest.DefaultToken)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Process.Kill(); w.Wait() })
	www := map[string]string{"hostname": "www.example.com", "origin": "192.0.2.1", "port": "80", "scheme": "http", "zone": "example.com"}
	s.waitMetric("cfguard_verify_success", nil, 1, log)
	s.waitMetric("cfguard_path_up", www, 1, log)
	s.waitMetric("cfguard_path_predicted_status", www, 200, log)
	s.waitMetric("cfguard_paths_failing", nil, 0, log)

	rules := filepath.Join(t.TempDir(), "drop.nft")
	os.WriteFile(rules, []byte("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 203.0.113.0/24 tcp dport 80 drop\n\t}\n}\n"), 0o644)
	v.origin.Run("nft", "-f", rules)
	s.waitMetric("cfguard_path_predicted_status", www, 522, log)
	s.waitMetric("cfguard_path_up", www, 0, log)
	s.waitMetric("cfguard_path_stage_info", map[string]string{"hostname": "www.example.com", "stage": "firewall"}, 1, log)
	v.api.AddRecord(v.api.AddZone("example.org", map[string]any{"ssl": "flexible"}), "A", "shop.example.org", "192.0.2.1", true)
	s.waitMetric("cfguard_path_up", map[string]string{"hostname": "shop.example.org", "port": "80"}, 0, log)
	if out := log.String(); !strings.Contains(out, "a path would fail") || strings.Contains(out, cfapitest.DefaultToken) {
		t.Errorf("the watch log does not report the failing path, or shows the token:\n%s", out)
	}
}
