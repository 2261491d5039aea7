package watch

import (
	"context"
	"time"
)

// maybeVerify starts the full verify every PathsEvery, in the background:
// its probes wait up to their own timeouts, the fast checks do not.
func (w *Watcher) maybeVerify(ctx context.Context, now time.Time) {
	if w.s.Verify == nil {
		return
	}
	w.vmu.Lock()
	defer w.vmu.Unlock()
	if w.verifying || (!w.lastFull.IsZero() && now.Sub(w.lastFull) < w.cfg.PathsEvery) {
		return
	}
	w.verifying, w.lastFull = true, now
	done := make(chan struct{})
	w.vdone = done
	go func() {
		defer close(done)
		vctx, cancel := context.WithTimeout(ctx, max(w.cfg.PathsEvery, VerifyTimeout))
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
