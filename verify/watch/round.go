package watch

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// Round is what one round of checks saw and did.
type Round struct {
	At       time.Time
	Backends []BackendResult
	Logs     []logs.Entry // the visitors': lines about verify's own requests are left out
	Actions  []recovery.Action
	Restored bool // the guard's table was put back
}

// BackendResult is one backend's check in a round.
type BackendResult struct {
	Backend backend.Watched
	Check   backend.Check
	DownRun int // probes in a row that found it down
	HungRun int // probes in a row that found it hung
}

func key(b backend.Watched) string { return b.Web + "|" + b.Module + "|" + b.Target }

// Step runs one round of checks.
func (w *Watcher) Step(ctx context.Context) Round {
	now := w.s.Now()
	r := Round{At: now}
	w.timed("discover", func() { w.discover(ctx, now) })
	w.timed("guard", func() { r.Restored = w.checkGuard(ctx, now) })
	w.timed("listeners", func() { w.checkListeners(ctx, &r) })
	w.timed("backends", func() { w.checkBackends(ctx, &r) })
	w.timed("logs", func() { w.readLogs(&r) })
	w.timed("recover", func() { w.recover(ctx, &r, now) })
	w.maybeVerify(ctx, now)
	w.m.RoundDone(w.s.Now())
	return r
}

func (w *Watcher) timed(check string, fn func()) {
	start := time.Now()
	fn()
	w.m.CheckDuration(check, time.Since(start))
}

// discover finds the backends at the start, every FullEvery, and while
// none are known.
func (w *Watcher) discover(ctx context.Context, now time.Time) {
	asked := w.rediscover.Swap(false)
	if w.s.Discover == nil || (w.backs != nil && !asked && now.Sub(w.lastDisc) < w.cfg.FullEvery) {
		return
	}
	if asked {
		w.log.Info("looking at the web servers' configuration again (reload)")
	}
	dctx, cancel := context.WithTimeout(ctx, DiscoverTimeout)
	defer cancel()
	var b Backends
	var err error
	w.alive(DiscoverTimeout, func() { b, err = w.s.Discover(dctx) })
	w.lastDisc = now
	if err != nil {
		if msg := err.Error(); msg != w.discErr {
			w.discErr = msg
			w.log.Warn("looking behind the web server failed; retrying every "+w.cfg.FullEvery.String(), "err", err)
		}
		return
	}
	w.discErr = ""
	first := w.backs == nil
	w.backs = b
	seen := map[string]bool{}
	for _, x := range b.Backends() {
		k := key(x)
		seen[k] = true
		if st, ok := w.state[k]; ok {
			st.b = x
			continue
		}
		w.state[k] = &backendState{b: x}
		w.log.Info("watching backend", "backend", x.Target, "unit", x.Unit, "web", x.Web, "where", x.Where)
	}
	for k, st := range w.state {
		if !seen[k] {
			w.log.Info("no longer watching backend: the web server no longer passes to it", "backend", st.b.Target)
			w.m.DeleteBackend(st.b)
			delete(w.state, k)
		}
	}
	if len(seen) == 0 && first {
		w.log.Info("the web servers pass \"/\" to no backend: watching the web servers and the guard only")
	}
	w.refollow(b.LogFiles())
}

// refollow follows the error logs discovery names, keeping the
// follower when the list did not change.
func (w *Watcher) refollow(files []backend.LogFile) {
	if w.s.Follow == nil || sameFiles(files, w.files) && w.follow != nil {
		return
	}
	if w.follow != nil {
		w.follow.Close()
	}
	w.files = files
	w.follow = w.s.Follow(files)
}

func sameFiles(a, b []backend.LogFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (w *Watcher) checkListeners(ctx context.Context, r *Round) {
	if w.backs == nil || w.s.Listener == nil {
		return
	}
	for _, web := range w.backs.Webs() {
		for i, addr := range web.Listens {
			pctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
			why := w.s.Listener(pctx, web, i)
			cancel()
			w.s.Alive()
			k := web.Kind + " " + addr.String()
			w.m.SetListener(web.Kind, addr.String(), why == "")
			_, wasDown := w.listenDown[k]
			if why != "" {
				w.listenRun[k]++
			} else {
				delete(w.listenRun, k)
			}
			switch {
			case why != "" && !wasDown:
				w.listenDown[k] = why
				w.log.Warn(web.Kind+" does not accept connections", "address", addr.String(), "unit", web.Unit, "why", why)
			case why == "" && wasDown:
				delete(w.listenDown, k)
				w.log.Info(web.Kind+" accepts connections again", "address", addr.String())
			}
		}
	}
}

func (w *Watcher) checkBackends(ctx context.Context, r *Round) {
	if w.backs == nil {
		return
	}
	keys := make([]string, 0, len(w.state))
	for k := range w.state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Probes run ProbeConcurrency at once (a host with a pool per site has
	// dozens), each bounded by ProbeTimeout; every finished probe tells the
	// watchdog the watch makes progress.
	checks := make([]backend.Check, len(keys))
	sem := make(chan struct{}, ProbeConcurrency)
	var wg sync.WaitGroup
	for i, k := range keys {
		b := w.state[k].b
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
			checks[i] = w.backs.Probe(pctx, b)
			cancel()
			w.s.Alive()
		}()
	}
	wg.Wait()
	for i, k := range keys {
		st, c := w.state[k], checks[i]
		switch c.State {
		case backend.StateDown:
			st.downRun++
			st.hungRun = 0
		case backend.StateHung:
			st.hungRun++
			st.downRun = 0
		default:
			st.downRun, st.hungRun = 0, 0
		}
		w.m.SetBackend(st.b, c, st.hungRun)
		if c.State != st.last {
			w.logState(st, c)
			st.last = c.State
		}
		r.Backends = append(r.Backends, BackendResult{Backend: st.b, Check: c, DownRun: st.downRun, HungRun: st.hungRun})
	}
}

func (w *Watcher) logState(st *backendState, c backend.Check) {
	args := []any{"backend", st.b.Target, "unit", st.b.Unit, "detail", c.Detail}
	switch {
	case c.State == backend.StateUp && st.last == "":
		w.log.Debug("backend answers", args...)
	case c.State == backend.StateUp:
		w.log.Info("backend answers again", args...)
	default:
		w.log.Warn("backend is "+c.State, args...)
	}
}

// readLogs takes the lines written since the last round and says, per
// kind and place, how often: at once the first time, then at most every
// LogEvery with the count since (an incident is not a line every round).
// OOM kills are said at once, every time.
func (w *Watcher) readLogs(r *Round) {
	if w.follow != nil {
		r.Logs = append(r.Logs, w.follow.Read()...)
	}
	if w.s.Kernel != nil {
		r.Logs = append(r.Logs, w.s.Kernel.Read()...)
	}
	// The full verify's requests through the web server are marked
	// (probemark): what they cause is not the visitors'.
	var own int
	r.Logs, own = logs.Visitors(r.Logs)
	if own > 0 {
		w.log.Debug("left out the lines about verify's own requests", "lines", own)
	}
	var order []string
	for _, e := range r.Logs {
		w.m.LogEvent(string(e.Source), string(e.Kind))
		if e.Kind == logs.OOMKill {
			w.m.OOMKill(e.Victim)
		}
		k := string(e.Source) + "|" + string(e.Kind) + "|" + e.Upstream + "|" + e.Pool + "|" + e.Victim
		g, ok := w.logGroups[k]
		if !ok {
			g = &logGroup{}
			w.logGroups[k] = g
		}
		if g.n == 0 {
			order = append(order, k)
		}
		g.n++
		g.e = e
	}
	// Groups with lines pending: this round's first, then older ones due.
	for k, g := range w.logGroups {
		if g.n > 0 && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range order {
		g := w.logGroups[k]
		if g.e.Kind != logs.OOMKill && !g.said.IsZero() && r.At.Sub(g.said) < LogEvery {
			continue
		}
		msg := fmt.Sprintf("%s logged '%s'", g.e.Source, g.e.Message)
		if g.e.Kind == logs.OOMKill {
			msg = fmt.Sprintf("the kernel's OOM killer killed %s", g.e.Victim)
		}
		if g.n > 1 {
			msg += fmt.Sprintf(" %d times", g.n)
		}
		if !g.said.IsZero() {
			msg += " since " + g.said.UTC().Format(time.TimeOnly)
		}
		w.log.Warn(msg, "kind", string(g.e.Kind))
		g.said, g.n = r.At, 0
	}
}

// logGroup is one kind of log line about one place.
type logGroup struct {
	e    logs.Entry // the latest
	n    int        // lines not yet said
	said time.Time  // when last said
}
