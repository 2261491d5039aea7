package probe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// The origin namespace: nginx on 192.0.2.1 and [2001:db8:1::1] with one
// TLS server block per scenario (chosen by SNI), and scenario addresses
// 192.0.2.3–.7; small Go servers on 192.0.2.1:8081–8084; a peer namespace
// at 192.0.2.2 (the default gateway, and a server that is "elsewhere").
const nginxConf = `
worker_processes 1;
error_log {{DIR}}/error.log;
pid {{DIR}}/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path {{DIR}}/body;
	proxy_temp_path {{DIR}}/proxy;
	fastcgi_temp_path {{DIR}}/fastcgi;
	uwsgi_temp_path {{DIR}}/uwsgi;
	scgi_temp_path {{DIR}}/scgi;
	default_type text/plain;
	ssl_protocols TLSv1.2 TLSv1.3;

	server {
		listen 192.0.2.1:80 default_server; listen [2001:db8:1::1]:80 default_server;
		server_name www.example.com;
		return 200 "ok\n";
	}
	server {
		listen 192.0.2.1:80;
		server_name flex.example.com;
		return 301 https://$host$request_uri;
	}
	server {
		listen 192.0.2.1:443 ssl default_server; listen [2001:db8:1::1]:443 ssl default_server;
		server_name www.example.com;
		ssl_certificate {{DIR}}/good.pem; ssl_certificate_key {{DIR}}/good.key;
		return 200 "ok\n";
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name bad.example.com;
		ssl_certificate {{DIR}}/good.pem; ssl_certificate_key {{DIR}}/good.key;
		location / { proxy_pass http://127.0.0.1:9; }
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name slow.example.com;
		ssl_certificate {{DIR}}/good.pem; ssl_certificate_key {{DIR}}/good.key;
		location / { proxy_pass http://127.0.0.1:9001; proxy_read_timeout 300s; }
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name old.example.com;
		ssl_certificate {{DIR}}/expired.pem; ssl_certificate_key {{DIR}}/expired.key;
		return 200 "ok\n";
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name wrong.example.com;
		ssl_certificate {{DIR}}/wrong.pem; ssl_certificate_key {{DIR}}/wrong.key;
		return 200 "ok\n";
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name self.example.com;
		ssl_certificate {{DIR}}/self.pem; ssl_certificate_key {{DIR}}/self.key;
		return 200 "ok\n";
	}
	server {
		listen 192.0.2.1:443 ssl;
		server_name soon.example.com;
		ssl_certificate {{DIR}}/soon.pem; ssl_certificate_key {{DIR}}/soon.key;
		return 200 "ok\n";
	}
	# plain HTTP on 443
	server { listen 192.0.2.3:443; listen 192.0.2.3:80; return 200 "plain\n"; }
	# only port 80
	server { listen 192.0.2.4:80; return 200 "eighty\n"; }
	# TLS 1.2 with CHACHA20 only: nothing in common with Cloudflare
	server {
		listen 192.0.2.5:443 ssl;
		ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-CHACHA20-POLY1305;
		ssl_certificate {{DIR}}/good.pem; ssl_certificate_key {{DIR}}/good.key;
		return 200 "ok\n";
	}
	# no certificate for any name
	server { listen 192.0.2.6:443 ssl default_server; ssl_reject_handshake on; }
	# client certificate demanded
	server {
		listen 192.0.2.7:443 ssl;
		ssl_certificate {{DIR}}/good.pem; ssl_certificate_key {{DIR}}/good.key;
		ssl_client_certificate {{DIR}}/ca.pem; ssl_verify_client on;
		return 200 "ok\n";
	}
}
`

// TestOrigin walks the origin-side stages against real nginx in a
// namespace. The parent sets the namespace up; the rows run in a child of
// the test binary inside it (nstest.Reexec), then again once nginx is
// stopped.
func TestOrigin(t *testing.T) {
	if nstest.IsChild(t) {
		originRows(t, os.Getenv("PROBE_PHASE"))
		return
	}
	nstest.RequireRoot(t, "nginx")
	origin, peer := nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, peer,
		[]string{"192.0.2.1/24", "192.0.2.3/24", "192.0.2.4/24", "192.0.2.5/24", "192.0.2.6/24", "192.0.2.7/24", "2001:db8:1::1/64"},
		[]string{"192.0.2.2/24", "2001:db8:1::2/64"})
	origin.Run("ip", "route", "add", "default", "via", "192.0.2.2")
	origin.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::2")

	dir := t.TempDir()
	now := time.Now()
	day := 24 * time.Hour
	ca := newTestCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.cert.Raw)
	ca.issue(t, "www.example.com", []string{"www.example.com", "bad.example.com", "slow.example.com", "flex.example.com"}, now.Add(-day), now.Add(90*day)).write(t, dir, "good")
	expired := ca.issue(t, "old.example.com", []string{"old.example.com"}, now.Add(-90*day), now.Add(-2*day))
	expired.write(t, dir, "expired")
	ca.issue(t, "a.example", []string{"a.example", "b.example"}, now.Add(-day), now.Add(90*day)).write(t, dir, "wrong")
	(*testCA)(nil).issue(t, "self.example.com", []string{"self.example.com"}, now.Add(-day), now.Add(90*day)).write(t, dir, "self")
	soon := ca.issue(t, "soon.example.com", []string{"soon.example.com"}, now.Add(-80*day), now.Add(5*day+time.Hour))
	soon.write(t, dir, "soon")

	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(nginxConf, "{{DIR}}", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	nginx := startNginx(t, origin, dir, conf)

	// Go servers inside the origin namespace.
	serve(t, origin, "192.0.2.1:8081", bigHeaders)
	serve(t, origin, "192.0.2.1:8082", func(c net.Conn) { readRequest(c) })                                             // empty reply
	serve(t, origin, "192.0.2.1:8083", func(c net.Conn) { readRequest(c); c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) }) // garbage
	serve(t, origin, "192.0.2.1:8084", func(c net.Conn) { readRequest(c); c.(*net.TCPConn).SetLinger(0) })              // reset
	hold := make(chan struct{})
	serve(t, origin, "127.0.0.1:9001", func(c net.Conn) { readRequest(c); <-hold }) // a backend that never answers
	t.Cleanup(func() { close(hold) })                                               // runs before serve's cleanup waits
	serve(t, peer, "192.0.2.2:443", func(net.Conn) {})

	env := []string{
		"SSL_CERT_FILE=" + filepath.Join(dir, "ca.pem"), "SSL_CERT_DIR=" + dir + "/none",
		"PROBE_EXPIRED_ON=" + expired.cert.NotAfter.UTC().Format(time.DateOnly),
		"PROBE_SOON_ON=" + soon.cert.NotAfter.UTC().Format(time.DateOnly),
	}
	nstest.Reexec(t, origin, append(env, "PROBE_PHASE=running")...)

	stopNginx(t, nginx)
	nstest.Reexec(t, origin, append(env, "PROBE_PHASE=stopped")...)
}

// originRow is one scenario, run inside the origin namespace.
type originRow struct {
	name                  string
	run                   func(ctx context.Context) report.Outcome
	want                  verdict
	cause, evidence, warn string
}

func originRows(t *testing.T, phase string) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8:1::1")
	at := func(addr string, host string, port int, scheme, mode string) Target {
		return Target{Hostname: host, Addr: netip.MustParseAddr(addr), Port: port, Scheme: scheme, SSLMode: mode}
	}
	https := func(host, mode string) Target { return at("192.0.2.1", host, 443, "https", mode) }
	tlsStage := func(tg Target) func(context.Context) report.Outcome {
		return func(ctx context.Context) report.Outcome { return TLS(ctx, tg).Outcome }
	}
	certStage := func(tg Target) func(context.Context) report.Outcome {
		return func(ctx context.Context) report.Outcome {
			r := TLS(ctx, tg)
			if r.Outcome.Fail {
				return r.Outcome
			}
			return Certificate(tg, r.State, time.Now())
		}
	}
	httpStage := func(tg Target, timeout time.Duration) func(context.Context) report.Outcome {
		return func(ctx context.Context) report.Outcome { return HTTP(ctx, tg, timeout) }
	}
	listen := func(tg Target) func(context.Context) report.Outcome {
		return func(ctx context.Context) report.Outcome { return Listener(ctx, tg) }
	}
	elsewhere := func(tg Target) func(context.Context) report.Outcome {
		return func(ctx context.Context) report.Outcome { return Elsewhere(ctx, tg, time.Second) }
	}
	ok := func(s report.Stage, status int) verdict { return verdict{Stage: s, Status: status} }
	fail := func(s report.Stage, status int) verdict { return verdict{Stage: s, Fail: true, Status: status} }
	L, T, C, H := report.StageListener, report.StageTLS, report.StageCertificate, report.StageHTTP

	var rows []originRow
	switch phase {
	case "running":
		rows = []originRow{
			// healthy https, every stage
			{"healthy/route", func(ctx context.Context) report.Outcome { return Route(ctx, v4, standIn[:2]) }, ok(report.StageRoute, 0), "default via 192.0.2.2", "", "-"},
			{"healthy/route v6", func(ctx context.Context) report.Outcome { return Route(ctx, v6, standIn) }, ok(report.StageRoute, 0), "default via 2001:db8:1::2", "", "-"},
			{"healthy/listener", listen(https("www.example.com", ModeStrict)), ok(L, 0), "192.0.2.1:443 accepts", "accepting: 192.0.2.1:443 (nginx)", "-"},
			{"healthy/tls", tlsStage(https("www.example.com", ModeStrict)), ok(T, 0), "succeeds (TLS 1.3)", "SANs www.example.com, bad.example.com", "-"},
			{"healthy/certificate", certStage(https("www.example.com", ModeStrict)), ok(C, 0), "valid until", "issuer CN=cfguard test CA", "-"},
			{"healthy/http", httpStage(https("www.example.com", ModeStrict), 0), ok(H, 200), "answers GET / for www.example.com with 200 OK", "response: HTTP/1.1 200 OK", "-"},
			{"healthy/http v6", httpStage(at("2001:db8:1::1", "www.example.com", 443, "https", ModeStrict), 0), ok(H, 200), "[2001:db8:1::1]:443 answers", "", "-"},
			{"healthy/http port 80", httpStage(at("192.0.2.1", "www.example.com", 80, "http", ModeFull), 0), ok(H, 200), "", "", "-"},

			{"no TLS listener under full", listen(at("192.0.2.4", "www.example.com", 443, "https", ModeFull)), fail(L, 521),
				"nothing listens on 192.0.2.4:443", "listening: 192.0.2.1:443 (nginx), 192.0.2.3:443 (nginx)", ""},
			{"no TLS listener under full/tls", tlsStage(at("192.0.2.4", "www.example.com", 443, "https", ModeFull)), fail(T, 521), "nothing listens on 192.0.2.4:443", "192.0.2.4:80 (nginx)", ""},
			{"plain HTTP on 443", tlsStage(at("192.0.2.3", "www.example.com", 443, "https", ModeFull)), fail(T, 525),
				`192.0.2.3:443 speaks plain HTTP, not TLS: it answered Cloudflare's TLS handshake with "HTTP/1.1 400 Bad Request"`, "", ""},
			{"no shared cipher", tlsStage(at("192.0.2.5", "www.example.com", 443, "https", ModeFull)), fail(T, 525), "192.0.2.5:443 shares no TLS version or cipher suite with Cloudflare", "", ""},
			{"no certificate for the name", tlsStage(at("192.0.2.6", "www.example.com", 443, "https", ModeFull)), fail(T, 525), "192.0.2.6:443 has no certificate for www.example.com", "", ""},
			{"client certificate demanded/tls", tlsStage(at("192.0.2.7", "www.example.com", 443, "https", ModeFull)), ok(T, 0), "", "", "asks for a client certificate"},
			{"client certificate demanded/http", httpStage(at("192.0.2.7", "www.example.com", 443, "https", ModeFull), 0), ok(H, 400), "it wants a client certificate", "", "tls_client_auth"},

			{"expired under strict", certStage(https("old.example.com", ModeStrict)), fail(C, 526), "serves for old.example.com expired on " + os.Getenv("PROBE_EXPIRED_ON"), "subject CN=old.example.com", ""},
			{"expired under full", certStage(https("old.example.com", ModeFull)), ok(C, 0), "does not check", "", "-"},
			{"expired under full/tls", tlsStage(https("old.example.com", ModeFull)), ok(T, 0), "", "SANs old.example.com", "-"},
			{"wrong name under strict", certStage(https("wrong.example.com", ModeStrict)), fail(C, 526), "is issued for a.example, b.example, not wrong.example.com", "", ""},
			{"wrong name under full", certStage(https("wrong.example.com", ModeFull)), ok(C, 0), "", "", "-"},
			{"self-signed under strict", certStage(https("self.example.com", ModeStrict)), fail(C, 526), "is self-signed (CN=self.example.com)", "", ""},
			{"self-signed under full", certStage(https("self.example.com", ModeFull)), ok(C, 0), "", "", "-"},
			{"expiring soon", certStage(https("soon.example.com", ModeStrict)), ok(C, 0), "", "", "expires on " + os.Getenv("PROBE_SOON_ON") + " (in 5 days)"},

			{"origin 502", httpStage(https("bad.example.com", ModeStrict), 0), fail(H, 502), "192.0.2.1:443 answers GET / for bad.example.com with 502 Bad Gateway", "server: nginx", ""},
			{"slow origin", httpStage(https("slow.example.com", ModeStrict), 2*time.Second), fail(H, 524), "sends no response headers within 2s", "", ""},
			{"flexible redirect loop", httpStage(at("192.0.2.1", "flex.example.com", 80, "http", ModeFlexible), 0), ok(H, 301),
				"endless redirect loop under Flexible", "location: https://flex.example.com/", "endless redirect loop"},
			{"redirect under full is fine", httpStage(at("192.0.2.1", "flex.example.com", 80, "http", ModeFull), 0), ok(H, 301), "", "", "-"},
			{"headers over 128 KB", httpStage(at("192.0.2.1", "www.example.com", 8081, "http", ModeFlexible), 0), fail(H, 520), "more than 128 KB of response headers", "", ""},
			{"empty reply", httpStage(at("192.0.2.1", "www.example.com", 8082, "http", ModeFlexible), 0), fail(H, 520), "closes the connection without answering", "", ""},
			{"garbage", httpStage(at("192.0.2.1", "www.example.com", 8083, "http", ModeFlexible), 0), fail(H, 520), "with something that is not HTTP", `first bytes: "SSH-2.0`, ""},
			{"reset", httpStage(at("192.0.2.1", "www.example.com", 8084, "http", ModeFlexible), 0), fail(H, 520), "resets the connection", "", ""},
			{"plain HTTP on 443/http", httpStage(at("192.0.2.3", "www.example.com", 443, "https", ModeFull), 0), fail(H, 525), "speaks plain HTTP", "", ""},

			{"elsewhere answers", elsewhere(at("192.0.2.2", "www.example.com", 443, "https", ModeFull)), ok(report.StageElsewhere, 0), "not this server: www.example.com → 192.0.2.2, which answers on port 443", "", "-"},
			{"elsewhere refuses", elsewhere(at("192.0.2.2", "www.example.com", 444, "https", ModeFull)), ok(report.StageElsewhere, 0), "answers but refuses port 444", "", "get 521"},
			{"elsewhere silent", elsewhere(at("192.0.2.99", "www.example.com", 443, "https", ModeFull)), fail(report.StageElsewhere, 522), "www.example.com → 192.0.2.99, which is not this server and does not answer", "", ""},
			{"elsewhere silent v6", elsewhere(at("2001:db8:99::1", "www.example.com", 443, "https", ModeFull)), fail(report.StageElsewhere, 522), "which is not this server and does not answer", "", ""},
		}
		if local, err := LocalAddrs(); err != nil || !contains(local, v4) || !contains(local, v6) {
			t.Errorf("LocalAddrs() = %v, %v; want 192.0.2.1 and 2001:db8:1::1 among them", local, err)
		}
	case "stopped":
		rows = []originRow{
			{"nginx stopped/listener", listen(https("www.example.com", ModeStrict)), fail(L, 521), "nothing listens on 192.0.2.1:443", "listening: 192.0.2.1:8081", ""},
			{"nginx stopped/http", httpStage(https("www.example.com", ModeStrict), 0), fail(H, 521), "nothing listens on 192.0.2.1:443", "", ""},
			{"nginx stopped/port 80", listen(at("192.0.2.1", "www.example.com", 80, "http", ModeFlexible)), fail(L, 521), "nothing listens on 192.0.2.1:80", "", ""},
		}
	default:
		t.Fatalf("unknown phase %q", phase)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			o := r.run(context.Background())
			if diff := cmp.Diff(r.want, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s\ncause: %s\nevidence: %q\nwarnings: %q", diff, o.Cause, o.Evidence, o.Warnings)
			}
			has(t, o, r.cause, r.evidence, r.warn)
			t.Logf("%s %d: %s | fix: %s | evidence: %q | warnings: %q", o.Stage, o.Status, o.Cause, o.Fix, o.Evidence, o.Warnings)
		})
	}
}

func contains(s []netip.Addr, a netip.Addr) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// startNginx runs nginx in the foreground inside ns and waits until it
// listens.
func startNginx(t *testing.T, ns *nstest.NS, dir, conf string) *exec.Cmd {
	t.Helper()
	if out, err := ns.Try("nginx", "-t", "-q", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", conf); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx -t: %v %s\n%s", err, out, b)
	}
	cmd := ns.Start("nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", conf, "-g", "daemon off;")
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "nginx.pid")); err == nil {
			if _, err := ns.Try("sh", "-c", "grep -q ' 0A ' /proc/net/tcp"); err == nil {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	t.Fatalf("nginx did not start:\n%s", b)
	return nil
}

// stopNginx stops nginx (SIGTERM, as a crash or `systemctl stop` leaves
// it: nothing listening) and waits for the master to exit.
func stopNginx(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-done:
	case <-time.After(nginxStopWait):
		t.Fatalf("nginx (pid %d) did not stop", cmd.Process.Pid)
	}
}

// nginxStopWait bounds the wait for nginx to exit (a watchdog, not a timed
// assertion).
const nginxStopWait = 30 * time.Second

// serve listens on addr inside ns and runs handle for every connection,
// closing it afterwards, until the test ends.
func serve(t *testing.T, ns *nstest.NS, addr string, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				handle(c)
			}()
		}
	}()
}

// readRequest reads a request's head (up to the blank line).
func readRequest(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" || line == "\n" {
			return
		}
	}
}

// bigHeaders answers with ~200 KB of response headers.
func bigHeaders(c net.Conn) {
	readRequest(c)
	w := bufio.NewWriter(c)
	fmt.Fprint(w, "HTTP/1.1 200 OK\r\n")
	v := strings.Repeat("a", 1000)
	for i := 0; i < 200; i++ {
		fmt.Fprintf(w, "X-Big-%d: %s\r\n", i, v)
	}
	fmt.Fprint(w, "Content-Length: 0\r\n\r\n")
	w.Flush()
}
