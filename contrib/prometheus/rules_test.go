// Package prometheus holds the alert rules and scrape configuration for
// cfguard's metrics; this test checks them with promtool.
package prometheus

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/cfguard/cfguard/verify/metrics"
)

func promtool(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("skipped: promtool is not installed (package prometheus)")
	}
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

func TestRulesCheck(t *testing.T)   { promtool(t, "check", "rules", "cfguard.rules.yml") }
func TestRulesTests(t *testing.T)   { promtool(t, "test", "rules", "cfguard.rules.test.yml") }
func TestScrapeConfig(t *testing.T) { promtool(t, "check", "config", "prometheus.example.yml") }

// TestRulesNameRealMetrics: every cfguard_ name in the rules is one the
// binary exposes (a renamed metric would silently never alert).
func TestRulesNameRealMetrics(t *testing.T) {
	b, err := os.ReadFile("cfguard.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	known := metrics.Names()
	for _, m := range regexp.MustCompile(`cfguard_[a-z_]+`).FindAllString(string(b), -1) {
		if !slices.Contains(known, m) {
			t.Errorf("the rules use %s, which cfguard does not expose (it has %v)", m, known)
		}
	}
}
