package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// MaxHeaderBytes is the most response-header bytes Cloudflare accepts from
// an origin (128 KB; older docs: 16 KB, 32 KB). More is a 520.
const MaxHeaderBytes = 128 << 10

// ProbeVisitorIP is the visitor address the probe claims in
// CF-Connecting-IP and X-Forwarded-For: a documentation address, so that it
// stands out in the origin's logs.
const ProbeVisitorIP = "192.0.2.123"

// UserAgent identifies the probe in the origin's logs; each request adds
// its probemark id: "cfguard-verify (Cloudflare path probe 0123456789abcdef)".
const UserAgent = "cfguard-verify (Cloudflare path probe)"

// firstBytes is how much of the origin's answer is kept for Evidence.
const firstBytes = 256

// HTTP sends GET / to the target as Cloudflare would (stage http): Host =
// hostname, the headers Cloudflare adds, TLS with SNI for https, HTTP/1.1,
// no redirect followed. timeout (HTTPTimeout if zero) bounds the wait for
// the response headers once the request is sent.
//
// A 5xx answer fails with that status. An empty reply, a reset, garbage or
// headers over MaxHeaderBytes fail with 520; no answer within timeout fails
// with 524 (Cloudflare waits proxy_read_timeout, 125 s by default). Under
// SSL mode flexible, a redirect to https:// on the same host is an endless
// redirect loop: not a failure (no 5xx) but a warning. Otherwise Status is
// the origin's own status.
func HTTP(ctx context.Context, t Target, timeout time.Duration) report.Outcome {
	return HTTPOn(ctx, t, nil, timeout)
}

// HTTPOn is HTTP over conn, a connection TLSKeep handshook for the same
// target (nil: HTTP dials its own). HTTPOn closes conn.
func HTTPOn(ctx context.Context, t Target, conn *tls.Conn, timeout time.Duration) (res report.Outcome) {
	var given atomic.Pointer[tls.Conn]
	if conn != nil {
		given.Store(conn)
		defer conn.Close() // no-op once the transport has closed it
	}
	if timeout <= 0 {
		timeout = HTTPTimeout
	}
	o := report.Outcome{Stage: report.StageHTTP}
	if err := t.check(); err != nil {
		return unusable(o.Stage, t, err)
	}
	parent := ctx
	start := time.Now()
	rec := &recorder{}
	// The mark: what the web server logs for this request is found by it
	// (probemark), and by the address it was sent from.
	id := probemark.New()
	var from atomic.Pointer[netip.AddrPort]
	sentFrom := func(c net.Conn) net.Conn {
		if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			from.Store(&ap)
		}
		return rec.wrap(c)
	}
	var certRequested atomic.Bool
	var tlsErr atomic.Pointer[tlsFail] // set by the dialer, which may outlive RoundTrip
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := dialTCP(ctx, t.hostPort())
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	tr := &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: MaxHeaderBytes,
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			c, err := dial(ctx, n, a)
			if err != nil {
				return nil, err
			}
			return sentFrom(c), nil
		},
		DialTLSContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			if tc := given.Swap(nil); tc != nil {
				return sentFrom(tc), nil
			}
			c, err := dial(ctx, n, a)
			if err != nil {
				return nil, err
			}
			tc, evidence, err := handshake(ctx, c, t.sni(), &certRequested)
			if err != nil {
				c.Close()
				tlsErr.Store(&tlsFail{err, evidence})
				return nil, err
			}
			return sentFrom(tc), nil
		},
	}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, DialTimeout+TLSTimeout+timeout)
	defer cancel()
	var connected, wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { connected.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	defer func() {
		if !wrote.Load() {
			return // nothing reached the web server
		}
		res.Sent.ID = id
		if ap := from.Load(); ap != nil {
			res.Sent.From = *ap
		}
	}()
	req, err := newRequest(ctx, t, id)
	if err != nil {
		return unusable(o.Stage, t, fmt.Errorf("building the request: %w", err))
	}
	resp, err := tr.RoundTrip(req)
	if err != nil && stopped(parent, err) {
		return unusable(o.Stage, t, err)
	}
	if err != nil {
		if f := tlsErr.Load(); f != nil {
			o.Evidence = append(o.Evidence, f.evidence...)
			o = tlsFailure(o, t, f.err, certRequested.Load())
			o.Stage = report.StageHTTP
			return o
		}
		return httpFailure(o, t, err, connected.Load(), wrote.Load(), rec, timeout, time.Since(start))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	line := fmt.Sprintf("%s %s", resp.Proto, resp.Status)
	o.Status = resp.StatusCode
	o.Evidence = append(o.Evidence, "response: "+line)
	if s := resp.Header.Get("Server"); s != "" {
		o.Evidence = append(o.Evidence, "server: "+s)
	}
	loc := resp.Header.Get("Location")
	if loc != "" {
		o.Evidence = append(o.Evidence, "location: "+loc)
	}
	switch {
	case resp.StatusCode >= 500:
		o.Fail = true
		o.Cause = fmt.Sprintf("%s answers GET / for %s with %s", t.hostPort(), t.Hostname, resp.Status)
		o.Fix = fix5xx(resp.StatusCode, words{ServerFor(t)})
	case t.SSLMode == ModeFlexible && resp.StatusCode >= 300 && resp.StatusCode < 400 && redirectsToHTTPS(loc, t.Hostname):
		o.Cause = fmt.Sprintf("endless redirect loop under Flexible: %s answers http://%s/ with %d → %s, and Cloudflare fetches that over http again", t.hostPort(), t.Hostname, resp.StatusCode, loc)
		o.Fix = "Use SSL mode Full (strict) with a certificate on the origin (a Cloudflare Origin CA certificate will do), or make the origin skip the redirect when X-Forwarded-Proto is https."
		o.Warnings = append(o.Warnings, o.Cause)
	case resp.StatusCode == http.StatusBadRequest && certRequested.Load():
		o.Cause = fmt.Sprintf("%s answers %s: it wants a client certificate, which the probe cannot present", t.hostPort(), resp.Status)
		o.Warnings = append(o.Warnings, fmt.Sprintf("%s demands a client certificate (Authenticated Origin Pulls): visitors get 400 unless the zone's tls_client_auth setting is on", t.hostPort()))
	default:
		o.Cause = fmt.Sprintf("%s answers GET / for %s with %s", t.hostPort(), t.Hostname, resp.Status)
	}
	return o
}

// newRequest is GET / for the target with the headers Cloudflare adds.
// id marks it (probemark): in the Referer, which nginx's and Apache's error
// logs carry, in the User-Agent and the CF-Ray, which access logs may.
func newRequest(ctx context.Context, t Target, id string) (*http.Request, error) {
	u := &url.URL{Scheme: t.Scheme, Host: t.hostPort(), Path: "/"}
	if t.Scheme != "http" && t.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is neither http nor https", t.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Host = t.host()
	// The visitor's scheme: under Flexible visitors arrive over https while
	// Cloudflare speaks http to the origin (the redirect-loop case).
	visitor := t.Scheme
	if t.SSLMode == ModeFlexible {
		visitor = "https"
	}
	h := req.Header
	h.Set("User-Agent", strings.TrimSuffix(UserAgent, ")")+" "+id+")")
	h.Set("Referer", probemark.Referer(id))
	h.Set("Accept", "*/*")
	h.Set("Accept-Encoding", "gzip, br")
	h.Set("CF-Connecting-IP", ProbeVisitorIP)
	h.Set("X-Forwarded-For", ProbeVisitorIP)
	h.Set("X-Forwarded-Proto", visitor)
	h.Set("CF-Visitor", fmt.Sprintf(`{"scheme":%q}`, visitor))
	h.Set("CF-Ray", id+"-PRB")
	h.Set("CF-IPCountry", "XX")
	h.Set("CDN-Loop", "cloudflare")
	return req, nil
}

// redirectsToHTTPS reports whether loc is https:// on the same host.
func redirectsToHTTPS(loc, host string) bool {
	u, err := url.Parse(loc)
	if err != nil || !strings.EqualFold(u.Scheme, "https") {
		return false
	}
	return strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), strings.TrimSuffix(host, "."))
}

func fix5xx(code int, w words) string {
	switch code {
	case 502, 504:
		return "The web server cannot use its backend (PHP-FPM, an app server): read its error log (" + w.backendLog() + ") and check that the backend runs."
	case 503:
		return "The origin says it is unavailable: a backend down behind Apache mod_proxy (AH01114), maintenance mode, or overload — read the web server's error log."
	}
	return "The application fails on GET /: read the web server's and the application's error logs."
}

// httpFailure classifies a request that got no usable response.
func httpFailure(o report.Outcome, t Target, err error, connected, wrote bool, rec *recorder, timeout, elapsed time.Duration) report.Outcome {
	o.Fail = true
	if !connected {
		if kind := classifyNetErr(err); kind == dialRefused || kind == dialTimeout || kind == dialUnreachable {
			return connectFailure(o, t, err, elapsed)
		}
	}
	o.Evidence = append(o.Evidence, "request: "+err.Error())
	if b := rec.bytes(); len(b) > 0 {
		o.Evidence = append(o.Evidence, fmt.Sprintf("first bytes: %q", b))
	}
	msg := err.Error()
	kind := classifyNetErr(err)
	switch {
	case strings.Contains(msg, "server response headers exceeded"):
		o.Status = 520
		o.Cause = fmt.Sprintf("%s answers GET / for %s with more than %d KB of response headers, Cloudflare's limit", t.hostPort(), t.Hostname, MaxHeaderBytes>>10)
		o.Fix = "Find what adds the headers (large or many Set-Cookie, a debug header) and shrink them."
	case wrote && kind == dialTimeout:
		o.Status = 524
		o.Cause = fmt.Sprintf("%s accepts GET / for %s but sends no response headers within %s (the probe's wait); Cloudflare waits proxy_read_timeout (125 s by default) and then shows 524", t.hostPort(), t.Hostname, timeout)
		o.Fix = "Find what makes GET / slow (the backend, a database, a lock): the web server's slow log, PHP-FPM's request_slowlog_timeout, or the application's logs."
	case kind == dialReset:
		o.Status = 520
		o.Cause = fmt.Sprintf("%s resets the connection instead of answering GET / for %s", t.hostPort(), t.Hostname)
		o.Fix = "Read the web server's error log: a crashed worker (signal 11, the OOM killer) or a keep-alive mismatch resets connections."
	case kind == dialEOF || strings.Contains(msg, "server closed") || strings.Contains(msg, "EOF"):
		o.Status = 520
		o.Cause = fmt.Sprintf("%s closes the connection without answering GET / for %s (empty reply)", t.hostPort(), t.Hostname)
		o.Fix = "Read the web server's error log: a worker that dies on the request (segfault, OOM kill) gives an empty reply."
	case strings.Contains(msg, "malformed HTTP"):
		o.Status = 520
		o.Cause = fmt.Sprintf("%s answers GET / for %s with something that is not HTTP", t.hostPort(), t.Hostname)
		o.Fix = fmt.Sprintf("Check which program listens on port %d: it is not an HTTP server.", t.Port)
	case kind == dialTimeout:
		o.Status = 522
		o.Cause = fmt.Sprintf("%s accepts the connection but GET / for %s could not be sent in time", t.hostPort(), t.Hostname)
		o.Fix = "Check the server's load and the network path."
	default:
		o.Status = 520
		o.Cause = fmt.Sprintf("GET / for %s at %s fails: %s", t.Hostname, t.hostPort(), shortErr(err))
		o.Fix = "Read the web server's error log for this request."
	}
	return o
}

// tlsFail is a failed handshake inside the HTTP probe.
type tlsFail struct {
	err      error
	evidence []string
}

// recorder keeps the first bytes read from the origin, for Evidence.
type recorder struct {
	mu  sync.Mutex
	buf []byte
}

func (r *recorder) wrap(c net.Conn) net.Conn { return &recConn{Conn: c, r: r} }

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

type recConn struct {
	net.Conn
	r *recorder
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.r.mu.Lock()
		if room := firstBytes - len(c.r.buf); room > 0 {
			c.r.buf = append(c.r.buf, p[:min(n, room)]...)
		}
		c.r.mu.Unlock()
	}
	return n, err
}
