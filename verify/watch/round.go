package watch

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// Round is what one round of checks saw and did.
type Round struct {
	At       time.Time
	Backends []BackendResult
	Logs     []logs.Entry
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
	if w.s.Discover == nil || (w.backs != nil && now.Sub(w.lastDisc) < w.cfg.FullEvery) {
		return
	}
	w.s.Alive()
	dctx, cancel := context.WithTimeout(ctx, DiscoverTimeout)
	defer cancel()
	b, err := w.s.Discover(dctx)
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
			k := web.Kind + " " + addr.String()
			w.m.SetListener(web.Kind, addr.String(), why == "")
			_, wasDown := w.listenDown[k]
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
	for _, k := range keys {
		st := w.state[k]
		pctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
		c := w.backs.Probe(pctx, st.b)
		cancel()
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

// readLogs takes the lines written since the last round and says, once
// per kind and place, how often.
func (w *Watcher) readLogs(r *Round) {
	if w.follow != nil {
		r.Logs = append(r.Logs, w.follow.Read()...)
	}
	if w.s.Kernel != nil {
		r.Logs = append(r.Logs, w.s.Kernel.Read()...)
	}
	type group struct {
		e logs.Entry
		n int
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range r.Logs {
		w.m.LogEvent(string(e.Source), string(e.Kind))
		if e.Kind == logs.OOMKill {
			w.m.OOMKill(e.Victim)
		}
		k := string(e.Source) + "|" + string(e.Kind) + "|" + e.Upstream + e.Pool + e.Victim
		if g, ok := groups[k]; ok {
			g.n++
			g.e = e
			continue
		}
		order = append(order, k)
		groups[k] = &group{e: e, n: 1}
	}
	for _, k := range order {
		g := groups[k]
		msg := fmt.Sprintf("%s logged '%s'", g.e.Source, g.e.Message)
		if g.n > 1 {
			msg += fmt.Sprintf(" %d times", g.n)
		}
		if g.e.Kind == logs.OOMKill {
			msg = fmt.Sprintf("the kernel's OOM killer killed %s", g.e.Victim)
			if g.n > 1 {
				msg += fmt.Sprintf(" %d times", g.n)
			}
		}
		w.log.Warn(msg, "kind", string(g.e.Kind))
	}
}

// recover asks for the units of backends (and web servers) that are down
// or hung, once per unit per round and at most every RetryEvery.
func (w *Watcher) recover(ctx context.Context, r *Round, now time.Time) {
	asked := map[string]bool{}
	for _, br := range r.Backends {
		st := w.state[key(br.Backend)]
		reason := ""
		switch {
		case br.DownRun >= w.cfg.DownAfter:
			reason = recovery.ReasonDown
		case br.HungRun >= w.cfg.HungAfter:
			reason = recovery.ReasonHung
		}
		if reason == "" {
			if br.Check.State == backend.StateUp {
				st.warnedOnce = false
				delete(w.lastAsked, br.Backend.Unit)
			}
			continue
		}
		b := br.Backend
		evidence := br.Check.Detail
		if reason == recovery.ReasonHung {
			evidence = fmt.Sprintf("%s (%d probes in a row)", evidence, br.HungRun)
		}
		if n := countFor(r.Logs, b.Target); n != "" {
			evidence += "; " + n
		}
		a, ok := w.ask(ctx, now, asked, st, b.Unit, reason, evidence, b.ConfigTest, b.Target)
		if ok {
			r.Actions = append(r.Actions, a)
			if a.Restarted {
				st.hungRun, st.downRun = 0, 0
			}
		}
	}
	if w.backs == nil {
		return
	}
	for _, web := range w.backs.Webs() {
		for _, addr := range web.Listens {
			why, down := w.listenDown[web.Kind+" "+addr.String()]
			if !down {
				continue
			}
			a, ok := w.ask(ctx, now, asked, nil, web.Unit, recovery.ReasonDown,
				fmt.Sprintf("%s does not accept connections on %s: %s", web.Kind, addr, why), web.ConfigTest, addr.String())
			if ok {
				r.Actions = append(r.Actions, a)
			}
		}
	}
}

// ask sends one Request when recovery is allowed and due.
func (w *Watcher) ask(ctx context.Context, now time.Time, asked map[string]bool, st *backendState, unit, reason, evidence string, test []string, what string) (recovery.Action, bool) {
	if unit == "" || asked[unit] {
		if unit == "" && st != nil && !st.warnedOnce {
			st.warnedOnce = true
			w.log.Warn("no systemd unit is known for "+what+": it cannot be brought back", "reason", reason, "evidence", evidence)
		}
		return recovery.Action{}, false
	}
	asked[unit] = true
	if !w.cfg.Recover || w.s.Recoverer == nil {
		if st != nil && !st.warnedOnce {
			st.warnedOnce = true
			w.log.Warn(fmt.Sprintf("%s is %s; recovery is off (--recover or CFGUARD_RECOVER=yes would restart it)", unit, reason), "evidence", evidence)
		}
		return recovery.Action{}, false
	}
	if t, ok := w.lastAsked[unit]; ok && now.Sub(t) < w.cfg.RetryEvery {
		return recovery.Action{}, false
	}
	if reason == recovery.ReasonDown {
		sctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
		us, err := w.s.Recoverer.State(sctx, unit)
		cancel()
		if err == nil {
			switch us.ActiveState {
			case "activating", "deactivating", "reloading":
				return recovery.Action{}, false // systemd is on it
			}
			evidence += fmt.Sprintf("; systemd: %s is %s (%s)", unit, us.ActiveState, us.SubState)
			if us.Result != "" && us.Result != "success" {
				evidence += ", result " + us.Result
			}
		}
	}
	w.lastAsked[unit] = now
	w.s.Alive()
	rctx, cancel := context.WithTimeout(ctx, RecoverTimeout)
	defer cancel()
	a := w.s.Recoverer.Recover(rctx, recovery.Request{Unit: unit, Reason: reason, Evidence: evidence, ConfigTest: test})
	w.m.Action(a)
	w.logAction(a)
	return a, true
}

func (w *Watcher) logAction(a recovery.Action) {
	args := []any{"unit", a.Unit, "reason", a.Reason, "evidence", a.Evidence}
	switch {
	case a.Refused != "":
		w.log.Warn(fmt.Sprintf("did not restart %s: %s", a.Unit, a.Refused), args...)
	case a.Err != nil:
		w.log.Error(fmt.Sprintf("restarting %s failed: %v", a.Unit, a.Err), args...)
	case !a.Restarted || a.JobResult != "done":
		w.log.Error(fmt.Sprintf("restarting %s failed: systemd's job ended %q", a.Unit, a.JobResult), args...)
	default:
		w.log.Warn(fmt.Sprintf("restarted %s because it was %s", a.Unit, a.Reason), args...)
	}
}

// countFor says how often this round's web server log named the target.
func countFor(es []logs.Entry, target string) string {
	n := 0
	var last logs.Entry
	for _, e := range es {
		if e.Upstream != "" && (e.Upstream == target || strings.TrimPrefix(target, "unix:") == strings.TrimPrefix(e.Upstream, "unix:")) {
			n++
			last = e
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s logged '%s' %d times since the last check", last.Source, last.Message, n)
}
