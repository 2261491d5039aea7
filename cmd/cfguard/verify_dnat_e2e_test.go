package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// A port published by DNAT, as Docker publishes a container's: the origin
// namespace DNATs its public :80 (IPv4 and IPv6) to a real nginx on :8080
// in a "container" namespace behind a veth, and nothing on the origin
// itself listens on :80. verify must follow the DNAT and probe the
// container, not report 521 "nothing listens" on the origin's address.

const (
	containerV4 = "192.0.2.130"
	containerV6 = "2001:db8:c::2"
)

const dnatRules = `table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.1 tcp dport 80 dnat ip to 192.0.2.130:8080
	}
}
table ip6 nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr 2001:db8:1::1 tcp dport 80 dnat ip6 to [2001:db8:c::2]:8080
	}
}
`

type dnatSite struct {
	t                 *testing.T
	origin, container *nstest.NS
	api               *cfapitest.Server
	state, dir        string
}

func newDNATSite(t *testing.T) *dnatSite {
	nstest.RequireRoot(t, "nft", "curl")
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		t.Skip("skipped: nginx is not installed (.ci/run installs it)")
	}
	s := &dnatSite{t: t, origin: nstest.New(t), container: nstest.New(t), state: t.TempDir(), dir: t.TempDir()}
	// nginx's worker (nobody) must read the site.
	for _, d := range []string{s.dir, filepath.Dir(s.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	peer := nstest.New(t)
	nstest.Link(t, s.origin, peer, []string{"192.0.2.1/25", "2001:db8:1::1/64"}, []string{"192.0.2.2/25", "2001:db8:1::2/64"})
	s.origin.Run("ip", "route", "add", "default", "via", "192.0.2.2")
	s.origin.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::2")
	nstest.Link(t, s.origin, s.container, []string{"192.0.2.129/25", "2001:db8:c::1/64"}, []string{containerV4 + "/25", containerV6 + "/64"})
	s.container.Run("ip", "route", "add", "default", "via", "192.0.2.129")
	s.container.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1")
	s.origin.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	rules := filepath.Join(s.dir, "dnat.nft")
	if err := os.WriteFile(rules, []byte(dnatRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s.origin.Run("nft", "-f", rules)

	var apiLn net.Listener
	if err := s.origin.Do(func() (err error) { apiLn, err = net.Listen("tcp", "127.0.0.1:0"); return }); err != nil {
		t.Fatal(err)
	}
	s.api = cfapitest.NewOn(t, apiLn)
	zone := s.api.AddZone("example.com", map[string]any{"ssl": "flexible"})
	s.api.AddRecord(zone, "A", "www.example.com", "192.0.2.1", true)
	s.api.AddRecord(zone, "AAAA", "www.example.com", "2001:db8:1::1", true)
	return s
}

// nginx writes the container's nginx.conf (location / as given) and
// starts nginx in the container namespace, or reloads it.
func (s *dnatSite) nginx(location string, reload bool) {
	s.t.Helper()
	conf := filepath.Join(s.dir, "nginx.conf")
	os.MkdirAll(filepath.Join(s.dir, "www"), 0o755)
	os.WriteFile(filepath.Join(s.dir, "www", "index.html"), []byte("container\n"), 0o644)
	text := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
daemon off;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp-body;
    proxy_temp_path %[1]s/tmp-proxy;
    fastcgi_temp_path %[1]s/tmp-fastcgi;
    uwsgi_temp_path %[1]s/tmp-uwsgi;
    scgi_temp_path %[1]s/tmp-scgi;
    server {
        listen 8080;
        listen [::]:8080;
        root %[1]s/www;
        location / { %[2]s }
    }
}
`, s.dir, location)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if reload {
		s.container.Run("/usr/sbin/nginx", "-c", conf, "-s", "reload")
		time.Sleep(500 * time.Millisecond) // the old worker finishes; verify's answer is checked, not timed
		return
	}
	s.container.Start("/usr/sbin/nginx", "-c", conf)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := s.origin.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "http://"+containerV4+":8080/")
		if strings.TrimSpace(out) != "000" && out != "" {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			s.t.Fatalf("the container's nginx does not answer; error log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *dnatSite) verify() (report.Report, string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.origin.Command(ctx, cfguardBin, "--state-dir", s.state, "--api-url", s.api.URL, "verify", "--json", "--timeout", "3s")
	cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN="+cfapitest.DefaultToken, "NO_COLOR=1")
	out, errOut, code := runCmd(s.t, cmd)
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		s.t.Fatalf("verify --json: %v\n%s\nstderr: %s", err, out, errOut)
	}
	return rep, out, code
}

// text is verify's text rendering, for the log.
func (s *dnatSite) text() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.origin.Command(ctx, cfguardBin, "--state-dir", s.state, "--api-url", s.api.URL, "verify", "--timeout", "3s")
	cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN="+cfapitest.DefaultToken, "NO_COLOR=1")
	out, _, _ := runCmd(s.t, cmd)
	return out
}

func TestVerifyDNATToContainer(t *testing.T) {
	s := newDNATSite(t)
	s.nginx("", false)
	// cfguard's own table guards the published port in its forward chain
	// (ct status dnat, ct original proto-dst): the simulator must read it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, errOut, code := runCmd(t, s.origin.Command(ctx, cfguardBin, "--state-dir", s.state, "--api-url", s.api.URL, "sync")); code != 0 {
		t.Fatalf("cfguard sync: exit %d\n%s%s", code, out, errOut)
	}
	// nginx -T of the container's configuration would recreate its
	// access log, deleted now (nginx keeps writing to the open file).
	accessLog := filepath.Join(s.dir, "access.log")
	if err := os.Remove(accessLog); err != nil {
		t.Fatal(err)
	}

	// Published and served: both paths pass, probed at the container.
	rep, out, code := s.verify()
	if code != 0 || rep.Summary.Paths != 2 || rep.Summary.Failing != 0 {
		t.Fatalf("published container: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	want := map[string]string{"192.0.2.1": "published by DNAT to 192.0.2.130:8080", "2001:db8:1::1": "published by DNAT to [2001:db8:c::2]:8080"}
	for _, p := range rep.Paths {
		ev := strings.Join(p.Evidence, "\n")
		if !p.OK || p.Status != 200 || !strings.Contains(ev, want[p.OriginIP]) || !strings.Contains(ev, "table ip") || len(p.Warnings) > 0 {
			t.Errorf("path %s: ok %v status %d, warnings %q, evidence lacks %q:\n%s", p.OriginIP, p.OK, p.Status, p.Warnings, want[p.OriginIP], ev)
		}
		// The container's nginx, read inside its root, nothing run.
		if !strings.Contains(ev, "in container net:[") || !strings.Contains(ev, "nginx.conf:") || !strings.Contains(ev, "nothing was run") {
			t.Errorf("path %s: evidence does not show the container's nginx configuration:\n%s", p.OriginIP, ev)
		}
	}
	// verify ran nothing on the container's configuration.
	if _, err := os.Stat(accessLog); err == nil {
		t.Errorf("the container's access log %s was recreated during verify: a command ran on its configuration", accessLog)
	}

	// The text rendering names where the answer came from.
	cmd := s.origin.Command(ctx, cfguardBin, "--state-dir", s.state, "--api-url", s.api.URL, "verify", "--timeout", "3s")
	cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN="+cfapitest.DefaultToken, "NO_COLOR=1")
	text, _, _ := runCmd(t, cmd)
	t.Logf("verify:\n%s", text)
	if !strings.Contains(text, "192.0.2.130:8080 answers GET / for www.example.com with 200 OK") {
		t.Errorf("the text output does not name the container's address:\n%s", text)
	}

	// A forward rule drops one stand-in Cloudflare range on its way to the
	// container: the IPv4 path fails with 522 naming that rule and the DNAT.
	fwd := filepath.Join(s.dir, "forward.nft")
	os.WriteFile(fwd, []byte("table inet filter {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tip saddr 203.0.113.0/24 drop\n\t}\n}\n"), 0o644)
	s.origin.Run("nft", "-f", fwd)
	rep, out, code = s.verify()
	if code != 1 || rep.Summary.Failing != 1 {
		t.Fatalf("forward drop: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	for _, p := range rep.Paths {
		ev := strings.Join(p.Evidence, "\n")
		switch p.OriginIP {
		case "192.0.2.1":
			if p.OK || p.Status != 522 || p.Stage != report.StageFirewall || !strings.Contains(ev, "chain forward") || !strings.Contains(ev, want[p.OriginIP]) {
				t.Errorf("forward drop, IPv4 path: %+v", p)
			}
		default:
			if !p.OK {
				t.Errorf("forward drop, IPv6 path: %+v", p)
			}
		}
	}
	t.Logf("verify (forward drop):\n%s", s.text())
	s.origin.Run("nft", "delete", "table", "inet", "filter")

	// The container's backend is down: nginx answers 502, and the path
	// fails with it at the upstream stage, naming the backend (connected
	// to from inside the container) and the DNAT.
	s.nginx("proxy_pass http://127.0.0.1:9;", true)
	t.Logf("verify (the container's backend down):\n%s", s.text())
	rep, out, code = s.verify()
	if code != 1 || rep.Summary.Failing != 2 {
		t.Fatalf("backend down: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	for _, p := range rep.Paths {
		if p.OK || p.Status != 502 || p.Stage != report.StageUpstream || !strings.Contains(strings.Join(p.Evidence, "\n"), want[p.OriginIP]) ||
			!strings.Contains(p.Cause, "the backend of nginx in container net:[") || !strings.Contains(p.Cause, "proxy_pass http://127.0.0.1:9: 127.0.0.1:9 refuses connections") {
			t.Errorf("backend down, path %s: %+v", p.OriginIP, p)
		}
	}

	// Nothing listens behind the DNAT: 521 naming the container's address.
	s.container.Run("/usr/sbin/nginx", "-c", filepath.Join(s.dir, "nginx.conf"), "-s", "stop")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(s.dir, "nginx.pid")); os.IsNotExist(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("verify (nothing behind the DNAT):\n%s", s.text())
	rep, out, code = s.verify()
	if code != 1 || rep.Summary.Failing != 2 {
		t.Fatalf("nothing behind the DNAT: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	for _, p := range rep.Paths {
		to := map[string]string{"192.0.2.1": "192.0.2.130:8080", "2001:db8:1::1": "[2001:db8:c::2]:8080"}[p.OriginIP]
		if p.OK || p.Status != 521 || p.Stage != report.StageListener || !strings.Contains(p.Cause, "nothing listens on "+to+", where this host's DNAT sends") {
			t.Errorf("nothing behind the DNAT, path %s: %+v", p.OriginIP, p)
		}
	}
}
