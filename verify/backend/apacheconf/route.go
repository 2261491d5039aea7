package apacheconf

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Target is a backend address.
type Target struct {
	Network string // "unix" or "tcp"
	Address string
	Scheme  string // fcgi, http, https, uwsgi, ajp
}

func (t Target) String() string {
	if t.Network == "unix" {
		return "unix:" + t.Address
	}
	return t.Address
}

// Route is how httpd serves "/" for one path.
type Route struct {
	VHost     *VHost // nil: the main server
	Directive *Directive
	Via       string // "ProxyPass" or "SetHandler"
	Target    *Target
	// Timeout is how long httpd waits for the backend: the timeout= of
	// the ProxyPass, else ProxyTimeout, else Timeout, else the default.
	Timeout time.Duration
	// TimeoutFrom names where Timeout comes from: "timeout=" (of the
	// ProxyPass), "ProxyTimeout", "Timeout", or "" (httpd's default);
	// TimeoutAt is that directive (nil for the default).
	TimeoutFrom string
	TimeoutAt   *Directive
}

// Where describes the route for evidence.
func (r *Route) Where() string {
	s := "main server"
	if r.VHost != nil {
		s = r.VHost.Where()
	}
	if r.Directive != nil {
		s += fmt.Sprintf(", %s %s (%s:%d)", r.Via, strings.Join(r.Directive.Args, " "), r.Directive.File, r.Directive.Line)
	}
	return s
}

// Scope names where directives for this route go: the virtual host
// ("<VirtualHost *:443> shop.example.com (/etc/apache2/sites-enabled/shop.conf:1)")
// or the main server configuration (its main file).
func (r *Route) Scope(c *Config) string {
	if r.VHost != nil {
		return r.VHost.Where()
	}
	return "the main server configuration (" + c.Main + ")"
}

// Route follows "/" on addr:port with Host host to its backend. Target is
// nil when httpd serves "/" itself.
func (c *Config) Route(addr netip.Addr, port int, host string) *Route {
	r := &Route{VHost: c.SelectVHost(addr, port, host), Timeout: DefaultTimeout}
	global := flatten(c.Root)
	scopes := [][]*Directive{global}
	if r.VHost != nil {
		scopes = [][]*Directive{flatten(r.VHost.Dir.Block), global}
	}
	// ProxyTimeout wins over Timeout wherever each is set; within each, the
	// virtual host's wins over the main server's.
	var proxyTimeout, timeout *Directive
	for i := len(scopes) - 1; i >= 0; i-- {
		for _, d := range scopes[i] {
			if len(d.Args) == 0 {
				continue
			}
			if _, err := strconv.Atoi(d.Args[0]); err != nil {
				continue
			}
			switch d.Name {
			case "timeout":
				timeout = d
			case "proxytimeout":
				proxyTimeout = d
			}
		}
	}
	for _, d := range []*Directive{timeout, proxyTimeout} {
		if d != nil {
			n, _ := strconv.Atoi(d.Args[0])
			r.Timeout, r.TimeoutAt = time.Duration(n)*time.Second, d
			r.TimeoutFrom = map[string]string{"timeout": "Timeout", "proxytimeout": "ProxyTimeout"}[d.Name]
		}
	}
	for _, blk := range scopes {
		if c.proxyPass(r, blk) {
			return r
		}
	}
	for _, blk := range scopes {
		if c.setHandler(r, blk) {
			return r
		}
	}
	return r
}

func (c *Config) proxyPass(r *Route, blk []*Directive) bool {
	for _, d := range blk {
		if d.Name == "proxypass" && len(d.Args) >= 2 && d.Args[0] == "/" {
			if d.Args[1] == "!" {
				return false
			}
			return c.setTarget(r, d, "ProxyPass", d.Args[1], d.Args[2:])
		}
		if d.Section && (d.Name == "location" && len(d.Args) > 0 && d.Args[0] == "/") {
			for _, sd := range flatten(d.Block) {
				if sd.Name == "proxypass" && len(sd.Args) >= 1 && sd.Args[0] != "!" {
					return c.setTarget(r, sd, "ProxyPass", sd.Args[0], sd.Args[1:])
				}
			}
		}
	}
	return false
}

var phpFiles = []string{"/index.php", "index.php"}

func (c *Config) setHandler(r *Route, blk []*Directive) bool {
	for _, d := range blk {
		if !d.Section {
			if d.Name == "sethandler" && len(d.Args) > 0 && strings.HasPrefix(strings.ToLower(d.Args[0]), "proxy:") {
				return c.setTarget(r, d, "SetHandler", d.Args[0][len("proxy:"):], nil)
			}
			continue
		}
		applies := false
		switch d.Name {
		case "filesmatch", "locationmatch":
			if len(d.Args) > 0 {
				expr := d.Args[len(d.Args)-1]
				if re, err := regexp.Compile(expr); err == nil {
					for _, f := range append(phpFiles, "/") {
						if re.MatchString(f) {
							applies = true
						}
					}
				}
			}
		case "files":
			applies = len(d.Args) > 0 && (d.Args[0] == "index.php" || d.Args[0] == "*.php")
		case "location", "directory":
			applies = len(d.Args) > 0 && (d.Args[0] == "/" || d.Name == "directory")
		}
		if applies && c.setHandler(r, flatten(d.Block)) {
			return true
		}
	}
	return false
}

// setTarget parses "unix:/path|fcgi://localhost/", "fcgi://127.0.0.1:9000/",
// "http://127.0.0.1:3000/".
func (c *Config) setTarget(r *Route, d *Directive, via, url string, params []string) bool {
	r.Directive, r.Via = d, via
	t := &Target{}
	if strings.HasPrefix(strings.ToLower(url), "unix:") {
		p, rest, _ := strings.Cut(url[len("unix:"):], "|")
		t.Network, t.Address = "unix", p
		if i := strings.Index(rest, "://"); i >= 0 {
			t.Scheme = strings.ToLower(rest[:i])
		}
	} else {
		scheme, rest, ok := strings.Cut(url, "://")
		if !ok {
			return false
		}
		t.Scheme = strings.ToLower(scheme)
		hostport, _, _ := strings.Cut(rest, "/")
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			port := "80"
			switch t.Scheme {
			case "https":
				port = "443"
			case "fcgi":
				port = "9000"
			}
			hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), port)
		}
		t.Network, t.Address = "tcp", hostport
	}
	for _, p := range params {
		if v, ok := strings.CutPrefix(p, "timeout="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				r.Timeout, r.TimeoutFrom, r.TimeoutAt = time.Duration(n)*time.Second, "timeout=", d
			}
		}
	}
	r.Target = t
	return true
}
