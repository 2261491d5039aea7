// Package apacheconf reads Apache httpd's configuration (the main file and
// its Include / IncludeOptional files) and answers which virtual host serves
// an address, port and Host, and which backend (ProxyPass, SetHandler
// "proxy:…") serves "/".
package apacheconf

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults httpd uses when a directive is absent.
const (
	DefaultTimeout  = 60 * time.Second
	maxIncludeDepth = 16
)

// Directive is a directive or a section (<VirtualHost …>, with Block).
type Directive struct {
	Name    string // lower case; sections without "<"
	Args    []string
	Block   []*Directive
	Section bool
	File    string
	Line    int
}

// Config is a parsed configuration.
type Config struct {
	Main       string
	ServerRoot string
	Root       []*Directive
	Files      []string
}

// Load reads main and its includes. env provides ${VAR} values (Debian's
// envvars: APACHE_RUN_USER, APACHE_LOG_DIR…); Define adds to it.
func Load(ctx context.Context, main string, serverRoot string, env map[string]string) (*Config, error) {
	if serverRoot == "" {
		serverRoot = filepath.Dir(main)
	}
	c := &Config{Main: main, ServerRoot: serverRoot}
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	read := func(name string) (string, error) {
		b, err := readConfig(name)
		return string(b), err
	}
	root, err := c.parseFile(ctx, main, vars, read, 0)
	if err != nil {
		return nil, err
	}
	c.Root = root
	return c, nil
}

// Parse parses one file's text (includes are read from disk).
func Parse(name, text string, env map[string]string) (*Config, error) {
	c := &Config{Main: name, ServerRoot: filepath.Dir(name)}
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	read := func(n string) (string, error) {
		if n == name {
			return text, nil
		}
		b, err := readConfig(n)
		return string(b), err
	}
	root, err := c.parseFile(context.Background(), name, vars, read, 0)
	if err != nil {
		return nil, err
	}
	c.Root = root
	return c, nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

func (c *Config) parseFile(ctx context.Context, name string, vars map[string]string, read func(string) (string, error), depth int) ([]*Directive, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d", name, maxIncludeDepth)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	text, err := read(name)
	if err != nil {
		return nil, err
	}
	c.Files = append(c.Files, name)
	type frame struct {
		d   *Directive
		out *[]*Directive
	}
	var top []*Directive
	stack := []frame{{nil, &top}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n, pending := 0, ""
	startLine := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		if pending == "" {
			startLine = n
		}
		if strings.HasSuffix(raw, "\\") {
			pending += strings.TrimSuffix(raw, "\\") + " "
			continue
		}
		line := strings.TrimSpace(pending + raw)
		pending = ""
		if line == "" || line[0] == '#' {
			continue
		}
		line = varRef.ReplaceAllStringFunc(line, func(m string) string {
			if v, ok := vars[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
		cur := stack[len(stack)-1]
		if strings.HasPrefix(line, "</") {
			if len(stack) == 1 {
				return nil, fmt.Errorf("%s:%d: unexpected %s", name, startLine, line)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if strings.HasPrefix(line, "<") {
			body := strings.TrimSuffix(strings.TrimPrefix(line, "<"), ">")
			f := splitArgs(body)
			if len(f) == 0 {
				return nil, fmt.Errorf("%s:%d: empty section", name, startLine)
			}
			d := &Directive{Name: strings.ToLower(f[0]), Args: f[1:], Section: true, Block: []*Directive{}, File: name, Line: startLine}
			*cur.out = append(*cur.out, d)
			stack = append(stack, frame{d, &d.Block})
			continue
		}
		f := splitArgs(line)
		d := &Directive{Name: strings.ToLower(f[0]), Args: f[1:], File: name, Line: startLine}
		switch d.Name {
		case "define":
			if len(d.Args) >= 2 {
				vars[d.Args[0]] = d.Args[1]
			} else if len(d.Args) == 1 {
				vars[d.Args[0]] = ""
			}
		case "serverroot":
			if len(d.Args) > 0 {
				c.ServerRoot = d.Args[0]
			}
		case "include", "includeoptional":
			if len(d.Args) == 0 {
				continue
			}
			pat := d.Args[0]
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(c.ServerRoot, pat)
			}
			var files []string
			if strings.ContainsAny(pat, "*?[") {
				files, _ = filepath.Glob(pat)
				sort.Strings(files)
			} else if st, err := os.Stat(pat); err == nil && st.IsDir() {
				ents, _ := os.ReadDir(pat)
				for _, e := range ents {
					files = append(files, filepath.Join(pat, e.Name()))
				}
			} else {
				files = []string{pat}
			}
			for _, fn := range files {
				sub, err := c.parseFile(ctx, fn, vars, read, depth+1)
				if err != nil {
					if d.Name == "includeoptional" {
						continue
					}
					return nil, fmt.Errorf("%s:%d: Include %s: %w", name, startLine, d.Args[0], err)
				}
				*cur.out = append(*cur.out, sub...)
			}
			continue
		}
		*cur.out = append(*cur.out, d)
	}
	return top, sc.Err()
}

func splitArgs(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '"' || s[i] == '\'' {
			q := s[i]
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != q {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, b.String())
			i = j + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// flatten yields the directives of blk, descending into <IfModule>,
// <IfDefine>, <IfVersion>, <IfFile> and <IfDirective> (taken as true).
func flatten(blk []*Directive) []*Directive {
	var out []*Directive
	for _, d := range blk {
		if d.Section && strings.HasPrefix(d.Name, "if") {
			out = append(out, flatten(d.Block)...)
			continue
		}
		out = append(out, d)
	}
	return out
}

// VHostAddr is one address of <VirtualHost …>.
type VHostAddr struct {
	Addr    netip.Addr // invalid for * and _default_
	Port    int        // 0: any
	Default bool       // _default_
}

// VHost is one <VirtualHost> section.
type VHost struct {
	Addrs   []VHostAddr
	Name    string
	Aliases []string
	Dir     *Directive
}

// Where names the virtual host for messages.
func (v *VHost) Where() string {
	name := v.Name
	if name == "" {
		name = "(no ServerName)"
	}
	return fmt.Sprintf("<VirtualHost %s> %s (%s:%d)", strings.Join(v.Dir.Args, " "), name, v.Dir.File, v.Dir.Line)
}

// VHosts lists the virtual hosts in configuration order.
func (c *Config) VHosts() []*VHost {
	var out []*VHost
	for _, d := range flatten(c.Root) {
		if !d.Section || d.Name != "virtualhost" {
			continue
		}
		v := &VHost{Dir: d}
		for _, a := range d.Args {
			v.Addrs = append(v.Addrs, parseVHostAddr(a))
		}
		for _, sd := range flatten(d.Block) {
			switch sd.Name {
			case "servername":
				if len(sd.Args) > 0 {
					v.Name = strings.ToLower(stripPort(strings.TrimPrefix(strings.TrimPrefix(sd.Args[0], "http://"), "https://")))
				}
			case "serveralias":
				for _, a := range sd.Args {
					v.Aliases = append(v.Aliases, strings.ToLower(a))
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func parseVHostAddr(a string) VHostAddr {
	host, port := a, ""
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	}
	v := VHostAddr{}
	if port != "" && port != "*" {
		v.Port, _ = strconv.Atoi(port)
	}
	switch host {
	case "*":
	case "_default_":
		v.Default = true
	default:
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			v.Addr = ip
		}
	}
	return v
}

// SelectVHost picks the virtual host httpd would use: the vhosts whose
// address is exactly addr:port win over "*:port"; among them the first
// whose ServerName or ServerAlias matches host, else the first of them.
// nil means the main server answers.
func (c *Config) SelectVHost(addr netip.Addr, port int, host string) *VHost {
	addr = addr.Unmap()
	host = strings.ToLower(strings.TrimSuffix(stripPort(host), "."))
	var exact, wild, def []*VHost
	for _, v := range c.VHosts() {
		for _, a := range v.Addrs {
			if a.Port != 0 && a.Port != port {
				continue
			}
			switch {
			case a.Addr.IsValid() && a.Addr == addr:
				exact = append(exact, v)
			case a.Default:
				def = append(def, v)
			case !a.Addr.IsValid():
				wild = append(wild, v)
			default:
				continue
			}
			break
		}
	}
	cands := exact
	if len(cands) == 0 {
		cands = wild
	}
	if len(cands) == 0 {
		cands = def
	}
	if len(cands) == 0 {
		return nil
	}
	for _, v := range cands {
		if v.Name == host {
			return v
		}
		for _, a := range v.Aliases {
			if ok, _ := path.Match(a, host); ok {
				return v
			}
		}
	}
	return cands[0]
}

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
	Timeout   time.Duration // ProxyTimeout / timeout= / Timeout
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

// Route follows "/" on addr:port with Host host to its backend. Target is
// nil when httpd serves "/" itself.
func (c *Config) Route(addr netip.Addr, port int, host string) *Route {
	r := &Route{VHost: c.SelectVHost(addr, port, host), Timeout: DefaultTimeout}
	global := flatten(c.Root)
	scopes := [][]*Directive{global}
	if r.VHost != nil {
		scopes = [][]*Directive{flatten(r.VHost.Dir.Block), global}
	}
	for i := len(scopes) - 1; i >= 0; i-- { // inner overrides outer
		for _, d := range scopes[i] {
			if len(d.Args) == 0 {
				continue
			}
			switch d.Name {
			case "timeout", "proxytimeout":
				if n, err := strconv.Atoi(d.Args[0]); err == nil {
					r.Timeout = time.Duration(n) * time.Second
				}
			}
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
				r.Timeout = time.Duration(n) * time.Second
			}
		}
	}
	r.Target = t
	return true
}

// ErrorLogs lists the ErrorLog files (main and virtual hosts).
func (c *Config) ErrorLogs() []string {
	seen := map[string]bool{}
	var out []string
	var walk func([]*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			if d.Name == "errorlog" && len(d.Args) > 0 {
				f := d.Args[0]
				if strings.HasPrefix(f, "|") || strings.HasPrefix(f, "syslog") || f == "/dev/null" {
					continue
				}
				if !filepath.IsAbs(f) {
					f = filepath.Join(c.ServerRoot, f)
				}
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
			if d.Section {
				walk(d.Block)
			}
		}
	}
	walk(c.Root)
	if len(out) == 0 {
		out = []string{filepath.Join(c.ServerRoot, "logs/error_log")}
	}
	return out
}

// User returns the User and Group directives (httpd's default: daemon).
func (c *Config) User() (user, group string) {
	user, group = "daemon", "daemon"
	for _, d := range flatten(c.Root) {
		if len(d.Args) == 0 {
			continue
		}
		switch d.Name {
		case "user":
			user = d.Args[0]
		case "group":
			group = d.Args[0]
		}
	}
	return user, group
}

// ReadEnvvars reads Debian's /etc/apache2/envvars (export NAME=value lines).
func ReadEnvvars(file string) map[string]string {
	env := map[string]string{}
	b, err := os.ReadFile(file)
	if err != nil {
		return env
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		v = strings.ReplaceAll(v, "$SUFFIX", "")
		env[k] = v
	}
	return env
}
