package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// TestVerifyOwnRequest: `cfguard verify` against a real nginx whose PHP-FPM
// is down, on an origin no visitor has reached yet: the first run names
// the culprit from the line its own request caused; after two visitors'
// requests, two more runs in a row say the visitors' count is 2 — each
// run's own line is left out.
func TestVerifyOwnRequest(t *testing.T) {
	nstest.RequireRoot(t, "nginx", "curl")
	origin, peer := nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, peer, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	origin.Run("ip", "route", "add", "default", "via", "192.0.2.2")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		os.Chmod(d, 0o755) // the www-data workers reach it
	}
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "index.php"), []byte("<?php echo 'ok';\n"), 0o644)
	sock := filepath.Join(dir, "php.sock")
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
        listen 80;
        server_name www.example.com;
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
`, dir, sock)), 0o644)
	origin.Start("nginx", "-c", conf)
	visit := func() string {
		out, _ := origin.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-H", "Host: www.example.com", "http://192.0.2.1/")
		return out
	}
	deadline := time.Now().Add(watchWait)
	for visit() != "502" {
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer 502 on 192.0.2.1:80")
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Truncate(filepath.Join(dir, "error.log"), 0) // the readiness check was no visitor
	state := t.TempDir()
	verify := func() report.Path {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := origin.Command(ctx, cfguardBin, "--state-dir", state, "verify", "--hostname", "www.example.com", "--ssl-mode", "flexible",
			"--nginx-config", conf, "--timeout", "3s", "--json")
		cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN=", "NO_COLOR=1")
		out, errOut, _ := runCmd(t, cmd)
		var rep report.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Paths) != 1 {
			t.Fatalf("verify --json: %v\n%s\nstderr: %s", err, out, errOut)
		}
		p := rep.Paths[0]
		t.Logf("%s %d %s\n  cause: %s\n  evidence: %q", p.Hostname, p.Status, p.Stage, p.Cause, p.Evidence)
		if p.OK || p.Status != 502 || p.Stage != report.StageUpstream {
			t.Fatalf("path %+v, want a 502 at the upstream stage", p)
		}
		return p
	}
	own := "nginx logged for verify's own request: 'connect() to unix:" + sock + " failed (2: No such file or directory) while connecting to upstream'"
	if p := verify(); !strings.Contains(p.Cause, own+"; visitors' requests: none in the last 15 minutes") {
		t.Errorf("the first run on a quiet origin: cause %q lacks %q", p.Cause, own)
	}
	visit()
	visit()
	for run := 2; run <= 3; run++ {
		p := verify()
		if !strings.Contains(p.Cause, own+"; visitors' requests: 2 such lines in the last 15 minutes") {
			t.Errorf("run %d: cause %q: want verify's own line and the visitors' 2", run, p.Cause)
		}
		left := fmt.Sprintf("left out of the visitors' counts: %d line", run-1)
		if !strings.Contains(strings.Join(p.Evidence, "\n"), left) {
			t.Errorf("run %d: evidence lacks %q", run, left)
		}
	}
}
