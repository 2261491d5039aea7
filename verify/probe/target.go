package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// Timeouts of the probes. The orchestrator may shorten them through the
// context or, for HTTP and Elsewhere, pass its own (--timeout).
const (
	// DialTimeout bounds one TCP connect (Cloudflare itself waits 19 s).
	DialTimeout = 10 * time.Second
	// TLSTimeout bounds one TLS handshake after the connect.
	TLSTimeout = 10 * time.Second
	// HTTPTimeout is the default wait for the response headers of GET /
	// (Cloudflare waits proxy_read_timeout, 125 s by default).
	HTTPTimeout = 10 * time.Second
	// RouteTimeout bounds one netlink route lookup.
	RouteTimeout = 2 * time.Second
)

// SSL modes of a zone (the `ssl` setting), as Target.SSLMode.
const (
	ModeOff        = "off"
	ModeFlexible   = "flexible"
	ModeFull       = "full"
	ModeStrict     = "strict"
	ModeOriginPull = "origin_pull"
)

// Target is one path's origin end: the hostname a visitor asked for, the
// address and port Cloudflare connects to, the scheme it speaks there and
// the zone's SSL mode.
type Target struct {
	Hostname string
	Addr     netip.Addr
	Port     int
	Scheme   string // "http" or "https"
	SSLMode  string // off, flexible, full, strict, origin_pull
	// Server is the web server whose directives a fix names (ServerNginx,
	// ServerApache); "" lets the stages that read the sockets find it, and
	// the others name both.
	Server string
	// SNI and Host, when set, are what Cloudflare sends instead of the
	// hostname (an Origin Rule or a Page Rule overrides them).
	SNI  string
	Host string
}

// sni is the name sent as SNI and checked in the certificate.
func (t Target) sni() string {
	if t.SNI != "" {
		return t.SNI
	}
	return t.Hostname
}

// host is the Host header sent.
func (t Target) host() string {
	if t.Host != "" {
		return t.Host
	}
	return t.Hostname
}

// hostPort is "192.0.2.1:443" or "[2001:db8::1]:443".
func (t Target) hostPort() string {
	return net.JoinHostPort(t.Addr.Unmap().String(), strconv.Itoa(t.Port))
}

// verifiesCertificate reports whether Cloudflare checks the origin's
// certificate under the target's SSL mode.
func (t Target) verifiesCertificate() bool {
	return t.SSLMode == ModeStrict || t.SSLMode == ModeOriginPull
}

// check returns an error for a target no probe can use.
func (t Target) check() error {
	switch {
	case !t.Addr.IsValid():
		return errors.New("no address")
	case t.Port < 1 || t.Port > 65535:
		return fmt.Errorf("port %d is out of range", t.Port)
	case t.Scheme != "http" && t.Scheme != "https":
		return fmt.Errorf("scheme %q is neither http nor https", t.Scheme)
	}
	return nil
}

// unusable is the outcome of a stage that could not run: a bad target or
// a cancelled context. It never fails the path on a guess.
func unusable(stage report.Stage, t Target, err error) report.Outcome {
	return report.Outcome{Stage: stage, CannotTell: true,
		Warnings: []string{fmt.Sprintf("%s stage for %s did not run: %v", stage, t.Hostname, err)}}
}

// stopped reports whether the caller cancelled ctx (Ctrl-C), so that err
// says nothing about the origin. A deadline on ctx is a probe timeout and
// is judged as one.
func stopped(ctx context.Context, err error) bool {
	return err != nil && errors.Is(ctx.Err(), context.Canceled)
}
