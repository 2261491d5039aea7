package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cfguard/cfguard/verify/cloudflare"

	"github.com/cfguard/cfguard/verify/report"
)

// Run reads the Cloudflare side (or takes cfg.Hostnames without a token),
// walks every path and returns the report. The error is non-nil only when
// verify could not run at all; it is then an *Error (exit code 3). Paths
// predicted to fail are data in the report, not errors.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (*report.Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d, findings, err := realDeps(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	return run(ctx, cfg, d, findings, logger)
}

func (c Config) validate() error {
	if c.Token == "" {
		if len(c.Hostnames) == 0 {
			return cannotRun("no API token and no --hostname: give a token (--api-token-file or CLOUDFLARE_API_TOKEN) or name the hostnames with --hostname and --ssl-mode")
		}
		if !ValidSSLMode(c.SSLMode) {
			return cannotRun("without an API token, --ssl-mode must say the zone's SSL mode: off, flexible, full, strict or origin_pull (got %q)", c.SSLMode)
		}
	}
	if len(c.Cloudflare) == 0 {
		return cannotRun("no Cloudflare ranges were given")
	}
	return nil
}

// runner is one verify run.
type runner struct {
	cfg    Config
	d      deps
	logger *slog.Logger
	local  []netip.Addr // this host's addresses
	mine   map[netip.Addr]bool

	mu       sync.Mutex
	findings []report.Finding

	shared memo[sharedKey, sharedResult]
}

func (r *runner) addFinding(f report.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, f)
}

func run(ctx context.Context, cfg Config, d deps, findings []report.Finding, logger *slog.Logger) (*report.Report, error) {
	r := &runner{cfg: cfg, d: d, logger: logger, findings: findings, mine: map[netip.Addr]bool{}}
	local, err := d.host.LocalAddrs()
	if err != nil {
		return nil, cannotRun("listing this host's addresses: %v", err)
	}
	r.local = local
	for _, a := range local {
		r.mine[a.Unmap()] = true
	}
	for _, a := range cfg.OriginIPs {
		r.mine[a.Unmap()] = true
	}

	var entries []entry
	var edgeReads func() []edgeRead // Cloudflare's own counts, read during the walk (edge.go)
	if d.api != nil {
		zds, err := r.readZones(ctx)
		if err != nil {
			return nil, err
		}
		for _, zd := range zds {
			for _, f := range zoneFindings(zd) {
				r.addFinding(f)
			}
		}
		if f, ok := unreadRulesFinding(zds); ok {
			r.addFinding(f)
		}
		entries = r.applyRules(ctx, r.entriesFromZones(ctx, zds), zds)
		if len(cfg.Hostnames) > 0 {
			if err := r.missingHostnames(entries, zds); err != nil {
				return nil, err
			}
		}
		edgeReads = r.startEdgeReads(ctx, zds, entries)
	} else {
		entries, err = r.entriesWithoutAPI()
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Err: fmt.Errorf("verify was interrupted: %w", err)}
	}
	if d.upstream == nil && d.discoverUpstream != nil {
		readTimeout := time.Duration(0)
		for _, e := range entries {
			readTimeout = max(readTimeout, e.settings.ProxyReadTimeout)
		}
		if readTimeout == 0 {
			readTimeout = cloudflare.DefaultProxyReadTimeout
		}
		up, fs, err := d.discoverUpstream(ctx, readTimeout)
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("looking behind the web server: %w", err)}
		}
		r.d.upstream = up
		for _, f := range fs {
			r.addFinding(f)
		}
	}
	jobs := pathsFor(entries)
	paths := r.walkAll(ctx, jobs)
	if edgeReads != nil {
		r.applyEdge(paths, edgeReads())
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Err: fmt.Errorf("verify was interrupted: %w", err)}
	}
	rep := &report.Report{Paths: paths, Findings: r.findings}
	if rep.Paths == nil {
		rep.Paths = []report.Path{}
	}
	if rep.Findings == nil {
		rep.Findings = []report.Finding{}
	}
	if len(jobs) == 0 {
		rep.Findings = append(rep.Findings, report.Finding{Severity: report.SeverityInfo,
			Message: "no proxied A, AAAA or CNAME record leads to this origin: there is no Cloudflare path to check"})
	}
	Finish(rep)
	return rep, nil
}

// missingHostnames refuses the run when a --hostname leads to no path:
// verify could not check what it was asked to (exit 3), rather than
// reporting "no path to check" as if all were well. The reason says
// whether the name is in no zone read, in a paused zone, or in a zone
// without a proxied record for it.
func (r *runner) missingHostnames(entries []entry, zds []zoneData) error {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.hostname] = true
	}
	r.mu.Lock()
	for _, f := range r.findings {
		if f.Hostname != "" {
			have[f.Hostname] = true
		}
	}
	r.mu.Unlock()
	var problems []string
	for _, h := range r.cfg.Hostnames {
		h = normName(h)
		if h == "" || have[h] {
			continue
		}
		have[h] = true
		zd := zoneOf(h, zds)
		switch {
		case zd == nil && len(r.cfg.Zones) > 0:
			problems = append(problems, fmt.Sprintf("%s: in none of the zones read (%s)", h, zoneNames(zds)))
		case zd == nil:
			problems = append(problems, fmt.Sprintf("%s: not in any zone the API token reads (%s)", h, zoneNames(zds)))
		case zd.zone.Paused:
			problems = append(problems, fmt.Sprintf("%s: zone %s is paused, Cloudflare does not proxy it", h, zd.zone.Name))
		default:
			problems = append(problems, fmt.Sprintf("%s: no proxied A, AAAA or CNAME record in zone %s", h, zd.zone.Name))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return cannotRun("cannot check %s; check the name and the zone (--zone), that the token may read the zone (%s), and that the record is proxied (orange cloud)",
		strings.Join(problems, "; "), cloudflare.PermZoneRead)
}

// zoneOf returns the zone read whose name is h or a parent of h (the
// longest such), or nil.
func zoneOf(h string, zds []zoneData) *zoneData {
	var best *zoneData
	for i := range zds {
		z := normName(zds[i].zone.Name)
		if (h == z || strings.HasSuffix(h, "."+z)) && (best == nil || len(z) > len(best.zone.Name)) {
			best = &zds[i]
		}
	}
	return best
}

// zoneNames lists the zones read for a message: at most five.
func zoneNames(zds []zoneData) string {
	if len(zds) == 0 {
		return "it reads none"
	}
	var names []string
	for i, zd := range zds {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(zds)-5))
			break
		}
		names = append(names, zd.zone.Name)
	}
	return "zones: " + strings.Join(names, ", ")
}

// isNotFound reports whether a resolution error means the name does not exist.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// memo computes a value once per key, for callers running at once.
type memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*memoCell[V]
}

type memoCell[V any] struct {
	once sync.Once
	v    V
}

func (m *memo[K, V]) get(k K, fn func() V) V {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[K]*memoCell[V]{}
	}
	c, ok := m.m[k]
	if !ok {
		c = &memoCell[V]{}
		m.m[k] = c
	}
	m.mu.Unlock()
	c.once.Do(func() { c.v = fn() })
	return c.v
}

// dedupe keeps the first of each string, in order.
func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
