package backend

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/cfranges/realip"
	"github.com/cfguard/cfguard/verify/backend/apacheconf"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

var t0Realip = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

var standinCF = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:cf::/48")}

func renderedFor(t *testing.T, kind realip.Kind) string {
	t.Helper()
	b, err := realip.Render(kind, standinCF, t0Realip)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNginxRealIPFinding(t *testing.T) {
	gen := renderedFor(t, realip.Nginx)
	server := func(name, extra string) string {
		return "server { listen 80; server_name " + name + "; " + extra + " location / { root /srv; } }\n"
	}
	for _, tc := range []struct {
		name, http string
		want       string // substring of the message; "" = no finding
	}{
		{"nothing configured", server("a.test", "") + server("b.test", ""),
			"does not take the visitor's address from CF-Connecting-IP in every server block: no set_real_ip_from / real_ip_header"},
		{"cfguard's file at http level", gen + server("a.test", "") + server("b.test", ""), ""},
		{"cfguard's file in one server only", server("a.test", gen) + server("b.test", ""),
			"in 1 of its 2 server blocks (server b.test (nginx.conf:"},
		{"X-Forwarded-For is fine", "set_real_ip_from 198.51.100.0/24; set_real_ip_from 2001:db8::/32; real_ip_header X-Forwarded-For;" + server("a.test", ""), ""},
		{"set_real_ip_from without real_ip_header (default X-Real-IP)", "set_real_ip_from 198.51.100.0/24; set_real_ip_from 2001:db8:cf::/48;" + server("a.test", ""),
			"real_ip_header is X-Real-IP, which Cloudflare does not send"},
		{"a range missing", "set_real_ip_from 198.51.100.0/24; real_ip_header CF-Connecting-IP;" + server("a.test", ""),
			"set_real_ip_from does not cover 1 of Cloudflare's 2 ranges (2001:db8:cf::/48)"},
		{"a server's own set_real_ip_from replaces the http level's", gen + server("a.test", "set_real_ip_from 10.0.0.0/8;"),
			"set_real_ip_from does not cover 2 of Cloudflare's 2 ranges"},
		{"a server's real_ip_header overrides", gen + server("a.test", "real_ip_header X-Real-IP;"),
			"real_ip_header is X-Real-IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := nginxconf.Parse("nginx.conf", "events {}\nhttp {\n"+tc.http+"}\n")
			if err != nil {
				t.Fatal(err)
			}
			f := nginxRealIP("nginx.conf", c, standinCF)
			checkRealIPFinding(t, f, tc.want, "cfguard sync --nginx-realip-file")
		})
	}
}

func TestApacheRealIPFinding(t *testing.T) {
	gen := renderedFor(t, realip.Apache)
	const load = "LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so\n"
	vhost := func(name, extra string) string {
		return "<VirtualHost *:80>\nServerName " + name + "\n" + extra + "</VirtualHost>\n"
	}
	for _, tc := range []struct {
		name, conf string
		want       string
	}{
		{"no mod_remoteip", vhost("a.test", ""), "Apache (apache2.conf) does not load mod_remoteip"},
		{"no mod_remoteip, even with the file inside IfModule", "<IfModule remoteip_module>\n" + gen + "</IfModule>\n" + vhost("a.test", ""), "does not load mod_remoteip"},
		{"module but no header", load + vhost("a.test", "") + vhost("b.test", ""), "in every virtual host: no RemoteIPHeader"},
		{"cfguard's file at server level", load + gen + vhost("a.test", "") + vhost("b.test", ""), ""},
		{"cfguard's file in one vhost", load + vhost("a.test", gen) + vhost("b.test", ""), "in 1 of its 2 virtual hosts (<VirtualHost *:80> b.test"},
		{"header that Cloudflare does not send", load + "RemoteIPHeader X-Real-IP\n" + vhost("a.test", ""), "RemoteIPHeader is X-Real-IP, which Cloudflare does not send"},
		{"trusted list too narrow", load + "RemoteIPHeader CF-Connecting-IP\nRemoteIPTrustedProxy 198.51.100.0/25\n" + vhost("a.test", ""),
			"RemoteIPTrustedProxy does not cover 2 of Cloudflare's 2 ranges (198.51.100.0/24, 2001:db8:cf::/48)"},
		{"a trusted-proxy list file is taken on faith", load + "RemoteIPHeader CF-Connecting-IP\nRemoteIPTrustedProxyList /etc/apache2/cf.txt\n" + vhost("a.test", ""), ""},
		{"no vhosts, configured", load + gen, ""},
		{"no vhosts, not configured", load, "does not take the visitor's address from CF-Connecting-IP: no RemoteIPHeader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := apacheconf.Parse("apache2.conf", tc.conf, nil)
			if err != nil {
				t.Fatal(err)
			}
			f := apacheRealIP("apache2.conf", c, standinCF)
			checkRealIPFinding(t, f, tc.want, "cfguard sync --apache-realip-file")
		})
	}
}

func checkRealIPFinding(t *testing.T, f *report.Finding, want, fix string) {
	t.Helper()
	if want == "" {
		if f != nil {
			t.Errorf("unexpected finding: %s", f.Message)
		}
		return
	}
	if f == nil {
		t.Fatalf("no finding, want one saying %q", want)
	}
	if f.Severity != report.SeverityWarning || !strings.Contains(f.Message, want) || !strings.Contains(f.Message, "fail2ban") {
		t.Errorf("finding %s: %q, want a warning containing %q and the effect", f.Severity, f.Message, want)
	}
	if !strings.Contains(f.Fix, fix) {
		t.Errorf("fix %q lacks %q", f.Fix, fix)
	}
}

func TestUncovered(t *testing.T) {
	p := netip.MustParsePrefix
	got := uncovered([]netip.Prefix{p("198.51.100.0/24"), p("203.0.113.0/24"), p("2001:db8:cf::/48")},
		[]netip.Prefix{p("198.51.0.0/16"), p("203.0.113.0/25"), p("2001:db8::/32")})
	if diff := cmp.Diff([]netip.Prefix{p("203.0.113.0/24")}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("uncovered (-want +got)\n%s", diff)
	}
}

// isRealIPFinding tells the real-IP check's findings, which tests of other
// findings leave out.
func isRealIPFinding(f report.Finding) bool {
	return strings.Contains(f.Message, "take the visitor's address from CF-Connecting-IP") || strings.Contains(f.Message, "does not load mod_remoteip")
}
