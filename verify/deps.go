package verify

import (
	"context"
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// The seams of a run, one small interface per side effect. Run wires the
// real ones (adapters.go); the unit tests wire fakes.

// api reads the Cloudflare side (verify/cloudflare.Client).
type api interface {
	VerifyToken(ctx context.Context) error
	Zones(ctx context.Context, names []string) ([]cloudflare.Zone, error)
	Settings(ctx context.Context, zoneID string) (cloudflare.Settings, error)
	DNSRecords(ctx context.Context, zoneID string) ([]cloudflare.Record, error)
	// EdgeErrors reads how many 502–530 Cloudflare served the hostnames
	// of a zone in [since, until) (edge.go).
	EdgeErrors(ctx context.Context, zoneID string, hostnames []string, since, until time.Time) (cloudflare.EdgeCounts, error)
	// Rules reads the zone's Configuration, Origin and Page Rules.
	Rules(ctx context.Context, zoneID string) (cloudflare.Rules, error)
}

// prober runs the origin-side stages (verify/probe).
type prober interface {
	Record(addr netip.Addr, cloudflare []netip.Prefix) report.Outcome
	Elsewhere(ctx context.Context, t probe.Target, timeout time.Duration) report.Outcome
	Route(ctx context.Context, src netip.Addr, cloudflare []netip.Prefix) report.Outcome
	Listener(ctx context.Context, t probe.Target) report.Outcome
	// TLS may hand over the handshaken connection (TLSResult.Conn); the
	// caller passes it to HTTP or closes it.
	TLS(ctx context.Context, t probe.Target) probe.TLSResult
	Certificate(t probe.Target, cs *tls.ConnectionState, now time.Time) report.Outcome
	// HTTP sends GET / over conn when it is not nil (and closes it), else
	// over a connection of its own.
	HTTP(ctx context.Context, t probe.Target, conn *tls.Conn, timeout time.Duration) report.Outcome
}

// firewall simulates the live ruleset for a SYN from every Cloudflare
// prefix to addr:port (firewall/sim).
type firewall interface {
	Check(ctx context.Context, addr netip.Addr, port int, cloudflare []netip.Prefix) report.Outcome
}

// upstream looks behind the web server (verify/backend).
type upstream interface {
	// sent is the request the http stage sent (report.Outcome.Sent).
	Analyze(ctx context.Context, addr netip.Addr, port int, host, scheme string, httpStatus int, sent probemark.Mark) report.Outcome
}

// host answers questions about this machine.
type host interface {
	// LocalAddrs are the addresses on this host's interfaces.
	LocalAddrs() ([]netip.Addr, error)
	// ProcessRunning reports whether a process of that name runs.
	ProcessRunning(name string) bool
}

// resolver resolves a CNAME target that is outside the zones read.
type resolver interface {
	LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// deps are the seams of one run.
type deps struct {
	api      api // nil without a token
	probe    prober
	firewall firewall // nil: the stage is skipped with a warning
	upstream upstream // nil: discoverUpstream is asked, if set
	// discoverUpstream finds the web servers and backends once the zones
	// are read (their longest proxy_read_timeout is Cloudflare's wait).
	discoverUpstream func(ctx context.Context, cloudflareReadTimeout time.Duration) (upstream, []report.Finding, error)
	host             host
	resolver         resolver
	now              func() time.Time
	// originPort maps the port Cloudflare uses to the port probed (nil:
	// the same). Benchmarks on loopback use it; nothing else does.
	originPort func(int) int
}
