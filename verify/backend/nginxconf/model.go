package nginxconf

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults nginx uses when a directive is absent.
const (
	DefaultReadTimeout = 60 * time.Second
	DefaultBufferSize  = 4096 // one memory page on x86 and arm64
	defaultListenPort  = 80
	defaultIndex       = "index.html"
	defaultUser        = "nobody"
	defaultErrorLog    = "/var/log/nginx/error.log" // Debian's compile-time default
	defaultTempRoot    = "/var/lib/nginx"           // Debian's compile-time temp paths
)

// Listen is one listen directive of a server block.
type Listen struct {
	Addr          netip.Addr // invalid for a wildcard
	Wildcard6     bool       // [::] (IPv6 wildcard); a plain wildcard is IPv4 only
	IPv6Only      bool       // false only with ipv6only=off
	Port          int
	DefaultServer bool
	SSL           bool
	Unix          string // listen unix:/path
}

// Server is one server block.
type Server struct {
	Listens []Listen
	Names   []string
	Dir     *Directive
	http    *Directive
}

// Where names the server block for messages: its first name and file:line.
func (s *Server) Where() string {
	name := "(no server_name)"
	for _, n := range s.Names {
		if n != "" {
			name = n
			break
		}
	}
	return fmt.Sprintf("server %s (%s:%d)", name, s.Dir.File, s.Dir.Line)
}

// Upstream is an upstream{} block.
type Upstream struct {
	Name    string
	Servers []string // as written: "unix:/path", "host:port"
	Dir     *Directive
}

// Servers lists the server blocks in configuration order.
func (c *Config) Servers() []*Server {
	var out []*Server
	for _, h := range c.Root {
		if h.Name != "http" || !h.IsBlock() {
			continue
		}
		for _, d := range h.Block {
			if d.Name != "server" || !d.IsBlock() {
				continue
			}
			s := &Server{Dir: d, http: h}
			for _, sd := range d.Block {
				switch sd.Name {
				case "listen":
					if l, ok := parseListen(sd.Args); ok {
						s.Listens = append(s.Listens, l)
					}
				case "server_name":
					for _, n := range sd.Args {
						s.Names = append(s.Names, strings.ToLower(n))
					}
				}
			}
			if len(s.Listens) == 0 {
				s.Listens = []Listen{{Port: defaultListenPort}}
			}
			if len(s.Names) == 0 {
				s.Names = []string{""}
			}
			out = append(out, s)
		}
	}
	return out
}

// Upstreams returns the upstream{} blocks by name.
func (c *Config) Upstreams() map[string]*Upstream {
	out := map[string]*Upstream{}
	for _, h := range c.Root {
		if h.Name != "http" || !h.IsBlock() {
			continue
		}
		for _, d := range h.Block {
			if d.Name != "upstream" || !d.IsBlock() || len(d.Args) == 0 {
				continue
			}
			u := &Upstream{Name: d.Args[0], Dir: d}
			for _, sd := range d.Block {
				if sd.Name == "server" && len(sd.Args) > 0 {
					u.Servers = append(u.Servers, sd.Args[0])
				}
			}
			out[u.Name] = u
		}
	}
	return out
}

// User is the worker user and group from the user directive.
func (c *Config) User() (user, group string) {
	for _, d := range c.Root {
		if d.Name == "user" && len(d.Args) > 0 {
			user = d.Args[0]
			group = user
			if len(d.Args) > 1 {
				group = d.Args[1]
			}
			return user, group
		}
	}
	return defaultUser, defaultUser
}

// ErrorLogs lists every error_log file of the configuration (main, http,
// server and location levels), the compile-time default when none is set.
func (c *Config) ErrorLogs() []string {
	seen := map[string]bool{}
	var out []string
	var walk func([]*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			if d.Name == "error_log" && len(d.Args) > 0 {
				f := d.Args[0]
				if f != "stderr" && !strings.HasPrefix(f, "syslog:") && !strings.HasPrefix(f, "memory:") && f != "/dev/null" {
					if !filepath.IsAbs(f) {
						f = filepath.Join(filepath.Dir(c.Main), f)
					}
					if !seen[f] {
						seen[f] = true
						out = append(out, f)
					}
				}
			}
			if d.IsBlock() {
				walk(d.Block)
			}
		}
	}
	walk(c.Root)
	if len(out) == 0 {
		out = []string{defaultErrorLog}
	}
	return out
}

// TempPaths lists the directories nginx buffers bodies in.
func (c *Config) TempPaths() []string {
	want := map[string]string{
		"client_body_temp_path": filepath.Join(defaultTempRoot, "body"),
		"fastcgi_temp_path":     filepath.Join(defaultTempRoot, "fastcgi"),
		"proxy_temp_path":       filepath.Join(defaultTempRoot, "proxy"),
	}
	var walk func([]*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			if _, ok := want[d.Name]; ok && len(d.Args) > 0 {
				want[d.Name] = d.Args[0]
			}
			if d.IsBlock() && (d.Name == "http" || d.Name == "server") {
				walk(d.Block)
			}
		}
	}
	walk(c.Root)
	return []string{want["client_body_temp_path"], want["fastcgi_temp_path"], want["proxy_temp_path"]}
}

func parseListen(args []string) (Listen, bool) {
	if len(args) == 0 {
		return Listen{}, false
	}
	l := Listen{Port: defaultListenPort, IPv6Only: true}
	a := args[0]
	switch {
	case strings.HasPrefix(a, "unix:"):
		l.Unix = strings.TrimPrefix(a, "unix:")
	case strings.HasPrefix(a, "["):
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return Listen{}, false
		}
		ip, err := netip.ParseAddr(a[1:end])
		if err != nil {
			return Listen{}, false
		}
		if ip.IsUnspecified() {
			l.Wildcard6 = true
		} else {
			l.Addr = ip
		}
		if rest := a[end+1:]; strings.HasPrefix(rest, ":") {
			p, err := strconv.Atoi(rest[1:])
			if err != nil {
				return Listen{}, false
			}
			l.Port = p
		}
	default:
		host, port := a, ""
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i+1:]
		} else if _, err := strconv.Atoi(a); err == nil {
			host, port = "*", a
		}
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil {
				return Listen{}, false
			}
			l.Port = p
		}
		switch host {
		case "*", "", "0.0.0.0":
		case "localhost":
			l.Addr = netip.MustParseAddr("127.0.0.1")
		default:
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return Listen{}, false // a host name nginx resolves at start: not modelled
			}
			l.Addr = ip
		}
	}
	for _, p := range args[1:] {
		switch {
		case p == "default_server" || p == "default":
			l.DefaultServer = true
		case p == "ssl":
			l.SSL = true
		case p == "ipv6only=off":
			l.IPv6Only = false
		}
	}
	return l, true
}

// matches reports whether the listen accepts a connection to addr:port, and
// whether it names the address exactly.
func (l Listen) matches(addr netip.Addr, port int) (ok, exact bool) {
	if l.Unix != "" || l.Port != port {
		return false, false
	}
	if l.Addr.IsValid() {
		return l.Addr == addr, l.Addr == addr
	}
	if l.Wildcard6 {
		return addr.Is6() || (!l.IPv6Only && addr.Is4()), false
	}
	return addr.Is4(), false
}

// SelectServer picks the server block nginx would use for a connection to
// addr:port with the Host header host, as nginx does: the servers listening
// on exactly that address win over wildcard listeners; among them the exact
// server_name, the longest leading wildcard, the longest trailing wildcard,
// the first matching regular expression, else the default_server of that
// listen, else the first server listed for it. nil when nothing listens.
func (c *Config) SelectServer(addr netip.Addr, port int, host string) *Server {
	addr = addr.Unmap()
	servers := c.Servers()
	var exact, wild []*Server
	var exactDef, wildDef *Server
	for _, s := range servers {
		for _, l := range s.Listens {
			ok, ex := l.matches(addr, port)
			if !ok {
				continue
			}
			if ex {
				exact = append(exact, s)
				if l.DefaultServer && exactDef == nil {
					exactDef = s
				}
			} else {
				wild = append(wild, s)
				if l.DefaultServer && wildDef == nil {
					wildDef = s
				}
			}
			break
		}
	}
	cands, def := wild, wildDef
	if len(exact) > 0 {
		cands, def = exact, exactDef
	}
	if len(cands) == 0 {
		return nil
	}
	if def == nil {
		def = cands[0]
	}
	if s := matchName(cands, normalizeHost(host)); s != nil {
		return s
	}
	return def
}

func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func matchName(cands []*Server, host string) *Server {
	// 1. exact (".example.org" also matches "example.org" exactly)
	for _, s := range cands {
		for _, n := range s.Names {
			if n == host || (strings.HasPrefix(n, ".") && n[1:] == host) {
				return s
			}
		}
	}
	// 2. longest leading wildcard
	var best *Server
	bestLen := -1
	for _, s := range cands {
		for _, n := range s.Names {
			var suffix string
			switch {
			case strings.HasPrefix(n, "*."):
				suffix = n[1:]
			case strings.HasPrefix(n, "."):
				suffix = n
			default:
				continue
			}
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) && len(suffix) > bestLen {
				best, bestLen = s, len(suffix)
			}
		}
	}
	if best != nil {
		return best
	}
	// 3. longest trailing wildcard
	for _, s := range cands {
		for _, n := range s.Names {
			if !strings.HasSuffix(n, ".*") {
				continue
			}
			prefix := n[:len(n)-1]
			if strings.HasPrefix(host, prefix) && len(host) > len(prefix) && len(prefix) > bestLen {
				best, bestLen = s, len(prefix)
			}
		}
	}
	if best != nil {
		return best
	}
	// 4. first regular expression, in configuration order
	for _, s := range cands {
		for _, n := range s.Names {
			if !strings.HasPrefix(n, "~") {
				continue
			}
			re, err := compileRegex(n[1:], false)
			if err == nil && re.MatchString(host) {
				return s
			}
		}
	}
	return nil
}

func compileRegex(expr string, caseless bool) (*regexp.Regexp, error) {
	expr = strings.ReplaceAll(expr, "(?<", "(?P<")
	expr = strings.ReplaceAll(expr, "(?P<=", "(?<=") // lookbehind: Go rejects it below
	expr = strings.ReplaceAll(expr, "(?P<!", "(?<!")
	if caseless {
		expr = "(?i)" + expr
	}
	return regexp.Compile(expr)
}

// ParseDuration parses an nginx time ("60", "60s", "1m30s", "500ms").
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	if allDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("time %q is too large", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute,
		"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad time %q", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		u, ok := units[rest[:j]]
		if !ok {
			return 0, fmt.Errorf("bad time %q", s)
		}
		if err != nil || n > (math.MaxInt64-int64(total))/int64(u) {
			return 0, fmt.Errorf("time %q is too large", s)
		}
		total += time.Duration(n) * u
		rest = rest[j:]
	}
	return total, nil
}

// ParseSize parses an nginx size ("4k", "8K", "1m", "4096").
func ParseSize(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := 1
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, s = 1024, s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1024*1024, s[:len(s)-1]
	case 'g', 'G':
		mult, s = 1024*1024*1024, s[:len(s)-1]
	}
	if !allDigits(s) {
		return 0, fmt.Errorf("bad size %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > math.MaxInt/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// allDigits: nginx numbers have no sign.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// fileExists is a seam for tests.
var fileExists = func(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
