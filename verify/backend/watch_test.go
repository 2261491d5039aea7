package backend

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/apacheconf"
	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
)

func TestWebEntries(t *testing.T) {
	ngx, err := nginxconf.Parse("nginx.conf", `http {
		server { listen 80; listen [::]:80; server_name shop.example.com www.shop.example.com; }
		server { listen 192.0.2.5:443 ssl; server_name *.example.org; }
		server { listen unix:/run/nginx.sock; server_name ~^api; }
		server { listen 8080; server_name _; }
	}`)
	if err != nil {
		t.Fatal(err)
	}
	apa, err := apacheconf.Parse("apache2.conf", `Listen 80
Listen 192.0.2.7:8443
<VirtualHost *:80>
  ServerName blog.example.com
</VirtualHost>
<VirtualHost 192.0.2.7:8443>
  ServerName secure.example.com
</VirtualHost>
<VirtualHost 198.51.100.9:80>
  ServerName other.example.com
</VirtualHost>
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	str := func(es []entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.addr.String()+" "+e.host)
		}
		return out
	}
	if diff := cmp.Diff([]string{
		"127.0.0.1:80 shop.example.com", "[::1]:80 shop.example.com",
		"192.0.2.5:443 www.example.org",
		"127.0.0.1:8080 localhost",
	}, str(webEntries(&webServer{kind: "nginx", nginx: ngx}))); diff != "" {
		t.Errorf("nginx (-want +got)\n%s", diff)
	}
	// A wildcard virtual host is probed where Apache listens; one bound to
	// an address Apache has no Listen for is still probed on that address
	// when a wildcard Listen covers its port.
	if diff := cmp.Diff([]string{
		"127.0.0.1:80 blog.example.com",
		"192.0.2.7:8443 secure.example.com",
		"198.51.100.9:80 other.example.com",
		"127.0.0.1:80 localhost", "192.0.2.7:8443 localhost",
	}, str(webEntries(&webServer{kind: "Apache", apache: apa}))); diff != "" {
		t.Errorf("Apache (-want +got)\n%s", diff)
	}
}

func TestServiceUnit(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"php8.2-fpm":            "php8.2-fpm.service",
		"nginx.service":         "nginx.service",
		"docker-0123abcd.scope": "",
		"system.slice":          "",
		"gunicorn@shop":         "gunicorn@shop.service",
		"app.example.com":       "app.example.com.service",
	} {
		if got := serviceUnit(in); got != want {
			t.Errorf("serviceUnit(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPoolSaturated(t *testing.T) {
	for _, c := range []struct {
		p    *PoolStatus
		want bool
	}{
		{nil, false},
		{&PoolStatus{Active: 5, Idle: 0, Total: 5, ListenQueue: 3}, true},
		{&PoolStatus{Active: 5, Idle: 0, Total: 5, ListenQueue: 0}, false}, // busy, nobody waits
		{&PoolStatus{Active: 4, Idle: 1, Total: 5, ListenQueue: 2}, false}, // a child is free: the queue drains
	} {
		if got := c.p.Saturated(); got != c.want {
			t.Errorf("%+v: Saturated = %v, want %v", c.p, got, c.want)
		}
	}
}

// FuzzParseFPMStatus: PHP-FPM's status page comes from the network; the
// parser never panics and reads back a field it was given.
func FuzzParseFPMStatus(f *testing.F) {
	f.Add("pool:                 www\nprocess manager:      static\nlisten queue:         3\nmax listen queue:     7\nlisten queue len:     511\nidle processes:       0\nactive processes:     5\ntotal processes:      5\nmax children reached: 2\nslow requests:        0\n", 4)
	f.Add("listen queue: -1\nactive processes: 99999999999999999999\n", 1)
	f.Add(":::\n\n\x00", 0)
	f.Fuzz(func(t *testing.T, body string, n int) {
		s := parseFPMStatus(body)
		if s == nil {
			t.Fatal("nil status")
		}
		if n < 0 || n > 1<<20 {
			return
		}
		got := parseFPMStatus(body + "\nidle processes: " + strconv.Itoa(n) + "\n")
		if got.idle != n {
			t.Errorf("idle = %d after appending %d", got.idle, n)
		}
	})
}

func TestWatchedUnitAndConfigTest(t *testing.T) {
	a := &Analyzer{fpms: []*fpmInstance{{unit: "php8.2-fpm", cfg: &fpm.Config{File: "/etc/php/8.2/fpm/php-fpm.conf",
		Pools: []*fpm.Pool{{Name: "www", Listen: "/run/php/php8.2-fpm.sock"}}}}}}
	web := &webServer{kind: "nginx"}
	for _, c := range []struct {
		name   string
		rt     *route
		t      target
		unit   string
		pool   string
		config []string
	}{
		{"a pool of a known php-fpm", &route{web: web, module: "fastcgi"}, target{"unix", "/run/php/php8.2-fpm.sock", ""},
			"php8.2-fpm.service", "www", []string{"php-fpm8.2", "-t", "--fpm-config", "/etc/php/8.2/fpm/php-fpm.conf"}},
		{"no pool: the unit from Debian's socket path", &route{web: web, module: "fastcgi"}, target{"unix", "/run/php/php7.4-fpm.sock", ""},
			"php7.4-fpm.service", "", []string{"php-fpm7.4", "-t"}},
		{"an HTTP backend with no unit known", &route{web: web, module: "proxy"}, target{"tcp", "127.0.0.1:3000", "http"},
			"", "", nil},
	} {
		b := a.watched(c.rt, c.t, "example.test")
		if diff := cmp.Diff([]any{c.unit, c.pool, c.config}, []any{b.Unit, b.Pool, b.ConfigTest}); diff != "" {
			t.Errorf("%s (-want +got)\n%s", c.name, diff)
		}
	}
}
