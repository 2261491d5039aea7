package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
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

	// raiseTimeout follows "raise" in a fix: the read timeout's directive
	// in the web server's own words, with where it is for Apache.
	raiseTimeout string
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
				rt.raiseTimeout = rt.readTimeoutName
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
			rt := &route{web: w, where: r.Where(), readTimeout: r.Timeout}
			rt.readTimeoutName, rt.raiseTimeout = apacheTimeout(w.apache, r)
			if t := r.Target; t != nil {
				rt.module = "proxy"
				if t.Scheme == "fcgi" {
					rt.module = "fastcgi"
				}
				rt.pass = apachePass(r)
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
//
// sent is the request the http stage sent (zero: none): after a 5xx, the
// lines the web server logged for it are read back, quoted as the
// culprit's evidence, and told apart from the visitors' counts, which
// leave every request of verify's out.
func (a *Analyzer) Analyze(ctx context.Context, addr netip.Addr, port int, host, scheme string, httpStatus int, sent probemark.Mark) report.Outcome {
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
	var ownEntries []logs.Entry
	looked := false
	if httpStatus >= 500 && !sent.IsZero() {
		ownEntries, looked = a.ownLines(ctx, rt, sent)
	}
	own := ownCounts(ownEntries)
	// 520 and up are the probe's own verdicts (no answer, or none in
	// time): the web server may not have finished the request, so its
	// silence says nothing.
	out.Evidence = append(out.Evidence, a.ownEvidence(rt, sent, ownEntries, looked && httpStatus < 520)...)
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
		v = a.probeVerdict(rt, failing[0], failRes[0], own)
		if rt.upstream != "" && len(failing) > 1 {
			v.cause = fmt.Sprintf("every server of upstream %s is down; %s", rt.upstream, v.cause)
		}
	case len(failing) > 0:
		for i, t := range failing {
			pv := a.probeVerdict(rt, t, failRes[i], nil)
			out.Warnings = append(out.Warnings, fmt.Sprintf("%d of %d servers of upstream %s fail: %s", len(failing), len(rt.targets), rt.upstream, pv.cause))
		}
	default:
		v = a.logVerdict(rt, httpStatus, own)
	}

	out.Warnings = append(out.Warnings, a.logWarnings(rt, v)...)
	out.Warnings = append(out.Warnings, a.timeoutWarnings(rt)...)
	for _, c := range a.matchingCounts(rt) {
		who := ""
		if c.Source == logs.Nginx || c.Source == logs.Apache {
			who = "visitors' requests: " // verify's own are left out
		}
		out.Evidence = append(out.Evidence, fmt.Sprintf("%s%s, %s in the last %s, latest: %s", who, c.Source, times(c.N), window(a.opts.Since), c.Latest.Line))
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
