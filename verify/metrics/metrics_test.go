package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/report"
)

var (
	at       = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC) // 1.7961804e+09
	notAfter = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
)

// filled is a registry with one of everything.
func filled() *Metrics {
	m := New()
	sync := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	m.SetGuard(guard.Status{Protected: true, Present: true, Hooked: true, IPv4: 15, IPv6: 7, LastSync: &sync})
	m.SetReport(&report.Report{Paths: []report.Path{
		{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.10", Port: 443, Scheme: "https", OK: true, Status: 200, Stage: report.StageUpstream, CertificateNotAfter: &notAfter},
		// A hostname with characters the text format must escape.
		{Zone: "example.com", Hostname: "we\"ird\\name\n.example.com", OriginIP: "192.0.2.10", Port: 80, Scheme: "http", Status: 502, Stage: report.StageUpstream},
	}}, at)
	b := backend.Watched{Target: "unix:/run/php/php8.2-fpm.sock", Unit: "php8.2-fpm.service", Pool: "www"}
	m.SetBackend(b, backend.Check{State: backend.StateUp, Took: 1500 * time.Microsecond,
		Pool: &backend.PoolStatus{Active: 1, Idle: 2, Total: 3, ListenQueue: 0, MaxChildrenReached: 4}}, 0)
	m.Action(recovery.Action{Request: recovery.Request{Unit: "php8.2-fpm.service", Reason: recovery.ReasonDown}, Restarted: true, JobResult: "done"})
	m.Action(recovery.Action{Request: recovery.Request{Unit: "php8.2-fpm.service", Reason: recovery.ReasonHung}, Refused: "backing off"})
	m.Action(recovery.Action{Request: recovery.Request{Unit: "php8.2-fpm.service", Reason: recovery.ReasonHung}, Err: errors.New("dbus")})
	return m
}

func TestExactText(t *testing.T) {
	m := filled()
	want := `
# HELP cfguard_backend_up 1 when the backend behind the web server answered the last probe.
# TYPE cfguard_backend_up gauge
cfguard_backend_up{backend="unix:/run/php/php8.2-fpm.sock",unit="php8.2-fpm.service"} 1
# HELP cfguard_backend_hung_probes Probes in a row that timed out or found the backend saturated.
# TYPE cfguard_backend_hung_probes gauge
cfguard_backend_hung_probes{backend="unix:/run/php/php8.2-fpm.sock",unit="php8.2-fpm.service"} 0
# HELP cfguard_backend_probe_duration_seconds Time the backend took to answer the last probe.
# TYPE cfguard_backend_probe_duration_seconds gauge
cfguard_backend_probe_duration_seconds{backend="unix:/run/php/php8.2-fpm.sock",unit="php8.2-fpm.service"} 0.0015
# HELP cfguard_certificate_expiry_timestamp_seconds When the certificate the origin serves on the path expires (paths whose certificate Cloudflare checks: Full (strict), origin pull).
# TYPE cfguard_certificate_expiry_timestamp_seconds gauge
cfguard_certificate_expiry_timestamp_seconds{hostname="www.example.com",origin="192.0.2.10",port="443",zone="example.com"} 1.8038592e+09
# HELP cfguard_fpm_active_processes PHP-FPM pool children serving a request (status page).
# TYPE cfguard_fpm_active_processes gauge
cfguard_fpm_active_processes{backend="unix:/run/php/php8.2-fpm.sock",pool="www"} 1
# HELP cfguard_fpm_idle_processes PHP-FPM pool children waiting for a request (status page).
# TYPE cfguard_fpm_idle_processes gauge
cfguard_fpm_idle_processes{backend="unix:/run/php/php8.2-fpm.sock",pool="www"} 2
# HELP cfguard_fpm_listen_queue Requests waiting for a free PHP-FPM child (status page).
# TYPE cfguard_fpm_listen_queue gauge
cfguard_fpm_listen_queue{backend="unix:/run/php/php8.2-fpm.sock",pool="www"} 0
# HELP cfguard_fpm_max_children_reached Times the PHP-FPM pool hit pm.max_children since it started (status page).
# TYPE cfguard_fpm_max_children_reached gauge
cfguard_fpm_max_children_reached{backend="unix:/run/php/php8.2-fpm.sock",pool="www"} 4
# HELP cfguard_guard_last_sync_timestamp_seconds When the cached list of Cloudflare's ranges was fetched (the last successful sync).
# TYPE cfguard_guard_last_sync_timestamp_seconds gauge
cfguard_guard_last_sync_timestamp_seconds 1.7961768e+09
# HELP cfguard_guard_protected 1 when cfguard's table is present, hooked and its Cloudflare sets are not empty.
# TYPE cfguard_guard_protected gauge
cfguard_guard_protected 1
# HELP cfguard_guard_table_present 1 when cfguard's nftables table exists.
# TYPE cfguard_guard_table_present gauge
cfguard_guard_table_present 1
# HELP cfguard_guard_ranges Cloudflare ranges in the kernel, as merged intervals.
# TYPE cfguard_guard_ranges gauge
cfguard_guard_ranges{family="ipv4"} 15
cfguard_guard_ranges{family="ipv6"} 7
# HELP cfguard_path_predicted_status The status verify predicts a visitor gets on the path (the origin's own status when it passes).
# TYPE cfguard_path_predicted_status gauge
cfguard_path_predicted_status{hostname="we\"ird\\name\n.example.com",origin="192.0.2.10",port="80",scheme="http",zone="example.com"} 502
cfguard_path_predicted_status{hostname="www.example.com",origin="192.0.2.10",port="443",scheme="https",zone="example.com"} 200
# HELP cfguard_path_stage_info The stage that judged the path (the failing one, or the last one passed).
# TYPE cfguard_path_stage_info gauge
cfguard_path_stage_info{hostname="we\"ird\\name\n.example.com",origin="192.0.2.10",port="80",scheme="http",stage="upstream",zone="example.com"} 1
cfguard_path_stage_info{hostname="www.example.com",origin="192.0.2.10",port="443",scheme="https",stage="upstream",zone="example.com"} 1
# HELP cfguard_path_up 1 when verify predicts the path from Cloudflare's edge to this origin succeeds, 0 when it would fail.
# TYPE cfguard_path_up gauge
cfguard_path_up{hostname="we\"ird\\name\n.example.com",origin="192.0.2.10",port="80",scheme="http",zone="example.com"} 0
cfguard_path_up{hostname="www.example.com",origin="192.0.2.10",port="443",scheme="https",zone="example.com"} 1
# HELP cfguard_paths_failing Paths verify predicts would fail.
# TYPE cfguard_paths_failing gauge
cfguard_paths_failing 1
# HELP cfguard_recoveries_failed_total Recoveries whose restart job failed or could not be asked for.
# TYPE cfguard_recoveries_failed_total counter
cfguard_recoveries_failed_total{reason="hung",unit="php8.2-fpm.service"} 1
# HELP cfguard_recoveries_refused_total Recoveries refused (configuration test failed, backing off, unit not loaded).
# TYPE cfguard_recoveries_refused_total counter
cfguard_recoveries_refused_total{reason="hung",unit="php8.2-fpm.service"} 1
# HELP cfguard_recoveries_total Restarts of a backend's unit the watch asked for and systemd ran.
# TYPE cfguard_recoveries_total counter
cfguard_recoveries_total{reason="down",unit="php8.2-fpm.service"} 1
# HELP cfguard_verify_success 1 when the last verify could run (whatever it found), 0 when it could not.
# TYPE cfguard_verify_success gauge
cfguard_verify_success 1
# HELP cfguard_verify_timestamp_seconds When the last verify ran.
# TYPE cfguard_verify_timestamp_seconds gauge
cfguard_verify_timestamp_seconds 1.7961804e+09
`
	// Every metric the registry holds (GatherAndCompare with no names).
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestReportReplacesPaths: a path gone from the next report disappears.
func TestReportReplacesPaths(t *testing.T) {
	m := filled()
	m.SetReport(&report.Report{}, at)
	if n := testutil.CollectAndCount(m.pathUp); n != 0 {
		t.Errorf("%d path series after an empty report, want 0", n)
	}
	m.SetReport(nil, at) // verify could not run: the paths stay as they were last seen
	if got := testutil.ToFloat64(m.verifySuccess); got != 0 {
		t.Errorf("verify_success = %v after a failed run", got)
	}
}

// TestHandlerParses: /metrics is the text format, and every name is
// cfguard_ with base units.
func TestHandlerParses(t *testing.T) {
	srv := httptest.NewServer(filled().Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "cfguard_") {
			t.Errorf("%s lacks the cfguard_ prefix", name)
		}
		if f.GetType().String() == "COUNTER" && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s lacks _total", name)
		}
		if strings.Contains(name, "milli") || strings.HasSuffix(name, "_ms") {
			t.Errorf("%s is not in base units", name)
		}
	}
	hn := fams["cfguard_path_up"].GetMetric()
	var names []string
	for _, m := range hn {
		for _, l := range m.GetLabel() {
			if l.GetName() == "hostname" {
				names = append(names, l.GetValue())
			}
		}
	}
	if diff := cmp.Diff([]string{"we\"ird\\name\n.example.com", "www.example.com"}, names); diff != "" {
		t.Errorf("hostnames after a round trip (-want +got)\n%s", diff)
	}
}

// TestWriteFileAtomic: the file is replaced whole, and a directory that
// does not exist is an error naming the path.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cfguard.prom")
	os.WriteFile(path, []byte("old"), 0o644)
	m := New()
	m.SetSync(at, nil)
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# HELP cfguard_sync_success 1 when the last `cfguard sync` applied or confirmed the list, 0 when it failed.\n# TYPE cfguard_sync_success gauge\ncfguard_sync_success 1\n" +
		"# HELP cfguard_sync_timestamp_seconds When `cfguard sync` last ran.\n# TYPE cfguard_sync_timestamp_seconds gauge\ncfguard_sync_timestamp_seconds 1.7961804e+09\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("file (-want +got)\n%s", diff)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the directory, want only the metrics file (no temporary left)", len(ents))
	}
	if err := m.WriteFile(filepath.Join(dir, "missing", "x.prom")); err == nil || !strings.Contains(err.Error(), "missing/x.prom") {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
}

// TestNames is the list the README documents.
func TestNames(t *testing.T) {
	want := []string{
		"cfguard_backend_hung_probes", "cfguard_backend_probe_duration_seconds", "cfguard_backend_up",
		"cfguard_certificate_expiry_timestamp_seconds", "cfguard_check_duration_seconds", "cfguard_edge_responses", "cfguard_fpm_active_processes", "cfguard_fpm_idle_processes",
		"cfguard_fpm_listen_queue", "cfguard_fpm_max_children_reached", "cfguard_guard_last_sync_timestamp_seconds",
		"cfguard_guard_protected", "cfguard_guard_ranges", "cfguard_guard_restores_total", "cfguard_guard_table_present",
		"cfguard_listener_up", "cfguard_log_events_total", "cfguard_oom_kills_total", "cfguard_path_predicted_status",
		"cfguard_path_stage_info", "cfguard_path_up", "cfguard_paths_failing", "cfguard_recoveries_failed_total",
		"cfguard_recoveries_refused_total", "cfguard_recoveries_total", "cfguard_sync_success", "cfguard_sync_timestamp_seconds",
		"cfguard_verify_success", "cfguard_verify_timestamp_seconds", "cfguard_watch_last_check_timestamp_seconds",
	}
	if diff := cmp.Diff(want, Names()); diff != "" {
		t.Errorf("metric names (-want +got)\n%s", diff)
	}
}
