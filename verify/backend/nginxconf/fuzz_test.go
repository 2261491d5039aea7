package nginxconf

import (
	"net/netip"
	"os"
	"testing"
)

// FuzzParseDump: no `nginx -T` output panics the parser, and whatever it
// accepts can be asked for its servers, upstreams, logs and routes.
func FuzzParseDump(f *testing.F) {
	if b, err := os.ReadFile("testdata/nginx-T.txt"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"",
		"# configuration file /etc/nginx/nginx.conf:\nevents {}\nhttp { server { listen 80; location / { proxy_pass http://127.0.0.1:8080; } } }\n",
		"# configuration file /etc/nginx/nginx.conf:\nhttp { include /etc/nginx/a.conf; }\n# configuration file /etc/nginx/a.conf:\nserver { listen [::]:443 ssl; server_name ~^(?<x>.+)\\.example$; location ~* \\.php$ { fastcgi_pass unix:/run/php.sock; } }\n",
		"# configuration file /etc/nginx/nginx.conf:\nhttp { upstream u { server 127.0.0.1:9000; } server { listen 8080 default_server; location = /x { return 200; } location / { proxy_pass http://u; } } }\n",
		"# configuration file /a:\nhttp { server { listen 80; rewrite ^ /b last; location /b { rewrite ^ /a last; } } }\n",
		"# configuration file /a:\n\"unterminated",
		"# configuration file /a:\nhttp { include /a; }\n",
	} {
		f.Add(s)
	}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("127.0.0.1")}
	f.Fuzz(func(t *testing.T, dump string) {
		c, err := ParseDump(dump)
		if err != nil {
			return
		}
		c.Servers()
		c.Upstreams()
		c.User()
		c.ErrorLogs()
		c.TempPaths()
		for _, a := range addrs {
			for _, port := range []int{80, 443, 8080} {
				for _, host := range []string{"", "www.example.com", "x.example"} {
					c.SelectServer(a, port, host)
					if r := c.Route(a, port, host); r != nil {
						r.Where()
					}
				}
			}
		}
	})
}

// FuzzParseDuration and sizes: nginx's time and size syntax.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"60s", "1m30s", "500ms", "1h", "10", "", "1y2M3w4d5h6m7s8ms", "k", "9999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative", s, n)
		}
	})
}
