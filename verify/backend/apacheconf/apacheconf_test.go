package apacheconf

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func load(t *testing.T) *Config {
	t.Helper()
	dir, _ := filepath.Abs("testdata")
	text, err := os.ReadFile(filepath.Join(dir, "apache2.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's ServerRoot is Debian's; point it at testdata.
	conf := filepath.Join(t.TempDir(), "apache2.conf")
	os.WriteFile(conf, []byte(strings.Replace(string(text), `"/etc/apache2"`, dir, 1)), 0o644)
	c, err := Load(context.Background(), conf, "", map[string]string{"APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data", "APACHE_LOG_DIR": "/var/log/apache2"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoute(t *testing.T) {
	c := load(t)
	type want struct {
		VHost   string
		Via     string
		Target  string
		Scheme  string
		Timeout time.Duration
		From    string // TimeoutFrom and the line of TimeoutAt
	}
	v4, pinned := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		addr netip.Addr
		port int
		host string
		want want
	}{
		{"ProxyPass / with timeout=", v4, 80, "app.example.com", want{"app.example.com", "ProxyPass", "127.0.0.1:3000", "http", 30 * time.Second, "timeout= app.conf:4"}},
		{"ServerAlias wildcard", v4, 80, "eu.app.example.com", want{"app.example.com", "ProxyPass", "127.0.0.1:3000", "http", 30 * time.Second, "timeout= app.conf:4"}},
		{"ProxyPass to a unix socket", v4, 80, "node.example.com", want{"node.example.com", "ProxyPass", "unix:/run/node/app.sock", "http", 300 * time.Second, "Timeout apache2.conf:3"}},
		{"unknown name → first vhost, global SetHandler (Debian's php8.2-fpm.conf)", v4, 80, "nobody.test", want{"", "SetHandler", "unix:/run/php/php8.2-fpm.sock", "fcgi", 300 * time.Second, "Timeout apache2.conf:3"}},
		{"exact address wins; ProxyPass in <Location />", pinned, 80, "app.example.com", want{"pinned.example.com", "ProxyPass", "127.0.0.1:9001", "fcgi", 300 * time.Second, "Timeout apache2.conf:3"}},
		{"vhost SetHandler in FilesMatch, ProxyTimeout", v4, 443, "shop.example.com", want{"shop.example.com", "SetHandler", "127.0.0.1:9000", "fcgi", 45 * time.Second, "ProxyTimeout app.conf:22"}},
		{"ProxyTimeout wins over a later Timeout", v4, 8443, "slow.example.com", want{"slow.example.com", "ProxyPass", "127.0.0.1:3001", "http", 90 * time.Second, "ProxyTimeout app.conf:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Route(tt.addr, tt.port, tt.host)
			got := want{Via: r.Via, Timeout: r.Timeout, From: r.TimeoutFrom}
			if r.TimeoutAt != nil {
				got.From += fmt.Sprintf(" %s:%d", filepath.Base(r.TimeoutAt.File), r.TimeoutAt.Line)
			}
			if r.VHost != nil {
				got.VHost = r.VHost.Name
			}
			if r.Target != nil {
				got.Target, got.Scheme = r.Target.String(), r.Target.Scheme
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestFacts(t *testing.T) {
	c := load(t)
	u, g := c.User()
	type facts struct {
		User, Group string
		Logs        []string
	}
	want := facts{"www-data", "www-data", []string{"/var/log/apache2/error.log", "/var/log/apache2/default-error.log"}}
	if d := cmp.Diff(want, facts{u, g, c.ErrorLogs()}); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse("/x.conf", "</VirtualHost>\n", nil); err == nil {
		t.Error("unbalanced section: no error")
	}
}
