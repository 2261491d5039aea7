package probe

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// maxListeners bounds the listening sockets named in Evidence.
const maxListeners = 16

// Listener checks that something accepts on the target's address and port
// (stage listener). It reads the listening sockets (/proc/net/tcp and tcp6)
// first: nothing listening there fails with 521 at once. Otherwise it
// connects, within the context's deadline (the caller's --timeout) and at
// most DialTimeout. That connect goes from this host to itself, over
// loopback, which a firewall may treat unlike Cloudflare's packets (the
// firewall stage judged those): when a socket listens but the connect is
// refused or times out, the stage passes with a warning naming both, rather
// than blaming the firewall for what Cloudflare would not meet. Without the
// socket table, a failed connect fails the stage as before (refused 521,
// no answer 522).
func Listener(ctx context.Context, t Target) report.Outcome {
	o := report.Outcome{Stage: report.StageListener}
	if err := t.check(); err != nil {
		return unusable(o.Stage, t, err)
	}
	socks, lerr := ListeningSockets()
	var matching []string
	if lerr == nil {
		matching = matchingListeners(socks, t.Addr, t.Port)
		if len(matching) == 0 {
			o.Fail, o.Status = true, 521
			o.Cause = fmt.Sprintf("nothing listens on %s", t.hostPort())
			o.Fix = listenFix(t, socks)
			o.Evidence = append(o.Evidence, "listening: "+describeListeners(socks, t.Port))
			return o
		}
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	c, err := dialTCP(dctx, t.hostPort())
	if err == nil {
		c.Close()
		o.Cause = fmt.Sprintf("%s accepts connections", t.hostPort())
		if owner := listenerOwner(t); owner != "" {
			o.Evidence = append(o.Evidence, "accepting: "+owner)
		}
		return o
	}
	if len(matching) > 0 {
		switch kind := classifyNetErr(err); kind {
		case dialRefused, dialTimeout:
			what := "refused"
			if kind == dialTimeout {
				what = fmt.Sprintf("got no answer within %s", time.Since(start).Round(100*time.Millisecond))
			}
			o.Cause = fmt.Sprintf("something listens on %s: %s", t.hostPort(), matching[0])
			o.Evidence = append(o.Evidence, "listening: "+strings.Join(matching, ", "), "connect from this host: "+shortErr(err))
			o.Warnings = append(o.Warnings, fmt.Sprintf(
				"a connect from this host to %s %s although %s listens there: the firewall treats this host's own connections (over loopback) unlike Cloudflare's, which the firewall stage judged, or the server does not accept connections (a full listen queue)",
				t.hostPort(), what, matching[0]))
			return o
		}
	}
	if stopped(ctx, err) {
		return unusable(o.Stage, t, err)
	}
	return connectFailure(o, t, err, time.Since(start))
}

// connectFailure turns a failed connect to the target into a failing
// outcome for the given stage.
func connectFailure(o report.Outcome, t Target, err error, waited time.Duration) report.Outcome {
	o.Fail = true
	o.Evidence = append(o.Evidence, "connect: "+err.Error())
	switch classifyNetErr(err) {
	case dialRefused:
		o.Status = 521
		socks, lerr := ListeningSockets()
		matching := matchingListeners(socks, t.Addr, t.Port)
		switch {
		case len(matching) > 0:
			o.Cause = fmt.Sprintf("%s refuses connections although %s listens there: a firewall rule rejects them", t.hostPort(), matching[0])
			o.Fix = "Find the reject rule (nft list ruleset; iptables-save) and allow Cloudflare's ranges to port " + fmt.Sprint(t.Port) + "."
		default:
			o.Cause = fmt.Sprintf("nothing listens on %s", t.hostPort())
			o.Fix = listenFix(t, socks)
		}
		if lerr != nil {
			o.Evidence = append(o.Evidence, "listening: unknown ("+lerr.Error()+")")
		} else {
			o.Evidence = append(o.Evidence, "listening: "+describeListeners(socks, t.Port))
		}
	case dialUnreachable:
		o.Status = 522
		o.Cause = fmt.Sprintf("%s is unreachable from this server (%s)", t.hostPort(), shortErr(err))
		o.Fix = "Check that the address is configured on an interface that is up (ip addr) and the routes (ip route)."
	case dialTimeout:
		o.Status = 522
		o.Cause = fmt.Sprintf("%s does not answer a connect within %s", t.hostPort(), waited.Round(100*time.Millisecond))
		o.Fix = "Look for a firewall rule that drops the connection (nft list ruleset) or a server too busy to accept (listen backlog)."
	default:
		o.Status = 521
		o.Cause = fmt.Sprintf("connecting to %s fails: %s", t.hostPort(), shortErr(err))
		o.Fix = "Check that the web server runs and listens on " + t.hostPort() + "."
	}
	return o
}

// listenFix says what to do when nothing listens on the target.
func listenFix(t Target, socks []Socket) string {
	if t.Server == "" {
		t.Server = serverOf(socks, t)
	}
	w := words{t.Server}
	var httpHere, otherAddrSamePort bool
	for _, s := range socks {
		here := s.Addr == t.Addr.Unmap() || s.Addr.IsUnspecified()
		switch {
		case s.Port == t.Port:
			otherAddrSamePort = true
		case here && (s.Port == 80 || s.Port == 8080):
			httpHere = true
		}
	}
	switch {
	case t.Scheme == "https" && httpHere:
		return fmt.Sprintf("SSL mode %q needs HTTPS on port %d but the web server only speaks HTTP here: add a TLS listener (%s; a Cloudflare Origin CA certificate will do), or change the zone's SSL mode.", t.SSLMode, t.Port, w.tlsListener(t.Port))
	case otherAddrSamePort:
		return fmt.Sprintf("Make the web server listen on %s (or on all addresses, e.g. %s), then reload it.", t.hostPort(), w.listenAll(t.Port))
	}
	return "Start the web server (" + w.start() + ")."
}

// shortErr drops Go's "dial tcp …:" prefix from a network error.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// matchingListeners are the listening sockets that accept on addr:port
// (the address itself, or a wildcard of a family that covers it).
func matchingListeners(socks []Socket, addr netip.Addr, port int) []string {
	addr = addr.Unmap()
	var out []string
	for _, s := range socks {
		if s.Port != port {
			continue
		}
		if s.Addr == addr || (s.Addr.IsUnspecified() && (s.Addr.Is4() == addr.Is4() || s.Addr.Is6())) {
			out = append(out, s.String())
		}
	}
	return out
}

// listenerOwner names the process that listens for the target, if known.
func listenerOwner(t Target) string {
	socks, err := ListeningSockets()
	if err != nil {
		return ""
	}
	for _, s := range socks {
		if len(matchingListeners([]Socket{s}, t.Addr, t.Port)) > 0 {
			return s.String()
		}
	}
	return ""
}

// describeListeners lists the sockets worth naming: those on port first,
// then the others that are not loopback-only, at most maxListeners.
func describeListeners(socks []Socket, port int) string {
	var first, rest []string
	for _, s := range socks {
		switch {
		case s.Port == port:
			first = append(first, s.String())
		case !s.Addr.IsLoopback():
			rest = append(rest, s.String())
		}
	}
	all := append(first, rest...)
	if len(all) == 0 {
		if len(socks) == 0 {
			return "nothing on any TCP port"
		}
		return "only loopback addresses"
	}
	more := ""
	if len(all) > maxListeners {
		more = fmt.Sprintf(" and %d more", len(all)-maxListeners)
		all = all[:maxListeners]
	}
	return strings.Join(all, ", ") + more
}
