package backend

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/backend/logs"
)

// This file is what `cfguard watch` (verify/watch) asks of the analysis:
// the backends the web servers' configurations pass "/" to, and one probe
// of one of them now. It reuses the routing and the probes of Analyze; it
// adds no stage of its own.

// States of a Check.
const (
	StateUp    = "up"    // answered
	StateDown  = "down"  // socket gone, connection refused, nothing runs
	StateHung  = "hung"  // accepts but does not answer in time, or saturated
	StateError = "error" // anything else (denied, a garbage answer): not restartable
)

// Watched is one backend a web server passes requests to, as the watch
// checks it.
type Watched struct {
	Web    string // "nginx" or "Apache"
	Module string // fastcgi, proxy, uwsgi, scgi, grpc
	// Target is the address as the web server names it:
	// "unix:/run/php/php8.2-fpm.sock", "127.0.0.1:3000".
	Target string
	// Unit is the systemd unit that serves it ("php8.2-fpm.service"), ""
	// when unknown.
	Unit string
	Pool string // the PHP-FPM pool listening there, "" when none is known
	// ConfigTest is the command that tests the unit's configuration
	// ({"php-fpm8.2", "-t", "--fpm-config", "/etc/php/8.2/fpm/php-fpm.conf"}),
	// nil when none is known.
	ConfigTest []string
	Host       string // a Host that routes there, sent with the probe
	Where      string // the server block and location, for evidence

	rt *route
	t  target
}

// Check is one probe of a backend.
type Check struct {
	State  string        // StateUp, StateDown, StateHung, StateError
	Detail string        // one line: what answered, or how it failed
	Took   time.Duration // to the answer, when up
	Pool   *PoolStatus   // from pm.status_path, when the pool has one
}

// PoolStatus is what PHP-FPM's status page says.
type PoolStatus struct {
	Active, Idle, Total         int
	ListenQueue, ListenQueueLen int
	MaxListenQueue              int
	MaxChildrenReached          int
	SlowRequests                int
}

// Saturated reports a listen queue that holds requests while every child
// is busy.
func (p *PoolStatus) Saturated() bool {
	return p != nil && p.ListenQueue > 0 && p.Idle == 0 && p.Active >= p.Total
}

// Web is one web server as the watch checks it.
type Web struct {
	Kind       string   // "nginx" or "Apache"
	Unit       string   // "nginx.service", "" when unknown
	ConfigTest []string // {"nginx", "-t", "-c", "/etc/nginx/nginx.conf"}, {"apachectl", "configtest"}
	Listens    []netip.AddrPort
	Running    bool // a master process was found
}

// LogFile is an error log to follow.
type LogFile struct {
	Source logs.Source
	Path   string
}

// Backends lists the distinct backends the web servers pass "/" to, over
// every server block (nginx) or virtual host (Apache) and its listen
// addresses, in configuration order.
func (a *Analyzer) Backends() []Watched {
	var out []Watched
	seen := map[string]bool{}
	for _, w := range a.webs {
		for _, in := range webEntries(w) {
			rt := a.route(in.addr.Addr(), int(in.addr.Port()), in.host)
			if rt == nil || rt.web != w {
				continue
			}
			for _, t := range rt.targets {
				key := w.kind + "|" + rt.module + "|" + t.String() + "|" + t.scheme
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, a.watched(rt, t, in.host))
			}
		}
	}
	return out
}

func (a *Analyzer) watched(rt *route, t target, host string) Watched {
	isFPM := rt.module == "fastcgi"
	inst, pool := a.poolFor(t)
	unit, _ := a.targetUnit(t, inst, isFPM)
	b := Watched{Web: rt.web.kind, Module: rt.module, Target: t.String(), Host: host, Where: rt.where, rt: rt, t: t}
	if unit != "" {
		b.Unit = unit + ".service"
	}
	if pool != nil {
		b.Pool = pool.Name
	}
	if isFPM && unit != "" {
		if m := fpmSockUnit.FindStringSubmatch(unit); m != nil {
			b.ConfigTest = []string{"php-fpm" + m[1], "-t"}
			if inst != nil {
				b.ConfigTest = append(b.ConfigTest, "--fpm-config", inst.cfg.File)
			}
		}
	}
	return b
}

type entry struct {
	addr netip.AddrPort
	host string
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// webEntries are the (address, port, Host) a web server answers on, one
// per listen address and server block: a wildcard is probed on loopback.
func webEntries(w *webServer) []entry {
	var out []entry
	pick := func(names []string) string {
		for _, n := range names {
			if plainName.MatchString(n) {
				return n
			}
			if rest, ok := strings.CutPrefix(n, "*."); ok && plainName.MatchString(rest) {
				return "www." + rest
			}
		}
		return "localhost"
	}
	add := func(addr netip.Addr, port int, host string) {
		if port > 0 && port < 65536 {
			out = append(out, entry{netip.AddrPortFrom(addr, uint16(port)), host})
		}
	}
	if w.nginx != nil {
		for _, s := range w.nginx.Servers() {
			host := pick(s.Names)
			for _, l := range s.Listens {
				switch {
				case l.Unix != "":
				case l.Addr.IsValid():
					add(l.Addr, l.Port, host)
				case l.Wildcard6:
					add(netip.IPv6Loopback(), l.Port, host)
				default:
					add(netip.AddrFrom4([4]byte{127, 0, 0, 1}), l.Port, host)
				}
			}
		}
		return out
	}
	if w.apache != nil {
		for _, v := range w.apache.VHosts() {
			host := pick(append([]string{v.Name}, v.Aliases...))
			for _, va := range v.Addrs {
				addr := va.Addr
				if !addr.IsValid() {
					addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
				}
				for _, p := range apachePorts(w, va.Port) {
					add(addr, p, host)
				}
			}
		}
		for _, p := range apachePorts(w, 0) {
			add(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p, "localhost")
		}
	}
	return out
}

// apachePorts is port, or every Listen port when port is 0 (any).
func apachePorts(w *webServer, port int) []int {
	if port != 0 {
		return []int{port}
	}
	var out []int
	for _, d := range w.apache.Root {
		if d.Name != "listen" || len(d.Args) == 0 {
			continue
		}
		a := d.Args[0]
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			a = a[i+1:]
		}
		if n, err := strconv.Atoi(a); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Probe probes one backend now, the way Analyze does (FastCGI ping or a
// script that does not exist, the status page, GET / for HTTP, a connect
// otherwise), without remembering the answer.
func (a *Analyzer) Probe(ctx context.Context, b Watched) Check {
	if b.rt == nil {
		return Check{State: StateError, Detail: "not a backend from Backends"}
	}
	res := a.probeNow(ctx, b.rt, b.t, b.Host)
	c := Check{Took: res.took}
	if s := res.fpm; s != nil {
		c.Pool = &PoolStatus{Active: s.active, Idle: s.idle, Total: s.total, ListenQueue: s.listenQueue, ListenQueueLen: s.listenQueueLen,
			MaxListenQueue: s.maxListenQueue, MaxChildrenReached: s.maxChildrenReached, SlowRequests: s.slow}
	}
	fail := func(what string) string {
		if res.err != nil {
			return fmt.Sprintf("%s: %s (%v)", b.Target, what, res.err)
		}
		return fmt.Sprintf("%s: %s", b.Target, what)
	}
	switch res.kind {
	case probeOK:
		c.State, c.Detail = StateUp, fmt.Sprintf("%s answered %s in %s", b.Target, res.answered, roundDur(res.took))
		if c.Pool.Saturated() {
			c.State = StateHung
			c.Detail = fmt.Sprintf("%s answered, but %d requests wait in its listen queue with all %d children busy", b.Target, c.Pool.ListenQueue, c.Pool.Total)
		}
	case probeNoSocket:
		c.State, c.Detail = StateDown, fmt.Sprintf("%s: the socket does not exist", b.Target)
	case probeStale:
		c.State, c.Detail = StateDown, fail("connection refused (the socket file is left over)")
	case probeRefused:
		c.State, c.Detail = StateDown, fail("connection refused")
	case probeQueueFull:
		c.State, c.Detail = StateHung, fail("the listen queue is full (EAGAIN)")
	case probeConnTimeout:
		c.State, c.Detail = StateHung, fail(fmt.Sprintf("no connection within %s", a.opts.Timeout))
	case probeNoAnswer:
		c.State, c.Detail = StateHung, fail(fmt.Sprintf("accepted, but no answer within %s", a.opts.Timeout))
	case probeDenied:
		c.State, c.Detail = StateError, fail("permission denied: "+res.detail)
	case probeReset:
		c.State, c.Detail = StateError, fail("closed without answering")
	default:
		c.State, c.Detail = StateError, fail("unexpected answer")
	}
	return c
}

// Webs lists the web servers found, with their listen addresses and the
// command that tests their configuration.
func (a *Analyzer) Webs() []Web {
	var out []Web
	for _, w := range a.webs {
		x := Web{Kind: w.kind, Running: w.master != nil}
		if w.unit != "" {
			x.Unit = w.unit + ".service"
		}
		seen := map[netip.AddrPort]bool{}
		for _, e := range webEntries(w) {
			if !seen[e.addr] {
				seen[e.addr] = true
				x.Listens = append(x.Listens, e.addr)
			}
		}
		if w.nginx != nil {
			bin := "nginx"
			if w.master != nil {
				if exe, err := os.Readlink(filepath.Join(a.opts.ProcRoot, strconv.Itoa(w.master.pid), "exe")); err == nil {
					bin = exe
				}
			}
			x.ConfigTest = []string{bin, "-t", "-q", "-c", w.conf}
		} else {
			x.ConfigTest = []string{"apachectl", "configtest"}
		}
		out = append(out, x)
	}
	return out
}

// LogFiles are the web servers' and PHP-FPM's error logs.
func (a *Analyzer) LogFiles() []LogFile {
	var out []LogFile
	seen := map[string]bool{}
	add := func(src logs.Source, p string) {
		if p != "" && !seen[p] && filepath.IsAbs(p) {
			seen[p] = true
			out = append(out, LogFile{src, p})
		}
	}
	for _, w := range a.webs {
		if w.nginx != nil {
			for _, f := range w.nginx.ErrorLogs() {
				add(logs.Nginx, f)
			}
		} else {
			for _, f := range w.apache.ErrorLogs() {
				add(logs.Apache, f)
			}
		}
	}
	for _, f := range a.fpms {
		if p := f.cfg.ErrorLog; p != "" && !strings.HasPrefix(p, "syslog") {
			add(logs.FPM, fpmPath(p))
		}
	}
	return out
}
