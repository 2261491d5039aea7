package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/report"
)

// Label values that are not UTF-8 — a backend's socket path or a pool's
// name in Latin-1 from a configuration file, a process name from the
// kernel log — are shown with U+FFFD: client_golang panics on them, which
// killed the watch at its first round, every time it started.
func TestLabelsNotUTF8(t *testing.T) {
	m := New()
	b := backend.Watched{Target: "unix:/run/php/caf\xe9.sock", Unit: "php8.2-fpm.service", Pool: "caf\xe9"}
	m.SetBackend(b, backend.Check{State: backend.StateUp, Pool: &backend.PoolStatus{Active: 1}}, 0)
	m.OOMKill("php\xff")
	m.SetListener("nginx", "/run/\xff.sock", true)
	m.SetReport(&report.Report{Paths: []report.Path{{Zone: "example.com", Hostname: "bad\xff.example.com", OriginIP: "192.0.2.10", Port: 80, Scheme: "http", OK: true, Status: 200, Stage: report.StageHTTP,
		Edge: &report.EdgeCounts{Counts: []report.EdgeCount{{EdgeStatus: 502, Count: 3}}}}}}, at)
	m.DeleteBackend(b)
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP cfguard_oom_kills_total Processes the kernel's OOM killer killed while the watch ran.
# TYPE cfguard_oom_kills_total counter
cfguard_oom_kills_total{process="php`+"\uFFFD"+`"} 1
`), "cfguard_oom_kills_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.edgeResponses); n != 1 {
		t.Errorf("%d edge series, want 1", n)
	}
	if n := testutil.CollectAndCount(m.backendUp); n != 0 {
		t.Errorf("%d backend series after DeleteBackend, want 0", n)
	}
}
