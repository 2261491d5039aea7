package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/report"
)

// Thresholds of the analysis.
const (
	// slowProbeShare: a trivial request that takes more than this share of
	// the web server's read timeout means the backend is close to it.
	slowProbeShare = 2
)

// target is one backend address.
type target struct{ network, address, scheme string }

func (t target) String() string {
	if t.network == "unix" {
		return "unix:" + t.address
	}
	return t.address
}

// route is how a web server serves "/" for one path.
type route struct {
	web             *webServer
	where           string
	module          string // fastcgi, proxy, uwsgi, scgi, grpc
	pass            string // "fastcgi_pass unix:/… (file:line)"
	passArg         string
	targets         []target
	upstream        string // nginx upstream{} name
	readTimeout     time.Duration
	readTimeoutName string
	bufferSize      int
	bufferName      string
	scriptRoot      string
	note            string
}

func (a *Analyzer) route(addr netip.Addr, port int, host string) *route {
	for _, w := range a.webs {
		if w.nginx != nil {
			r := w.nginx.Route(addr, port, host)
			if r == nil {
				continue
			}
			rt := &route{web: w, where: r.Where(), note: r.Note}
			if b := r.Backend; b != nil {
				rt.module = b.Module
				rt.passArg = b.Pass
				rt.pass = fmt.Sprintf("%s %s (%s:%d)", b.Directive(), b.Pass, b.Dir.File, b.Dir.Line)
				rt.readTimeout, rt.readTimeoutName = b.ReadTimeout, b.Module+"_read_timeout"
				rt.bufferSize, rt.bufferName = b.BufferSize, b.Module+"_buffer_size"
				rt.scriptRoot = b.ScriptRoot
				if b.Upstream != nil {
					rt.upstream = b.Upstream.Name
				}
				for _, t := range b.Targets {
					rt.targets = append(rt.targets, target{t.Network, t.Address, t.Scheme})
				}
			}
			return rt
		}
		if w.apache != nil {
			if !apacheListens(w, port) {
				continue
			}
			r := w.apache.Route(addr, port, host)
			rt := &route{web: w, where: r.Where(), readTimeout: r.Timeout, readTimeoutName: "ProxyTimeout"}
			if t := r.Target; t != nil {
				rt.module = "proxy"
				if t.Scheme == "fcgi" {
					rt.module = "fastcgi"
				}
				rt.pass = fmt.Sprintf("%s %s (%s:%d)", r.Via, strings.Join(r.Directive.Args, " "), r.Directive.File, r.Directive.Line)
				rt.passArg = strings.Join(r.Directive.Args, " ")
				rt.targets = []target{{t.Network, t.Address, t.Scheme}}
			}
			return rt
		}
	}
	return nil
}

func apacheListens(w *webServer, port int) bool {
	for _, d := range w.apache.Root {
		if d.Name == "listen" && len(d.Args) > 0 {
			if _, p, err := net.SplitHostPort(d.Args[0]); err == nil && p == fmt.Sprint(port) || d.Args[0] == fmt.Sprint(port) {
				return true
			}
		}
	}
	for _, v := range w.apache.VHosts() {
		for _, va := range v.Addrs {
			if va.Port == port {
				return true
			}
		}
	}
	return false
}

// poolFor finds the PHP-FPM pool listening at t, running instances first.
func (a *Analyzer) poolFor(t target) (*fpmInstance, *fpm.Pool) {
	var cand *fpmInstance
	var pool *fpm.Pool
	for _, f := range a.fpms {
		for _, p := range f.cfg.Pools {
			n, addr := p.Target()
			if n == t.network && addr == t.address {
				if f.master != nil {
					return f, p
				}
				if cand == nil {
					cand, pool = f, p
				}
			}
		}
	}
	return cand, pool
}

func (a *Analyzer) probe(ctx context.Context, rt *route, t target, host string) probeResult {
	key := strings.Join([]string{rt.web.kind, rt.module, t.String(), t.scheme}, "|")
	if rt.module == "proxy" {
		key += "|" + host
	}
	a.mu.Lock()
	po, ok := a.probes[key]
	if !ok {
		po = &probeOnce{}
		a.probes[key] = po
	}
	a.mu.Unlock()
	po.once.Do(func() { po.res = a.probeNow(ctx, rt, t, host) })
	return po.res
}

func (a *Analyzer) probeNow(ctx context.Context, rt *route, t target, host string) probeResult {
	timeout := a.opts.Timeout
	if t.network == "unix" {
		if _, err := os.Stat(t.address); os.IsNotExist(err) {
			return probeResult{kind: probeNoSocket, err: err}
		}
		if rt.web.hasCred {
			if why := checkAccess(t.address, rt.web.workers); why != "" {
				return probeResult{kind: probeDenied, detail: why}
			}
		}
	}
	dial := func() (net.Conn, probeResult) {
		if t.network == "unix" {
			return dialUnix(ctx, t.address, timeout)
		}
		return dialTCP(ctx, t.address, timeout)
	}
	switch {
	case rt.module == "fastcgi":
		var ping, pong, status string
		if _, p := a.poolFor(t); p != nil {
			ping, pong, status = p.PingPath, p.PingResponse, p.StatusPath
		}
		return probeFastCGI(ctx, dial, ping, pong, status, rt.scriptRoot, host, timeout)
	case rt.module == "proxy" && (t.scheme == "http" || t.scheme == "https" || t.scheme == ""):
		return probeHTTP(ctx, dial, t.scheme, host, timeout)
	default:
		conn, r := dial()
		if conn != nil {
			conn.Close()
		}
		return r
	}
}

// Analyze follows one path (origin address, port, Host, scheme, and the
// HTTP status the http stage saw, 0 if none) to its backend and returns an
// Outcome with Stage upstream: Fail when the backend is the cause, else
// warnings only. Probes run on the calling goroutine, so a caller inside a
// network namespace (nstest's Do) probes there.
func (a *Analyzer) Analyze(ctx context.Context, addr netip.Addr, port int, host, scheme string, httpStatus int) report.Outcome {
	out := report.Outcome{Stage: report.StageUpstream}
	rt := a.route(addr, port, host)
	if rt == nil {
		return out
	}
	out.Evidence = append(out.Evidence, rt.where)
	if len(rt.targets) == 0 {
		if rt.note != "" {
			out.Warnings = append(out.Warnings, rt.note)
		}
		return out
	}
	web := rt.web.kind
	var failing []target
	var failRes []probeResult
	out.Warnings = append(out.Warnings, a.readUnits(ctx, rt)...)
	for _, t := range rt.targets {
		res := a.probe(ctx, rt, t, host)
		if res.kind == probeOK {
			desc := fmt.Sprintf("%s answered %s in %s", t, res.answered, roundDur(res.took))
			out.Evidence = append(out.Evidence, desc)
			if rt.readTimeout > 0 && res.took*slowProbeShare > rt.readTimeout {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s took %s to answer a trivial request, more than half of %s's %s (%s): pages will time out (504)",
					t, roundDur(res.took), web, rt.readTimeoutName, rt.readTimeout))
			}
			if s := res.fpm; s != nil {
				if s.listenQueue > 0 {
					out.Warnings = append(out.Warnings, fmt.Sprintf("%s: %d requests wait in the listen queue now; every child is busy", t, s.listenQueue))
				}
				if s.maxChildrenReached > 0 {
					out.Warnings = append(out.Warnings, fmt.Sprintf("%s: the pool has reached pm.max_children %s since it started (status page)", t, times(s.maxChildrenReached)))
				}
			}
			continue
		}
		failing = append(failing, t)
		failRes = append(failRes, res)
	}

	var v *verdict
	switch {
	case len(failing) == len(rt.targets):
		v = a.probeVerdict(rt, failing[0], failRes[0])
		if rt.upstream != "" && len(failing) > 1 {
			v.cause = fmt.Sprintf("every server of upstream %s is down; %s", rt.upstream, v.cause)
		}
	case len(failing) > 0:
		for i, t := range failing {
			pv := a.probeVerdict(rt, t, failRes[i])
			out.Warnings = append(out.Warnings, fmt.Sprintf("%d of %d servers of upstream %s fail: %s", len(failing), len(rt.targets), rt.upstream, pv.cause))
		}
	default:
		v = a.logVerdict(rt, httpStatus)
	}

	out.Warnings = append(out.Warnings, a.logWarnings(rt, v)...)
	out.Warnings = append(out.Warnings, a.timeoutWarnings(rt)...)
	for _, c := range a.matchingCounts(rt) {
		out.Evidence = append(out.Evidence, fmt.Sprintf("%s, %s in the last %s, latest: %s", c.Source, times(c.N), window(a.opts.Since), c.Latest.Line))
	}

	if v == nil {
		return out
	}
	// The http stage saw the page answer: the backend does not serve "/"
	// (or no longer fails); keep it as a warning.
	if httpStatus > 0 && httpStatus < 500 {
		out.Warnings = append([]string{fmt.Sprintf("%s (GET / answered %d, but pages served by %s fail with %d)", v.cause, httpStatus, rt.passArg, v.status)}, out.Warnings...)
		return out
	}
	out.Fail = true
	out.Status = v.status
	if httpStatus >= 500 {
		out.Status = httpStatus
	}
	out.Cause, out.Fix = v.cause, v.fix
	return out
}

type verdict struct {
	status     int
	cause, fix string
	kinds      []logs.Kind // the log kinds it explains
}

func (a *Analyzer) connectStatus(rt *route) int {
	if rt.web.kind == "Apache" {
		return 503
	}
	return 502
}

// svc is the command that starts / restarts a unit; with no unit known it
// names what to act on (the FPM configuration, when known).
func (a *Analyzer) svc(verb, unit string) string {
	if unit == "" {
		return ""
	}
	if a.systemd {
		return fmt.Sprintf("systemctl %s %s", verb, unit)
	}
	return fmt.Sprintf("service %s %s", unit, verb)
}

var fpmSockUnit = regexp.MustCompile(`php([0-9]+\.[0-9]+)-fpm`)

// fpmUnitFor names the FPM service for a socket path when no pool does.
func fpmUnitFor(path string) string {
	if m := fpmSockUnit.FindStringSubmatch(path); m != nil {
		return "php" + m[1] + "-fpm"
	}
	return ""
}

func (a *Analyzer) anyFPMRunning() bool {
	for _, f := range a.fpms {
		if f.master != nil {
			return true
		}
	}
	return false
}

// targetUnit names the service behind a backend address (as commands name
// it: "php8.2-fpm"): the pool's PHP-FPM, else the unit of the process
// listening there (with systemd), else for FastCGI a guess from the socket
// path. from says where a name not read from a process came from.
func (a *Analyzer) targetUnit(t target, inst *fpmInstance, isFPM bool) (unit, from string) {
	if inst != nil && inst.unit != "" {
		return inst.unit, inst.unitFrom
	}
	if u := a.listenerUnitFor(t); u != "" {
		return unitCommand(u), ""
	}
	if inst == nil && isFPM {
		if u := fpmUnitFor(t.address); u != "" {
			return u, "the socket path"
		}
	}
	return "", ""
}

// listenerUnitFor is the unit of the process listening at t (systemd only;
// the sockets are read on first need).
func (a *Analyzer) listenerUnitFor(t target) string {
	if !a.systemd {
		return ""
	}
	a.listenOnce.Do(func() { a.listeners = listenerUnits(a.opts.ProcRoot, a.ps) })
	return listenerUnit(a.listeners, t)
}

// readUnits asks systemd (once per unit) for the state of the units behind
// the route's backends, and warns of a running one that keeps being
// restarted.
func (a *Analyzer) readUnits(ctx context.Context, rt *route) []string {
	if !a.systemd {
		return nil
	}
	var names []string
	for _, t := range rt.targets {
		inst, _ := a.poolFor(t)
		if u, _ := a.targetUnit(t, inst, rt.module == "fastcgi"); u != "" {
			names = append(names, u)
		}
	}
	if len(names) == 0 {
		return nil
	}
	for _, f := range a.fpms {
		names = append(names, f.unit) // for a unit not found: the ones that exist
	}
	if err := a.fetchUnits(ctx, names); err != nil {
		a.debug("reading unit states", "err", err)
	}
	var out []string
	seen := map[string]bool{}
	for _, u := range names[:len(names)-len(a.fpms)] {
		if w := restartWarning(u, a.unitOf(u)); w != "" && !seen[u] {
			seen[u] = true
			out = append(out, w)
		}
	}
	return out
}

// otherUnits are the PHP-FPM units that exist besides unit.
func (a *Analyzer) otherUnits(unit string) []string {
	var out []string
	seen := map[string]bool{unit: true}
	for _, f := range a.fpms {
		if seen[f.unit] || f.unit == "" {
			continue
		}
		seen[f.unit] = true
		if st := a.unitOf(f.unit); st != nil && st.LoadState == "loaded" {
			out = append(out, f.unit)
		}
	}
	return out
}

func (a *Analyzer) probeVerdict(rt *route, t target, res probeResult) *verdict {
	web := rt.web.kind
	isFPM := rt.module == "fastcgi"
	inst, pool := a.poolFor(t)
	unit, unitFrom := a.targetUnit(t, inst, isFPM)
	action := func(verb string) string {
		if unit != "" {
			return a.svc(verb, unit)
		}
		if inst != nil {
			return fmt.Sprintf("%s php-fpm with %s", verb, inst.cfg.File)
		}
		if isFPM {
			return verb + " php-fpm"
		}
		return ""
	}
	backend := "the backend"
	memFix := "find what holds the memory (ps aux --sort=-rss | head) and lower it, or add memory"
	if isFPM {
		backend = "php-fpm"
		memFix = "lower pm.max_children or memory_limit, or add memory"
	}
	// What systemd says about the unit of a backend that is not running:
	// a clause for the cause and the fix that fits it.
	var others []string
	if isFPM {
		others = a.otherUnits(unit)
	}
	sdCause, sdFix, sdOK := unitStory(unit, a.unitOf(unit), unitFrom, others, memFix, a.now)
	notRunning := func(rest string) string {
		if sdOK {
			return fmt.Sprintf("%s is not running: %s; %s", backend, sdCause, rest)
		}
		return fmt.Sprintf("%s is not running: %s", backend, rest)
	}
	fixFor := func(fix string) string {
		if sdOK {
			return sdFix
		}
		return fix
	}
	v := &verdict{status: a.connectStatus(rt)}
	switch res.kind {
	case probeNoSocket:
		v.kinds = []logs.Kind{logs.NoSuchFile, logs.ConnectFailed}
		switch {
		case pool != nil && inst.master == nil:
			v.cause = notRunning(fmt.Sprintf("%s does not exist (pool %s in %s listens there)", t.address, pool.Name, pool.File))
			v.fix = fixFor(action("start"))
		case pool != nil:
			v.cause = fmt.Sprintf("%s does not exist although php-fpm (pid %d) runs pool %s for it: the socket file was removed", t.address, inst.master.pid, pool.Name)
			v.fix = action("restart")
		default:
			if other := a.otherPools(); isFPM && len(other) > 0 {
				v.cause = fmt.Sprintf("%s passes to %s but no php-fpm pool listens there: %s", web, t.address, strings.Join(other, "; "))
				v.fix = fmt.Sprintf("point %s at the pool's socket, or set listen = %s in the pool", rt.pass, t.address)
				if !a.anyFPMRunning() {
					v.cause = fmt.Sprintf("php-fpm is not running and %s passes to %s, which does not exist (%s)", web, t.address, strings.Join(other, "; "))
				}
			} else if isFPM && !a.anyFPMRunning() {
				v.cause = notRunning(fmt.Sprintf("%s does not exist", t.address))
				v.fix = fixFor(action("start"))
			} else {
				v.cause = fmt.Sprintf("%s is not running or listens elsewhere: %s does not exist", backend, t.address)
				v.fix = fmt.Sprintf("start the service that creates %s, or correct %s", t.address, rt.pass)
			}
		}
	case probeDenied:
		v.kinds = []logs.Kind{logs.PermissionDenied, logs.ConnectFailed}
		v.cause = fmt.Sprintf("%s's workers run as %s and may not connect to %s: %s", web, rt.web.workers, t.address, res.detail)
		if pool != nil {
			v.fix = fmt.Sprintf("set listen.owner = %s, listen.group = %s and listen.mode = 0660 in pool %s (%s), then %s",
				rt.web.workers.name, groupName(rt.web.workers.gids[0]), pool.Name, pool.File, action("restart"))
		} else {
			v.fix = fmt.Sprintf("let %s write to %s (socket owner, group or mode in the backend's configuration)", rt.web.workers, t.address)
		}
	case probeStale:
		v.kinds = []logs.Kind{logs.Refused, logs.ConnectFailed}
		v.cause = notRunning(fmt.Sprintf("nothing accepts on %s (connection refused; the socket file is left over)", t.address))
		v.fix = fixFor(action("restart"))
		if v.fix == "" {
			v.fix = fmt.Sprintf("restart the service that listens on %s", t.address)
		}
	case probeQueueFull:
		v.kinds = []logs.Kind{logs.ListenQueueFull}
		v.cause = fmt.Sprintf("the backend at %s is saturated: its listen queue is full (EAGAIN), every worker is busy", t.address)
		v.fix = busyFix(rt, t, nil, "", action("restart"))
		if pool != nil {
			v.cause = fmt.Sprintf("php-fpm pool %s is saturated: every one of its pm.max_children = %d children is busy and the listen queue of %s is full", pool.Name, pool.MaxChildren, t.address)
			v.fix = busyFix(rt, t, pool, a.slowlog(pool), action("restart"))
		}
	case probeRefused:
		v.kinds = []logs.Kind{logs.Refused, logs.ConnectFailed, logs.WorkerDisabled, logs.NoLiveUpstreams}
		v.cause = notRunning(fmt.Sprintf("nothing listens on %s (connection refused)", t.address))
		v.fix = fixFor(action("start"))
		if v.fix == "" {
			v.fix = fmt.Sprintf("start the service that should listen on %s (%s)", t.address, rt.pass)
		}
	case probeConnTimeout:
		v.status = 504
		v.kinds = []logs.Kind{logs.ConnectTimedOut, logs.TimedOut}
		v.cause = fmt.Sprintf("%s does not answer connection attempts within %s", t.address, a.opts.Timeout)
		v.fix = fmt.Sprintf("check that the host behind %s is up and that no firewall drops the connection", t.address)
		if onThisHost(t) {
			// A local listener that does not complete the handshake has a
			// full accept queue: it runs, but takes no new connections.
			v.cause = fmt.Sprintf("%s does not accept connections within %s although it is on this host: its listen queue is full, every worker is busy or hung", t.address, a.opts.Timeout)
			v.fix = busyFix(rt, t, pool, a.slowlog(pool), action("restart"))
		}
	case probeNoAnswer:
		// Running (it accepts), so starting it is no fix: find what it waits for.
		v.status = 504
		v.kinds = []logs.Kind{logs.TimedOut, logs.MaxChildren, logs.ListenQueueFull}
		v.cause = fmt.Sprintf("the backend at %s runs (it accepts connections) but did not answer a trivial request within %s: every worker is busy or hung", t.address, a.opts.Timeout)
		v.fix = busyFix(rt, t, nil, "", action("restart"))
		if pool != nil {
			v.cause = fmt.Sprintf("php-fpm pool %s at %s runs (it accepts connections) but did not answer a trivial request within %s: all %d children (pm.max_children) are busy or hung", pool.Name, t.address, a.opts.Timeout, pool.MaxChildren)
			v.fix = busyFix(rt, t, pool, a.slowlog(pool), action("restart"))
		}
	case probeReset:
		v.status = 502
		v.kinds = []logs.Kind{logs.PrematureClose, logs.Reset, logs.ReadFailed, logs.ChildCrashed, logs.ChildKilled}
		v.cause = fmt.Sprintf("%s closed the connection without answering: its worker crashed or was killed", t.address)
		v.fix = fmt.Sprintf("read %s's own log for the crash (signal 11, 'exited on signal 9') and the kernel log for OOM kills", backend)
		if inst != nil && inst.cfg.ErrorLog != "" {
			v.fix = fmt.Sprintf("read php-fpm's log %s for the crash ('exited on signal 11' or 'signal 9') and the kernel log for OOM kills", fpmPath(inst.cfg.ErrorLog))
		}
	default:
		v.status = 502
		v.kinds = []logs.Kind{logs.ReadFailed}
		v.cause = fmt.Sprintf("%s does not answer as %s expects: %v", t.address, rt.module, res.err)
		v.fix = fmt.Sprintf("check that %s is a %s backend", rt.pass, rt.module)
	}
	if c, ok := a.bestCount(rt, v.kinds); ok {
		v.cause += fmt.Sprintf(" (%s logged '%s' %s in the last %s)", sourceName(c.Source), c.Latest.Message, times(c.N), window(a.opts.Since))
	}
	if v.fix == "" {
		// Every case above sets a fix that fits its cause; this one only
		// keeps a fix from being empty and presumes nothing.
		v.fix = fmt.Sprintf("check the backend of %s and read its log", rt.pass)
	}
	return v
}

// onThisHost reports whether a TCP target is on this host (loopback).
func onThisHost(t target) bool {
	if t.network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(t.address)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// busyFix is the fix for a backend that runs but does not keep up (busy
// or hung): find what its workers wait for, restart it only if they are
// all stuck (restart "-": it answers now, no restart), and raise limits
// only where it fits.
func busyFix(rt *route, t target, pool *fpm.Pool, slowlog, restart string) string {
	var steps []string
	if pool != nil {
		steps = append(steps, "find what the busy children wait for: "+slowlog)
	} else {
		steps = append(steps, fmt.Sprintf("find what the backend at %s waits for (its own log, a slow database or API call, a lock)", t.address))
	}
	switch {
	case restart == "-":
	case restart == "":
		steps = append(steps, fmt.Sprintf("if every worker is stuck, restart the service that listens on %s", t.address))
	case strings.HasPrefix(restart, "systemctl ") || strings.HasPrefix(restart, "service "):
		steps = append(steps, fmt.Sprintf("if every worker is stuck, `%s` frees them now", restart))
	default:
		steps = append(steps, fmt.Sprintf("if every worker is stuck, %s to free them", restart))
	}
	timeout := rt.readTimeoutName
	if timeout == "" {
		timeout = "the web server's read timeout"
	}
	if pool != nil {
		steps = append(steps, fmt.Sprintf("raise pm.max_children in %s only if memory allows, and %s / request_terminate_timeout only if the work is legitimately long", pool.File, timeout))
	} else {
		steps = append(steps, fmt.Sprintf("raise %s only if the work is legitimately long", timeout))
	}
	return strings.Join(steps, "; ")
}

// slowlog tells where to see what a pool's slow requests do: its slow log
// when request_slowlog_timeout is on, else how to turn it on.
func (a *Analyzer) slowlog(pool *fpm.Pool) string {
	if pool == nil {
		return ""
	}
	if pool.RequestSlowlogTimeout > 0 && pool.Slowlog != "" {
		return fmt.Sprintf("the pool's slow log %s has a stack trace of every request running over %s", fpmPath(pool.Slowlog), secs(pool.RequestSlowlogTimeout))
	}
	return fmt.Sprintf("set request_slowlog_timeout = 5s and slowlog = /var/log/php-fpm-%s.slow.log in pool %s (%s) and reload php-fpm: the slow log then has a stack trace of every request running over 5s", pool.Name, pool.Name, pool.File)
}

// fpmPath resolves a path from an FPM configuration: relative ones are
// under FPM's prefix.
func fpmPath(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "syslog" || strings.HasPrefix(p, "syslog") {
		return p
	}
	return filepath.Join(fpmLogPrefix, p)
}

func sourceName(s logs.Source) string {
	if s == logs.Apache {
		return "Apache"
	}
	return string(s)
}

// otherPools describes the pools that listen somewhere (for a wrong path).
func (a *Analyzer) otherPools() []string {
	var out []string
	for _, f := range a.fpms {
		for _, p := range f.cfg.Pools {
			state := "running"
			if f.master == nil {
				state = "not running"
			}
			out = append(out, fmt.Sprintf("the pool %s (%s, %s) listens on %s", p.Name, p.File, state, p.Listen))
		}
	}
	return out
}

// matchingCounts are the log counts about this route's backend.
func (a *Analyzer) matchingCounts(rt *route) []logs.Count {
	var out []logs.Count
	for _, c := range a.counts {
		if a.countMatches(rt, c) {
			out = append(out, c)
		}
	}
	return out
}

func (a *Analyzer) countMatches(rt *route, c logs.Count) bool {
	switch c.Source {
	case logs.Nginx, logs.Apache:
		if (c.Source == logs.Nginx) != (rt.web.nginx != nil) {
			return false
		}
		if rt.upstream != "" && c.Upstream == rt.upstream {
			return true
		}
		for _, t := range rt.targets {
			if c.Upstream == t.String() || c.Upstream == t.address {
				return true
			}
			if c.Source == logs.Apache {
				host, _, _ := net.SplitHostPort(t.address)
				if (t.network == "unix" && c.Upstream == "httpd-UDS") || (host != "" && c.Upstream == host) {
					return true
				}
			}
		}
	case logs.FPM:
		for _, t := range rt.targets {
			if _, p := a.poolFor(t); p != nil && c.Pool == p.Name {
				return true
			}
		}
	case logs.Kernel:
		return c.Kind == logs.OOMKill && rt.module == "fastcgi" && strings.Contains(c.Victim, "php")
	}
	return false
}

func (a *Analyzer) bestCount(rt *route, kinds []logs.Kind) (logs.Count, bool) {
	var best logs.Count
	found := false
	for _, k := range kinds {
		for _, c := range a.matchingCounts(rt) {
			if c.Kind == k && (c.Source == logs.Nginx || c.Source == logs.Apache) && (!found || c.Last.After(best.Last)) {
				best, found = c, true
			}
		}
		if found {
			return best, true
		}
	}
	return best, false
}

// logVerdict explains a failing http stage from the logs when the backend
// answers the probe: slower than the read timeout, headers too big, workers
// dying, or a failure that has just stopped.
func (a *Analyzer) logVerdict(rt *route, httpStatus int) *verdict {
	if httpStatus < 500 {
		return nil
	}
	web := rt.web.kind
	quote := func(c logs.Count) string {
		return fmt.Sprintf("%s logged '%s' %s in the last %s", sourceName(c.Source), c.Latest.Message, times(c.N), window(a.opts.Since))
	}
	pass := rt.passArg
	var pool *fpm.Pool
	for _, t := range rt.targets {
		if _, p := a.poolFor(t); p != nil {
			pool = p
			break
		}
	}
	if c, ok := a.bestCount(rt, []logs.Kind{logs.TimedOut, logs.DispatchFailed}); ok && (httpStatus == 504 || c.Kind == logs.TimedOut) {
		fix := fmt.Sprintf("make the slow page faster (the application's log, a slow database query), or raise %s only if the work is legitimately long (keep it under Cloudflare's %s)", rt.readTimeoutName, secs(a.opts.CloudflareReadTimeout))
		if pool != nil {
			fix = fmt.Sprintf("find what the slow page waits for: %s; raise %s only if the work is legitimately long (keep it under Cloudflare's %s)", a.slowlog(pool), rt.readTimeoutName, secs(a.opts.CloudflareReadTimeout))
		}
		return &verdict{status: 504, kinds: []logs.Kind{c.Kind},
			cause: fmt.Sprintf("%s answers slower than %s's %s (%s): %s", pass, web, rt.readTimeoutName, secs(rt.readTimeout), quote(c)),
			fix:   fix}
	}
	if c, ok := a.bestCount(rt, []logs.Kind{logs.TooBigHeader}); ok {
		return &verdict{status: 502, kinds: []logs.Kind{c.Kind},
			cause: fmt.Sprintf("%s sends response headers larger than %s's %s (%d bytes): %s", pass, web, rt.bufferName, rt.bufferSize, quote(c)),
			fix:   fmt.Sprintf("raise %s (e.g. %s 32k; and %s 16 16k) in %s, or send fewer/smaller headers (cookies)", rt.bufferName, rt.bufferName, strings.TrimSuffix(rt.bufferName, "_size")+"s", rt.where)}
	}
	if c, ok := a.bestCount(rt, []logs.Kind{logs.PrematureClose, logs.Reset, logs.ReadFailed}); ok {
		cause := fmt.Sprintf("%s closes connections before answering (its workers crash or are killed): %s", pass, quote(c))
		for _, fc := range a.matchingCounts(rt) {
			if fc.Kind == logs.ChildKilled || fc.Kind == logs.ChildCrashed || fc.Kind == logs.OOMKill || fc.Kind == logs.ExecTimeout {
				cause += fmt.Sprintf("; %s: '%s' %s", fc.Source, fc.Latest.Message, times(fc.N))
			}
		}
		return &verdict{status: 502, kinds: []logs.Kind{c.Kind}, cause: cause, fix: "read the backend's own log for the crash; see the OOM findings"}
	}
	if c, ok := a.bestCount(rt, []logs.Kind{logs.ListenQueueFull, logs.Refused, logs.NoSuchFile, logs.PermissionDenied, logs.ConnectFailed, logs.NoLiveUpstreams}); ok {
		cause := fmt.Sprintf("%s failed a moment ago though it answers now: %s", pass, quote(c))
		fix := "it answers now: read the backend's own log for why it failed then (a restart, a crash) and watch whether it recurs"
		if c.Kind == logs.ListenQueueFull {
			cause = fmt.Sprintf("%s is saturated (its listen queue overflows under load): %s", pass, quote(c))
			fix = busyFix(rt, rt.targets[0], nil, "", "-")
			for _, t := range rt.targets {
				if _, p := a.poolFor(t); p != nil {
					cause = fmt.Sprintf("php-fpm pool %s (%s) is saturated: all %d children (pm.max_children) busy, its listen queue overflows: %s", p.Name, t, p.MaxChildren, quote(c))
					fix = busyFix(rt, t, p, a.slowlog(p), "-")
					break
				}
			}
		}
		return &verdict{status: httpStatus, kinds: []logs.Kind{c.Kind}, cause: cause, fix: fix}
	}
	return nil
}

// logWarnings turns the window's backend messages into warnings, except
// those the verdict already quotes.
func (a *Analyzer) logWarnings(rt *route, v *verdict) []string {
	explained := map[logs.Kind]bool{}
	if v != nil {
		for _, k := range v.kinds {
			explained[k] = true
		}
	}
	var out []string
	for _, c := range a.matchingCounts(rt) {
		if explained[c.Kind] && c.Source != logs.FPM && c.Source != logs.Kernel {
			continue
		}
		when := ""
		if !c.Last.IsZero() {
			when = fmt.Sprintf(", last %s ago", roundDur(a.now.Sub(c.Last)))
		}
		var w string
		switch c.Kind {
		case logs.MaxChildren:
			w = fmt.Sprintf("php-fpm pool %s reached pm.max_children %s in the last %s%s: requests queue, then fail (502/504)", c.Pool, times(c.N), window(a.opts.Since), when)
		case logs.PoolBusy:
			w = fmt.Sprintf("php-fpm pool %s was busy %s in the last %s%s", c.Pool, times(c.N), window(a.opts.Since), when)
		case logs.ExecTimeout:
			w = fmt.Sprintf("php-fpm pool %s killed %s script(s) for running past request_terminate_timeout in the last %s%s", c.Pool, fmt.Sprint(c.N), window(a.opts.Since), when)
		case logs.ChildKilled, logs.ChildCrashed:
			w = fmt.Sprintf("php-fpm pool %s: %s %s in the last %s%s", c.Pool, c.Kind, times(c.N), window(a.opts.Since), when)
		case logs.OOMKill:
			w = fmt.Sprintf("the OOM killer killed %s %s in the last %s%s", c.Victim, times(c.N), window(a.opts.Since), when)
		default:
			w = fmt.Sprintf("%s logged '%s' %s in the last %s%s", sourceName(c.Source), c.Latest.Message, times(c.N), window(a.opts.Since), when)
		}
		out = append(out, w)
	}
	return out
}

// timeoutWarnings puts the timeouts in a row: the application's, the web
// server's and Cloudflare's.
func (a *Analyzer) timeoutWarnings(rt *route) []string {
	var out []string
	web := rt.web.kind
	cf := a.opts.CloudflareReadTimeout
	if rt.readTimeout > cf {
		out = append(out, fmt.Sprintf("%s waits up to %s for the backend (%s) but Cloudflare gives up after %s: slow pages become 524s instead of 504s", web, secs(rt.readTimeout), rt.readTimeoutName, secs(cf)))
	}
	if rt.module != "fastcgi" {
		return out
	}
	for _, t := range rt.targets {
		inst, p := a.poolFor(t)
		if p == nil {
			continue
		}
		php := p.RequestTerminateTimeout
		name := "request_terminate_timeout"
		if php == 0 {
			php, name = p.MaxExecutionTime, "max_execution_time"
			if php == 0 {
				php = inst.cfg.MaxExec
			}
		}
		if php > rt.readTimeout && rt.readTimeout > 0 {
			out = append(out, fmt.Sprintf("PHP may run for %s (%s of pool %s) but %s gives up after %s (%s): long scripts end as 504s while still running", secs(php), name, p.Name, web, secs(rt.readTimeout), rt.readTimeoutName))
		}
		break
	}
	return out
}

// secs writes a timeout as people configure it: "125s", "1.5s".
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
