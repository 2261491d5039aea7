// Package verify predicts, for every way a visitor's request travels from
// Cloudflare's edge to this origin, the status the visitor would get and
// why: it reads the zones, settings and DNS records through the API (or
// takes hostnames and an SSL mode without one), builds the paths (entry
// hostname → origin address, port and scheme), walks each through the
// stages of verify/probe, the firewall simulator and the backend analyzer,
// and returns a report.Report.
package verify

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults of Config.
const (
	// DefaultConcurrency bounds the paths probed at once.
	DefaultConcurrency = 32
	// DefaultProbeTimeout is the wait for an answer to GET / (and for an
	// address that is not this server) when Config.Timeout is zero.
	DefaultProbeTimeout = 10 * time.Second
	// ResolveTimeout bounds the resolution of one CNAME target.
	ResolveTimeout = 5 * time.Second
	// maxCNAMEDepth bounds a chain of CNAMEs inside the zones read.
	maxCNAMEDepth = 8
)

// SSL modes (the zone's `ssl` setting, or --ssl-mode).
const (
	ModeOff        = "off"
	ModeFlexible   = "flexible"
	ModeFull       = "full"
	ModeStrict     = "strict"
	ModeOriginPull = "origin_pull"
)

// Config is everything a verify run needs; the CLI fills it from flags.
type Config struct {
	// APIBaseURL and Token reach the Cloudflare API. Without a token,
	// Hostnames and SSLMode describe the paths and this host's addresses
	// (and OriginIPs) stand in for the DNS records.
	APIBaseURL, Token string
	UserAgent         string
	// Zones limits the zones read (all the token can read when empty).
	Zones []string
	// Hostnames filters the zones' hostnames, or (without a token) names
	// the entry points.
	Hostnames []string
	// SSLMode: off, flexible, full, strict, origin_pull (without a token).
	SSLMode string
	// OriginIPs are this origin's addresses that are on no interface (1:1
	// NAT, a cloud's public address).
	OriginIPs []netip.Addr
	// Timeout bounds each probe's wait for an answer (default 10 s).
	Timeout time.Duration
	// Since is the log window of the backend analysis (default 15 min).
	Since time.Duration
	// NginxConfig, ApacheConfig override the discovery of the web server's
	// configuration.
	NginxConfig, ApacheConfig string
	// FPMConfigs are php-fpm.conf files to read besides those of the running
	// masters and Debian's /etc/php/*/fpm/php-fpm.conf.
	FPMConfigs []string
	// Concurrency bounds the probes in flight (default 32).
	Concurrency int
	// Cloudflare are Cloudflare's ranges (fresh, the sync cache, or built in).
	Cloudflare []netip.Prefix
	// NoBackend skips the analysis behind the web server.
	NoBackend bool
	// Progress, when set, is called after each path is walked with the
	// number done and the total; calls never overlap.
	Progress func(done, total int)
	// ZoneCache, when set, keeps the API's answers between runs for its
	// TTL (cfguard watch); nil reads the API on every run.
	ZoneCache *ZoneCache
}

// Error is returned by Run when verify could not run at all (the token is
// refused, the API does not answer, the configuration is unusable): the CLI
// exits 3. Its message is one line that says what to fix.
type Error struct {
	Err error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func cannotRun(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// ValidSSLMode reports whether m is an SSL mode verify knows.
func ValidSSLMode(m string) bool {
	switch m {
	case ModeOff, ModeFlexible, ModeFull, ModeStrict, ModeOriginPull:
		return true
	}
	return false
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultProbeTimeout
}

func (c Config) concurrency() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency
}
