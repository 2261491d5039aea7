package backend

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/fastcgi"
)

func TestNginxFPMStopped(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	fpmConf := s.fpmConf(sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock)), 8080)
	code := s.get(8080)
	if code != 502 {
		t.Fatalf("nginx answered %d, want 502", code)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf"), FPMConfigs: []string{fpmConf}}, 8080, code)
	wantFail(t, out, 502, "php-fpm is not running", sock, "No such file or directory")
	if !strings.Contains(out.Fix, "start") {
		t.Errorf("fix %q does not start php-fpm", out.Fix)
	}
}

func TestNginxFPMWrongSocketPath(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	nginxSock, fpmSock := s.path("php8.1-fpm.sock"), s.path("php8.2-fpm.sock")
	s.startFPM(s.fpmConf(fpmSock), fpmSock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(nginxSock)), 8080)
	code := s.get(8080)
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, code)
	wantFail(t, out, 502, nginxSock, fpmSock)
}

func TestNginxFPMSocketPermissions(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.startFPM(s.fpmConf(sock, "listen.owner = root", "listen.group = root", "listen.mode = 0660"), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock)), 8080)
	code := s.get(8080)
	if code != 502 {
		t.Fatalf("nginx answered %d, want 502", code)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, code)
	wantFail(t, out, 502, "www-data", "root:root", "0660", "Permission denied")
}

func TestNginxFPMSaturated(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.write("www/index.php", "<?php usleep(2500000); echo 'slow';\n")
	s.startFPM(s.fpmConf(sock, "pm.max_children = 1", "pm.max_spare_servers = 1", "listen.backlog = 1"), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock, "fastcgi_read_timeout 30s;")), 8080)
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = s.get(8080) }()
	}
	wg.Wait()
	t.Logf("concurrent answers: %v", codes)
	worst := 200
	for _, c := range codes {
		if c >= 500 {
			worst = c
		}
	}
	if worst != 502 {
		t.Fatalf("no request got 502 from a saturated pool: %v", codes)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, worst)
	wantFail(t, out, 502, "saturated", "Resource temporarily unavailable")
	var sawMax bool
	for _, w := range out.Warnings {
		sawMax = sawMax || strings.Contains(w, "pm.max_children")
	}
	if !sawMax {
		t.Errorf("no pm.max_children warning in %q", out.Warnings)
	}
}

func TestNginxFPMSlowerThanReadTimeout(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.write("www/index.php", "<?php sleep(3); echo 'slow';\n")
	s.startFPM(s.fpmConf(sock), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock, "fastcgi_read_timeout 1s;")), 8080)
	code := s.get(8080)
	if code != 504 {
		t.Fatalf("nginx answered %d, want 504", code)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, code)
	wantFail(t, out, 504, "fastcgi_read_timeout", "upstream timed out")
}

func TestNginxFPMHeaderTooBig(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.write("www/index.php", "<?php header('X-Big: ' . str_repeat('a', 8000)); echo 'big';\n")
	s.startFPM(s.fpmConf(sock), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock, "fastcgi_buffer_size 4k;")), 8080)
	code := s.get(8080)
	if code != 502 {
		t.Fatalf("nginx answered %d, want 502", code)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, code)
	wantFail(t, out, 502, "fastcgi_buffer_size", "too big header")
}

func TestNginxFPMHealthy(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.startFPM(s.fpmConf(sock), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock)), 8080)
	code := s.get(8080)
	if code != 200 {
		t.Fatalf("nginx answered %d, want 200", code)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, code)
	if out.Fail || len(out.Warnings) > 0 {
		t.Errorf("a healthy backend failed or warned: %+v", out)
	}
	if !strings.Contains(strings.Join(out.Evidence, "\n"), `"pong"`) {
		t.Errorf("evidence does not show the ping answer: %q", out.Evidence)
	}
}

func TestNginxHTTPBackendDown(t *testing.T) {
	s := newSite(t)
	var ln net.Listener
	if err := s.ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })}
	go srv.Serve(ln)
	addr := ln.Addr().String()
	conf := s.nginxConf(8080, "proxy_pass http://"+addr+";")
	// "/" itself goes to the proxy in this variant.
	text, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(text), "try_files $uri $uri/ /index.php?$args;", "proxy_pass http://"+addr+";", 1)), 0o644)
	s.startNginx(conf, 8080)
	if code := s.get(8080); code != 200 {
		t.Fatalf("with the backend up nginx answered %d, want 200", code)
	}
	out := s.analyze(Options{NginxConfig: conf}, 8080, 200)
	if out.Fail {
		t.Errorf("backend up: %+v", out)
	}
	srv.Close()
	code := s.get(8080)
	if code != 502 {
		t.Fatalf("with the backend down nginx answered %d, want 502", code)
	}
	out = s.analyze(Options{NginxConfig: conf}, 8080, code)
	wantFail(t, out, 502, addr, "connection refused", "111: Connection refused")
}

func TestApacheFPMDown(t *testing.T) {
	s := newSite(t, "apache2")
	const mods = "/usr/lib/apache2/modules"
	if _, err := os.Stat(mods + "/mod_proxy_fcgi.so"); err != nil {
		t.Skip("skipped: mod_proxy_fcgi is not installed")
	}
	sock := s.path("php.sock")
	conf := s.write("apache2.conf", fmt.Sprintf(`ServerRoot %[1]s
Mutex file:%[1]s default
PidFile %[1]s/apache.pid
DefaultRuntimeDir %[1]s
LoadModule mpm_event_module %[2]s/mod_mpm_event.so
LoadModule authz_core_module %[2]s/mod_authz_core.so
LoadModule dir_module %[2]s/mod_dir.so
LoadModule proxy_module %[2]s/mod_proxy.so
LoadModule proxy_fcgi_module %[2]s/mod_proxy_fcgi.so
User www-data
Group www-data
Listen 127.0.0.1:8081
ErrorLog %[1]s/apache-error.log
LogLevel warn
<Directory %[1]s/www>
    Require all granted
</Directory>
<VirtualHost *:8081>
    ServerName %[4]s
    DocumentRoot %[1]s/www
    DirectoryIndex index.php
    <FilesMatch "\.php$">
        SetHandler "proxy:unix:%[3]s|fcgi://localhost"
    </FilesMatch>
</VirtualHost>
`, s.dir, mods, sock, testHost))
	s.ns.Start("apache2", "-f", conf, "-DFOREGROUND")
	s.waitPort(8081)
	code := s.get(8081)
	if code != 503 {
		t.Fatalf("Apache answered %d, want 503", code)
	}
	out := s.analyze(Options{ApacheConfig: conf}, 8081, code)
	wantFail(t, out, 503, sock, "AH02454")
	// The words are Apache's: its SetHandler line, never an nginx directive.
	if m := nginxWords.FindString(strings.Join(append([]string{out.Cause, out.Fix}, out.Warnings...), "\n")); m != "" {
		t.Errorf("an Apache outcome says %q: %+v", m, out)
	}
	if !strings.Contains(strings.Join(out.Evidence, "\n"), `SetHandler proxy:unix:`+sock) {
		t.Errorf("evidence %q does not name the vhost's SetHandler", out.Evidence)
	}
}

// TestNginxHTTPBackendHung: a backend that accepts connections and never
// answers is running — the fix finds what it waits for, it does not start
// it.
func TestNginxHTTPBackendHung(t *testing.T) {
	s := newSite(t)
	var ln net.Listener
	if err := s.ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(release); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); <-release }() // reads nothing, answers nothing
		}
	}()
	addr := ln.Addr().String()
	conf := s.nginxConf(8080, "proxy_pass http://"+addr+";")
	text, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(text), "try_files $uri $uri/ /index.php?$args;", "proxy_pass http://"+addr+"; proxy_read_timeout 1s;", 1)), 0o644)
	s.startNginx(conf, 8080)
	code := s.get(8080)
	if code != 504 {
		t.Fatalf("nginx answered %d, want 504", code)
	}
	out := s.analyze(Options{NginxConfig: conf}, 8080, code)
	wantFail(t, out, 504, "the backend at "+addr+" runs", "busy or hung")
	for _, w := range []string{"find what the backend at " + addr + " waits for", "restart the service that listens on " + addr, "raise proxy_read_timeout only if the work is legitimately long"} {
		if !strings.Contains(out.Fix, w) {
			t.Errorf("fix %q lacks %q", out.Fix, w)
		}
	}
	if startVerb.MatchString(out.Fix) {
		t.Errorf("fix %q starts a running backend", out.Fix)
	}
}

// TestNginxFPMStatusPage: a pool with pm.status_path, driven to
// pm.max_children by concurrent requests through nginx. Its status page is
// read over FastCGI (listen queue, max children reached), and the pool's
// saturation shows as a warning from the status page even with the FPM log
// emptied.
func TestNginxFPMStatusPage(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.write("www/index.php", "<?php usleep(1200000); echo 'slow';\n")
	s.startFPM(s.fpmConf(sock, "pm.max_children = 1", "pm.max_spare_servers = 1", "pm.status_path = /status"), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock, "fastcgi_read_timeout 30s;")), 8080)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = s.get(8080) }()
	}
	wg.Wait()
	t.Logf("concurrent answers: %v", codes)

	// The raw page, as php-fpm 8.2 writes it, and what the probe reads of it.
	dial := func() (net.Conn, probeResult) { return dialUnix(context.Background(), sock, startWait) }
	conn, _ := dial()
	if conn == nil {
		t.Fatalf("cannot connect to %s", sock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	raw, err := fastcgi.Do(ctx, conn, fastcgi.Params("/status", "/nonexistent", testHost))
	conn.Close()
	if err != nil || raw.Status != http.StatusOK {
		t.Fatalf("status page: %v %+v", err, raw)
	}
	body := string(raw.Body)
	t.Logf("status page:\n%s", body)
	field := func(name string) int {
		for _, line := range strings.Split(body, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == name {
				var n int
				fmt.Sscan(strings.TrimSpace(v), &n)
				return n
			}
		}
		t.Fatalf("the status page has no %q line", name)
		return 0
	}
	want := fpmStatus{listenQueue: field("listen queue"), maxListenQueue: field("max listen queue"), maxChildrenReached: field("max children reached"),
		active: field("active processes"), total: field("total processes"), slow: field("slow requests"),
		idle: field("idle processes"), listenQueueLen: field("listen queue len")}
	if want.maxChildrenReached < 1 {
		t.Fatalf("max children reached = %d after %d concurrent requests on one child", want.maxChildrenReached, len(codes))
	}
	res := probeFastCGI(context.Background(), dial, "/ping", "pong", "/status", "", testHost, startWait)
	if res.fpm == nil {
		t.Fatalf("the probe did not read the status page: %+v", res)
	}
	if diff := cmp.Diff(want, *res.fpm, cmp.AllowUnexported(fpmStatus{})); diff != "" {
		t.Errorf("status page (-raw +probe)\n%s", diff)
	}

	// Without the log, the warning comes from the status page.
	if err := os.Truncate(s.path("fpm.log"), 0); err != nil {
		t.Fatal(err)
	}
	out := s.analyze(Options{NginxConfig: s.path("nginx.conf")}, 8080, 200)
	if out.Fail {
		t.Errorf("a pool that answers failed the path: %+v", out)
	}
	var got []string
	for _, w := range out.Warnings {
		if strings.Contains(w, "pm.max_children") {
			got = append(got, w)
		}
	}
	wantWarn := fmt.Sprintf("unix:%s: the pool has reached pm.max_children %s since it started (status page)", sock, times(res.fpm.maxChildrenReached))
	if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), wantWarn) {
		t.Errorf("warnings %q lack %q", out.Warnings, wantWarn)
	}
}

// TestWatchBackendsAndProbe: the watch's view of a real nginx + php-fpm:
// Backends names the pool's socket, its unit and config test; Probe says up,
// then down once php-fpm is stopped.
func TestWatchBackendsAndProbe(t *testing.T) {
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	if _, err := exec.LookPath("php-fpm8.2"); err != nil {
		t.Skip("skipped: php-fpm8.2 is not installed")
	}
	fpmCmd := s.ns.Start("php-fpm8.2", "-F", "-R", "-y", s.fpmConf(sock, "pm.status_path = /status"))
	waitFile(t, sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock)), 8080)
	var bs []Watched
	var webs []Web
	var a *Analyzer
	err := s.ns.Do(func() error {
		var err error
		a, _, err = Discover(context.Background(), Options{NginxConfig: s.path("nginx.conf"), FPMConfigs: []string{s.path("php-fpm.conf")}, Timeout: 2 * time.Second})
		if err != nil {
			return err
		}
		bs, webs = a.Backends(), a.Webs()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 {
		t.Fatalf("Backends = %+v, want one", bs)
	}
	b := bs[0]
	got := []string{b.Web, b.Module, b.Target, b.Pool, b.Host}
	if diff := cmp.Diff([]string{"nginx", "fastcgi", "unix:" + sock, "www", testHost}, got); diff != "" {
		t.Errorf("backend (-want +got)\n%s", diff)
	}
	c := a.Probe(context.Background(), b)
	if c.State != StateUp || c.Pool == nil || c.Pool.Total < 1 {
		t.Fatalf("Probe of a running pool = %+v (pool %+v)", c, c.Pool)
	}
	if len(a.LogFiles()) < 2 {
		t.Errorf("LogFiles = %+v, want nginx's and php-fpm's", a.LogFiles())
	}
	// Only the test's nginx is asserted: a web server another test starts at
	// the same time may be visible too.
	var ours *Web
	for i, w := range webs {
		if w.Kind == "nginx" && len(w.ConfigTest) > 0 && w.ConfigTest[len(w.ConfigTest)-1] == s.path("nginx.conf") {
			ours = &webs[i]
		}
	}
	if ours == nil || len(ours.Listens) != 1 || ours.Listens[0].String() != "127.0.0.1:8080" || !ours.Running {
		t.Errorf("Webs = %+v, want the test's nginx on 127.0.0.1:8080", webs)
	}
	syscall.Kill(-fpmCmd.Process.Pid, syscall.SIGKILL) // the process group the test started
	fpmCmd.Wait()
	deadline := time.Now().Add(startWait)
	for c.State == StateUp && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		c = a.Probe(context.Background(), b)
	}
	if c.State != StateDown {
		t.Errorf("Probe of a stopped pool = %+v, want down", c)
	}
}
