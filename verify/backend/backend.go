package backend

import (
	"log/slog"
	"net/netip"
	"time"
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
	// FPMConfigs names php-fpm.conf files to read even when no master runs
	// with them (Debian's /etc/php/*/fpm/php-fpm.conf are always read), so
	// a stopped pool can be named.
	FPMConfigs []string
	// Cloudflare is the list a web server's real-IP configuration must
	// trust (realip.go); nil = the list built into cfguard.
	Cloudflare []netip.Prefix
	// Logger gets Debug lines about what was not looked at and why (no
	// systemd, systemctl failing); nil = none.
	Logger *slog.Logger
}
