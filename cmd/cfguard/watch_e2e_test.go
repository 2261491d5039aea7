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
	t    *testing.T
	ns   *nstest.NS
	dir  string
	fpm  *exec.Cmd
	sock string
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

func TestWatchSeesFPMDieAndComeBack(t *testing.T) {
	nstest.RequireRoot(t, "nginx", "php-fpm8.2", "nft")
	s := &watchSite{t: t, ns: nstest.New(t), dir: t.TempDir()}
	for _, d := range []string{filepath.Dir(s.dir), s.dir} {
		os.Chmod(d, 0o755) // the www-data workers reach the sockets
	}
	s.sock = filepath.Join(s.dir, "php.sock")
	s.write("www/index.php", "<?php echo 'ok';\n")
	s.write("php-fpm.conf", fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = %[1]s/fpm.log
daemonize = no
[www]
user = www-data
group = www-data
listen = %[2]s
listen.owner = www-data
listen.group = www-data
pm = static
pm.max_children = 2
ping.path = /ping
pm.status_path = /status
`, s.dir, s.sock))
	nginxConf := s.write("nginx.conf", fmt.Sprintf(`user www-data;
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
	s.ns.Start("nginx", "-c", nginxConf)

	// The guard, from the built-in list, so that a flush has something to take.
	state := t.TempDir()
	if out, err := s.ns.Try(cfguardBin, "--state-dir", state, "restore"); err != nil {
		t.Fatalf("cfguard restore: %v\n%s", err, out)
	}

	log := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.ns.Command(ctx, cfguardBin, "--state-dir", state, "watch", "--interval", "200ms",
		"--nginx-config", nginxConf, "--kernel-log", "off")
	w.Stdout, w.Stderr = log, log
	w.Env = append(os.Environ(), "NOTIFY_SOCKET=") // no systemd here
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w.Wait() }()
	t.Cleanup(func() { w.Process.Kill(); <-exited })

	labels := map[string]string{"backend": "unix:" + s.sock}
	s.waitMetric("cfguard_backend_up", labels, 1, log)
	// Two children, one of them serving the status page itself.
	s.waitMetric("cfguard_fpm_idle_processes", labels, 1, log)
	s.waitMetric("cfguard_guard_protected", nil, 1, log)
	s.waitMetric("cfguard_listener_up", map[string]string{"address": "127.0.0.1:8080"}, 1, log)

	s.killFPM()
	s.waitMetric("cfguard_backend_up", labels, 0, log)
	s.startFPM()
	s.waitMetric("cfguard_backend_up", labels, 1, log)

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
		exited <- err
		if err != nil {
			t.Errorf("watch exited with %v after SIGTERM\n%s", err, log)
		}
	case <-time.After(watchWait):
		t.Fatalf("watch did not exit within %s of SIGTERM", watchWait)
	}
	out := log.String()
	t.Logf("watch log:\n%s", out)
	for _, want := range []string{"backend is down", "backend answers again", "vanished: put back from the cache", "the guard protects this origin"} {
		if !strings.Contains(out, want) {
			t.Errorf("the watch log lacks %q", want)
		}
	}
}
