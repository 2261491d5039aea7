package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// Waiting for a server started by a test (readiness, not an assertion).
const startWait = 10 * time.Second

const testHost = "example.test"

var loopback = netip.MustParseAddr("127.0.0.1")

// site is a throwaway nginx / Apache / php-fpm setup in a directory that the
// www-data workers can reach.
type site struct {
	t   *testing.T
	ns  *nstest.NS
	dir string
}

func newSite(t *testing.T, tools ...string) *site {
	nstest.RequireRoot(t, append([]string{"curl"}, tools...)...)
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("skipped: nginx is not installed")
	}
	ns := nstest.New(t)
	dir := t.TempDir()
	// t.TempDir makes /tmp/TestX…/001, mode 0700: open it to the workers.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &site{t: t, ns: ns, dir: dir}
	s.write("www/index.php", "<?php echo 'ok';\n")
	return s
}

func (s *site) path(rel string) string { return filepath.Join(s.dir, rel) }

func (s *site) write(rel, text string) string {
	s.t.Helper()
	p := s.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// fpmConf writes a php-fpm.conf with one pool "www"; extra lines go into
// the pool.
func (s *site) fpmConf(listen string, extra ...string) string {
	return s.write("php-fpm.conf", fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = %[1]s/fpm.log
daemonize = no
log_level = notice

[www]
user = www-data
group = www-data
listen = %[2]s
listen.owner = www-data
listen.group = www-data
pm = dynamic
pm.max_children = 5
pm.start_servers = 1
pm.min_spare_servers = 1
pm.max_spare_servers = 2
ping.path = /ping
%[3]s
`, s.dir, listen, strings.Join(extra, "\n")))
}

func (s *site) startFPM(conf, waitFor string) {
	s.t.Helper()
	if _, err := exec.LookPath("php-fpm8.2"); err != nil {
		s.t.Skip("skipped: php-fpm8.2 is not installed")
	}
	s.ns.Start("php-fpm8.2", "-F", "-R", "-y", conf)
	waitFile(s.t, waitFor)
}

// nginxConf writes an nginx.conf whose one server passes "/" (via
// index.php) to the location body given.
func (s *site) nginxConf(port int, phpLocation string, extraHTTP ...string) string {
	return s.write("nginx.conf", fmt.Sprintf(`user www-data;
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
    %[4]s
    server {
        listen 127.0.0.1:%[2]d default_server;
        server_name _;
        return 404;
    }
    server {
        listen 127.0.0.1:%[2]d;
        server_name %[5]s www.%[5]s;
        root %[1]s/www;
        index index.php index.html;
        location / {
            try_files $uri $uri/ /index.php?$args;
        }
        location ~ \.php$ {
            %[3]s
        }
    }
}
`, s.dir, port, phpLocation, strings.Join(extraHTTP, "\n    "), testHost))
}

func fastcgiLocation(sock string, extra ...string) string {
	return fmt.Sprintf(`include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:%s;
            %s`, sock, strings.Join(extra, "\n            "))
}

func (s *site) startNginx(conf string, port int) {
	s.t.Helper()
	s.ns.Start("nginx", "-c", conf)
	s.waitPort(port)
}

func (s *site) waitPort(port int) {
	s.t.Helper()
	deadline := time.Now().Add(startWait)
	for {
		err := s.ns.Do(func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nothing listens on port %d after %s: %v", port, startWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(startWait)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", p, startWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches / with the test Host inside the namespace and returns the status.
func (s *site) get(port int) int {
	s.t.Helper()
	out, _ := s.ns.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
		"-H", "Host: "+testHost, fmt.Sprintf("http://127.0.0.1:%d/", port))
	var code int
	fmt.Sscan(out, &code)
	return code
}

// analyze discovers with the given options and analyzes the test path,
// inside the namespace (TCP backends live there).
func (s *site) analyze(opts Options, port, status int) report.Outcome {
	s.t.Helper()
	opts.Timeout = 2 * time.Second
	var out report.Outcome
	err := s.ns.Do(func() error {
		a, findings, err := Discover(context.Background(), opts)
		if err != nil {
			return err
		}
		for _, f := range findings {
			s.t.Logf("finding: %s: %s", f.Severity, f.Message)
		}
		out = a.Analyze(context.Background(), loopback, port, testHost, "http", status, probemark.Mark{})
		return nil
	})
	if err != nil {
		s.t.Fatalf("Discover: %v", err)
	}
	s.t.Logf("outcome: fail=%v status=%d\n  cause: %s\n  fix: %s\n  evidence: %q\n  warnings: %q", out.Fail, out.Status, out.Cause, out.Fix, out.Evidence, out.Warnings)
	return out
}

func wantFail(t *testing.T, out report.Outcome, status int, causeHas ...string) {
	t.Helper()
	if !out.Fail || out.Status != status || out.Stage != report.StageUpstream {
		t.Errorf("got fail=%v status=%d stage=%s, want fail status %d stage upstream", out.Fail, out.Status, out.Stage, status)
	}
	for _, w := range causeHas {
		if !strings.Contains(out.Cause, w) {
			t.Errorf("cause %q does not name %q", out.Cause, w)
		}
	}
}
