package watch

import (
	"context"
	"strings"
	"time"

	"github.com/cfguard/cfguard/internal/guard"
)

// checkGuard reads the guard's status and puts a table that vanished
// (nft flush ruleset) back from the cache at once. A table the watch never
// saw is not created: that is `cfguard sync`'s decision.
func (w *Watcher) checkGuard(ctx context.Context, now time.Time) (restored bool) {
	if w.s.Guard == nil {
		return false
	}
	st, err := w.readGuard(ctx, now)
	if err != nil {
		return false
	}
	vanished := !st.Present || st.Hooked && st.IPv4+st.IPv6 == 0
	if vanished && w.guardSeen && now.Sub(w.restoreAt) >= w.cfg.RetryEvery {
		w.restoreAt = now
		w.s.Alive()
		rctx, cancel := context.WithTimeout(ctx, GuardTimeout)
		res, err := w.s.Guard.Restore(rctx)
		cancel()
		w.m.GuardRestored(err)
		if err != nil {
			w.log.Error("table inet "+st.Table+" vanished and restoring it from the cache failed", "err", err)
			return false
		}
		w.log.Warn("table inet "+st.Table+" vanished: put back from the cache", "result", res.Summary(), "warnings", strings.Join(res.Warnings, "; "))
		restored = true
		if _, err := w.readGuard(ctx, now); err != nil {
			return restored
		}
	}
	return restored
}

func (w *Watcher) readGuard(ctx context.Context, now time.Time) (guard.Status, error) {
	gctx, cancel := context.WithTimeout(ctx, GuardTimeout)
	defer cancel()
	st, err := w.s.Guard.Status(gctx, now)
	if err != nil {
		if msg := err.Error(); msg != w.guardLast {
			w.guardLast = msg
			w.log.Warn("reading the guard's status failed", "err", err)
		}
		return st, err
	}
	w.m.SetGuard(st)
	if st.Present && st.Protected {
		w.guardSeen = true
		w.restoreAt = time.Time{}
	}
	msg := strings.Join(st.Problems, "; ")
	if msg != w.guardLast {
		w.guardLast = msg
		if msg == "" {
			w.log.Info("the guard protects this origin", "table", st.Table, "ipv4", st.IPv4, "ipv6", st.IPv6)
		} else {
			w.log.Warn("the guard does not fully protect this origin: "+msg, "table", st.Table)
		}
	}
	return st, nil
}

// maybeVerify starts the full verify every FullEvery, in the background:
// its probes wait up to their own timeouts, the fast checks do not.
func (w *Watcher) maybeVerify(ctx context.Context, now time.Time) {
	if w.s.Verify == nil {
		return
	}
	w.vmu.Lock()
	defer w.vmu.Unlock()
	if w.verifying || (!w.lastFull.IsZero() && now.Sub(w.lastFull) < w.cfg.FullEvery) {
		return
	}
	w.verifying, w.lastFull = true, now
	done := make(chan struct{})
	w.vdone = done
	go func() {
		defer close(done)
		vctx, cancel := context.WithTimeout(ctx, w.cfg.FullEvery)
		defer cancel()
		start := time.Now()
		rep, err := w.s.Verify(vctx)
		w.m.CheckDuration("verify", time.Since(start))
		w.m.SetReport(rep, w.s.Now())
		switch {
		case err != nil:
			w.log.Warn("the full verify could not run", "err", err)
		default:
			failing := 0
			for _, p := range rep.Paths {
				if !p.OK {
					failing++
					w.log.Warn("a path would fail", "hostname", p.Hostname, "origin", p.OriginIP, "port", p.Port, "status", p.Status, "stage", string(p.Stage), "cause", p.Cause, "fix", p.Fix)
				}
			}
			w.log.Info("full verify done", "paths", len(rep.Paths), "failing", failing)
		}
		w.vmu.Lock()
		w.verifying = false
		w.vmu.Unlock()
	}()
}
