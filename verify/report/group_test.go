package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// incident is 12 sites on one origin whose PHP-FPM is down (the cause names
// no hostname), 3 whose certificate does not name them (the cause and fix
// do), one firewall drop, a warning shared by two paths, and passing paths.
func incident() *Report {
	r := &Report{}
	for i := range 12 {
		h := fmt.Sprintf("site%02d.example.com", i+1)
		r.Paths = append(r.Paths, Path{Zone: "example.com", Hostname: h, RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
			Status: 502, Stage: StageUpstream, Cause: "php-fpm is not running: /run/php/php8.2-fpm.sock does not exist",
			Fix:      "systemctl start php8.2-fpm",
			Evidence: []string{"nginx: server " + h + " (/etc/nginx/sites-enabled/sites:12)", fmt.Sprintf("nginx logged 'connect() failed' %d times", i+1)}})
	}
	for _, h := range []string{"a.example.org", "b.example.org", "example.org"} {
		r.Paths = append(r.Paths, Path{Zone: "example.org", Hostname: h, RecordType: "A", OriginIP: "192.0.2.2", Port: 443, Scheme: "https",
			Status: 526, Stage: StageCertificate, Cause: "the certificate served for " + h + " does not name it (it names www.example.org)",
			Fix: "serve a certificate that names " + h + " (in nginx, the server block with server_name " + h + " needs its own ssl_certificate)"})
	}
	r.Paths = append(r.Paths,
		Path{Zone: "example.net", Hostname: "example.net", RecordType: "AAAA", OriginIP: "2001:db8:1::1", Port: 443, Scheme: "https",
			Status: 522, Stage: StageFirewall, Cause: "the firewall drops connections from Cloudflare to [2001:db8:1::1]:443",
			Fix: "Allow Cloudflare's ranges to port 443 before that rule.", Warnings: []string{"the certificate for example.net expires on 2026-11-20, in 9 days"}},
		Path{Zone: "example.net", Hostname: "www.example.net", RecordType: "A", OriginIP: "192.0.2.3", Port: 443, Scheme: "https",
			OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK", Warnings: []string{"the certificate for www.example.net expires on 2026-11-20, in 9 days"}},
		Path{Zone: "example.net", Hostname: "www.example.net", RecordType: "A", OriginIP: "192.0.2.3", Port: 80, Scheme: "http",
			OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK"},
		Path{Zone: "example.net", Hostname: "old.example.net", RecordType: "A", OriginIP: "192.0.2.3", Port: 80, Scheme: "http",
			OK: true, Status: 301, Stage: StageHTTP, Cause: "GET / answered 301 Moved Permanently (to https://www.example.net/)"},
	)
	r.Summary = Summary{Paths: len(r.Paths), Failing: 16, ByStatus: map[string]int{"502": 12, "526": 3, "522": 1}, Warnings: 2}
	return r
}

func TestWriteTextGrouped(t *testing.T) {
	for _, tt := range []struct {
		name  string
		r     *Report
		color bool
	}{
		{"grouped.txt", incident(), false},
		{"grouped_color.txt", incident(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, tt.r, tt.color); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

// TestGroupedJSONPerPath: the text groups, the JSON keeps every path as it
// was.
func TestGroupedJSONPerPath(t *testing.T) {
	r := incident()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r.Paths, back.Paths, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("paths after JSON (-want +got):\n%s", d)
	}
}

// TestGroupBounded: 10,000 paths with one cause are a few lines, naming
// pathsNamed of them, and each path's own hostname is abstracted.
func TestGroupBounded(t *testing.T) {
	const n = 10000
	r := &Report{Summary: Summary{Paths: n, Failing: n, ByStatus: map[string]int{"526": n}}}
	for i := range n {
		h := fmt.Sprintf("h%05d.example.com", i)
		r.Paths = append(r.Paths, Path{Hostname: h, RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
			Status: 526, Stage: StageCertificate, Cause: "the certificate does not name " + h, Fix: "serve one that names " + h,
			Warnings: []string{"the certificate for " + h + " expires in 9 days"}})
	}
	var b bytes.Buffer
	if err := WriteText(&b, r, false); err != nil {
		t.Fatal(err)
	}
	want := `✘ 526  certificate  the certificate does not name <hostname>
    fix: serve one that names <hostname>
    on 10000 paths:
      h00000.example.com https 192.0.2.1:443
      h00001.example.com https 192.0.2.1:443
      h00002.example.com https 192.0.2.1:443
      h00003.example.com https 192.0.2.1:443
      h00004.example.com https 192.0.2.1:443
      and 9995 more hostnames (--json lists every path)

! warning: the certificate for <hostname> expires in 9 days
    on 10000 paths:
      h00000.example.com https 192.0.2.1:443
      h00001.example.com https 192.0.2.1:443
      h00002.example.com https 192.0.2.1:443
      h00003.example.com https 192.0.2.1:443
      h00004.example.com https 192.0.2.1:443
      and 9995 more hostnames (--json lists every path)

10000 of 10000 paths would fail: 10000 × 526
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestAbstractHost(t *testing.T) {
	for _, tt := range []struct {
		s, host, want string
	}{
		{"the certificate does not name www.example.com", "www.example.com", "the certificate does not name <hostname>"},
		{"www.example.com: names www.example.com.", "www.example.com", "<hostname>: names <hostname>."},
		// A longer name that holds the hostname stays.
		{"example.com redirects to www.example.com", "example.com", "<hostname> redirects to www.example.com"},
		{"example.com.au and example.com-old and example.com", "example.com", "example.com.au and example.com-old and <hostname>"},
		{"server_name example.com; (file:3)", "example.com", "server_name <hostname>; (file:3)"},
		{"no name here", "example.com", "no name here"},
		{"anything", "", "anything"},
	} {
		if d := cmp.Diff(tt.want, abstractHost(tt.s, tt.host)); d != "" {
			t.Errorf("abstractHost(%q, %q) (-want +got):\n%s", tt.s, tt.host, d)
		}
	}
}

// TestGroupOrder: failures before warnings before passes; the most paths
// first; a cause that differs (another status, another fix) is its own
// group.
func TestGroupOrder(t *testing.T) {
	p := func(host string, ok bool, status int, cause, fix string) Path {
		return Path{Hostname: host, OK: ok, Status: status, Stage: StageHTTP, Cause: cause, Fix: fix}
	}
	groups := groupPaths([]Path{
		p("a", true, 200, "GET / answered 200 OK", ""),
		p("b", false, 502, "bad gateway", "fix x"),
		p("c", false, 504, "slow", "fix y"),
		p("d", false, 504, "slow", "fix y"),
		p("e", false, 502, "bad gateway", "fix z"),
		{Hostname: "f", OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK", Warnings: []string{"w", "w"}}, // a path counts once
	})
	var got []string
	for _, g := range groups {
		var names []string
		for _, h := range g.hosts {
			names = append(names, h.name)
		}
		got = append(got, fmt.Sprintf("%d %d %s: %s (%d)", g.kind, g.status, g.cause, strings.Join(names, ","), g.n))
	}
	want := []string{
		"0 504 slow: c,d (2)",
		"0 502 bad gateway: b (1)",
		"0 502 bad gateway: e (1)",
		"1 0 w: f (1)",
		"2 200 GET / answered 200 OK: a,f (2)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
}

func BenchmarkWriteText10k(b *testing.B) {
	r := &Report{}
	for i := range 10000 {
		h := fmt.Sprintf("h%05d.example.com", i)
		r.Paths = append(r.Paths, Path{Hostname: h, RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
			Status: 502 + i%3, Stage: StageUpstream, Cause: "upstream of " + h + " fails", Fix: "restart it",
			Evidence: []string{"nginx: server " + h}, Warnings: []string{"the certificate for " + h + " expires in 9 days"}})
	}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := WriteText(&buf, r, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGroupNamesHostnames: a group lists hostnames, each with its paths
// (at most wheresNamed, then how many more), at most hostsNamed of them,
// then how many hostnames and paths more.
func TestGroupNamesHostnames(t *testing.T) {
	var paths []Path
	at := func(host string, port int, ip string) {
		paths = append(paths, Path{Hostname: host, RecordType: "A", OriginIP: ip, Port: port, Scheme: "https", Status: 502, Stage: StageUpstream, Cause: "down", Fix: "start it"})
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1", "2001:db8::2", "2001:db8::3"} {
		at("a.example.com", 443, ip)
	}
	for _, h := range []string{"b", "c", "d", "e", "f"} {
		at(h+".example.com", 443, "192.0.2.1")
	}
	at("f.example.com", 8443, "192.0.2.1")
	at("b.example.com", 8443, "192.0.2.1") // b is listed: its second path joins it
	var b strings.Builder
	writeGroups(&b, painter(false), paths)
	want := `✘ 502  upstream     down
    fix: start it
    on 13 paths of 6 hostnames:
      a.example.com https 192.0.2.1:443, https 192.0.2.2:443, https 192.0.2.3:443, https [2001:db8::1]:443 and 2 more
      b.example.com https 192.0.2.1:443, https 192.0.2.1:8443
      c.example.com https 192.0.2.1:443
      d.example.com https 192.0.2.1:443
      e.example.com https 192.0.2.1:443
      and 1 more hostname (2 paths; --json lists every path)
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
