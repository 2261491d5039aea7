package probe

import (
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/report"
)

// nginxWords / apacheWords are each server's directives; a fix for the
// other server must name none of them.
var (
	nginxWords  = regexp.MustCompile(`nginx|ssl_certificate|server_name|listen \d+|ssl_protocols|ssl_ciphers|ssl_verify_client`)
	apacheWords = regexp.MustCompile(`Apache|apache2|httpd|SSLEngine|SSLCertificateFile|ServerName|Listen \d+|SSLProtocol|SSLCipherSuite|VirtualHost`)
)

func TestServerOf(t *testing.T) {
	at := Target{Addr: netip.MustParseAddr("192.0.2.1"), Port: 443}
	sock := func(addr string, port int, proc string) Socket {
		return Socket{Addr: netip.MustParseAddr(addr), Port: port, Process: proc}
	}
	for _, tt := range []struct {
		name  string
		socks []Socket
		want  string
	}{
		{"Apache on the port", []Socket{sock("0.0.0.0", 80, "nginx"), sock("0.0.0.0", 443, "apache2")}, ServerApache},
		{"httpd on the port", []Socket{sock("192.0.2.1", 443, "httpd")}, ServerApache},
		{"nginx on the port", []Socket{sock("::", 443, "nginx")}, ServerNginx},
		{"nothing on the port: the web server elsewhere", []Socket{sock("0.0.0.0", 22, "sshd"), sock("0.0.0.0", 80, "apache2")}, ServerApache},
		{"an unknown process on the port", []Socket{sock("0.0.0.0", 443, "caddy")}, ""},
		{"nothing", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, serverOf(tt.socks, at)); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestListenFixWords: the fix for nothing listening names the directives
// of the web server that runs here, or both when none is known.
func TestListenFixWords(t *testing.T) {
	https := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheme: "https", SSLMode: ModeStrict}
	only80 := func(proc string) []Socket {
		return []Socket{{Addr: netip.MustParseAddr("0.0.0.0"), Port: 80, Process: proc}}
	}
	otherAddr := func(proc string) []Socket {
		return []Socket{{Addr: netip.MustParseAddr("127.0.0.1"), Port: 443, Process: proc}}
	}
	for _, tt := range []struct {
		name  string
		socks []Socket
		want  string
	}{
		{"Apache speaks only HTTP", only80("apache2"),
			"SSL mode \"strict\" needs HTTPS on port 443 but the web server only speaks HTTP here: add a TLS listener (Apache `Listen 443` and a `<VirtualHost *:443>` with `SSLEngine on`, SSLCertificateFile and SSLCertificateKeyFile (a2enmod ssl); a Cloudflare Origin CA certificate will do), or change the zone's SSL mode."},
		{"nginx speaks only HTTP", only80("nginx"),
			"SSL mode \"strict\" needs HTTPS on port 443 but the web server only speaks HTTP here: add a TLS listener (nginx `listen 443 ssl;` with ssl_certificate and ssl_certificate_key; a Cloudflare Origin CA certificate will do), or change the zone's SSL mode."},
		{"Apache on another address", otherAddr("apache2"),
			"Make the web server listen on 192.0.2.1:443 (or on all addresses, e.g. Apache `Listen 443`), then reload it."},
		{"nothing runs, Apache known", []Socket{{Addr: netip.MustParseAddr("127.0.0.1"), Port: 8081, Process: "apache2"}},
			"Start the web server (`systemctl start apache2` (httpd on Red Hat); if it does not stay up, `apachectl configtest` and its error log say why)."},
		{"nothing runs, no web server known", nil,
			"Start the web server (`systemctl start nginx` or `systemctl start apache2`; if it does not stay up, `systemctl status` of that unit and its error log say why)."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, listenFix(https, tt.socks)); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestCertificateFixWords: a certificate that does not name the host, and
// one served without its chain, get fixes in the words of Target.Server.
func TestCertificateFixWords(t *testing.T) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	root := newTestCA(t)
	inter := newCA(t, root, "cfguard test intermediate", now.Add(-365*24*time.Hour), now.Add(365*24*time.Hour))
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	wrong := inter.issue(t, "a.example", []string{"a.example"}, now.Add(-24*time.Hour), now.Add(60*24*time.Hour))
	for _, tt := range []struct {
		server    string
		fix       []string
		forbidden *regexp.Regexp
	}{
		{ServerApache, []string{
			"in Apache, the <VirtualHost> with ServerName www.example.com needs its own SSLCertificateFile",
			"Apache SSLCertificateFile must point to fullchain.pem, not cert.pem"}, nginxWords},
		{ServerNginx, []string{
			"in nginx, the server block with server_name www.example.com needs its own ssl_certificate",
			"nginx ssl_certificate must point to fullchain.pem"}, apacheWords},
		{"", []string{"in nginx, the server block", "in Apache, the <VirtualHost>"}, nil},
	} {
		t.Run("server "+tt.server, func(t *testing.T) {
			tg := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheme: "https", SSLMode: ModeStrict, Server: tt.server}
			o := CertificateWith(tg, wrong.state(), now, CertOptions{Roots: roots}) // the leaf alone: no intermediate
			if !o.Fail || o.Status != 526 {
				t.Fatalf("want a 526: %+v", o)
			}
			for _, w := range tt.fix {
				if !strings.Contains(o.Fix, w) {
					t.Errorf("fix %q lacks %q", o.Fix, w)
				}
			}
			if tt.forbidden != nil {
				if m := tt.forbidden.FindString(o.Fix); m != "" {
					t.Errorf("fix for %s says %q: %s", tt.server, m, o.Fix)
				}
			}
		})
	}
}

// TestTLSAndHTTPFixWords: a plain-HTTP answer to the handshake and a 502
// get fixes in Apache's words for an Apache origin, nginx's for nginx.
func TestTLSAndHTTPFixWords(t *testing.T) {
	plain := tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'H', 'T', 'T', 'P', '/'}}
	for _, tt := range []struct {
		server         string
		tlsFix, fix502 string
		forbidden      *regexp.Regexp
	}{
		{ServerApache, "Turn on TLS for port 443 (Apache `Listen 443` and a `<VirtualHost *:443>` with `SSLEngine on`, SSLCertificateFile and SSLCertificateKeyFile (a2enmod ssl)), or use SSL mode Flexible only if the origin really cannot do HTTPS.",
			"Apache: /var/log/apache2/error.log or /var/log/httpd/error_log, AH01114, AH01102 or AH01075", nginxWords},
		{ServerNginx, "Turn on TLS for port 443 (nginx `listen 443 ssl;` with ssl_certificate and ssl_certificate_key), or use SSL mode Flexible only if the origin really cannot do HTTPS.",
			"nginx: /var/log/nginx/error.log", apacheWords},
	} {
		t.Run(tt.server, func(t *testing.T) {
			tg := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheme: "https", SSLMode: ModeFull, Server: tt.server}
			o := tlsFailure(report.Outcome{Stage: report.StageTLS}, tg, plain, false)
			if d := cmp.Diff(tt.tlsFix, o.Fix); d != "" {
				t.Errorf("TLS fix (-want +got)\n%s", d)
			}
			f := fix5xx(502, words{ServerFor(tg)})
			if !strings.Contains(f, tt.fix502) {
				t.Errorf("502 fix %q lacks %q", f, tt.fix502)
			}
			if m := tt.forbidden.FindString(o.Fix + " " + f); m != "" {
				t.Errorf("fixes for %s say %q: %s / %s", tt.server, m, o.Fix, f)
			}
		})
	}
}
