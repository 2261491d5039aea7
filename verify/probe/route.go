package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/report"
)

// privateNextHops are the blocks a next hop in which marks a route as
// leading into a private network (a VPN, Docker, a LAN) rather than to the
// Internet. Link-local is absent: IPv6 default gateways are link-local.
var privateNextHops = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

func privateNextHop(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range privateNextHops {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Route looks up, for each Cloudflare prefix of src's family (every prefix
// when src is the zero Addr), the route this host would use for a reply
// from src (when src is one of its addresses) to the prefix's first and
// last address (stage route). It asks the kernel through netlink
// (RTM_GETROUTE with RTM_F_FIB_MATCH), in the caller's network namespace.
//
// It fails with 523 when a prefix has no route, a blackhole, unreachable or
// prohibit route, or a narrower route than the default that swallows it: a
// route through a private next hop, or an on-link route, while the default
// route goes elsewhere (the 172.0.0.0/8-swallows-172.64.0.0/13 case). If
// only some prefixes are affected it says that failures look intermittent.
func Route(ctx context.Context, src netip.Addr, cloudflare []netip.Prefix) report.Outcome {
	o := report.Outcome{Stage: report.StageRoute}
	nl, err := openRtnl(RouteTimeout)
	if err != nil {
		o.CannotTell = true
		o.Warnings = append(o.Warnings, fmt.Sprintf("this host's routes could not be read (%v), so whether its answers to Cloudflare leave by the right way is not checked; `ip route get` to a Cloudflare address shows it by hand", err))
		return o
	}
	defer nl.Close()

	src = src.Unmap()
	useSrc := false
	if src.IsValid() {
		if local, err := LocalAddrs(); err == nil {
			useSrc = slices.Contains(local, src)
		}
	}
	var looks []routeLookup
	dumps := map[bool][]route{} // by Is4
	for _, p := range cloudflare {
		p = p.Masked()
		if src.IsValid() && p.Addr().Is4() != src.Is4() {
			continue
		}
		if err := ctx.Err(); err != nil {
			o.CannotTell = true
			o.Warnings = append(o.Warnings, fmt.Sprintf("the route check was stopped before it finished (%v), so the routes toward Cloudflare are not judged", err))
			return o
		}
		if _, ok := dumps[p.Addr().Is4()]; !ok {
			fam := uint8(unix.AF_INET6)
			if p.Addr().Is4() {
				fam = unix.AF_INET
			}
			d, _ := nl.dump(fam) // only used to name routes; a failure leaves names out
			dumps[p.Addr().Is4()] = d
		}
		for _, a := range probeAddrs(p) {
			l := routeLookup{Prefix: p, Addr: a}
			s := netip.Addr{}
			if useSrc {
				s = src
			}
			r, err := nl.get(a, s)
			if err != nil {
				l.Err = err
			} else {
				l.Route = &r
			}
			looks = append(looks, l)
		}
	}
	return judgeRoutes(o, src, looks, dumps)
}

// routeLookup is the kernel's answer for one address of a Cloudflare prefix.
type routeLookup struct {
	Prefix netip.Prefix
	Addr   netip.Addr
	Route  *route // nil when Err is set
	Err    error
}

// probeAddrs are the first and last address of p.
func probeAddrs(p netip.Prefix) []netip.Addr {
	first := p.Addr()
	last := first
	b := last.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	last, _ = netip.AddrFromSlice(b)
	if last == first {
		return []netip.Addr{first}
	}
	return []netip.Addr{first, last}
}

// problem kinds, in the order they are reported.
const (
	routeNone = iota
	routeRefused
	routeSwallowed
	routeUnknown
)

type routeProblem struct {
	kind  int
	route string // the route to name, "" for none
}

// judgeRoutes turns the lookups into the stage's outcome. dumps are the
// routing tables, used to name a route the kernel refused to return and to
// find the default route.
func judgeRoutes(o report.Outcome, src netip.Addr, looks []routeLookup, dumps map[bool][]route) report.Outcome {
	byPrefix := map[netip.Prefix]*routeProblem{}
	var prefixes []netip.Prefix
	for _, l := range looks {
		if _, seen := byPrefix[l.Prefix]; !seen {
			byPrefix[l.Prefix] = nil
			prefixes = append(prefixes, l.Prefix)
		}
		if pr := classifyLookup(l, dumps[l.Prefix.Addr().Is4()]); pr != nil && byPrefix[l.Prefix] == nil {
			byPrefix[l.Prefix] = pr
		}
	}
	// The routes the sound prefixes use, for Evidence.
	uses := map[string][]string{} // route → prefixes using it
	var order []string
	for _, l := range looks {
		if byPrefix[l.Prefix] != nil {
			continue
		}
		name := l.Route.String()
		if !slices.Contains(uses[name], l.Prefix.String()) {
			if len(uses[name]) == 0 {
				order = append(order, name)
			}
			uses[name] = append(uses[name], l.Prefix.String())
		}
	}
	for _, name := range order {
		o.Evidence = append(o.Evidence, fmt.Sprintf("route to %s: %s", prefixSummary(uses[name]), name))
	}

	// Group the failing prefixes by problem.
	type group struct {
		pr       routeProblem
		prefixes []string
	}
	var groups []*group
	failing := 0
	for _, p := range prefixes {
		pr := byPrefix[p]
		if pr == nil {
			continue
		}
		if pr.kind == routeUnknown {
			o.CannotTell = true
			o.Warnings = append(o.Warnings, fmt.Sprintf("the route toward Cloudflare's %s could not be looked up (%s), so whether answers to it leave by the right way is not checked", p, pr.route))
			continue
		}
		failing++
		o.Evidence = append(o.Evidence, fmt.Sprintf("route to %s: %s", p, orNone(pr.route)))
		i := slices.IndexFunc(groups, func(g *group) bool { return g.pr == *pr })
		if i < 0 {
			groups = append(groups, &group{pr: *pr})
			i = len(groups) - 1
		}
		groups[i].prefixes = append(groups[i].prefixes, p.String())
	}
	if failing == 0 {
		if len(order) > 0 {
			o.Cause = "replies to Cloudflare's ranges leave by " + strings.Join(order, "; ")
		} else if !o.CannotTell {
			o.Cause = "no Cloudflare range of this address family to look up"
		}
		return o
	}
	o.Fail, o.Status = true, 523
	from := ""
	if src.IsValid() {
		from = " from " + src.String()
	}
	var causes, fixes []string
	for _, g := range groups {
		ps := strings.Join(g.prefixes, ", ")
		switch g.pr.kind {
		case routeNone:
			causes = append(causes, fmt.Sprintf("this server has no route%s toward Cloudflare's %s", from, ps))
			fixes = append(fixes, "add a default route (ip route add default via GATEWAY) and make it permanent in the network configuration")
		case routeRefused:
			causes = append(causes, fmt.Sprintf("the route %q discards replies to Cloudflare's %s", g.pr.route, ps))
			fixes = append(fixes, fmt.Sprintf("delete it (ip route del %s) and find what adds it (fail2ban, a script, the network configuration)", g.pr.route))
		case routeSwallowed:
			causes = append(causes, fmt.Sprintf("the route %q swallows Cloudflare's %s: replies go there instead of by the default route", g.pr.route, ps))
			fixes = append(fixes, fmt.Sprintf("narrow or remove the route %q so that it no longer covers Cloudflare's ranges (a private network fits in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)", g.pr.route))
		}
	}
	o.Cause = strings.Join(causes, "; ")
	if failing < len(prefixes) {
		o.Cause += fmt.Sprintf(" — %d of %d Cloudflare ranges are affected, so failures will look intermittent", failing, len(prefixes))
	}
	fix := strings.Join(fixes, "; ")
	o.Fix = strings.ToUpper(fix[:1]) + fix[1:] + "."
	return o
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// classifyLookup returns the problem with one lookup, or nil.
func classifyLookup(l routeLookup, table []route) *routeProblem {
	if l.Err != nil {
		var errno syscall.Errno
		if !errors.As(l.Err, &errno) {
			return &routeProblem{kind: routeUnknown, route: l.Err.Error()}
		}
		var typ uint8
		switch errno {
		case syscall.ENETUNREACH:
			return &routeProblem{kind: routeNone}
		case syscall.EINVAL:
			typ = unix.RTN_BLACKHOLE
		case syscall.EHOSTUNREACH:
			typ = unix.RTN_UNREACHABLE
		case syscall.EACCES, syscall.EPERM:
			typ = unix.RTN_PROHIBIT
		default:
			return &routeProblem{kind: routeUnknown, route: l.Err.Error()}
		}
		if r := longestMatch(table, l.Addr, typ); r != nil {
			return &routeProblem{kind: routeRefused, route: r.String()}
		}
		return &routeProblem{kind: routeRefused, route: routeTypeNames[typ] + " (a policy rule or route; see ip rule, ip route show table all)"}
	}
	r := *l.Route
	switch r.Type {
	case unix.RTN_BLACKHOLE, unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
		return &routeProblem{kind: routeRefused, route: r.String()}
	case unix.RTN_UNICAST:
	default:
		return nil
	}
	if r.Dst.Bits() == 0 || r.Multipath {
		return nil
	}
	def := defaultRoute(table)
	if def == nil || (def.Gateway == r.Gateway && def.Dev == r.Dev) {
		return nil
	}
	if (r.Gateway.IsValid() && privateNextHop(r.Gateway)) || !r.Gateway.IsValid() {
		return &routeProblem{kind: routeSwallowed, route: r.String()}
	}
	return nil
}

// longestMatch is the most specific route of type typ covering a.
func longestMatch(table []route, a netip.Addr, typ uint8) *route {
	var best *route
	for i, r := range table {
		if r.Type == typ && r.Dst.Contains(a) && (best == nil || r.Dst.Bits() > best.Dst.Bits()) {
			best = &table[i]
		}
	}
	return best
}

// defaultRoute is the unicast default route of the main table (else of
// any table), or nil.
func defaultRoute(table []route) *route {
	var found *route
	for i, r := range table {
		if r.Dst.Bits() != 0 || r.Type != unix.RTN_UNICAST {
			continue
		}
		if r.Table == unix.RT_TABLE_MAIN {
			return &table[i]
		}
		if found == nil {
			found = &table[i]
		}
	}
	return found
}

// prefixSummary names a few prefixes and counts the rest, so that evidence
// stays one readable line: "173.245.48.0/20, 103.21.244.0/22 and 13 more".
func prefixSummary(ps []string) string {
	const show = 2
	if len(ps) <= show+1 {
		return strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s and %d more Cloudflare ranges", strings.Join(ps[:show], ", "), len(ps)-show)
}
