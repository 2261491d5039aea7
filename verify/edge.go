package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

// edgeWindow is how far back Cloudflare's own counts of 502–530 are read:
// what visitors are getting right now, next to the prediction.
// edgeReadBudget bounds all of a run's queries together (each is bounded by
// cloudflare.AnalyticsTimeout; many zones queue behind zoneReadConcurrency).
const (
	edgeWindow     = 15 * time.Minute
	edgeReadBudget = 30 * time.Second
)

// edgeRead is the API's answer for one zone.
type edgeRead struct {
	zone   string // name
	counts cloudflare.EdgeCounts
	err    error
}

// startEdgeReads asks the API, once per zone with entries, how many 502–530
// Cloudflare served their hostnames in the last edgeWindow. The queries run
// while the paths are walked; the function returned waits for them.
func (r *runner) startEdgeReads(ctx context.Context, zds []zoneData, entries []entry) func() []edgeRead {
	ids := map[string]string{}
	for _, zd := range zds {
		ids[zd.zone.Name] = zd.zone.ID
	}
	hosts := map[string][]string{}
	var zones []string
	for _, e := range entries {
		if _, ok := hosts[e.zone]; !ok {
			zones = append(zones, e.zone)
		}
		if !slices.Contains(hosts[e.zone], e.hostname) {
			hosts[e.zone] = append(hosts[e.zone], e.hostname)
		}
	}
	until := r.d.now().UTC().Truncate(time.Second)
	since := until.Add(-edgeWindow)
	ctx, cancel := context.WithTimeout(ctx, edgeReadBudget)
	out := make([]edgeRead, len(zones))
	sem := make(chan struct{}, zoneReadConcurrency)
	var wg sync.WaitGroup
	for i, z := range zones {
		out[i].zone = z
		id, ok := ids[z]
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			out[i].counts, out[i].err = r.d.api.EdgeErrors(ctx, id, hosts[z], since, until)
		}()
	}
	return func() []edgeRead {
		wg.Wait()
		cancel()
		return out
	}
}

// applyEdge puts each hostname's counts on its paths, and adds the
// findings: one when the counts could not be read (said once per run), and
// one per hostname whose every path passes while the edge served it 52x.
func (r *runner) applyEdge(paths []report.Path, reads []edgeRead) {
	var denied, failed []string
	counts := map[string]*cloudflare.EdgeCounts{}
	for i, rd := range reads {
		var e *cloudflare.Error
		switch {
		case rd.err == nil:
			counts[rd.zone] = &reads[i].counts
		case errors.As(rd.err, &e) && e.Kind == cloudflare.KindPermission:
			denied = append(denied, rd.zone)
		case errors.Is(rd.err, context.Canceled):
		default:
			failed = append(failed, fmt.Sprintf("zone %s: %v", rd.zone, rd.err))
		}
	}
	if len(denied) > 0 {
		r.addFinding(report.Finding{Severity: report.SeverityInfo,
			Message: fmt.Sprintf("edge error counts not read: the API token lacks %s for %s; predictions are shown without Cloudflare's own counts",
				cloudflare.PermAnalyticsRead, zonesList(denied)),
			Fix: "Give the token Zone → Analytics → Read to see, next to each prediction, how many 5xx Cloudflare served in the last 15 minutes."})
	}
	if len(failed) > 0 {
		msg := "edge error counts not read (" + failed[0]
		if len(failed) > 1 {
			msg += fmt.Sprintf("; and %d more zones", len(failed)-1)
		}
		r.addFinding(report.Finding{Severity: report.SeverityWarning,
			Message: msg + "); predictions are shown without Cloudflare's own counts"})
	}
	if len(counts) == 0 {
		return
	}

	exact := map[string]map[string]bool{} // zone → hostnames that are not wildcards
	for _, p := range paths {
		if !strings.HasPrefix(p.Hostname, "*.") {
			if exact[p.Zone] == nil {
				exact[p.Zone] = map[string]bool{}
			}
			exact[p.Zone][p.Hostname] = true
		}
	}
	byHost := map[string]map[string][]cloudflare.EdgeGroup{} // zone → hostname → groups
	for z, c := range counts {
		byHost[z] = groupsByHost(c.Groups)
	}
	type hostKey struct{ zone, host string }
	per := map[hostKey]*report.EdgeCounts{}
	allPass := map[hostKey]bool{}
	var order []hostKey
	for i := range paths {
		p := &paths[i]
		c := counts[p.Zone]
		if c == nil {
			continue
		}
		k := hostKey{p.Zone, p.Hostname}
		if _, ok := per[k]; !ok {
			per[k] = edgeFor(c, byHost[p.Zone], p.Hostname, exact[p.Zone])
			allPass[k] = true
			order = append(order, k)
		}
		p.Edge = per[k]
		allPass[k] = allPass[k] && p.OK
	}
	for _, k := range order {
		if allPass[k] {
			if f, ok := unexplainedEdge(k.zone, k.host, per[k]); ok {
				r.addFinding(f)
			}
		}
	}
}

// groupsByHost indexes the groups by hostname; a Host header with a port
// counts for the name.
func groupsByHost(gs []cloudflare.EdgeGroup) map[string][]cloudflare.EdgeGroup {
	out := map[string][]cloudflare.EdgeGroup{}
	for _, g := range gs {
		h := g.Hostname
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		out[h] = append(out[h], g)
	}
	return out
}

// edgeFor picks a hostname's groups: its own, or for a wildcard those of
// the names it covers that have no record of their own.
func edgeFor(c *cloudflare.EdgeCounts, byHost map[string][]cloudflare.EdgeGroup, hostname string, exact map[string]bool) *report.EdgeCounts {
	out := &report.EdgeCounts{WindowStart: c.Since.UTC(), WindowEnd: c.Until.UTC(), Truncated: c.Truncated, Counts: []report.EdgeCount{}}
	groups := byHost[hostname]
	if suffix, wildcard := strings.CutPrefix(hostname, "*."); wildcard {
		groups = nil
		for h, gs := range byHost {
			if strings.HasSuffix(h, "."+suffix) && !exact[h] {
				groups = append(groups, gs...)
			}
		}
	}
	for _, g := range groups {
		if g.SampleInterval > 1 {
			out.Sampled = true
		}
		i := slices.IndexFunc(out.Counts, func(x report.EdgeCount) bool {
			return x.EdgeStatus == g.EdgeStatus && x.OriginStatus == g.OriginStatus
		})
		if i < 0 {
			out.Counts = append(out.Counts, report.EdgeCount{EdgeStatus: g.EdgeStatus, OriginStatus: g.OriginStatus})
			i = len(out.Counts) - 1
		}
		out.Counts[i].Count += g.Count
	}
	slices.SortFunc(out.Counts, func(a, b report.EdgeCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return cmpInts(a.EdgeStatus, b.EdgeStatus, a.OriginStatus, b.OriginStatus)
	})
	return out
}

func cmpInts(a1, b1, a2, b2 int) int {
	if a1 != b1 {
		return a1 - b1
	}
	return a2 - b2
}

// visitorError: the statuses that mean a visitor got an error page because
// of the way to the origin (not 505–519, which are the origin's own).
func visitorError(st int) bool {
	return (st >= 502 && st <= 504) || (st >= 520 && st <= 530)
}

// unexplainedEdge is the finding for a hostname whose every path passes
// while Cloudflare served it 502–504 or 52x: the cause is not visible from
// this origin; the fix lists, per status, what else it could be.
func unexplainedEdge(zone, host string, e *report.EdgeCounts) (report.Finding, bool) {
	seen := &report.EdgeCounts{WindowStart: e.WindowStart, WindowEnd: e.WindowEnd, Sampled: e.Sampled, Truncated: e.Truncated}
	for _, c := range e.Counts {
		if visitorError(c.EdgeStatus) && c.Count > 0 {
			seen.Counts = append(seen.Counts, c)
		}
	}
	if len(seen.Counts) == 0 {
		return report.Finding{}, false
	}
	var causes []string
	done := map[string]bool{}
	allFromOrigin := true
	for _, c := range seen.ByEdgeStatus() {
		fromOrigin := slices.ContainsFunc(seen.Counts, func(x report.EdgeCount) bool { return x.EdgeStatus == c.EdgeStatus && x.OriginStatus == c.EdgeStatus })
		allFromOrigin = allFromOrigin && fromOrigin
		k := strconv.Itoa(c.EdgeStatus) + strconv.FormatBool(fromOrigin)
		if !done[k] {
			done[k] = true
			causes = append(causes, strconv.Itoa(c.EdgeStatus)+": "+edgeCause(c.EdgeStatus, fromOrigin))
		}
	}
	causes = append(causes, "and for any of them: a Worker, a Load Balancer or an Origin Rule may send some requests to another origin than this one")
	msg := fmt.Sprintf("all paths to %s pass, but Cloudflare served it %s in %s: the cause is not visible from this origin",
		host, report.EdgeSummary(seen, 0), seen.Window())
	if allFromOrigin {
		// The origin answered them itself: its logs hold the cause.
		msg = fmt.Sprintf("all paths to %s pass now, but Cloudflare served it %s in %s, answered so by this origin: a failure that has stopped, or one on URLs other than / (verify asks only GET /)",
			host, report.EdgeSummary(seen, 0), seen.Window())
	}
	return report.Finding{Severity: report.SeverityWarning, Zone: zone, Hostname: host,
		Message: msg,
		Fix:     "What else it could be — " + strings.Join(causes, "; ") + "."}, true
}

// edgeCause says what an edge status can be when the origin looks fine
// from here (cloudflare.md §3, §4). fromOrigin: the origin itself answered
// that status.
func edgeCause(st int, fromOrigin bool) string {
	switch {
	case (st == 502 || st == 503 || st == 504) && fromOrigin:
		return fmt.Sprintf("the origin itself answered %d to some requests — for URLs other than / (verify asks only GET /) or at moments between runs: look in the web server's and the backend's logs for the window", st)
	case st == 502 || st == 503 || st == 504:
		return fmt.Sprintf("Cloudflare answered %d without the origin's answer: a Worker or another Cloudflare product in front of the origin, or trouble at Cloudflare (www.cloudflarestatus.com)", st)
	case st == 520:
		return "the origin reset or closed some connections: an idle keep-alive connection closed by the origin while Cloudflare reuses it (Cloudflare keeps them up to 900 s), response headers over 128 KB on some URLs, or a worker that crashed or was OOM-killed between runs (journalctl -k)"
	case st == 521:
		return "the origin refused some connections: a banning tool (fail2ban, CSF) banning Cloudflare's addresses for a while (check that the visitor's real IP is restored in the logs), the web server restarting, or Cloudflare connecting to another origin address than the ones checked here"
	case st == 522:
		return "some connections timed out: SYN flood limits or a full conntrack table dropping Cloudflare's SYNs under load (\"nf_conntrack: table full\" in journalctl -k), a full listen backlog, filtering by the hosting provider or an upstream ISP, or another origin address"
	case st == 523:
		return "Cloudflare could not reach the origin's network at times: a routing problem upstream of this host"
	case st == 524:
		return "some requests took longer than Cloudflare waits for response headers (125 s unless proxy_read_timeout says otherwise): slow URLs other than / (verify asks only GET /), long reports or uploads"
	case st == 525:
		return "some TLS handshakes failed: another origin behind a load balancer or at another address fails them, or they fail under load"
	case st == 526:
		return "another origin (behind a load balancer, or at another address) serves a certificate Cloudflare rejects under Full (strict), or the certificate changed between runs"
	case st == 530:
		return "Cloudflare's 530 comes with a 1xxx error on its page (1016: the origin's name does not resolve; 1033: the Tunnel is not connected): the error page says which"
	}
	return fmt.Sprintf("see Cloudflare's documentation of error %d", st)
}

// zonesList names zones for a message: "zone a.com", "zones a.com, b.com".
func zonesList(zs []string) string {
	if len(zs) == 1 {
		return "zone " + zs[0]
	}
	if len(zs) > 5 {
		return fmt.Sprintf("zones %s and %d more", strings.Join(zs[:5], ", "), len(zs)-5)
	}
	return "zones " + strings.Join(zs, ", ")
}
