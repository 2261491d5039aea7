package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/cfguard/cfguard/verify/report"
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
		if err != nil {
			if msg := err.Error(); msg != w.verifyErr {
				w.verifyErr = msg
				w.log.Warn("the full verify could not run", "err", err)
			}
		} else {
			w.verifyErr = ""
			w.logPaths(rep)
		}
		w.vmu.Lock()
		w.verifying = false
		w.vmu.Unlock()
	}()
}

// logPaths says which paths started failing (or fail differently) and
// which pass again; a path that keeps failing the same way is said once.
func (w *Watcher) logPaths(rep *report.Report) {
	now := map[string]string{}
	failing := 0
	for _, p := range rep.Paths {
		k := fmt.Sprintf("%s %s %s:%d %s", p.Zone, p.Hostname, p.OriginIP, p.Port, p.Scheme)
		if p.OK {
			if _, was := w.pathFail[k]; was {
				w.log.Info("a path passes again", "hostname", p.Hostname, "origin", p.OriginIP, "port", p.Port, "status", p.Status)
			}
			continue
		}
		failing++
		why := fmt.Sprintf("%d %s %s", p.Status, p.Stage, p.Cause)
		now[k] = why
		if w.pathFail[k] != why {
			w.log.Warn("a path would fail", "hostname", p.Hostname, "origin", p.OriginIP, "port", p.Port, "status", p.Status, "stage", string(p.Stage), "cause", p.Cause, "fix", p.Fix)
		}
	}
	if failing != len(w.pathFail) || w.pathsWalked == 0 {
		w.log.Info("every path walked", "paths", len(rep.Paths), "failing", failing)
	}
	w.pathFail = now
	w.pathsWalked++
}
