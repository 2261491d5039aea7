package backend

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// probeVerdict judges a route from what probing its backend found.
func (a *Analyzer) probeVerdict(rt *route, t target, res probeResult, own []logs.Count) *verdict {
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
	if s, ok := a.bestSeen(rt, v.kinds, own); ok {
		v.cause += " (" + a.said(rt, s) + ")"
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
	timeout := rt.raise()
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
