package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// Elsewhere probes a record's address that is neither on this host nor a
// declared --origin-ip (stage elsewhere) with a TCP connect to the target's
// port, waiting at most timeout (DialTimeout if zero). No answer — a
// timeout, or no route from here — fails with 522: "www.example.com →
// 203.0.113.99, which is not this server and does not answer". Any answer
// passes with a Cause starting "not this server:": that server's paths are
// not this origin's to judge. A refusal is an answer too; it passes with a
// warning that Cloudflare would get 521 there.
func Elsewhere(ctx context.Context, t Target, timeout time.Duration) report.Outcome {
	if timeout <= 0 {
		timeout = DialTimeout
	}
	o := report.Outcome{Stage: report.StageElsewhere}
	if err := t.check(); err != nil {
		return unusable(o.Stage, t, err)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dialTCP(dctx, t.hostPort())
	if err != nil && stopped(ctx, err) {
		return unusable(o.Stage, t, err)
	}
	if err == nil {
		c.Close()
		o.Cause = fmt.Sprintf("not this server: %s → %s, which answers on port %d; its paths are that server's to check", t.Hostname, t.Addr, t.Port)
		o.Evidence = append(o.Evidence, "connected to "+t.hostPort())
		return o
	}
	o.Evidence = append(o.Evidence, "connect: "+err.Error())
	fix := fmt.Sprintf("If %s is an old or wrong address, point the record for %s at this origin's public address; if this server is reached at %s through 1:1 NAT, pass --origin-ip %s.", t.Addr, t.Hostname, t.Addr, t.Addr)
	switch classifyNetErr(err) {
	case dialRefused:
		o.Cause = fmt.Sprintf("not this server: %s → %s, which answers but refuses port %d", t.Hostname, t.Addr, t.Port)
		o.Warnings = append(o.Warnings, fmt.Sprintf("%s refuses connections to port %d from here: if it refuses Cloudflare too, visitors of %s get 521", t.Addr, t.Port, t.Hostname))
		return o
	case dialUnreachable:
		o.Fail, o.Status = true, 522
		o.Cause = fmt.Sprintf("%s → %s, which is not this server and does not answer (%s from here)", t.Hostname, t.Addr, shortErr(err))
	default:
		o.Fail, o.Status = true, 522
		o.Cause = fmt.Sprintf("%s → %s, which is not this server and does not answer on port %d (waited %s)", t.Hostname, t.Addr, t.Port, timeout)
	}
	o.Fix = fix
	return o
}
