package probe

import (
	"context"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// Elsewhere probes an address that is not on this host (stage elsewhere).
func Elsewhere(ctx context.Context, t Target, timeout time.Duration) report.Outcome {
	return report.Outcome{Stage: report.StageElsewhere}
}
