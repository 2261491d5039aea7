package verify

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/cfguard/cfguard/firewall/sim"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// Ports published by DNAT (Docker): the firewall stage follows the DNAT in
// prerouting (firewall/sim), and the listener, tls and http stages then
// probe the translated address and port, from this host (through the
// bridge or veth), instead of the host's own address where nothing
// listens. The backend analysis does not look into the container.

// translator is a firewall stage that follows DNAT: the translation it
// found for addr:port (every Cloudflare range alike; zero when none), and
// known false when a DNAT may send the connections elsewhere but where is
// not known.
type translator interface {
	Translation(addr netip.Addr, port int) (x sim.Translation, known bool)
}

// publishedProber is a prober with a listener stage for a DNAT target
// (probe.Published); a prober without it gets Listener.
type publishedProber interface {
	Published(ctx context.Context, t probe.Target, via string) report.Outcome
}

func (probes) Published(ctx context.Context, t probe.Target, via string) report.Outcome {
	return probe.Published(ctx, t, via)
}

// containerNamer is an upstream that can name what listens behind a DNAT
// target (verify/backend: the process in another network namespace).
type containerNamer interface {
	Behind(ctx context.Context, to netip.AddrPort, host string, httpStatus int) report.Outcome
}

// translation is the DNAT the firewall stage found for the target, when it
// changes where Cloudflare's connections go; known is false when a DNAT
// may change it but the simulator cannot tell where.
func (r *runner) translation(t probe.Target) (x sim.Translation, changed, known bool) {
	tr, ok := r.d.firewall.(translator)
	if !ok {
		return sim.Translation{}, false, true
	}
	x, known = tr.Translation(t.Addr, t.Port)
	if !known {
		return sim.Translation{}, false, false
	}
	if !x.Translated() || x.To == netip.AddrPortFrom(t.Addr.Unmap(), uint16(t.Port)) {
		return sim.Translation{}, false, true
	}
	return x, true, true
}

// dnatUnknown is the listener stage's outcome when a DNAT may send
// Cloudflare's connections elsewhere and the simulator cannot tell where:
// probing this host's address would judge the wrong server, so the path
// stops here as "cannot tell", never as a failure.
func dnatUnknown(t probe.Target) report.Outcome {
	return report.Outcome{Stage: report.StageListener, CannotTell: true,
		Cause: fmt.Sprintf("a DNAT in prerouting may send Cloudflare's connections to %s elsewhere, and the firewall simulator cannot tell where (see the firewall stage): the listener, tls and http stages were not run", net.JoinHostPort(t.Addr.String(), fmt.Sprint(t.Port)))}
}

// retarget points the probes at the DNAT's destination.
func retarget(t probe.Target, x sim.Translation) probe.Target {
	t.Addr, t.Port = x.To.Addr(), int(x.To.Port())
	return t
}

// dnatEvidence is the evidence line naming a DNAT.
func dnatEvidence(x sim.Translation) string {
	where := "forwarded"
	if x.Interface != "" {
		where = "forwarded through " + x.Interface
	}
	if x.Local {
		where = "on this host"
	}
	return fmt.Sprintf("published by DNAT to %s, %s", x.String(), where)
}

// dnatRule names the rule of a DNAT: "table ip nat chain DOCKER, rule
// handle 7: …".
func dnatRule(x sim.Translation) string {
	s := fmt.Sprintf("table %s %s chain %s", x.Family, x.Table, x.Chain)
	if x.Handle != 0 {
		s += fmt.Sprintf(", rule handle %d: %s", x.Handle, x.Rule)
	}
	return s
}

// listenerBehind runs the listener stage for a DNAT target: a target on
// this host is checked as usual, one behind it (a container) by connecting.
func (r *runner) listenerBehind(ctx context.Context, t probe.Target, x sim.Translation) report.Outcome {
	if pp, ok := r.d.probe.(publishedProber); ok && !x.Local {
		return pp.Published(ctx, t, dnatRule(x))
	}
	return r.d.probe.Listener(ctx, t)
}

// upstreamBehind is the backend analysis of a path published by DNAT: on
// this host (only the port changes) the web server listening on the new
// port is analysed; behind it, the upstream names what listens there and
// says why it is not analysed.
func (r *runner) upstreamBehind(ctx context.Context, x sim.Translation, host, scheme string, status int, sent probemark.Mark) report.Outcome {
	if x.Local {
		return r.d.upstream.Analyze(ctx, x.To.Addr(), int(x.To.Port()), host, scheme, status, sent)
	}
	if cn, ok := r.d.upstream.(containerNamer); ok {
		return cn.Behind(ctx, x.To, host, status)
	}
	return report.Outcome{Stage: report.StageUpstream}
}
