package backend

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

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
func (a *Analyzer) logVerdict(rt *route, httpStatus int, own []logs.Count) *verdict {
	if len(own) > 0 {
		if v := a.logVerdictBy(rt, httpStatus, func(kinds []logs.Kind) (seen, bool) { return ownBest(own, kinds) }); v != nil {
			return v
		}
	}
	return a.logVerdictBy(rt, httpStatus, func(kinds []logs.Kind) (seen, bool) {
		c, ok := a.bestCount(rt, kinds)
		return seen{Count: c}, ok
	})
}

// logVerdictBy is logVerdict quoting the lines best finds: verify's own
// request's, or the visitors'.
func (a *Analyzer) logVerdictBy(rt *route, httpStatus int, best func([]logs.Kind) (seen, bool)) *verdict {
	if httpStatus < 500 {
		return nil
	}
	web := rt.web.kind
	quote := func(s seen) string { return a.said(rt, s) }
	pass := rt.passArg
	var pool *fpm.Pool
	for _, t := range rt.targets {
		if _, p := a.poolFor(t); p != nil {
			pool = p
			break
		}
	}
	if c, ok := best([]logs.Kind{logs.TimedOut, logs.DispatchFailed}); ok && (httpStatus == 504 || c.Kind == logs.TimedOut) {
		fix := fmt.Sprintf("make the slow page faster (the application's log, a slow database query), or raise %s only if the work is legitimately long (keep it under Cloudflare's %s)", rt.raise(), secs(a.opts.CloudflareReadTimeout))
		if pool != nil {
			fix = fmt.Sprintf("find what the slow page waits for: %s; raise %s only if the work is legitimately long (keep it under Cloudflare's %s)", a.slowlog(pool), rt.raise(), secs(a.opts.CloudflareReadTimeout))
		}
		return &verdict{status: 504, kinds: []logs.Kind{c.Kind},
			cause: fmt.Sprintf("%s answers slower than %s's %s (%s): %s", pass, web, rt.readTimeoutName, secs(rt.readTimeout), quote(c)),
			fix:   fix}
	}
	if c, ok := best([]logs.Kind{logs.TooBigHeader}); ok {
		return &verdict{status: 502, kinds: []logs.Kind{c.Kind},
			cause: fmt.Sprintf("%s sends response headers larger than %s's %s (%d bytes): %s", pass, web, rt.bufferName, rt.bufferSize, quote(c)),
			fix:   fmt.Sprintf("raise %s (e.g. %s 32k; and %s 16 16k) in %s, or send fewer/smaller headers (cookies)", rt.bufferName, rt.bufferName, strings.TrimSuffix(rt.bufferName, "_size")+"s", rt.where)}
	}
	if c, ok := best([]logs.Kind{logs.PrematureClose, logs.Reset, logs.ReadFailed}); ok {
		cause := fmt.Sprintf("%s closes connections before answering (its workers crash or are killed): %s", pass, quote(c))
		for _, fc := range a.matchingCounts(rt) {
			if fc.Kind == logs.ChildKilled || fc.Kind == logs.ChildCrashed || fc.Kind == logs.OOMKill || fc.Kind == logs.ExecTimeout {
				cause += fmt.Sprintf("; %s: '%s' %s", fc.Source, fc.Latest.Message, times(fc.N))
			}
		}
		return &verdict{status: 502, kinds: []logs.Kind{c.Kind}, cause: cause, fix: "read the backend's own log for the crash; see the OOM findings"}
	}
	if c, ok := best([]logs.Kind{logs.ListenQueueFull, logs.Refused, logs.NoSuchFile, logs.PermissionDenied, logs.ConnectFailed, logs.NoLiveUpstreams}); ok {
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
			when = ", last " + ago(a.now.Sub(c.Last))
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

// ago says how long ago, to the second: "less than a second ago", "12s
// ago", "4m3s ago".
func ago(d time.Duration) string {
	if d < time.Second {
		return "less than a second ago"
	}
	return d.Round(time.Second).String() + " ago"
}
