package verify

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
)

// realDeps wires the real seams: the API client (with a token), the probes,
// the firewall simulator, the backend analyzer and this host.
func realDeps(ctx context.Context, cfg Config, logger *slog.Logger) (deps, []report.Finding, error) {
	d := deps{
		probe:    probes{},
		firewall: newSimFirewall(),
		host:     thisHost{procRoot: "/proc"},
		resolver: netResolver{},
		now:      time.Now,
	}
	if cfg.Token != "" {
		c, err := cloudflare.New(cloudflare.Config{BaseURL: cfg.APIBaseURL, Token: cfg.Token, UserAgent: cfg.UserAgent})
		if err != nil {
			return deps{}, nil, &Error{Err: err}
		}
		d.api = c
		if cfg.ZoneCache != nil {
			d.api = cachedAPI{api: c, cache: cfg.ZoneCache}
		}
	}
	if !cfg.NoBackend {
		d.discoverUpstream = func(ctx context.Context, readTimeout time.Duration) (upstream, []report.Finding, error) {
			a, fs, err := backend.Discover(ctx, backend.Options{
				NginxConfig: cfg.NginxConfig, ApacheConfig: cfg.ApacheConfig, FPMConfigs: cfg.FPMConfigs,
				Since: cfg.Since, Timeout: cfg.Timeout, CloudflareReadTimeout: readTimeout,
				Cloudflare: cfg.Cloudflare, // the list the real-IP check wants trusted
			})
			if err != nil || a == nil {
				return nil, fs, err
			}
			return a, fs, nil
		}
	}
	logger.Debug("verify: seams wired", "api", d.api != nil, "backend", d.discoverUpstream != nil)
	return d, nil, nil
}

// probes are the stages of verify/probe.
type probes struct{}

func (probes) Record(addr netip.Addr, cf []netip.Prefix) report.Outcome {
	return probe.Record(addr, cf)
}
func (probes) Elsewhere(ctx context.Context, t probe.Target, timeout time.Duration) report.Outcome {
	return probe.Elsewhere(ctx, t, timeout)
}
func (probes) Route(ctx context.Context, src netip.Addr, cf []netip.Prefix) report.Outcome {
	return probe.Route(ctx, src, cf)
}
func (probes) Listener(ctx context.Context, t probe.Target) report.Outcome {
	return probe.Listener(ctx, t)
}
func (probes) TLS(ctx context.Context, t probe.Target) probe.TLSResult { return probe.TLSKeep(ctx, t) }
func (probes) Certificate(t probe.Target, cs *tls.ConnectionState, now time.Time) report.Outcome {
	t.Server = probe.ServerFor(t) // the certificate's fix names its directives
	return probe.Certificate(t, cs, now)
}
func (probes) HTTP(ctx context.Context, t probe.Target, conn *tls.Conn, timeout time.Duration) report.Outcome {
	return probe.HTTPOn(ctx, t, conn, timeout)
}

// thisHost reads this machine's interfaces and processes.
type thisHost struct{ procRoot string }

func (thisHost) LocalAddrs() ([]netip.Addr, error) { return probe.LocalAddrs() }

// ProcessRunning looks for a process whose command name is name.
func (h thisHost) ProcessRunning(name string) bool {
	dirs, err := filepath.Glob(filepath.Join(h.procRoot, "[0-9]*", "comm"))
	if err != nil {
		return false
	}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return true
		}
	}
	return false
}

// netResolver resolves through the system's resolver. Names under .invalid
// never resolve (RFC 6761) and are not sent anywhere.
type netResolver struct{}

func (netResolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "invalid" || strings.HasSuffix(host, ".invalid") {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
