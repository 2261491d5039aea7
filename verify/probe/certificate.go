package probe

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// CertOptions adjusts Certificate. The zero value is what Cloudflare does.
type CertOptions struct {
	// Roots replaces the system roots (tests). Cloudflare's Origin CA roots
	// are always accepted besides.
	Roots *x509.CertPool
}

// Certificate judges the certificate the origin served (stage certificate).
func Certificate(t Target, cs *tls.ConnectionState, now time.Time) report.Outcome {
	return CertificateWith(t, cs, now, CertOptions{})
}

// CertificateWith is Certificate with options.
func CertificateWith(t Target, cs *tls.ConnectionState, now time.Time, opt CertOptions) report.Outcome {
	return report.Outcome{Stage: report.StageCertificate}
}
