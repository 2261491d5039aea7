package watch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// recover asks for the units of backends (and web servers) that are down
// or hung, once per unit per round and at most every RetryEvery.
func (w *Watcher) recover(ctx context.Context, r *Round, now time.Time) {
	asked := map[string]bool{}
	// A unit is well again when every backend it serves answers.
	ailing := map[string]bool{}
	for _, br := range r.Backends {
		if br.Check.State != backend.StateUp {
			ailing[br.Backend.Unit] = true
		}
	}
	for _, br := range r.Backends {
		st := w.state[key(br.Backend)]
		reason := ""
		switch {
		case br.DownRun >= w.cfg.DownAfter:
			reason = recovery.ReasonDown
		case br.DownRun >= 1 && w.unitDead(ctx, br.Backend.Unit):
			// systemd itself says the unit is dead (a crash, an OOM kill):
			// no need to wait for a second round to be sure.
			reason = recovery.ReasonDown
		case br.HungRun >= w.cfg.HungAfter:
			reason = recovery.ReasonHung
		}
		if reason == "" {
			if br.Check.State == backend.StateUp {
				st.warnedOnce = false
				if !ailing[br.Backend.Unit] {
					delete(w.lastAsked, br.Backend.Unit)
				}
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
			k := web.Kind + " " + addr.String()
			why, down := w.listenDown[k]
			if !down || w.listenRun[k] < w.cfg.DownAfter {
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
	rctx, cancel := context.WithTimeout(ctx, RecoverTimeout)
	defer cancel()
	var a recovery.Action
	w.alive(RecoverTimeout, func() {
		a = w.s.Recoverer.Recover(rctx, recovery.Request{Unit: unit, Reason: reason, Evidence: evidence, ConfigTest: test})
	})
	w.m.Action(a)
	w.logAction(a)
	return a, true
}

// unitDead says whether systemd reports unit failed or inactive, when
// recovery is on and systemd can be asked (bounded by ProbeTimeout). A unit
// that is starting, stopping or active, or that cannot be read, is not dead.
func (w *Watcher) unitDead(ctx context.Context, unit string) bool {
	if !w.cfg.Recover || w.s.Recoverer == nil || unit == "" {
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
	defer cancel()
	us, err := w.s.Recoverer.State(sctx, unit)
	return err == nil && us.LoadState == "loaded" && (us.ActiveState == "failed" || us.ActiveState == "inactive")
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
