package probe

import (
	"context"

	"github.com/cfguard/cfguard/verify/report"
)

// Listener connects to the target's address and port (stage listener).
func Listener(ctx context.Context, t Target) report.Outcome {
	return report.Outcome{Stage: report.StageListener}
}
