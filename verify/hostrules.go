package verify

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
	"github.com/cfguard/cfguard/verify/rules"
)

// The per-hostname rules (Configuration Rules, Origin Rules, Page Rules):
// each entry gets what the rules that match every request to its hostname
// change — the SSL mode, the destination port, the address connected to,
// the Host header and the SNI. A rule that matches only some requests (on
// the path, a header, the country…) is a warning on the paths every
// request takes; when the requests it matches reach another address, port
// or scheme, those are walked too, as paths of their own whose first
// warning says so (up to rules.MaxAlternatives per hostname).

// readRules reads one zone's rules. Only a cancelled run stops here: any
// other failure is a finding, and the paths assume the zone settings.
func (r *runner) readRules(ctx context.Context, z cloudflare.Zone) cloudflare.Rules {
	rs, err := r.d.api.Rules(ctx, z.ID)
	if err != nil {
		if ctx.Err() == nil {
			r.addFinding(report.Finding{Severity: report.SeverityWarning, Zone: z.Name,
				Message: fmt.Sprintf("zone %s: the Configuration, Origin and Page Rules were not read (%v); its paths assume the zone settings", z.Name, err)})
		}
		return cloudflare.Rules{}
	}
	return rs
}

// unreadRulesFinding is the one line of a run that says which kinds of
// rules the token could not read, in which zones, and what to grant.
func unreadRulesFinding(zds []zoneData) (report.Finding, bool) {
	var whats, needs, zones, said []string
	add := func(ss *[]string, s string) {
		if !slices.Contains(*ss, s) {
			*ss = append(*ss, s)
		}
	}
	for _, zd := range zds {
		for _, u := range zd.rules.Unread {
			add(&whats, u.What)
			add(&zones, zd.zone.Name)
			if e, ok := u.Err.(*cloudflare.Error); ok && e.Kind == cloudflare.KindPermission {
				add(&needs, "Zone → "+u.Need)
			} else {
				said = append(said, fmt.Sprintf("%s of %s: %v", u.What, zd.zone.Name, u.Err))
			}
		}
	}
	if len(whats) == 0 {
		return report.Finding{}, false
	}
	msg := fmt.Sprintf("%s not read (zones: %s); the paths assume the zone settings for them", joinAnd(whats), strings.Join(zones, ", "))
	if len(said) > 0 {
		msg += " — " + strings.Join(said, "; ")
	}
	fix := ""
	if len(needs) > 0 {
		fix = "Give the API token " + strings.Join(needs, ", ") + " (read-only), or ignore this if the zones use no such rules."
	}
	return report.Finding{Severity: report.SeverityWarning, Message: msg, Fix: fix}, true
}

func joinAnd(ss []string) string {
	if len(ss) <= 1 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " and " + ss[len(ss)-1]
}

// applyRules gives each entry its hostname's override, and adds an entry
// for each way only some requests take (a rule that depends on the
// request, assumed to match). An Origin or Page Rule that sends the
// hostname to another origin host replaces the hostname's addresses by
// that host's, resolved as a CNAME target is.
func (r *runner) applyRules(ctx context.Context, entries []entry, zds []zoneData) []entry {
	byZone := map[string]cloudflare.Rules{}
	for _, zd := range zds {
		if len(zd.rules.Config)+len(zd.rules.Origin)+len(zd.rules.Page) > 0 {
			byZone[zd.zone.Name] = zd.rules
		}
	}
	if len(byZone) == 0 {
		return entries
	}
	ap := &applier{r: r, zds: zds, rerouted: map[string]bool{}, plans: map[string]plan{}}
	var out []entry
	for _, e := range entries {
		rs, ok := byZone[e.zone]
		if !ok {
			out = append(out, e)
			continue
		}
		pl, ok := ap.plans[e.zone+" "+e.hostname]
		if !ok {
			// A wildcard record is judged for the name it is probed
			// with, one that has no record of its own (probeHost): the
			// rules see that name as http.host.
			pl.base, pl.alts = rules.Plan(rs, probeHost(e.hostname))
			ap.plans[e.zone+" "+e.hostname] = pl
		}
		out = append(out, ap.with(ctx, e, pl.base, "", "")...)
		for _, alt := range pl.alts {
			out = append(out, ap.with(ctx, e, alt.Override, alt.Only(), alt.Rule.String())...)
		}
	}
	return out
}

type applier struct {
	r        *runner
	zds      []zoneData
	byName   map[string][]cloudflare.Record
	rerouted map[string]bool // zone, hostname and alternative already rerouted
	plans    map[string]plan // by zone and hostname (a hostname has an entry per address)
}

type plan struct {
	base rules.Override
	alts []rules.Alternative
}

// with is e under ov; only is the sentence of an alternative ("" for what
// every request gets).
func (ap *applier) with(ctx context.Context, e entry, ov rules.Override, only, onlyRule string) []entry {
	if len(ov.Applied) == 0 && len(ov.Depends) == 0 && only == "" {
		return []entry{e}
	}
	e.override, e.only, e.onlyRule = &ov, only, onlyRule
	if ov.SSL != "" {
		e.settings.SSL = ov.SSL
	}
	if ov.OriginHost == "" || ov.OriginHost == e.hostname {
		return []entry{e}
	}
	key := e.zone + " " + e.hostname + " " + only
	if ap.rerouted[key] {
		return nil
	}
	ap.rerouted[key] = true
	if ap.byName == nil {
		ap.byName = recordsByName(ap.zds)
	}
	return ap.r.reroute(ctx, e, ov.OriginHost, ap.byName)
}

// reroute makes the entries of a hostname whose requests Cloudflare sends
// to originHost: one per address of that host.
func (r *runner) reroute(ctx context.Context, base entry, originHost string, byName map[string][]cloudflare.Record) []entry {
	base.addr, base.unresolved = netip.Addr{}, nil
	addrs, _, err := r.resolveTarget(ctx, originHost, byName)
	if err != nil || len(addrs) == 0 {
		why := "does not resolve"
		if err != nil && !isNotFound(err) {
			why = "could not be resolved from here (" + err.Error() + ")"
		}
		o := report.Outcome{Stage: report.StageRecord, Fail: true, Status: 530,
			Cause: fmt.Sprintf("%s: a rule sends its requests to %s, which %s (Cloudflare error 1016)", base.hostname, originHost, why),
			Fix:   "Point the rule's origin at a hostname with an A, AAAA or CNAME record, or add that record."}
		base.unresolved = &o
		return []entry{base}
	}
	var out []entry
	for _, a := range addrs {
		e := base
		e.addr = a.Unmap()
		out = append(out, e)
	}
	return out
}

// recordsByName indexes every record of the zones read by its name.
func recordsByName(zds []zoneData) map[string][]cloudflare.Record {
	byName := map[string][]cloudflare.Record{}
	for _, zd := range zds {
		for _, rec := range zd.records {
			n := normName(rec.Name)
			byName[n] = append(byName[n], rec)
		}
	}
	return byName
}

// ruleNotes are a path's evidence (the rules that changed it) and
// warnings (the rules that depend on the request).
func (j job) ruleNotes() (evidence, warnings, refs []string) {
	ov := j.override
	if ov == nil {
		return nil, j.notes, nil
	}
	if j.only != "" {
		warnings = append(warnings, j.only)
	}
	warnings = append(warnings, j.notes...)
	for _, a := range ov.Applied {
		evidence = append(evidence, a.String())
		refs = append(refs, a.Ref.String())
	}
	if ov.OriginHost != "" && j.addr.IsValid() {
		evidence = append(evidence, fmt.Sprintf("Cloudflare connects to %s (an address of %s), not to the record of %s", j.addr, ov.OriginHost, j.hostname))
	}
	return evidence, append(warnings, ov.Depends...), refs
}

// ruleFix points a path's fix at the rule that set the SSL mode, where the
// fix says to change the zone's.
func (j job) ruleFix(p report.Path) report.Path {
	if j.override == nil {
		return p
	}
	if port := j.override.Port; port > 0 && !p.OK && (p.Stage == report.StageFirewall || p.Stage == report.StageListener || p.Stage == report.StageTLS) {
		for _, a := range slices.Backward(j.override.Applied) {
			if slices.Contains(a.Sets, fmt.Sprintf("port %d", port)) {
				p.Fix = strings.TrimSpace(p.Fix + fmt.Sprintf(" Port %d comes from %s: if the origin should not serve it, correct the rule.", port, a.Ref))
				break
			}
		}
	}
	if j.override.SSL == "" {
		return p
	}
	ref := ""
	for _, a := range j.override.Applied {
		if slices.ContainsFunc(a.Sets, func(s string) bool { return strings.HasPrefix(s, "SSL mode ") }) {
			ref = a.Ref.String() // the last one to set the mode decides it
		}
	}
	if ref != "" {
		p.Fix = strings.ReplaceAll(p.Fix, "the zone's SSL mode", "the SSL mode in "+ref+" (it overrides the zone's)")
	}
	return p
}
