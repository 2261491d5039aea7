package main

// End-to-end tests of the real-IP files: the cfguard binary, real nginx and
// Apache started by the test inside the origin namespace with their own
// configuration, pid and log files, and requests from a "Cloudflare"
// address in the edge namespace carrying CF-Connecting-IP. cfguard finds
// `nginx`, `apachectl` and `systemctl` through PATH; the test puts wrappers
// first in PATH that point them at its own configuration, so the host's
// services are never asked anything.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/cfranges/realip"
)

// webWait bounds waiting for a web server to start or to finish a reload
// (readiness, not an assertion).
const webWait = 15 * time.Second

const visitor = "203.0.113.77" // what Cloudflare puts in CF-Connecting-IP

type webSite struct {
	*site
	dir    string // configuration, logs, pid, the wrappers in bin/
	port   int
	which  string // "nginx" or "apache"
	logged int    // access-log lines seen
}

func newWebSite(t *testing.T, which string, port int) *webSite {
	bin := map[string]string{"nginx": "nginx", "apache": "apache2"}[which]
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("skipped: %s is not installed", bin)
	}
	w := &webSite{site: newSite(t), dir: t.TempDir(), port: port, which: which}
	for _, d := range []string{filepath.Dir(w.dir), w.dir} {
		if err := os.Chmod(d, 0o755); err != nil { // the workers (www-data) read it
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "conf.d", "www"} {
		if err := os.MkdirAll(w.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.write("www/index.html", "ok\n")
	conf := w.path(which + ".conf")
	systemctl := `#!/bin/sh
# stands in for systemctl: reloads the test's own server, nothing else
[ "$1" = reload ] || exit 97
case "$2" in
nginx) exec nginx -s reload ;;
apache2) exec apachectl graceful ;;
esac
exit 97
`
	w.write("bin/systemctl", systemctl)
	w.write("bin/nginx", fmt.Sprintf("#!/bin/sh\nexec /usr/sbin/nginx -c %s \"$@\"\n", conf))
	// Debian's apachectl, with the test's envvars (run and lock directories
	// inside the test's) instead of /etc/apache2/envvars.
	w.write("envvars", fmt.Sprintf("export APACHE_RUN_DIR=%[1]s/run APACHE_LOCK_DIR=%[1]s/lock APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data\n", w.dir))
	w.write("bin/apachectl", fmt.Sprintf("#!/bin/sh\nAPACHE_ENVVARS=%s/envvars APACHE_ARGUMENTS=\"-f %s\" exec /usr/sbin/apachectl \"$@\"\n", w.dir, conf))
	for _, f := range []string{"systemctl", "nginx", "apachectl"} {
		os.Chmod(w.path("bin/"+f), 0o755)
	}
	return w
}

func (w *webSite) path(rel string) string { return filepath.Join(w.dir, rel) }

func (w *webSite) write(rel, text string) {
	w.t.Helper()
	if err := os.WriteFile(w.path(rel), []byte(text), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *webSite) read(rel string) string {
	w.t.Helper()
	b, err := os.ReadFile(w.path(rel))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.t.Fatal(err)
	}
	return string(b)
}

// nginxConf is the test's nginx.conf; extraMain goes at the top level.
func (w *webSite) nginxConf(extraMain string) {
	w.write("nginx.conf", fmt.Sprintf(`user www-data;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
daemon off;
events { worker_connections 64; }
%[3]s
http {
    log_format realip '$remote_addr via $realip_remote_addr';
    access_log %[1]s/access.log realip;
    client_body_temp_path %[1]s/tmp-body;
    proxy_temp_path %[1]s/tmp-proxy;
    fastcgi_temp_path %[1]s/tmp-fastcgi;
    uwsgi_temp_path %[1]s/tmp-uwsgi;
    scgi_temp_path %[1]s/tmp-scgi;
    include %[1]s/conf.d/*.conf;
    server {
        listen %[2]s:%[4]d;
        root %[1]s/www;
    }
}
`, w.dir, originV4, extraMain, w.port))
}

// apacheConf is the test's apache.conf; remoteip loads mod_remoteip.
func (w *webSite) apacheConf(remoteip bool) {
	load := ""
	if remoteip {
		load = "LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so"
	}
	w.write("apache.conf", fmt.Sprintf(`ServerRoot %[1]s
ServerName origin.test
Mutex file:%[1]s default
PidFile %[1]s/apache.pid
DefaultRuntimeDir %[1]s
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
%[3]s
User www-data
Group www-data
Listen %[2]s:%[4]d
ErrorLog %[1]s/error.log
LogLevel warn
LogFormat "%%a via %%{c}a h=%%h" realip
CustomLog %[1]s/access.log realip
IncludeOptional %[1]s/conf.d/*.conf
DocumentRoot %[1]s/www
<Directory %[1]s/www>
    Require all granted
</Directory>
`, w.dir, originV4, load, w.port))
}

func (w *webSite) start() {
	w.t.Helper()
	if w.which == "nginx" {
		w.origin.Start("/usr/sbin/nginx", "-c", w.path("nginx.conf"))
	} else {
		w.origin.Start("/usr/sbin/apache2", "-f", w.path("apache.conf"), "-DFOREGROUND")
	}
	deadline := time.Now().Add(webWait)
	for w.get() != 200 {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s does not answer on %s:%d after %s; error log:\n%s", w.which, originV4, w.port, webWait, w.read("error.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get sends GET / from the stand-in Cloudflare address in the edge
// namespace, with CF-Connecting-IP, and returns the status (0: no answer).
func (w *webSite) get() int {
	out, _ := w.edge.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
		"--interface", edgeV4.String(), "-H", "CF-Connecting-IP: "+visitor, fmt.Sprintf("http://%s:%d/index.html", originV4, w.port))
	var code int
	fmt.Sscan(out, &code)
	return code
}

// lastLogged sends a request and returns its access-log line.
func (w *webSite) lastLogged() string {
	w.t.Helper()
	if code := w.get(); code != 200 {
		w.t.Fatalf("%s answered %d, want 200", w.which, code)
	}
	// The log is written after the answer; wait for the line.
	deadline := time.Now().Add(webWait)
	for {
		lines := strings.Split(strings.TrimSpace(w.read("access.log")), "\n")
		if n := len(lines); n > w.logged {
			w.logged = n
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no new access-log line after %s", webWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogged sends requests until one is logged with the visitor's
// address (a reload has taken effect) and returns that line.
func (w *webSite) waitLogged(want string) string {
	w.t.Helper()
	deadline := time.Now().Add(webWait)
	for {
		line := w.lastLogged()
		if strings.HasPrefix(line, want) && w.oneGeneration() {
			return line
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("after %s the access log still says %q, want it to start with %q (and the old workers gone)", webWait, line, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// oneGeneration says whether the workers of the configuration before the
// last reload are gone: until then an old nginx worker may still take a
// request and log it the old way. (nginx only; Apache answers true.)
func (w *webSite) oneGeneration() bool {
	if w.which != "nginx" {
		return true
	}
	master := strings.TrimSpace(w.read("nginx.pid"))
	workers := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so cut at the last ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat)[i+1:]); len(f) > 1 && f[1] == master {
				workers++
			}
		}
	}
	return workers == 1 // worker_processes 1
}

// run runs cfguard in the origin namespace with the wrappers first in PATH.
func (w *webSite) run(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"--state-dir", w.state, "--api-url", w.api.URL}, args...)
	cmd := w.origin.Command(ctx, cfguardBin, full...)
	cmd.Env = append(os.Environ(), "PATH="+w.path("bin")+":"+os.Getenv("PATH"))
	return runCmd(w.t, cmd)
}

func (w *webSite) mustRun(args ...string) string {
	w.t.Helper()
	out, errOut, code := w.run(args...)
	if code != 0 {
		w.t.Fatalf("cfguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestNginxRealIPEndToEnd(t *testing.T) {
	w := newWebSite(t, "nginx", 8080)
	w.api.SetIPs([]string{"198.51.100.0/24"}, []string{"2001:db8:cf::/48"}, nil, "one") // the visitor is not in it
	w.nginxConf("")
	w.start()
	file := w.path("conf.d/cloudflare-realip.conf")
	flag := "--nginx-realip-file=" + file

	if line := w.lastLogged(); !strings.HasPrefix(line, edgeV4.String()+" ") {
		t.Fatalf("before sync the log says %q, want Cloudflare's address %s", line, edgeV4)
	}

	// Dry run: says it would create the file, creates nothing.
	out := w.mustRun("sync", "--dry-run", flag)
	if !strings.Contains(out, "cfguard: nginx real-IP file "+file+" would be created (nothing was changed)\n") {
		t.Errorf("dry run said %q", out)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dry run wrote %s (%v)", file, err)
	}

	out = w.mustRun("sync", flag)
	if !strings.Contains(out, "cfguard: nginx real-IP file "+file+" created; nginx reloaded\n") {
		t.Errorf("sync said %q", out)
	}
	t.Logf("sync:\n%s\n%s:\n%s", out, file, w.read("conf.d/cloudflare-realip.conf"))
	line := w.waitLogged(visitor + " ")
	if !strings.HasSuffix(line, " via "+edgeV4.String()) {
		t.Errorf("access log %q: want the visitor via Cloudflare's %s", line, edgeV4)
	}
	t.Logf("access log after sync: %s", line)

	// ranges --format nginx prints what sync wrote (but for the time).
	before := w.read("conf.d/cloudflare-realip.conf")
	if printed := w.mustRun("ranges", "--offline", "--format", "nginx"); !realip.Same([]byte(printed), []byte(before)) {
		t.Errorf("ranges --format nginx printed\n%s\nsync wrote\n%s", printed, before)
	}

	// Nothing new: the file (with its time) stays byte for byte.
	out = w.mustRun("sync", flag)
	if !strings.Contains(out, "real-IP file "+file+" already up to date") || w.read("conf.d/cloudflare-realip.conf") != before {
		t.Errorf("second sync said %q and the file changed: %v", out, w.read("conf.d/cloudflare-realip.conf") != before)
	}

	// The administrator now includes the file where nginx forbids it (not
	// reloaded yet); Cloudflare adds a range. sync updates the firewall, but
	// nginx -t rejects the new file: the previous one is put back, nginx is
	// not reloaded and keeps serving.
	w.nginxConf("include " + file + ";")
	w.api.SetIPs([]string{"198.51.100.0/24", "192.0.2.128/25"}, []string{"2001:db8:cf::/48"}, nil, "grown")
	out, errOut, code := w.run("sync", flag)
	t.Logf("sync with a broken nginx.conf: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"the firewall was updated, but nginx rejected the new real-IP file " + file,
		"the previous file was put back; nginx was not reloaded and serves as before",
		`"set_real_ip_from" directive is not allowed here in ` + file + ":4"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
		t.Errorf("stderr has %d lines, want one", n+1)
	}
	if got := w.read("conf.d/cloudflare-realip.conf"); got != before {
		t.Errorf("the file was not put back:\n%s", got)
	}
	if !strings.Contains(w.ruleset(), "192.0.2.128/25") {
		t.Error("the firewall does not hold the new range, yet the message says it was updated")
	}
	if line := w.lastLogged(); !strings.HasPrefix(line, visitor+" ") {
		t.Errorf("after the rejected file nginx logs %q", line)
	}

	// Fixed: the new range is written and nginx reloaded.
	w.nginxConf("")
	out = w.mustRun("sync", flag)
	if !strings.Contains(out, "real-IP file "+file+" updated; nginx reloaded") || !strings.Contains(w.read("conf.d/cloudflare-realip.conf"), "set_real_ip_from 192.0.2.128/25;\n") {
		t.Errorf("sync after the fix said %q; file:\n%s", out, w.read("conf.d/cloudflare-realip.conf"))
	}
	w.waitLogged(visitor + " ")
}

func TestApacheRealIPEndToEnd(t *testing.T) {
	if _, err := os.Stat("/usr/lib/apache2/modules/mod_remoteip.so"); err != nil {
		t.Skip("skipped: mod_remoteip is not installed")
	}
	w := newWebSite(t, "apache", 8081)
	w.api.SetIPs([]string{"198.51.100.0/24"}, []string{"2001:db8:cf::/48"}, nil, "one")
	w.apacheConf(false) // mod_remoteip not loaded yet
	w.start()
	file := w.path("conf.d/cloudflare-realip.conf")
	flag := "--apache-realip-file=" + file
	if line := w.lastLogged(); !strings.HasPrefix(line, edgeV4.String()+" ") {
		t.Fatalf("before sync the log says %q, want Cloudflare's address %s", line, edgeV4)
	}

	// Without mod_remoteip Apache rejects the file: it is removed again,
	// Apache is not reloaded and keeps serving.
	out, errOut, code := w.run("sync", flag)
	t.Logf("sync without mod_remoteip: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"the firewall was updated, but Apache rejected the new real-IP file " + file + ", so it was removed again; Apache was not reloaded",
		"Invalid command 'RemoteIPHeader'", "(mod_remoteip is not loaded: a2enmod remoteip)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rejected new file is still there (%v)", err)
	}
	if code := w.get(); code != 200 {
		t.Errorf("Apache answers %d after the rejected file, want 200", code)
	}

	// The administrator loads mod_remoteip: sync writes the file and reloads.
	w.apacheConf(true)
	out = w.mustRun("sync", flag)
	if !strings.Contains(out, "cfguard: Apache real-IP file "+file+" created; Apache reloaded\n") {
		t.Errorf("sync said %q", out)
	}
	line := w.waitLogged(visitor + " ")
	t.Logf("access log after sync: %s", line)
	// %a and %h both log the visitor once mod_remoteip trusts Cloudflare.
	if want := visitor + " via " + edgeV4.String() + " h=" + visitor; line != want {
		t.Errorf("access log %q, want %q", line, want)
	}
}

// TestNginxRealIPReloadFails: nginx is not running, so `nginx -t` accepts
// the file but the reload fails: exit 1 saying so, and the tested file
// stays for nginx to read when it starts.
func TestNginxRealIPReloadFails(t *testing.T) {
	w := newWebSite(t, "nginx", 8082)
	w.nginxConf("")
	file := w.path("conf.d/cloudflare-realip.conf")
	out, errOut, code := w.run("sync", "--nginx-realip-file", file)
	t.Logf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "cfguard: the firewall was updated and nginx accepted the new real-IP file " + file + ", but reloading nginx failed (it reads the new ranges when it next starts or reloads; the next sync tries again): nginx -s reload: [error] "
	if !strings.HasPrefix(errOut, want) {
		t.Errorf("stderr %q, want it to start with %q", errOut, want)
	}
	if got := w.read("conf.d/cloudflare-realip.conf"); !strings.Contains(got, "set_real_ip_from 198.51.100.0/24;\n") {
		t.Errorf("the tested file is not there:\n%s", got)
	}
	// nginx starts with it; the next sync reloads once, then has nothing to do.
	w.start()
	w.waitLogged(visitor + " ")
	if out := w.mustRun("sync", "--nginx-realip-file", file); !strings.Contains(out, "real-IP file "+file+" already up to date; nginx reloaded (the last reload had failed)\n") {
		t.Errorf("sync after nginx started said %q", out)
	}
	if out := w.mustRun("sync", "--nginx-realip-file", file); !strings.HasSuffix(out, "real-IP file "+file+" already up to date\n") {
		t.Errorf("the sync after that said %q", out)
	}
}
