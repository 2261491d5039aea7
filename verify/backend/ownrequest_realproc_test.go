package backend

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
)

// These tests run verify's own request (probe.HTTP, the http stage) through
// a real nginx or Apache in a namespace, then Analyze: the line the web
// server logged for that request is read back and quoted, and the
// visitors' counts leave verify's requests out, run after run. The probe
// dials from net/http's goroutines, so the runs happen in a child test
// started inside the namespace (nstest.Reexec).

const ownEnv = "CFGUARD_OWN_"

// ownRun is one verify run in the child: discovery, the http stage's
// request, the analysis of its answer.
func ownRun(t *testing.T, opts Options, port int) (report.Outcome, report.Outcome) {
	t.Helper()
	ctx := context.Background()
	opts.Timeout = 2 * time.Second
	a, _, err := Discover(ctx, opts)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	h := probe.HTTP(ctx, probe.Target{Hostname: testHost, Addr: loopback, Port: port, Scheme: "http", SSLMode: probe.ModeFull}, 5*time.Second)
	out := a.Analyze(ctx, loopback, port, testHost, "http", h.Status, h.Sent)
	t.Logf("http: %d (%s)\nupstream: fail=%v status=%d\n  cause: %s\n  evidence: %q\n  warnings: %q", h.Status, h.Sent.ID, out.Fail, out.Status, out.Cause, out.Evidence, out.Warnings)
	return h, out
}

// visit is a visitor's GET /, without verify's mark.
func visit(t *testing.T, port int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = testHost
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("a visitor's request: %v", err)
	}
	resp.Body.Close()
}

func has(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestOwnRequestNginxFPMDown: on a quiet origin with PHP-FPM down, the
// first run names the culprit from the line of its own request; then two
// visitors' requests fail, and the visitors' count stays 2 over two more
// runs, each of which adds a line of its own.
func TestOwnRequestNginxFPMDown(t *testing.T) {
	if nstest.IsChild(t) {
		dir := os.Getenv(ownEnv + "DIR")
		sock := dir + "/php.sock"
		opts := Options{NginxConfig: dir + "/nginx.conf", FPMConfigs: []string{dir + "/php-fpm.conf"}}
		own := "nginx logged for verify's own request: 'connect() to unix:" + sock + " failed (2: No such file or directory) while connecting to upstream'"

		h, out := ownRun(t, opts, 8080)
		if h.Status != 502 || !out.Fail {
			t.Fatalf("got http %d, upstream fail=%v; want 502 and a culprit", h.Status, out.Fail)
		}
		has(t, "the first run's cause", out.Cause, "php-fpm is not running", own+"; visitors' requests: none in the last 15 minutes")
		has(t, "the first run's evidence", strings.Join(out.Evidence, "\n"), "nginx logged for verify's own request (probe "+h.Sent.ID+"): connect() to unix:"+sock)

		visit(t, 8080)
		visit(t, 8080)
		for run := 2; run <= 3; run++ {
			_, out := ownRun(t, opts, 8080)
			has(t, fmt.Sprintf("run %d's cause", run), out.Cause, own+"; visitors' requests: 2 such lines in the last 15 minutes")
			has(t, fmt.Sprintf("run %d's evidence", run), strings.Join(out.Evidence, "\n"),
				"visitors' requests: nginx, 2 times in the last 15 minutes",
				"left out of the visitors' counts: "+lineCount(run-1)+" about verify's own earlier requests")
		}
		return
	}
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.fpmConf(sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock)), 8080)
	nstest.Reexec(t, s.ns, ownEnv+"DIR="+s.dir)
}

// TestOwnRequestNginxHeaderTooBig: the backend answers the analysis' own
// probe, so only the log can say why GET / fails; on a quiet origin that is
// the line of verify's own request (before, the first run named no
// culprit).
func TestOwnRequestNginxHeaderTooBig(t *testing.T) {
	if nstest.IsChild(t) {
		dir := os.Getenv(ownEnv + "DIR")
		h, out := ownRun(t, Options{NginxConfig: dir + "/nginx.conf"}, 8080)
		if h.Status != 502 || !out.Fail {
			t.Fatalf("got http %d, upstream fail=%v; want 502 and a culprit", h.Status, out.Fail)
		}
		has(t, "the cause", out.Cause, "fastcgi_buffer_size", "nginx logged for verify's own request: 'upstream sent too big header while reading response header from upstream'; visitors' requests: none")
		return
	}
	s := newSite(t, "php-fpm8.2")
	sock := s.path("php.sock")
	s.write("www/index.php", "<?php header('X-Big: ' . str_repeat('a', 8000)); echo 'big';\n")
	s.startFPM(s.fpmConf(sock), sock)
	s.startNginx(s.nginxConf(8080, fastcgiLocation(sock, "fastcgi_buffer_size 4k;")), 8080)
	nstest.Reexec(t, s.ns, ownEnv+"DIR="+s.dir)
}

// TestOwnRequestApacheFPMDown: Apache's AH02454 names no request; it is
// verify's by the AH01079 after it on its thread, which carries the
// referer, or, with an ErrorLogFormat that drops the referer, the client
// address the probe sent from.
func TestOwnRequestApacheFPMDown(t *testing.T) {
	for _, format := range []string{"default", "no referer"} {
		t.Run(strings.ReplaceAll(format, " ", "_"), func(t *testing.T) {
			if nstest.IsChild(t) {
				dir := os.Getenv(ownEnv + "DIR")
				port, _ := strconv.Atoi(os.Getenv(ownEnv + "PORT"))
				opts := Options{ApacheConfig: dir + "/apache2.conf"}
				h, out := ownRun(t, opts, port)
				if b, _ := os.ReadFile(dir + "/apache-error.log"); testing.Verbose() {
					t.Logf("Apache's error log:\n%s", b)
				}
				if h.Status != 503 || !out.Fail {
					t.Fatalf("got http %d, upstream fail=%v; want 503 and a culprit", h.Status, out.Fail)
				}
				has(t, "the cause", out.Cause, "Apache logged for verify's own request: '(2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket "+dir+"/php.sock", "visitors' requests: none")
				has(t, "the evidence", strings.Join(out.Evidence, "\n"), "Apache logged for verify's own request (probe "+h.Sent.ID+"): AH01079: failed to make connection to backend")
				visit(t, port)
				_, out = ownRun(t, opts, port)
				// Without the referer nothing marks the first run's lines:
				// only the request a run sends itself is found (by its port).
				want := map[string]string{"default": "visitors' requests: 1 such line", "no referer": "visitors' requests: 2 such lines"}[format]
				has(t, "the second run's cause", out.Cause, want)
				return
			}
			s := newSite(t, "apache2")
			port := 8081
			logFormat := ""
			if format == "no referer" {
				port, logFormat = 8082, `ErrorLogFormat "[%{u}t] [%-m:%l] [pid %P:tid %T] %7F: %E: [client\ %a] %M"`
			}
			s.startApacheFCGI(port, s.path("php.sock"), logFormat)
			nstest.Reexec(t, s.ns, ownEnv+"DIR="+s.dir, ownEnv+"PORT="+strconv.Itoa(port))
		})
	}
}

// startApacheFCGI starts Apache passing .php to PHP-FPM at sock.
func (s *site) startApacheFCGI(port int, sock string, extra string) {
	s.t.Helper()
	const mods = "/usr/lib/apache2/modules"
	if _, err := os.Stat(mods + "/mod_proxy_fcgi.so"); err != nil {
		s.t.Skip("skipped: mod_proxy_fcgi is not installed")
	}
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
ServerName %[4]s
Listen 127.0.0.1:%[5]d
ErrorLog %[1]s/apache-error.log
%[6]s
LogLevel warn
<Directory %[1]s/www>
    Require all granted
</Directory>
<VirtualHost *:%[5]d>
    ServerName %[4]s
    DocumentRoot %[1]s/www
    DirectoryIndex index.php
    <FilesMatch "\.php$">
        SetHandler "proxy:unix:%[3]s|fcgi://localhost"
    </FilesMatch>
</VirtualHost>
`, s.dir, mods, sock, testHost, port, extra))
	s.ns.Start("apache2", "-f", conf, "-DFOREGROUND")
	s.waitPort(port)
}
