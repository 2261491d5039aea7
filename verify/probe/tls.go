package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// ClientCertGrace is how long TLS waits, after a handshake in which the
// origin asked for a client certificate, for the alert a TLS 1.3 server
// sends when it insists on one.
const ClientCertGrace = 500 * time.Millisecond

// cloudflareSuites are the TLS 1.0–1.2 suites Cloudflare offers to origins
// (cloudflare.md §2): ECDHE-ECDSA/RSA with AES-GCM, and AES-CBC-SHA. The
// three TLS 1.3 suites are always on in Go. No CHACHA20, no DHE: an origin
// limited to those shares nothing with Cloudflare.
var cloudflareSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// cloudflareCurves are the groups of the probe's ClientHello, which carries
// one key share, X25519's. That is Cloudflare's first flight under the
// zone's default origin_post_quantum_encryption ("supported": X25519MLKEM768
// is only advertised, and used if the origin asks for it with a
// HelloRetryRequest; "off": not even advertised). Go cannot advertise a
// group without sending its share first, so the probe leaves the hybrid
// out rather than send the 1.2 KB ML-KEM share Cloudflare does not send
// (it splits the ClientHello in two packets, and costs an ML-KEM key
// generation per handshake: about 5% of a 10,000-hostname verify).
var cloudflareCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}

// clientConfig is the ClientHello Cloudflare sends toward an origin: SNI =
// hostname, TLS 1.0–1.3, its suites and groups, HTTP/1.1. Verification is the
// certificate stage's job. certRequested is set when the origin asks for a
// client certificate; the probe has none to give.
func clientConfig(hostname string, certRequested *atomic.Bool) *tls.Config {
	return &tls.Config{
		ServerName:         hostname,
		MinVersion:         tls.VersionTLS10,
		MaxVersion:         tls.VersionTLS13,
		CipherSuites:       cloudflareSuites,
		CurvePreferences:   cloudflareCurves,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true, // judged by Certificate, not here
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			certRequested.Store(true)
			return &tls.Certificate{}, nil
		},
	}
}

// TLSResult is the outcome of the handshake and, when it succeeded, the
// connection state for the certificate stage.
type TLSResult struct {
	Outcome report.Outcome
	State   *tls.ConnectionState
	// ClientCertRequested is true when the origin asked for a client
	// certificate (Authenticated Origin Pulls).
	ClientCertRequested bool
	// Conn is the handshaken connection, set by TLSKeep only when the
	// handshake succeeded and no client certificate was asked for. The
	// caller owns it: pass it to HTTPOn, or Close it.
	Conn *tls.Conn
}

// TLS makes the handshake Cloudflare would make to the target (stage tls):
// SNI = hostname, TLS 1.0–1.3, Cloudflare's suites, no verification. A
// failure is 525 with the cause: plain HTTP on the port, no shared version
// or cipher, no certificate for the name, a client certificate demanded,
// the connection closed, or no answer within TLSTimeout. A refused connect
// is 521 as in Listener. On success State holds the peer's certificates.
func TLS(ctx context.Context, t Target) TLSResult {
	return tlsProbe(ctx, t, false)
}

// TLSKeep is TLS, keeping the connection open for the http stage
// (TLSResult.Conn), as Cloudflare sends its request over the connection
// it has just made: one handshake per path instead of two.
func TLSKeep(ctx context.Context, t Target) TLSResult {
	return tlsProbe(ctx, t, true)
}

func tlsProbe(ctx context.Context, t Target, keep bool) TLSResult {
	o := report.Outcome{Stage: report.StageTLS}
	if err := t.check(); err != nil {
		return TLSResult{Outcome: unusable(o.Stage, t, err)}
	}
	if t.Scheme != "https" {
		o.Cause = "plain HTTP: no TLS handshake"
		return TLSResult{Outcome: o}
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	raw, err := dialTCP(dctx, t.hostPort())
	cancel()
	if err != nil {
		if stopped(ctx, err) {
			return TLSResult{Outcome: unusable(o.Stage, t, err)}
		}
		return TLSResult{Outcome: connectFailure(o, t, err, time.Since(start))}
	}
	kept := false
	defer func() {
		if !kept {
			raw.Close()
		}
	}()

	var requested atomic.Bool
	conn, evidence, err := handshake(ctx, raw, t.sni(), &requested)
	o.Evidence = append(o.Evidence, evidence...)
	if err == nil && requested.Load() {
		// A TLS 1.3 server that insists on a client certificate says so
		// only after the client's Finished: wait a moment for its alert.
		conn.SetReadDeadline(time.Now().Add(ClientCertGrace))
		var b [1]byte
		if _, rerr := conn.Read(b[:]); rerr != nil && alertOf(rerr) != "" {
			err = rerr
		}
	}
	res := TLSResult{ClientCertRequested: requested.Load()}
	if err != nil && stopped(ctx, err) {
		res.Outcome = unusable(o.Stage, t, err)
		return res
	}
	if err != nil {
		res.Outcome = tlsFailure(o, t, err, requested.Load())
		return res
	}
	cs := conn.ConnectionState()
	res.State = &cs
	o.Cause = fmt.Sprintf("TLS handshake with %s for %s succeeds (%s)", t.hostPort(), t.Hostname, tls.VersionName(cs.Version))
	o.Evidence = append(o.Evidence, fmt.Sprintf("tls: %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite)))
	if len(cs.PeerCertificates) > 0 {
		o.Evidence = append(o.Evidence, describeCert(cs.PeerCertificates[0]))
	}
	if requested.Load() {
		o.Warnings = append(o.Warnings, fmt.Sprintf("%s asks for a client certificate (Authenticated Origin Pulls): Cloudflare presents one only when the zone's tls_client_auth setting is on", t.hostPort()))
	}
	res.Outcome = o
	if keep && !requested.Load() {
		// Not after a client-certificate request: its grace read may
		// have left the connection unusable.
		res.Conn, kept = conn, true
	}
	return res
}

// handshake runs the client side of Cloudflare's handshake over raw, within
// TLSTimeout. When the answer is not TLS, evidence holds its first bytes.
func handshake(ctx context.Context, raw net.Conn, hostname string, requested *atomic.Bool) (*tls.Conn, []string, error) {
	rec := &recorder{}
	conn := tls.Client(rec.wrap(raw), clientConfig(hostname, requested))
	hctx, cancel := context.WithTimeout(ctx, TLSTimeout)
	defer cancel()
	err := conn.HandshakeContext(hctx)
	var rh tls.RecordHeaderError
	if err != nil && errors.As(err, &rh) {
		// Not TLS: read a little more of the answer to name it.
		raw.SetReadDeadline(time.Now().Add(ClientCertGrace))
		io.ReadAtLeast(rec.wrap(raw), make([]byte, firstBytes), firstBytes)
		raw.SetReadDeadline(time.Time{})
		return conn, []string{fmt.Sprintf("first bytes: %q", rec.bytes())}, err
	}
	return conn, nil, err
}

// tlsFailure classifies a failed handshake as 525 (or a connect failure).
func tlsFailure(o report.Outcome, t Target, err error, certRequested bool) report.Outcome {
	o.Fail, o.Status = true, 525
	o.Evidence = append(o.Evidence, "handshake: "+err.Error())
	w := words{ServerFor(t)}
	var rh tls.RecordHeaderError
	alert := alertOf(err)
	kind := classifyNetErr(err)
	switch {
	case errors.As(err, &rh) && strings.HasPrefix(string(rh.RecordHeader[:]), "HTTP/"):
		o.Cause = fmt.Sprintf("%s speaks plain HTTP, not TLS: it answered Cloudflare's TLS handshake with %q", t.hostPort(), firstLine(o.Evidence, string(rh.RecordHeader[:])))
		o.Fix = fmt.Sprintf("Turn on TLS for port %d (%s), or use SSL mode Flexible only if the origin really cannot do HTTPS.", t.Port, w.tlsListener(t.Port))
	case errors.As(err, &rh):
		o.Cause = fmt.Sprintf("%s does not speak TLS: it answered the handshake with the bytes %q", t.hostPort(), string(rh.RecordHeader[:]))
		o.Fix = fmt.Sprintf("Make the service on port %d a TLS (HTTPS) listener, or move it to another port.", t.Port)
	case certRequested && (alert == "" || alert == "handshake failure" || alert == "certificate required" || alert == "bad certificate"):
		o.Cause = fmt.Sprintf("%s demands a client certificate and ends the handshake without one (%s)", t.hostPort(), alertText(alert, err))
		o.Fix = "Turn on Authenticated Origin Pulls at Cloudflare (the zone's tls_client_auth setting) and trust Cloudflare's origin-pull CA, or stop requiring client certificates (" + w.pick("nginx ssl_verify_client", "Apache SSLVerifyClient") + ")."
	case alert == "unrecognized name":
		o.Cause = fmt.Sprintf("%s has no certificate for %s: it rejects the name sent as SNI (alert unrecognized name)", t.hostPort(), t.Hostname)
		o.Fix = fmt.Sprintf("Add %s.", w.nameBlock(t.Hostname, t.Port))
	case alert == "protocol version not supported":
		o.Cause = fmt.Sprintf("%s accepts no TLS version Cloudflare offers (TLS 1.0–1.3; alert protocol version)", t.hostPort())
		o.Fix = "Allow TLS 1.2 and 1.3 on the origin (" + w.protocols() + ")."
	case alert == "handshake failure" || alert == "insufficient security":
		o.Cause = fmt.Sprintf("%s shares no TLS version or cipher suite with Cloudflare (alert %s)", t.hostPort(), alert)
		o.Fix = "Allow the ECDHE-ECDSA/RSA-AES128/256-GCM suites with TLS 1.2 and 1.3 (" + w.ciphers() + ")."
	case alert != "":
		o.Cause = fmt.Sprintf("%s aborts the TLS handshake for %s with the alert %q", t.hostPort(), t.Hostname, alert)
		o.Fix = "Read the web server's error log for the handshake error and check its certificate and TLS settings for " + t.Hostname + "."
	case kind == dialEOF || kind == dialReset:
		how := "closes"
		if kind == dialReset {
			how = "resets"
		}
		o.Cause = fmt.Sprintf("%s %s the connection during the TLS handshake for %s", t.hostPort(), how, t.Hostname)
		o.Fix = "Check that port " + fmt.Sprint(t.Port) + " is served by the TLS web server and read its error log (a missing certificate for the name, or a crash)."
	case kind == dialTimeout:
		o.Cause = fmt.Sprintf("%s accepts the connection but does not answer the TLS handshake within %s", t.hostPort(), TLSTimeout)
		o.Fix = fmt.Sprintf("Check what serves port %d (it may not be TLS, or it may be stuck).", t.Port)
	default:
		o.Cause = fmt.Sprintf("the TLS handshake with %s for %s fails: %s", t.hostPort(), t.Hostname, err)
		o.Fix = "Check the web server's TLS configuration for " + t.Hostname + " and its error log."
	}
	return o
}

// firstLine is the first line of the "first bytes" evidence, else def+"…".
func firstLine(evidence []string, def string) string {
	for _, e := range evidence {
		if q, ok := strings.CutPrefix(e, "first bytes: "); ok {
			if s, err := strconv.Unquote(q); err == nil && s != "" {
				line, _, _ := strings.Cut(s, "\r\n")
				line, _, _ = strings.Cut(line, "\n")
				return line
			}
		}
	}
	return def + "…"
}

// alertOf returns the text of a TLS alert the peer sent ("handshake
// failure"), or "".
func alertOf(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		return strings.TrimPrefix(oe.Err.Error(), "tls: ")
	}
	return ""
}

func alertText(alert string, err error) string {
	if alert != "" {
		return "alert " + alert
	}
	return shortErr(err)
}

// describeCert is one Evidence line: subject, SANs, issuer, dates.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("certificate: subject %s; SANs %s; issuer %s; notBefore %s; notAfter %s",
		c.Subject, certNames(c), c.Issuer, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
}

// certNames is "a.example, b.example" (DNS and IP SANs), or the CN when
// there is no SAN.
func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return "none (CN " + c.Subject.CommonName + ")"
		}
		return "none"
	}
	return strings.Join(names, ", ")
}
