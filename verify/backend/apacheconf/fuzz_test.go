package apacheconf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// FuzzParse: no Apache configuration panics the reader, and whatever it
// accepts can be asked for its virtual hosts, routes, logs and user.
// Includes are answered "not found" without touching the disk (a pattern
// would still be globbed on this host, so inputs holding one are skipped).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/apache2.conf"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"",
		"Listen 80\n<VirtualHost *:80>\n ServerName www.example.com\n ProxyPass / http://127.0.0.1:8080/\n</VirtualHost>\n",
		"<VirtualHost 192.0.2.1:443 [2001:db8::1]:443>\nServerAlias *.example.com\n<FilesMatch \\.php$>\nSetHandler \"proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost\"\n</FilesMatch>\n</VirtualHost>\n",
		"Define X 1\n<IfDefine X>\nErrorLog ${APACHE_LOG_DIR}/error.log\n</IfDefine>\nUser ${APACHE_RUN_USER}\n",
		"<VirtualHost *:80>\n<Location />\nProxyPass balancer://b/\n</Location>\n",
		"</VirtualHost>\n",
		"ServerName \"unterminated\n\\\n",
	} {
		f.Add(s)
	}
	env := map[string]string{"APACHE_RUN_USER": "www-data", "APACHE_LOG_DIR": "/var/log/apache2"}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(strings.ToLower(text), "include") && strings.ContainsAny(text, "*?[") {
			t.Skip("an Include pattern would be globbed on this host")
		}
		const name = "/nonexistent/apache2/apache2.conf"
		c := &Config{Main: name, ServerRoot: "/nonexistent/apache2"}
		vars := map[string]string{}
		for k, v := range env {
			vars[k] = v
		}
		read := func(n string) (string, error) {
			if n == name {
				return text, nil
			}
			return "", os.ErrNotExist
		}
		root, err := c.parseFile(context.Background(), name, vars, read, 0)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			return
		}
		c.Root = root
		c.VHosts()
		c.ErrorLogs()
		c.User()
		for _, a := range addrs {
			for _, port := range []int{80, 443} {
				for _, host := range []string{"", "www.example.com"} {
					c.SelectVHost(a, port, host)
					if r := c.Route(a, port, host); r != nil {
						r.Where()
					}
				}
			}
		}
	})
}
