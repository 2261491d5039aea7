package nginxconf

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func loadDump(t *testing.T) *Config {
	t.Helper()
	b, err := os.ReadFile("testdata/nginx-T.txt")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseDump(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoute(t *testing.T) {
	c := loadDump(t)
	type want struct {
		Server      string // first server_name
		Pass        string // "fastcgi_pass php"
		Targets     []string
		ReadTimeout time.Duration
		BufferSize  int
		URI         string
		Note        string
	}
	v4, v6, spec := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8:1::9"), netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		addr netip.Addr
		port int
		host string
		want want
	}{
		{"exact name, index.php via try_files to the php location", v4, 80, "example.com", want{"example.com", "fastcgi_pass php", []string{"unix:/run/php/php8.2-fpm.sock"}, 300 * time.Second, 32 << 10, "/index.php", ""}},
		{"exact name is case-insensitive and ignores the port", v4, 80, "WWW.Example.COM:80", want{"example.com", "fastcgi_pass php", []string{"unix:/run/php/php8.2-fpm.sock"}, 300 * time.Second, 32 << 10, "/index.php", ""}},
		{"leading wildcard, upstream with two servers", v4, 80, "shop.example.com", want{"*.example.com", "proxy_pass http://app", []string{"127.0.0.1:3000", "127.0.0.1:3001"}, 2 * time.Minute, 4096, "/", ""}},
		{"trailing wildcard", v4, 80, "mail.example.org", want{"mail.*", "proxy_pass http://127.0.0.1:8025/", []string{"127.0.0.1:8025"}, 60 * time.Second, 4096, "/", ""}},
		{"regex", v4, 80, "blog.example.net", want{"~^(?<sub>[a-z]+)\\.example\\.net$", "uwsgi_pass 127.0.0.1:3031", []string{"127.0.0.1:3031"}, 60 * time.Second, 4096, "/", ""}},
		{"unknown name → default_server", v4, 80, "unknown.test", want{"_", "", nil, 0, 0, "/", ""}},
		{"exact listen address wins over the wildcard", spec, 80, "example.com", want{"example.com", "proxy_pass http://unix:/run/app.sock:/", []string{"unix:/run/app.sock"}, 60 * time.Second, 4096, "/", ""}},
		{"exact listen address, other name → its first server", spec, 80, "shop.example.com", want{"example.com", "proxy_pass http://unix:/run/app.sock:/", []string{"unix:/run/app.sock"}, 60 * time.Second, 4096, "/", ""}},
		{"IPv6 wildcard", v6, 80, "v6.example.com", want{"v6.example.com", "proxy_pass https://backend.internal", []string{"backend.internal:443"}, 60 * time.Second, 4096, "/", ""}},
		{"IPv6: a plain 'listen 80' is IPv4 only", v6, 80, "shop.example.com", want{"_", "", nil, 0, 0, "/", ""}},
		{"exact location = / wins", v4, 443, "example.com", want{"example.com", "fastcgi_pass 127.0.0.1:9000", []string{"127.0.0.1:9000"}, 90 * time.Second, 4096, "/", ""}},
		{"variable in proxy_pass", v4, 8443, "example.org", want{"example.org", "proxy_pass http://$backend_host", nil, 60 * time.Second, 4096, "/", "proxy_pass http://$backend_host uses a variable; the backend cannot be followed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Route(tt.addr, tt.port, tt.host)
			if r == nil {
				t.Fatal("no route")
			}
			got := want{Server: r.Server.Names[0], URI: r.URI, Note: r.Note}
			if b := r.Backend; b != nil {
				got.Pass = b.Directive() + " " + b.Pass
				got.ReadTimeout, got.BufferSize = b.ReadTimeout, b.BufferSize
				for _, tg := range b.Targets {
					got.Targets = append(got.Targets, tg.String())
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
	if r := c.Route(v4, 81, "example.com"); r != nil {
		t.Errorf("port 81: got a route, nothing listens there")
	}
}

func TestConfigFacts(t *testing.T) {
	c := loadDump(t)
	type facts struct {
		User, Group string
		ErrorLogs   []string
		Upstreams   []string
		Files       int
	}
	u, g := c.User()
	got := facts{User: u, Group: g, ErrorLogs: c.ErrorLogs(), Files: len(c.Files)}
	for n, up := range c.Upstreams() {
		got.Upstreams = append(got.Upstreams, n+"="+strings.Join(up.Servers, ","))
	}
	if len(got.Upstreams) == 2 && got.Upstreams[0] > got.Upstreams[1] {
		got.Upstreams[0], got.Upstreams[1] = got.Upstreams[1], got.Upstreams[0]
	}
	want := facts{"www-data", "www-data", []string{"/var/log/nginx/error.log", "/var/log/nginx/http-error.log"},
		[]string{"app=127.0.0.1:3000,127.0.0.1:3001", "php=unix:/run/php/php8.2-fpm.sock"}, 5}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(dir+"/sites", 0o755)
	os.WriteFile(dir+"/nginx.conf", []byte("events {}\nhttp { include sites/*.conf; }\n"), 0o644)
	os.WriteFile(dir+"/sites/a.conf", []byte("server { listen 8080; server_name a.test; location / { proxy_pass http://127.0.0.1:9; } }\n"), 0o644)
	c, err := Load(t.Context(), dir+"/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Route(netip.MustParseAddr("127.0.0.1"), 8080, "a.test")
	if r == nil || r.Backend == nil || r.Backend.Targets[0].Address != "127.0.0.1:9" {
		t.Errorf("route through an included file: %+v", r)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"http {", "server { listen 80 }", "}", `a "b;`, "events { ; }"} {
		if _, err := Parse("x.conf", in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q): multi-line error %q", in, err)
		}
	}
	if _, err := ParseDump("user nginx;"); err == nil {
		t.Error("ParseDump without a file header: no error")
	}
}

func TestDurationsAndSizes(t *testing.T) {
	for in, want := range map[string]time.Duration{"60": time.Minute, "60s": time.Minute, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond, "1h": time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]int{"4k": 4096, "8K": 8192, "1m": 1 << 20, "512": 512} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func BenchmarkParseDump(b *testing.B) {
	text, _ := os.ReadFile("testdata/nginx-T.txt")
	for i := 0; i < b.N; i++ {
		if _, err := ParseDump(string(text)); err != nil {
			b.Fatal(err)
		}
	}
}
