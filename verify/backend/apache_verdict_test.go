package backend

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/apacheconf"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// nginxWords are nginx's directives and tools; a cause or fix for an
// Apache route must name none of them.
var nginxWords = regexp.MustCompile(`nginx|fastcgi_pass|proxy_pass|_read_timeout|_buffer_size|_buffers|client_max_body_size|ssl_certificate|listen \d+`)

const apacheTestConf = `Timeout 300
Listen 8081
Listen 8082
<VirtualHost *:8081>
    ServerName php.example.com
    <FilesMatch "\.php$">
        SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost"
    </FilesMatch>
</VirtualHost>
<VirtualHost *:8082>
    ServerName app.example.com
    ProxyPass / http://127.0.0.1:3000/ timeout=30
</VirtualHost>
<VirtualHost *:8082>
    ServerName api.example.com
    ProxyTimeout 45
    ProxyPass / http://127.0.0.1:3001/
</VirtualHost>
`

func apacheAnalyzer(t *testing.T) *Analyzer {
	t.Helper()
	c, err := apacheconf.Parse("/etc/apache2/apache2.conf", apacheTestConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	web := &webServer{kind: "Apache", apache: c, unit: "apache2", hasCred: true, workers: cred{name: "www-data", uid: 33, gids: []uint32{33}}}
	return &Analyzer{opts: Options{Timeout: 2 * time.Second, Since: DefaultSince, CloudflareReadTimeout: DefaultCloudflareReadTimeout},
		now: time.Now(), webs: []*webServer{web}, probes: map[string]*probeOnce{}}
}

// TestApacheRouteWords: the route of an Apache virtual host names its
// directive as written and where its timeout comes from.
func TestApacheRouteWords(t *testing.T) {
	a := apacheAnalyzer(t)
	lo := netip.MustParseAddr("127.0.0.1")
	type words struct{ Pass, Timeout, Raise string }
	for _, tt := range []struct {
		name string
		port int
		host string
		want words
	}{
		{"SetHandler, Timeout of the main server", 8081, "php.example.com", words{
			`SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost" (/etc/apache2/apache2.conf:7)`, "Timeout",
			"ProxyTimeout (add it to <VirtualHost *:8081> php.example.com (/etc/apache2/apache2.conf:4); now Timeout 300s at /etc/apache2/apache2.conf:1 applies)"}},
		{"ProxyPass timeout=", 8082, "app.example.com", words{
			"ProxyPass / http://127.0.0.1:3000/ timeout=30 (/etc/apache2/apache2.conf:12)", "ProxyPass timeout=",
			"the timeout= of ProxyPass / http://127.0.0.1:3000/ timeout=30 (/etc/apache2/apache2.conf:12)"}},
		{"ProxyTimeout", 8082, "api.example.com", words{
			"ProxyPass / http://127.0.0.1:3001/ (/etc/apache2/apache2.conf:17)", "ProxyTimeout",
			"ProxyTimeout (/etc/apache2/apache2.conf:16)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := a.route(lo, tt.port, tt.host)
			if rt == nil {
				t.Fatal("no route")
			}
			if d := cmp.Diff(tt.want, words{rt.pass, rt.readTimeoutName, rt.raise()}); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestApacheVerdictWords: every verdict about an Apache route quotes
// Apache's directives (the SetHandler / ProxyPass line, ProxyTimeout) and
// none of nginx's.
func TestApacheVerdictWords(t *testing.T) {
	a := apacheAnalyzer(t)
	lo := netip.MustParseAddr("127.0.0.1")
	php, app := a.route(lo, 8081, "php.example.com"), a.route(lo, 8082, "app.example.com")
	for _, tt := range []struct {
		name string
		rt   *route
		kind probeKind
		fix  string // a fragment the fix must hold
	}{
		{"no socket", php, probeNoSocket, ""},
		{"hung php backend", php, probeNoAnswer, "raise ProxyTimeout (add it to <VirtualHost *:8081> php.example.com (/etc/apache2/apache2.conf:4); now Timeout 300s at /etc/apache2/apache2.conf:1 applies) only if the work is legitimately long"},
		{"hung HTTP backend", app, probeNoAnswer, "raise the timeout= of ProxyPass / http://127.0.0.1:3000/ timeout=30 (/etc/apache2/apache2.conf:12) only if"},
		{"refused", app, probeRefused, "start the service that should listen on 127.0.0.1:3000 (ProxyPass / http://127.0.0.1:3000/ timeout=30 (/etc/apache2/apache2.conf:12))"},
		{"stale socket", php, probeStale, ""},
		{"queue full", php, probeQueueFull, "raise ProxyTimeout"},
		{"connect timeout", app, probeConnTimeout, ""},
		{"denied", php, probeDenied, ""},
		{"reset", app, probeReset, ""},
		{"bad answer", php, probeBadAnswer, `check that SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost" (/etc/apache2/apache2.conf:7) is a fastcgi backend`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := a.probeVerdict(tt.rt, tt.rt.targets[0], probeResult{kind: tt.kind, err: errors.New("bad record"), detail: "the socket is root:root 0660"}, nil)
			if m := nginxWords.FindString(v.cause + " " + v.fix); m != "" {
				t.Errorf("an Apache verdict says %q:\ncause: %s\nfix: %s", m, v.cause, v.fix)
			}
			if !strings.Contains(v.fix, tt.fix) {
				t.Errorf("fix %q lacks %q", v.fix, tt.fix)
			}
			t.Logf("cause: %s\nfix: %s", v.cause, v.fix)
		})
	}
	t.Run("slow page from the log", func(t *testing.T) {
		a.counts = []logs.Count{{Source: logs.Apache, Kind: logs.DispatchFailed, Upstream: "127.0.0.1", N: 3, Last: a.now,
			Latest: logs.Entry{Message: "AH01075: Error dispatching request to 127.0.0.1:3000: (polling)"}}}
		defer func() { a.counts = nil }()
		v := a.logVerdict(app, 504, nil)
		if v == nil {
			t.Fatal("no verdict")
		}
		want := "raise the timeout= of ProxyPass / http://127.0.0.1:3000/ timeout=30 (/etc/apache2/apache2.conf:12) only if the work is legitimately long"
		if !strings.Contains(v.fix, want) {
			t.Errorf("fix %q lacks %q", v.fix, want)
		}
		if m := nginxWords.FindString(v.cause + " " + v.fix); m != "" {
			t.Errorf("an Apache verdict says %q: %s / %s", m, v.cause, v.fix)
		}
		if !strings.Contains(v.cause, "Apache's ProxyPass timeout= (30s)") {
			t.Errorf("cause %q does not name the timeout= that applies", v.cause)
		}
	})
}
