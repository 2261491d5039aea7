package watch

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/metrics"
	"github.com/cfguard/cfguard/verify/probe"
)

// TestWatchLeavesOutOwnRequests: a real nginx with PHP-FPM down; between
// two rounds of the watch, the full verify's request goes through nginx
// three times (probe.HTTP, as the verify the watch runs sends it) and a
// visitor's once. The watch counts the visitor's line only. The requests
// dial from net/http's goroutines, so the rounds run in a child test inside
// the namespace (nstest.Reexec).
func TestWatchLeavesOutOwnRequests(t *testing.T) {
	const host, port = "example.test", 8080
	if nstest.IsChild(t) {
		dir := os.Getenv("CFGUARD_OWN_DIR")
		m := metrics.New()
		w := New(Config{}, Seams{
			Discover: func(ctx context.Context) (Backends, error) {
				a, _, err := backend.Discover(ctx, backend.Options{NginxConfig: filepath.Join(dir, "nginx.conf"), Timeout: time.Second})
				return a, err
			},
			Follow: func(files []backend.LogFile) Follower { return FollowFiles(files) },
		}, m, nil)
		ctx := context.Background()
		w.Step(ctx) // discovers, and follows nginx's error log from its end
		tg := probe.Target{Hostname: host, Addr: netip.MustParseAddr("127.0.0.1"), Port: port, Scheme: "http", SSLMode: probe.ModeFull}
		for range 3 {
			if o := probe.HTTP(ctx, tg, 5*time.Second); o.Status != 502 || o.Sent.ID == "" {
				t.Fatalf("verify's request: %d %+v, want a marked 502", o.Status, o.Sent)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatalf("a visitor's request: %v", err)
		}
		resp.Body.Close()
		r := w.Step(ctx)
		if len(r.Logs) != 1 || r.Logs[0].Probe != "" {
			t.Errorf("the round's lines = %+v, want the visitor's one", r.Logs)
		}
		want := `
# HELP cfguard_log_events_total Error-log lines the watch classified as a cause of 5xx, as they were written.
# TYPE cfguard_log_events_total counter
cfguard_log_events_total{kind="no such file",source="nginx"} 1
`
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cfguard_log_events_total"); err != nil {
			t.Error(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); strings.Count(string(b), "cfguard-probe.invalid/") != 3 {
			t.Errorf("nginx's log does not hold verify's three marked requests:\n%s", b)
		}
		return
	}
	nstest.RequireRoot(t, "nginx")
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("skipped: nginx is not installed")
	}
	ns := nstest.New(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		os.Chmod(d, 0o755) // the www-data workers reach it
	}
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "index.php"), []byte("<?php echo 'ok';\n"), 0o644)
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`user www-data;
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
        listen 127.0.0.1:%[2]d;
        server_name %[3]s;
        root %[1]s/www;
        index index.php;
        location / { try_files $uri $uri/ /index.php?$args; }
        location ~ \.php$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:%[1]s/php.sock;
        }
    }
}
`, dir, port, host)), 0o644)
	ns.Start("nginx", "-c", conf)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ns.Try("curl", "-s", "-o", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on port %d", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	nstest.Reexec(t, ns, "CFGUARD_OWN_DIR="+dir)
}
