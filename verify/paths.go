package verify

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/cfguard/cfguard/firewall/sim"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
)

// hop is a port and the scheme Cloudflare speaks there.
type hop struct {
	port   int
	scheme string
}

// hopsFor returns the origin ports and schemes Cloudflare uses under an SSL
// mode (cloudflare.md §2): off and flexible speak HTTP to 80; full and
// strict keep the visitor's scheme (443 HTTPS, and 80 HTTP unless Always
// Use HTTPS redirects http visitors at the edge); origin_pull is always
// HTTPS. An unknown mode is taken as full.
func hopsFor(mode string, alwaysHTTPS bool) []hop {
	switch mode {
	case ModeOff, ModeFlexible:
		return []hop{{80, "http"}}
	case ModeOriginPull:
		return []hop{{443, "https"}}
	}
	if alwaysHTTPS {
		return []hop{{443, "https"}}
	}
	return []hop{{443, "https"}, {80, "http"}}
}

// job is one path to walk.
type job struct {
	entry
	hop
	notes []string // warnings pathsFor adds (an alternative folded into this path)
}

// pathsFor expands entries into paths, one per port and scheme.
func pathsFor(entries []entry) []job {
	var out []job
	seen := map[string]int{} // index in out
	for _, e := range entries {
		if e.unresolved != nil {
			out = append(out, job{entry: e})
			continue
		}
		for _, h := range hopsFor(e.settings.SSL, e.settings.AlwaysUseHTTPS) {
			if e.override != nil && e.override.Port > 0 {
				h.port = e.override.Port // an Origin Rule's port, for either scheme
			}
			// An alternative (e.only) on the port, address and scheme of a
			// path already made stays a warning on that path: one path per
			// hostname, address, port and scheme, as metrics and watch
			// key them.
			k := fmt.Sprint(e.zone, e.hostname, e.addr, h.port, h.scheme)
			if i, ok := seen[k]; ok {
				if e.onlyRule != "" && out[i].onlyRule == "" {
					out[i].notes = append(out[i].notes, fmt.Sprintf("the requests that %s matches are not walked separately: they reach the same address, port and scheme", e.onlyRule))
				}
				continue
			}
			seen[k] = len(out)
			out = append(out, job{entry: e, hop: h})
		}
	}
	return out
}

func (j job) target() probe.Target {
	mode := j.settings.SSL
	if !ValidSSLMode(mode) {
		mode = ModeFull
	}
	t := probe.Target{Hostname: probeHost(j.hostname), Addr: j.addr, Port: j.port, Scheme: j.scheme, SSLMode: mode}
	if ov := j.override; ov != nil {
		t.SNI, t.Host = ov.SNI, ov.HostHeader
	}
	return t
}

// probeHost is the Host / SNI used for a hostname; a wildcard record is
// probed with a name it covers.
func probeHost(h string) string {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return "cfguard-wildcard-check." + rest
	}
	return h
}

func (j job) path() report.Path {
	p := report.Path{Zone: j.zone, Hostname: j.hostname, RecordType: j.recordType, Port: j.port, Scheme: j.scheme}
	if j.addr.IsValid() {
		p.OriginIP = j.addr.String()
	}
	_, _, p.Rules = j.ruleNotes()
	return p
}

// walkAll walks every path, at most cfg.Concurrency at once.
func (r *runner) walkAll(ctx context.Context, jobs []job) []report.Path {
	out := make([]report.Path, len(jobs))
	sem := make(chan struct{}, r.cfg.concurrency())
	var wg sync.WaitGroup
	var pmu sync.Mutex
	done := 0
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			out[i] = j.ruleFix(r.walk(ctx, j))
			if r.cfg.Progress != nil {
				pmu.Lock()
				done++
				r.cfg.Progress(done, len(jobs))
				pmu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// sharedKey names the work that does not depend on the hostname: the
// record, elsewhere, route, firewall and listener stages of one origin
// address, port and scheme.
type sharedKey struct {
	addr   netip.Addr
	port   int
	scheme string
	mode   string
}

// sharedResult is the outcome of the shared stages: the outcomes run, and
// whether the path stops there (a failure, or an address that is not this
// origin's to judge).
type sharedResult struct {
	outcomes []report.Outcome
	stop     bool
	dnat     *sim.Translation // the DNAT the firewall stage followed (dnat.go)
}

// walk runs one path through the stages, stopping at the first failure.
func (r *runner) walk(ctx context.Context, j job) report.Path {
	p := j.path()
	acc := &accumulator{}
	ruleEvidence, ruleWarnings, _ := j.ruleNotes()
	acc.evidence, acc.warnings = ruleEvidence, ruleWarnings
	if j.unresolved != nil {
		acc.add(*j.unresolved)
		return acc.finish(p)
	}
	t := j.target()
	if r.d.originPort != nil {
		t.Port = r.d.originPort(t.Port)
	}
	sh := r.shared.get(sharedKey{j.addr, j.port, j.scheme, t.SSLMode}, func() sharedResult { return r.sharedStages(ctx, t) })
	for _, o := range sh.outcomes {
		acc.add(o)
	}
	if sh.stop {
		return acc.finish(p)
	}
	if sh.dnat != nil {
		t = retarget(t, *sh.dnat)
	}

	// The http stage sends GET / over the tls stage's connection, as
	// Cloudflare sends its request over the connection it has just made:
	// one handshake per https path, not two (BenchmarkRun1000Hosts: about
	// a third less time). A path that stops before http closes it.
	var conn *tls.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	if j.scheme == "https" {
		tr := r.d.probe.TLS(ctx, t)
		conn = tr.Conn
		o := tr.Outcome
		if o.Fail && tr.ClientCertRequested && j.settings.TLSClientAuth {
			// Cloudflare would present its client certificate; this probe
			// has none, so it cannot see past the handshake.
			acc.add(report.Outcome{Stage: report.StageTLS, CannotTell: true,
				Cause:    fmt.Sprintf("%s demands a client certificate, which Cloudflare presents (tls_client_auth is on); verify has none, so it cannot check the certificate and the answer", t.Hostname),
				Evidence: o.Evidence})
			return acc.finish(p)
		}
		if !o.Fail && !tr.ClientCertRequested && j.settings.TLSClientAuth {
			o.Warnings = append(o.Warnings, "Authenticated Origin Pulls is on, but the origin does not ask for Cloudflare's client certificate: anyone who finds this address can bypass Cloudflare")
		}
		acc.add(o)
		if acc.failed() {
			return acc.finish(p)
		}
		if t.SSLMode == ModeStrict || t.SSLMode == ModeOriginPull {
			if cs := tr.State; cs != nil && len(cs.PeerCertificates) > 0 {
				na := cs.PeerCertificates[0].NotAfter.UTC()
				p.CertificateNotAfter = &na
			}
			acc.add(r.d.probe.Certificate(t, tr.State, r.d.now()))
			if acc.failed() {
				return acc.finish(p)
			}
		}
	}

	h := r.d.probe.HTTP(ctx, t, conn, r.cfg.timeout())
	conn = nil // HTTP closed it
	acc.add(h)
	if t.SSLMode == ModeFlexible && redirectsToHTTPS(h) {
		msg := fmt.Sprintf("%s: under Flexible, Cloudflare speaks HTTP to the origin, which answers %d with a redirect to https:// — an endless redirect loop for visitors (ERR_TOO_MANY_REDIRECTS)", j.hostname, h.Status)
		if !slices.ContainsFunc(h.Warnings, func(w string) bool { return strings.Contains(w, "redirect loop") }) {
			acc.warn(msg)
		}
		r.addFindingOnce(report.Finding{Severity: report.SeverityError, Zone: j.zone, Hostname: j.hostname, Message: msg,
			Fix: "Set the zone's SSL mode to Full (strict) with a certificate on the origin, or stop redirecting HTTP to HTTPS on the origin (Cloudflare's Always Use HTTPS does it at the edge)."})
	}
	if r.d.upstream != nil && (!h.Fail || backendStatus(h.Status)) {
		status := h.Status
		// The web server picks its server block by the Host header it
		// receives: an Origin Rule's host_header where one is set.
		host := t.Hostname
		if t.Host != "" {
			host = t.Host
		}
		var u report.Outcome
		if sh.dnat != nil {
			u = r.upstreamBehind(ctx, *sh.dnat, host, j.scheme, status, h.Sent)
		} else {
			u = r.d.upstream.Analyze(ctx, j.addr, j.port, host, j.scheme, status, h.Sent)
		}
		u.Stage = report.StageUpstream
		if u.Fail && u.Status == 0 {
			u.Status = status
		}
		if u.Fail || h.Fail {
			acc.add(u) // a failing upstream replaces http's verdict; else its evidence explains it
		} else {
			acc.addQuiet(u)
		}
	}
	return acc.finish(p)
}

// backendStatus: answers the backend analysis may explain.
func backendStatus(s int) bool {
	return s == 502 || s == 503 || s == 504 || s == 524
}

func redirectsToHTTPS(o report.Outcome) bool {
	switch o.Status {
	case 301, 302, 303, 307, 308:
	default:
		return false
	}
	for _, e := range o.Evidence {
		l := strings.ToLower(e)
		if strings.Contains(l, "location") && strings.Contains(l, "https://") {
			return true
		}
	}
	return strings.Contains(strings.ToLower(o.Cause), "https://")
}

// sharedStages runs the stages that do not depend on the hostname.
func (r *runner) sharedStages(ctx context.Context, t probe.Target) sharedResult {
	var res sharedResult
	add := func(o report.Outcome) bool {
		res.outcomes = append(res.outcomes, o)
		res.stop = o.Fail
		return o.Fail
	}
	if add(r.d.probe.Record(t.Addr, r.cfg.Cloudflare)) {
		return res
	}
	if !r.mine[t.Addr.Unmap()] {
		o := r.d.probe.Elsewhere(ctx, t, r.cfg.timeout())
		o.Stage = report.StageElsewhere
		add(o)
		res.stop = true // failing (522) or not this origin's to judge
		return res
	}
	if add(r.d.probe.Route(ctx, t.Addr, r.cfg.Cloudflare)) {
		return res
	}
	if r.d.firewall != nil {
		if add(r.d.firewall.Check(ctx, t.Addr, t.Port, r.cfg.Cloudflare)) {
			return res
		}
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.timeout())
	defer cancel()
	x, changed, known := r.translation(t)
	if !known {
		add(dnatUnknown(t))
		res.stop = true
		return res
	}
	if changed {
		res.dnat = &x
		res.outcomes[len(res.outcomes)-1].Evidence = append(res.outcomes[len(res.outcomes)-1].Evidence, dnatEvidence(x))
		add(r.listenerBehind(lctx, retarget(t, x), x))
		return res
	}
	add(r.d.probe.Listener(lctx, t))
	return res
}

func (r *runner) addFindingOnce(f report.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.findings {
		if g == f {
			return
		}
	}
	r.findings = append(r.findings, f)
}

// accumulator folds the outcomes of one path's stages into the path.
type accumulator struct {
	last     report.Outcome // the deciding outcome: the failure, or the last stage that passed
	fail     bool
	evidence []string
	warnings []string
	httpSeen bool
	status   int
}

func (a *accumulator) add(o report.Outcome) {
	a.collect(o)
	if o.Fail {
		a.fail = true
		a.last = o
		return
	}
	if o.Stage == report.StageHTTP {
		a.httpSeen, a.status = true, o.Status
	}
	if !a.fail {
		a.last = o
	}
}

// addQuiet keeps an outcome's evidence and warnings without letting it
// decide the path.
func (a *accumulator) addQuiet(o report.Outcome) { a.collect(o) }

func (a *accumulator) collect(o report.Outcome) {
	a.evidence = append(a.evidence, o.Evidence...)
	a.warnings = append(a.warnings, o.Warnings...)
	if o.CannotTell && o.Cause != "" {
		a.warnings = append(a.warnings, fmt.Sprintf("the %s stage cannot tell whether this path works, so it is not counted as failing: %s", o.Stage, o.Cause))
	}
}

func (a *accumulator) warn(s string) { a.warnings = append(a.warnings, s) }

func (a *accumulator) failed() bool { return a.fail }

func (a *accumulator) finish(p report.Path) report.Path {
	p.Stage = a.last.Stage
	p.OK = !a.fail
	p.Evidence = dedupe(a.evidence)
	p.Warnings = dedupe(a.warnings)
	if a.fail {
		p.Status, p.Cause, p.Fix = a.last.Status, a.last.Cause, a.last.Fix
		return p
	}
	p.Cause = a.last.Cause
	p.Status = a.status
	if !a.httpSeen {
		p.Status = a.last.Status
	}
	return p
}
