package probe

import (
	"context"
	"time"

	"github.com/cfguard/cfguard/verify/report"
)

// HTTP sends GET / as Cloudflare would (stage http).
func HTTP(ctx context.Context, t Target, timeout time.Duration) report.Outcome {
	return report.Outcome{Stage: report.StageHTTP}
}
