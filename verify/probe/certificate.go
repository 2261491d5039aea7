package probe

import (
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// ExpiryWarning is how close to its notAfter a certificate that passes
// draws a warning.
const ExpiryWarning = 14 * 24 * time.Hour

// originCARoots holds Cloudflare's public Origin CA roots (RSA and ECC),
// which Full (strict) trusts besides the public roots. An empty file would
// leave only the system roots.
//
//go:embed origin_ca_roots.pem
var originCARoots []byte

var originCAPool = sync.OnceValue(func() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(originCARoots)
	return p
})

// CertOptions adjusts Certificate. The zero value does what Cloudflare does
// for the origin: the system roots (x509.SystemCertPool, which honours
// SSL_CERT_FILE and SSL_CERT_DIR) plus the Origin CA roots.
type CertOptions struct {
	// Roots replaces the system roots (tests). The Origin CA roots are
	// accepted besides.
	Roots *x509.CertPool
}

// Certificate judges the certificate the origin served in cs (stage
// certificate) as Full (strict) and origin_pull do: it must chain, with
// the intermediates the origin sent, to a system root or Cloudflare's
// Origin CA; be within its dates at now; and name the hostname. Any miss is
// 526 naming every reason ("expired on 2026-10-01", "issued for a.example,
// b.example, not www.example.com", "unknown issuer CN=…", "self-signed").
// A passing certificate that expires within ExpiryWarning gets a warning.
// Under the other SSL modes nothing is checked.
func Certificate(t Target, cs *tls.ConnectionState, now time.Time) report.Outcome {
	return CertificateWith(t, cs, now, CertOptions{})
}

// CertificateWith is Certificate with options.
func CertificateWith(t Target, cs *tls.ConnectionState, now time.Time, opt CertOptions) report.Outcome {
	o := report.Outcome{Stage: report.StageCertificate}
	if !t.verifiesCertificate() {
		o.Cause = fmt.Sprintf("SSL mode %s does not check the origin's certificate", t.SSLMode)
		return o
	}
	if cs == nil || len(cs.PeerCertificates) == 0 {
		o.Fail, o.Status = true, 526
		o.Cause = fmt.Sprintf("%s sent no certificate for %s", t.hostPort(), t.Hostname)
		o.Fix = "Configure a certificate for " + t.Hostname + " (a Cloudflare Origin CA certificate will do)."
		return o
	}
	leaf := cs.PeerCertificates[0]
	o.Evidence = append(o.Evidence, describeCert(leaf))
	for _, ic := range cs.PeerCertificates[1:] {
		o.Evidence = append(o.Evidence, fmt.Sprintf("intermediate: subject %s; issuer %s; notAfter %s", ic.Subject, ic.Issuer, ic.NotAfter.UTC().Format(time.DateOnly)))
	}

	var problems, fixes []string
	// Dates.
	switch {
	case now.After(leaf.NotAfter):
		problems = append(problems, "expired on "+day(leaf.NotAfter))
		fixes = append(fixes, "renew the certificate (e.g. `certbot renew`, or a new Cloudflare Origin CA certificate) and reload the web server")
	case now.Before(leaf.NotBefore):
		problems = append(problems, "is not valid before "+day(leaf.NotBefore))
		fixes = append(fixes, "check the server's clock (timedatectl) or install a certificate valid now")
	}
	// Name.
	var cnOnly bool
	if err := leaf.VerifyHostname(t.sni()); err != nil {
		if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 && matchName(leaf.Subject.CommonName, t.sni()) {
			cnOnly = true // Cloudflare accepts the CN (cloudflare.md §2)
		} else {
			problems = append(problems, fmt.Sprintf("is issued for %s, not %s", certNames(leaf), t.sni()))
			fixes = append(fixes, fmt.Sprintf("serve a certificate that names %s (%s)", t.sni(), words{t.Server}.ownCertificate(t.sni())))
		}
	}
	// Chain.
	if p, f := chainProblem(leaf, cs.PeerCertificates[1:], now, opt.Roots, words{t.Server}); p != "" {
		problems = append(problems, p)
		fixes = append(fixes, f)
	}

	if len(problems) > 0 {
		o.Fail, o.Status = true, 526
		o.Cause = fmt.Sprintf("the certificate %s serves for %s %s", t.hostPort(), t.Hostname, joinAnd(problems))
		fix := strings.Join(fixes, "; ")
		o.Fix = strings.ToUpper(fix[:1]) + fix[1:] + ". Under SSL mode Full (not strict) the same certificate would pass."
		return o
	}
	o.Cause = fmt.Sprintf("the certificate for %s is valid until %s", t.Hostname, day(leaf.NotAfter))
	if left := leaf.NotAfter.Sub(now); left < ExpiryWarning {
		o.Warnings = append(o.Warnings, fmt.Sprintf("the certificate %s serves for %s expires on %s (in %d days): renew it before Cloudflare answers 526", t.hostPort(), t.Hostname, day(leaf.NotAfter), int(left.Hours()/24)))
	}
	if cnOnly {
		o.Warnings = append(o.Warnings, fmt.Sprintf("the certificate names %s only in its Common Name, with no Subject Alternative Name: browsers and most clients refuse that", t.Hostname))
	}
	return o
}

// chainProblem verifies the chain, with the intermediates the origin sent,
// to the roots (or the system roots) and then to the Origin CA, and names
// what is wrong with which certificate above the leaf. The leaf's own dates
// are Certificate's to report: when the leaf is out of its dates at now,
// the chain is checked again at a time inside the leaf's validity, and a
// date error the retry finds on an issuer counts only if that issuer is out
// of its dates at now too (a CA made after the leaf expired is valid: it is
// not what is wrong).
func chainProblem(leaf *x509.Certificate, inter []*x509.Certificate, now time.Time, roots *x509.CertPool, w words) (problem, fix string) {
	pool := x509.NewCertPool()
	for _, c := range inter {
		pool.AddCert(c)
	}
	if roots == nil {
		if sys, err := x509.SystemCertPool(); err == nil {
			roots = sys
		} else {
			roots = x509.NewCertPool()
		}
	}
	verify := func(at time.Time) error {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: at}
		_, err := leaf.Verify(opts)
		if err == nil {
			return nil
		}
		opts.Roots = originCAPool()
		if _, oerr := leaf.Verify(opts); oerr == nil {
			return nil
		}
		return err
	}
	err := verify(now)
	if err == nil {
		return "", ""
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) && ci.Reason == x509.Expired && (ci.Cert == nil || ci.Cert.Equal(leaf)) {
		// The leaf's dates, reported by Certificate. Look past them.
		at := now
		if at.After(leaf.NotAfter) {
			at = leaf.NotAfter
		}
		if at.Before(leaf.NotBefore) {
			at = leaf.NotBefore
		}
		if err = verify(at); err == nil {
			return "", ""
		}
		if errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil && !ci.Cert.Equal(leaf) && !outOfDates(ci.Cert, now) {
			return "", "" // the issuer is valid now; only the leaf is not
		}
	}

	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua) && selfSigned(leaf):
		return fmt.Sprintf("is self-signed (%s)", leaf.Subject), "install a certificate from a public CA (e.g. Let's Encrypt) or a Cloudflare Origin CA certificate"
	case errors.As(err, &ua) && len(inter) == 0:
		return fmt.Sprintf("has an unknown issuer %s (the origin sent no intermediate certificate)", leaf.Issuer),
			"serve the full chain (" + w.fullChain() + ") or use a certificate from a public CA or Cloudflare's Origin CA"
	case errors.As(err, &ua):
		return fmt.Sprintf("has an unknown issuer %s", chainTop(leaf, inter).Issuer),
			"use a certificate from a public CA or Cloudflare's Origin CA (a private CA is trusted only through the zone's Custom Origin Trust Store)"
	case errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil && now.After(ci.Cert.NotAfter):
		return fmt.Sprintf("chains through %s, which expired on %s", issuerRole(ci.Cert, inter), day(ci.Cert.NotAfter)),
			"serve the current intermediate certificate (refresh the chain file from the CA)"
	case errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil && now.Before(ci.Cert.NotBefore):
		return fmt.Sprintf("chains through %s, which is not valid before %s", issuerRole(ci.Cert, inter), day(ci.Cert.NotBefore)),
			"check the server's clock (timedatectl), or serve an intermediate certificate that is valid now"
	case errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage:
		return "is not valid for server authentication (extended key usage)", "issue a certificate with the serverAuth extended key usage"
	}
	return "does not verify: " + strings.TrimPrefix(err.Error(), "x509: "), "install a certificate from a public CA or Cloudflare's Origin CA"
}

// issuerRole names a certificate above the leaf: "the intermediate CN=…"
// when the origin sent it, else "the root CN=…".
func issuerRole(c *x509.Certificate, inter []*x509.Certificate) string {
	for _, ic := range inter {
		if ic.Equal(c) {
			return "the intermediate " + c.Subject.String()
		}
	}
	return "the root " + c.Subject.String()
}

// outOfDates reports whether c is outside its validity dates at now.
func outOfDates(c *x509.Certificate, now time.Time) bool {
	return now.After(c.NotAfter) || now.Before(c.NotBefore)
}

func selfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// chainTop is the last certificate of the chain the origin sent whose
// issuer was not among the certificates sent.
func chainTop(leaf *x509.Certificate, inter []*x509.Certificate) *x509.Certificate {
	top := leaf
	for range inter {
		next := false
		for _, c := range inter {
			if string(c.RawSubject) == string(top.RawIssuer) && c != top {
				top, next = c, true
				break
			}
		}
		if !next {
			break
		}
	}
	return top
}

// matchName matches a hostname against a certificate name with a
// single-label wildcard.
func matchName(pattern, host string) bool {
	pattern, host = strings.ToLower(strings.TrimSuffix(pattern, ".")), strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		_, hrest, ok := strings.Cut(host, ".")
		return ok && hrest == rest
	}
	return false
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// joinAnd is "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
