package nginxconf

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"
)

// Target is one address a backend can be reached at.
type Target struct {
	Network string // "unix" or "tcp"
	Address string // socket path, or host:port
	Scheme  string // proxy_pass / grpc_pass scheme: http, https, grpc, grpcs; "" for fastcgi/uwsgi/scgi
}

func (t Target) String() string {
	if t.Network == "unix" {
		return "unix:" + t.Address
	}
	return t.Address
}

// Backend is what a location passes requests to.
type Backend struct {
	Module      string // fastcgi, proxy, uwsgi, scgi, grpc
	Pass        string // the argument of *_pass as written
	Upstream    *Upstream
	Targets     []Target
	ReadTimeout time.Duration // *_read_timeout
	BufferSize  int           // *_buffer_size
	Dir         *Directive    // the *_pass directive
	ScriptRoot  string        // fastcgi: $document_root (root) of the location, for the probe
}

// Directive names the pass directive ("fastcgi_pass").
func (b *Backend) Directive() string { return b.Module + "_pass" }

// Route is how nginx serves "/" for one path.
type Route struct {
	Server    *Server
	Locations []*Directive // the location for "/", then the one an internal redirect lands in
	URI       string       // the URI the backend gets ("/" or "/index.php")
	Backend   *Backend     // nil when nginx serves "/" itself
	Note      string       // why no backend could be followed (a variable in the pass, say)
}

// Where describes the route for evidence: the server block, the location and
// the pass.
func (r *Route) Where() string {
	var b strings.Builder
	b.WriteString(r.Server.Where())
	for _, l := range r.Locations {
		fmt.Fprintf(&b, ", location %s (%s:%d)", strings.Join(l.Args, " "), l.File, l.Line)
	}
	if r.Backend != nil {
		fmt.Fprintf(&b, " → %s %s", r.Backend.Directive(), r.Backend.Pass)
	}
	return b.String()
}

var passModules = []string{"fastcgi", "proxy", "uwsgi", "scgi", "grpc"}

// maxRedirects bounds the internal redirects followed (index, try_files).
const maxRedirects = 3

// Route follows a request for "/" on addr:port with Host host to the
// location nginx picks and its backend. nil when no server listens there.
func (c *Config) Route(addr netip.Addr, port int, host string) *Route {
	s := c.SelectServer(addr, port, host)
	if s == nil {
		return nil
	}
	r := &Route{Server: s, URI: "/"}
	ups := c.Upstreams()
	uri := "/"
	for _, d := range s.Dir.Block {
		if d.Name == "return" { // answered in the rewrite phase, before any location
			return r
		}
	}
	for i := 0; i <= maxRedirects; i++ {
		chain := selectLocation(s.Dir.Block, uri)
		scope := c.scope(s, chain)
		if len(chain) > 0 {
			r.Locations = append(r.Locations, chain[len(chain)-1])
		}
		r.URI = uri
		if len(chain) > 0 {
			loc := chain[len(chain)-1]
			if b, note := backendOf(loc, scope, ups); b != nil || note != "" {
				r.Backend, r.Note = b, note
				return r
			}
		}
		if len(chain) > 0 && lookup(scope[:1], "return") != nil {
			return r
		}
		next := nextURI(uri, scope)
		if next == "" || next == uri {
			return r
		}
		uri = next
	}
	return r
}

// scope lists the blocks a directive is inherited from, innermost first.
func (c *Config) scope(s *Server, chain []*Directive) [][]*Directive {
	var out [][]*Directive
	for i := len(chain) - 1; i >= 0; i-- {
		out = append(out, chain[i].Block)
	}
	return append(out, s.Dir.Block, s.http.Block, c.Root)
}

func lookup(scope [][]*Directive, name string) *Directive {
	for _, blk := range scope {
		for _, d := range blk {
			if d.Name == name {
				return d
			}
		}
	}
	return nil
}

// selectLocation picks the location for uri among the location directives
// of blk, as nginx does: "= uri", else the longest prefix (final when
// "^~"), else the first matching regex, else the longest prefix. Nested
// locations of the chosen prefix are searched the same way. The result is
// the chain of nested locations, outermost first.
func selectLocation(blk []*Directive, uri string) []*Directive {
	var longest *Directive
	longestURI := ""
	var regexes []*Directive
	for _, d := range blk {
		if d.Name != "location" || !d.IsBlock() || len(d.Args) == 0 {
			continue
		}
		mod, u := "", d.Args[0]
		if len(d.Args) > 1 {
			mod, u = d.Args[0], d.Args[1]
		} else if strings.HasPrefix(u, "=") && len(u) > 1 {
			mod, u = "=", u[1:]
		} else if strings.HasPrefix(u, "~*") && len(u) > 2 {
			mod, u = "~*", u[2:]
		} else if strings.HasPrefix(u, "^~") && len(u) > 2 {
			mod, u = "^~", u[2:]
		} else if strings.HasPrefix(u, "~") && len(u) > 1 {
			mod, u = "~", u[1:]
		}
		switch mod {
		case "=":
			if u == uri {
				return []*Directive{d}
			}
		case "~", "~*":
			regexes = append(regexes, d)
		case "", "^~":
			if strings.HasPrefix(u, "@") {
				continue
			}
			if strings.HasPrefix(uri, u) && (longest == nil || len(u) > len(longestURI)) {
				longest, longestURI = d, u
			}
		}
	}
	if longest != nil {
		if sub := selectLocation(longest.Block, uri); len(sub) > 0 {
			return append([]*Directive{longest}, sub...)
		}
		if locMod(longest) == "^~" {
			return []*Directive{longest}
		}
	}
	for _, d := range regexes {
		mod, expr := locMod(d), d.Args[len(d.Args)-1]
		if len(d.Args) == 1 {
			expr = strings.TrimLeft(expr, "~*")
		}
		re, err := compileRegex(expr, mod == "~*")
		if err == nil && re.MatchString(uri) {
			return []*Directive{d}
		}
	}
	if longest != nil {
		return []*Directive{longest}
	}
	return nil
}

func locMod(d *Directive) string {
	if len(d.Args) > 1 {
		return d.Args[0]
	}
	for _, m := range []string{"=", "~*", "^~", "~"} {
		if strings.HasPrefix(d.Args[0], m) {
			return m
		}
	}
	return ""
}

// nextURI is the internal redirect nginx makes for uri when the location
// serves it from disk: the first index file that exists (or, when none can
// be checked, the first index name), else the try_files fallback URI.
func nextURI(uri string, scope [][]*Directive) string {
	root := "html"
	if d := lookup(scope, "root"); d != nil && len(d.Args) > 0 {
		root = d.Args[0]
	}
	checkable := path.IsAbs(root) && !strings.Contains(root, "$")
	if strings.HasSuffix(uri, "/") {
		names := []string{defaultIndex}
		if d := lookup(scope, "index"); d != nil && len(d.Args) > 0 {
			names = d.Args
		}
		for _, n := range names {
			if strings.Contains(n, "$") {
				continue
			}
			if strings.HasPrefix(n, "/") {
				return n
			}
			if !checkable || fileExists(path.Join(root, uri, n)) {
				return uri + n
			}
		}
	}
	if d := lookup(scope[:1], "try_files"); d != nil && len(d.Args) > 1 {
		last := d.Args[len(d.Args)-1]
		if strings.HasPrefix(last, "/") {
			if i := strings.IndexByte(last, '?'); i >= 0 {
				last = last[:i]
			}
			if !strings.Contains(last, "$") {
				return last
			}
		}
	}
	return ""
}

func backendOf(loc *Directive, scope [][]*Directive, ups map[string]*Upstream) (*Backend, string) {
	var pass *Directive
	var module string
	for _, d := range loc.Block {
		for _, m := range passModules {
			if d.Name == m+"_pass" && len(d.Args) > 0 {
				pass, module = d, m
			}
		}
	}
	if pass == nil {
		return nil, ""
	}
	b := &Backend{Module: module, Pass: pass.Args[0], Dir: pass, ReadTimeout: DefaultReadTimeout, BufferSize: DefaultBufferSize}
	if d := lookup(scope, module+"_read_timeout"); d != nil && len(d.Args) > 0 {
		if t, err := ParseDuration(d.Args[0]); err == nil {
			b.ReadTimeout = t
		}
	}
	if d := lookup(scope, module+"_buffer_size"); d != nil && len(d.Args) > 0 {
		if n, err := ParseSize(d.Args[0]); err == nil {
			b.BufferSize = n
		}
	}
	if d := lookup(scope, "root"); d != nil && len(d.Args) > 0 {
		b.ScriptRoot = d.Args[0]
	}
	arg := b.Pass
	scheme := ""
	if i := strings.Index(arg, "://"); i >= 0 {
		scheme, arg = arg[:i], arg[i+3:]
	}
	if strings.HasPrefix(arg, "unix:") {
		p := strings.TrimPrefix(arg, "unix:")
		if module == "proxy" || module == "grpc" {
			// proxy_pass http://unix:/path:/uri
			if i := strings.Index(p, ":"); i >= 0 {
				p = p[:i]
			}
		}
		b.Targets = []Target{{Network: "unix", Address: p, Scheme: scheme}}
		return b, ""
	}
	if i := strings.IndexByte(arg, '/'); i >= 0 {
		arg = arg[:i]
	}
	if strings.Contains(arg, "$") {
		return b, fmt.Sprintf("%s %s uses a variable; the backend cannot be followed", b.Directive(), b.Pass)
	}
	if u, ok := ups[arg]; ok {
		b.Upstream = u
		for _, s := range u.Servers {
			if strings.HasPrefix(s, "unix:") {
				b.Targets = append(b.Targets, Target{Network: "unix", Address: strings.TrimPrefix(s, "unix:"), Scheme: scheme})
				continue
			}
			b.Targets = append(b.Targets, Target{Network: "tcp", Address: withPort(s, scheme), Scheme: scheme})
		}
		return b, ""
	}
	b.Targets = []Target{{Network: "tcp", Address: withPort(arg, scheme), Scheme: scheme}}
	return b, ""
}

func withPort(hostport, scheme string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	port := "80"
	switch scheme {
	case "https", "grpcs":
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), port)
}
