package probe

import (
	"context"
	"crypto/tls"

	"github.com/cfguard/cfguard/verify/report"
)

// TLSResult is the outcome of the handshake and, when it succeeded, the
// connection state the certificate stage judges.
type TLSResult struct {
	Outcome report.Outcome
	State   *tls.ConnectionState
}

// TLS makes the handshake Cloudflare would make (stage tls).
func TLS(ctx context.Context, t Target) TLSResult {
	return TLSResult{Outcome: report.Outcome{Stage: report.StageTLS}}
}
