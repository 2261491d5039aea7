package backend

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestApacheHTTPBackendHung: a real Apache whose ProxyPass goes to a
// backend that accepts and never answers. The fix finds what the backend
// waits for and names the ProxyTimeout line of the virtual host — Apache's
// directive, at its file and line, never nginx's proxy_read_timeout.
func TestApacheHTTPBackendHung(t *testing.T) {
	s := newSite(t, "apache2")
	const mods = "/usr/lib/apache2/modules"
	if _, err := os.Stat(mods + "/mod_proxy_http.so"); err != nil {
		t.Skip("skipped: mod_proxy_http is not installed")
	}
	var ln net.Listener
	if err := s.ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(release); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); <-release }() // reads nothing, answers nothing
		}
	}()
	addr := ln.Addr().String()
	conf := s.write("apache2.conf", fmt.Sprintf(`ServerRoot %[1]s
Mutex file:%[1]s default
PidFile %[1]s/apache.pid
DefaultRuntimeDir %[1]s
LoadModule mpm_event_module %[2]s/mod_mpm_event.so
LoadModule authz_core_module %[2]s/mod_authz_core.so
LoadModule proxy_module %[2]s/mod_proxy.so
LoadModule proxy_http_module %[2]s/mod_proxy_http.so
User www-data
Group www-data
Listen 127.0.0.1:8081
ErrorLog %[1]s/apache-error.log
LogLevel warn
<VirtualHost *:8081>
    ServerName %[4]s
    ProxyTimeout 1
    ProxyPass / http://%[3]s/
</VirtualHost>
`, s.dir, mods, addr, testHost))
	s.ns.Start("apache2", "-f", conf, "-DFOREGROUND")
	s.waitPort(8081)
	code := s.get(8081)
	// Apache 2.4 answers 502 when ProxyTimeout runs out reading the
	// status line (AH01102), where nginx answers 504.
	if code != 502 && code != 504 {
		t.Fatalf("Apache answered %d, want 502 or 504", code)
	}
	out := s.analyze(Options{ApacheConfig: conf}, 8081, code)
	wantFail(t, out, code, "the backend at "+addr+" runs", "busy or hung")
	for _, w := range []string{"find what the backend at " + addr + " waits for", fmt.Sprintf("raise ProxyTimeout (%s:16) only if the work is legitimately long", conf)} {
		if !strings.Contains(out.Fix, w) {
			t.Errorf("fix %q lacks %q", out.Fix, w)
		}
	}
	if m := nginxWords.FindString(strings.Join(append([]string{out.Cause, out.Fix}, out.Warnings...), "\n")); m != "" {
		t.Errorf("an Apache outcome says %q: %+v", m, out)
	}
}
