package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/cfranges/realip"
	"github.com/cfguard/cfguard/verify/report"
)

// realIPFinding runs Discover inside the site's namespace and returns the
// real-IP finding about the web server whose message starts with server
// (other tests' web servers run on this host too), if any.
func (s *site) realIPFinding(opts Options, server string) *report.Finding {
	s.t.Helper()
	opts.Cloudflare = standinCF
	var found *report.Finding
	err := s.ns.Do(func() error {
		_, fs, err := Discover(context.Background(), opts)
		for _, f := range fs {
			if isRealIPFinding(f) && strings.HasPrefix(f.Message, server) {
				found = &f
			}
		}
		return err
	})
	if err != nil {
		s.t.Fatalf("Discover: %v", err)
	}
	return found
}

// TestNginxRealIPFromDump: a running nginx read through `nginx -T`, first
// without a real-IP configuration (a warning with the fix), then with
// cfguard's file included from the http block (none).
func TestNginxRealIPFromDump(t *testing.T) {
	s := newSite(t)
	s.write("conf.d/cloudflare-realip.conf", "")
	conf := s.nginxConf(8080, "return 200;", "include "+s.path("conf.d")+"/*.conf;")
	s.startNginx(conf, 8080)
	f := s.realIPFinding(Options{NginxConfig: conf}, "nginx ("+conf+")")
	if f == nil {
		t.Fatal("no real-IP finding for an nginx without set_real_ip_from")
	}
	t.Logf("finding: %s\n  fix: %s", f.Message, f.Fix)
	for _, want := range []string{"nginx (" + conf + ") does not take the visitor's address from CF-Connecting-IP in every server block", "fail2ban"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q lacks %q", f.Message, want)
		}
	}
	s.write("conf.d/cloudflare-realip.conf", renderedFor(t, realip.Nginx))
	if out, err := s.ns.Try("nginx", "-c", conf, "-s", "reload"); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	if f := s.realIPFinding(Options{NginxConfig: conf}, "nginx ("+conf+")"); f != nil {
		t.Errorf("finding with cfguard's file included: %s", f.Message)
	}
}

// TestApacheRealIPFromConfig: Apache's files as Discover reads them,
// without mod_remoteip, then with it and cfguard's file.
func TestApacheRealIPFromConfig(t *testing.T) {
	s := newSite(t, "apache2")
	const mods = "/usr/lib/apache2/modules"
	main := func(extra string) string {
		return s.write("apache2.conf", "ServerRoot "+s.dir+"\nPidFile "+s.dir+"/apache.pid\nLoadModule mpm_event_module "+mods+"/mod_mpm_event.so\n"+
			extra+"Listen 127.0.0.1:8081\nErrorLog "+s.dir+"/apache-error.log\n<VirtualHost *:8081>\nServerName "+testHost+"\nDocumentRoot "+s.dir+"/www\n</VirtualHost>\n")
	}
	conf := main("")
	if out, err := s.ns.Try("apache2", "-f", conf, "-t"); err != nil {
		t.Fatalf("apache2 -t: %v %s", err, out)
	}
	f := s.realIPFinding(Options{ApacheConfig: conf}, "Apache ("+conf+")")
	if f == nil || !strings.Contains(f.Message, "does not load mod_remoteip") || !strings.HasPrefix(f.Fix, "a2enmod remoteip; ") {
		t.Fatalf("finding %+v, want one about mod_remoteip", f)
	}
	s.write("cloudflare-realip.conf", renderedFor(t, realip.Apache))
	conf = main("LoadModule remoteip_module " + mods + "/mod_remoteip.so\nInclude " + s.path("cloudflare-realip.conf") + "\n")
	if out, err := s.ns.Try("apache2", "-f", conf, "-t"); err != nil {
		t.Fatalf("apache2 -t with cfguard's file: %v %s", err, out)
	}
	if f := s.realIPFinding(Options{ApacheConfig: conf}, "Apache ("+conf+")"); f != nil {
		t.Errorf("finding with mod_remoteip and cfguard's file: %s", f.Message)
	}
}
