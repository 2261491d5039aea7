package probe

import (
	"context"
	"net/netip"

	"github.com/cfguard/cfguard/verify/report"
)

// Route looks up this host's route toward each Cloudflare prefix (stage route).
func Route(ctx context.Context, src netip.Addr, cloudflare []netip.Prefix) report.Outcome {
	return report.Outcome{Stage: report.StageRoute}
}
