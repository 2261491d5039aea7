package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// Published is the listener stage for a port this host publishes by DNAT
// (Docker): the target is the translated address and port, behind this
// host (a container's network namespace), whose socket table this host
// cannot read. It connects from this host, within the context's deadline
// and at most DialTimeout: accepted passes, refused fails with 521
// (nothing listens behind the DNAT), no answer with 522. via names the
// DNAT's rule for the messages.
func Published(ctx context.Context, t Target, via string) report.Outcome {
	o := report.Outcome{Stage: report.StageListener}
	if err := t.check(); err != nil {
		return unusable(o.Stage, t, err)
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	c, err := dialTCP(dctx, t.hostPort())
	if err == nil {
		c.Close()
		o.Cause = fmt.Sprintf("%s accepts connections (published by DNAT: %s)", t.hostPort(), via)
		o.Evidence = append(o.Evidence, "accepting: "+t.hostPort()+" behind the DNAT")
		return o
	}
	if stopped(ctx, err) {
		return unusable(o.Stage, t, err)
	}
	o.Fail = true
	o.Evidence = append(o.Evidence, "connect: "+err.Error())
	switch classifyNetErr(err) {
	case dialRefused:
		o.Status = 521
		o.Cause = fmt.Sprintf("nothing listens on %s, where this host's DNAT sends Cloudflare's connections (%s)", t.hostPort(), via)
		o.Fix = fmt.Sprintf("Start the container or service that should listen on %s (docker ps -a; docker logs), or correct the published port.", t.hostPort())
	case dialTimeout:
		o.Status = 522
		o.Cause = fmt.Sprintf("%s, where this host's DNAT sends Cloudflare's connections (%s), does not answer a connect within %s", t.hostPort(), via, time.Since(start).Round(100*time.Millisecond))
		o.Fix = "Check that the container runs and its network is up (docker ps; ip addr), and the forward rules between this host and it."
	default:
		o.Status = 522
		o.Cause = fmt.Sprintf("%s, where this host's DNAT sends Cloudflare's connections (%s), cannot be reached: %s", t.hostPort(), via, shortErr(err))
		o.Fix = "Check the route from this host to the container's address (ip route get " + t.Addr.String() + ")."
	}
	return o
}
