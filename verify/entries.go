package verify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
	"github.com/cfguard/cfguard/verify/rules"
)

// zoneReadConcurrency bounds the zones whose settings and records are read
// at once.
const zoneReadConcurrency = 4

// tunnelSuffix marks a CNAME target that is a Cloudflare Tunnel.
const tunnelSuffix = ".cfargotunnel.com"

// entry is one way into the origin: a proxied hostname and one origin
// address it leads to, with its zone's settings.
type entry struct {
	zone       string
	hostname   string
	recordType string
	addr       netip.Addr
	settings   cloudflare.Settings
	// unresolved is set for a CNAME whose target does not resolve: the
	// entry becomes one failing path with no address.
	unresolved *report.Outcome
	// override is what the zone's rules change for the hostname (nil:
	// none apply); see hostrules.go.
	override *rules.Override
	// only is set on an entry that only some requests take: those a rule
	// depending on the request matches (the sentence says which).
	only     string
	onlyRule string // the rule, named
}

// zoneData is what the API said about one zone.
type zoneData struct {
	zone     cloudflare.Zone
	settings cloudflare.Settings
	records  []cloudflare.Record
	rules    cloudflare.Rules
}

func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// readZones verifies the token and reads every zone's settings and records.
func (r *runner) readZones(ctx context.Context) ([]zoneData, error) {
	if err := r.d.api.VerifyToken(ctx); err != nil {
		return nil, &Error{Err: err}
	}
	zs, err := r.d.api.Zones(ctx, r.cfg.Zones)
	if err != nil {
		return nil, &Error{Err: err}
	}
	if len(zs) == 0 {
		return nil, cannotRun("the API token can read no zone: give it Zone:Read for the zones of this origin, or name them with --zone")
	}
	out := make([]zoneData, len(zs))
	errs := make([]error, len(zs))
	sem := make(chan struct{}, zoneReadConcurrency)
	var wg sync.WaitGroup
	for i, z := range zs {
		out[i].zone = z
		if z.Paused {
			continue // its records are not proxied: nothing to read
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := r.d.api.Settings(ctx, z.ID)
			if err != nil {
				errs[i] = fmt.Errorf("zone %s: %w", z.Name, err)
				return
			}
			recs, err := r.d.api.DNSRecords(ctx, z.ID)
			if err != nil {
				errs[i] = fmt.Errorf("zone %s: %w", z.Name, err)
				return
			}
			out[i].settings, out[i].records = s, recs
			out[i].rules = r.readRules(ctx, z)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, &Error{Err: errs[slices.IndexFunc(errs, func(e error) bool { return e != nil })]}
	}
	return out, nil
}

// zoneFindings are the zone-level observations.
func zoneFindings(zd zoneData) []report.Finding {
	z, s := zd.zone, zd.settings
	var out []report.Finding
	add := func(sev report.Severity, msg, fix string) {
		out = append(out, report.Finding{Severity: sev, Zone: z.Name, Message: msg, Fix: fix})
	}
	if z.Paused {
		add(report.SeverityWarning, fmt.Sprintf("zone %s is paused: Cloudflare answers its DNS but does not proxy it, so visitors reach the origin directly and no path below goes through Cloudflare", z.Name),
			"Resume the zone in the dashboard (Overview → Advanced actions → Resume Cloudflare on site) when you want it proxied again.")
		return out
	}
	if z.Status != "" && z.Status != "active" {
		add(report.SeverityWarning, fmt.Sprintf("zone %s is %s, not active: Cloudflare does not serve it yet; the paths below are what visitors will get once it is active", z.Name, z.Status),
			"Finish the zone's setup (point the domain's name servers at Cloudflare's).")
	}
	if !ValidSSLMode(s.SSL) {
		add(report.SeverityWarning, fmt.Sprintf("zone %s has SSL mode %q, which verify does not know; the paths are checked as under full", z.Name, s.SSL), "")
	}
	if s.SSL == ModeOff && s.AlwaysUseHTTPS {
		add(report.SeverityError, fmt.Sprintf("zone %s: SSL is off while Always Use HTTPS is on: visitors are sent to https://, which Cloudflare does not serve for this zone", z.Name),
			"Set the zone's SSL mode to Full (strict) (with a certificate on the origin), or turn Always Use HTTPS off.")
	}
	if s.TLSClientAuth {
		add(report.SeverityInfo, fmt.Sprintf("zone %s: Authenticated Origin Pulls (tls_client_auth) is on: Cloudflare presents its client certificate to the origin over HTTPS", z.Name),
			"Make the origin require it (nginx: ssl_client_certificate with Cloudflare's origin-pull CA and ssl_verify_client on; Apache: SSLCACertificateFile with that CA and SSLVerifyClient require), or it protects nothing.")
	}
	for _, n := range s.Notes {
		add(report.SeverityInfo, fmt.Sprintf("zone %s: %s", z.Name, n), "")
	}
	return out
}

// entriesFromZones turns the proxied A, AAAA and CNAME records into entry
// points (CNAMEs resolved), filtered by --hostname.
func (r *runner) entriesFromZones(ctx context.Context, zds []zoneData) []entry {
	// Names of every zone read, for CNAMEs that point inside them.
	byName := recordsByName(zds)
	want := map[string]bool{}
	for _, h := range r.cfg.Hostnames {
		want[normName(h)] = true
	}
	var (
		out []entry
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, r.cfg.concurrency())
	for _, zd := range zds {
		if zd.zone.Paused {
			continue
		}
		seen := map[string]bool{}
		for _, rec := range zd.records {
			name := normName(rec.Name)
			if !rec.Proxied || (len(want) > 0 && !want[name]) {
				continue
			}
			key := rec.Type + " " + name + " " + rec.Content
			if seen[key] {
				continue
			}
			seen[key] = true
			base := entry{zone: zd.zone.Name, hostname: name, recordType: rec.Type, settings: zd.settings}
			switch rec.Type {
			case "A", "AAAA":
				a, err := netip.ParseAddr(strings.TrimSpace(rec.Content))
				if err != nil {
					a = netip.Addr{} // the record stage names it
				}
				base.addr = a.Unmap()
				mu.Lock()
				out = append(out, base)
				mu.Unlock()
			case "CNAME":
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					es := r.cnameEntries(ctx, base, normName(rec.Content), byName)
					mu.Lock()
					out = append(out, es...)
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	return out
}

// cnameEntries resolves a proxied CNAME's target: inside the zones read
// first (Cloudflare resolves those itself), else through DNS.
func (r *runner) cnameEntries(ctx context.Context, base entry, target string, byName map[string][]cloudflare.Record) []entry {
	if strings.HasSuffix(target, tunnelSuffix) {
		r.tunnelFinding(base, target)
		return nil
	}
	addrs, final, err := r.resolveTarget(ctx, target, byName)
	if final != target && strings.HasSuffix(final, tunnelSuffix) {
		r.tunnelFinding(base, final)
		return nil
	}
	if err != nil || len(addrs) == 0 {
		why := "does not resolve"
		if err != nil && !isNotFound(err) {
			why = "could not be resolved from here (" + err.Error() + ")"
		}
		o := report.Outcome{Stage: report.StageRecord, Fail: true, Status: 530,
			Cause: fmt.Sprintf("%s is a CNAME to %s, which %s (Cloudflare error 1016)", base.hostname, target, why),
			Fix:   "Point the CNAME at a name that resolves, or replace it with an A/AAAA record holding the origin's address."}
		if err != nil {
			o.Evidence = []string{"resolve " + target + ": " + err.Error()}
		}
		base.unresolved = &o
		return []entry{base}
	}
	var out []entry
	var behindCF []string
	for _, a := range addrs {
		if inPrefixes(a, r.cfg.Cloudflare) {
			behindCF = append(behindCF, a.String())
			continue
		}
		e := base
		e.addr = a.Unmap()
		out = append(out, e)
	}
	if len(behindCF) > 0 && len(out) == 0 {
		r.addFinding(report.Finding{Severity: report.SeverityInfo, Zone: base.zone, Hostname: base.hostname,
			Message: fmt.Sprintf("%s is a CNAME to %s, which is itself behind Cloudflare (%s): its origin is judged through its own records, not here", base.hostname, target, strings.Join(behindCF, ", "))})
	}
	return out
}

// resolveTarget follows a CNAME chain inside the zones read and resolves
// the last name through DNS when it leaves them. final is the last name.
func (r *runner) resolveTarget(ctx context.Context, target string, byName map[string][]cloudflare.Record) (addrs []netip.Addr, final string, err error) {
	name := target
	for range maxCNAMEDepth {
		recs, ok := byName[name]
		if !ok {
			break
		}
		var next string
		for _, rec := range recs {
			switch rec.Type {
			case "A", "AAAA":
				if a, err := netip.ParseAddr(strings.TrimSpace(rec.Content)); err == nil {
					addrs = append(addrs, a.Unmap())
				}
			case "CNAME":
				next = normName(rec.Content)
			}
		}
		if len(addrs) > 0 {
			return addrs, name, nil
		}
		if next == "" || strings.HasSuffix(next, tunnelSuffix) {
			if next != "" {
				return nil, next, nil
			}
			break
		}
		name = next
	}
	rctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err = r.d.resolver.LookupNetIP(rctx, name)
	return addrs, name, err
}

func (r *runner) tunnelFinding(e entry, target string) {
	f := report.Finding{Zone: e.zone, Hostname: e.hostname}
	if r.d.host.ProcessRunning("cloudflared") {
		f.Severity = report.SeverityInfo
		f.Message = fmt.Sprintf("%s is served through a Cloudflare Tunnel (%s), and cloudflared runs on this host: Cloudflare reaches the origin through it, not through a public address", e.hostname, target)
	} else {
		f.Severity = report.SeverityWarning
		f.Message = fmt.Sprintf("%s is served through a Cloudflare Tunnel (%s), but no cloudflared process runs on this host: if the tunnel's connector belongs here, visitors get 530 (error 1033)", e.hostname, target)
		f.Fix = "Start the connector (systemctl start cloudflared; journalctl -u cloudflared if it does not stay up), or check it on the host that runs it."
	}
	r.addFinding(f)
}

// entriesWithoutAPI makes entries from --hostname, --ssl-mode and this
// host's own addresses.
func (r *runner) entriesWithoutAPI() ([]entry, error) {
	var addrs []netip.Addr
	var skipped []string
	for _, a := range r.local {
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			continue
		}
		if o := r.d.probe.Record(a, r.cfg.Cloudflare); o.Fail {
			skipped = append(skipped, a.String())
			continue
		}
		addrs = append(addrs, a)
	}
	for _, a := range r.cfg.OriginIPs {
		if !slices.Contains(addrs, a.Unmap()) {
			addrs = append(addrs, a.Unmap())
		}
	}
	if len(addrs) == 0 {
		msg := "this host has no public address to check"
		if len(skipped) > 0 {
			msg += " (only " + strings.Join(skipped, ", ") + ")"
		}
		return nil, cannotRun("%s: name the address Cloudflare connects to with --origin-ip", msg)
	}
	var out []entry
	seen := map[string]bool{}
	for _, h := range r.cfg.Hostnames {
		h = normName(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		for _, a := range addrs {
			typ := "A"
			if a.Is6() {
				typ = "AAAA"
			}
			out = append(out, entry{hostname: h, recordType: typ, addr: a,
				settings: cloudflare.Settings{SSL: r.cfg.SSLMode, MinTLSVersion: "1.0", ProxyReadTimeout: cloudflare.DefaultProxyReadTimeout}})
		}
	}
	return out, nil
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
