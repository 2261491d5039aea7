package nginxconf

import (
	"path/filepath"
	"strings"
)

// Debian's compile-time defaults of the files `nginx -t` opens.
const (
	defaultPidFile   = "/run/nginx.pid"
	defaultAccessLog = "/var/log/nginx/access.log"
)

// TestWrites lists the files and directories `nginx -t` / `nginx -T` opens
// and creates when they are missing (seen with nginx 1.22: the error and
// access logs, an empty pid file, the temp directories): running it
// changes nothing only when all of them exist. ok is false when a path
// cannot be known from the files alone (a variable in it).
func (c *Config) TestWrites() (paths []string, ok bool) {
	ok = true
	seen := map[string]bool{}
	add := func(p string) {
		if strings.Contains(p, "$") {
			ok = false
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(c.Main), p)
		}
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, p := range c.ErrorLogs() {
		add(p)
	}
	temp := map[string]string{
		"client_body_temp_path": filepath.Join(defaultTempRoot, "body"),
		"fastcgi_temp_path":     filepath.Join(defaultTempRoot, "fastcgi"),
		"proxy_temp_path":       filepath.Join(defaultTempRoot, "proxy"),
		"uwsgi_temp_path":       filepath.Join(defaultTempRoot, "uwsgi"),
		"scgi_temp_path":        filepath.Join(defaultTempRoot, "scgi"),
	}
	pid, access := defaultPidFile, false
	var walk func([]*Directive, bool)
	walk = func(ds []*Directive, top bool) {
		for _, d := range ds {
			switch {
			case d.Name == "pid" && top && len(d.Args) > 0:
				pid = d.Args[0]
			case d.Name == "access_log" && len(d.Args) > 0:
				access = true
				if f := d.Args[0]; f != "off" && !strings.HasPrefix(f, "syslog:") && f != "/dev/null" && f != "/dev/stdout" && f != "/dev/stderr" {
					add(f)
				}
			}
			if _, isTemp := temp[d.Name]; isTemp && len(d.Args) > 0 {
				add(d.Args[0]) // each level's path is created
				temp[d.Name] = ""
			}
			if d.IsBlock() {
				walk(d.Block, false)
			}
		}
	}
	walk(c.Root, true)
	if pid != "off" {
		add(pid)
	}
	if !access {
		add(defaultAccessLog)
	}
	for _, k := range []string{"client_body_temp_path", "fastcgi_temp_path", "proxy_temp_path", "uwsgi_temp_path", "scgi_temp_path"} {
		if temp[k] != "" { // never set: the default
			add(temp[k])
		}
	}
	return paths, ok
}
