// Package metrics renders what cfguard knows — the guard's status, a verify
// report, the watch's backend checks and recoveries — as Prometheus metrics:
// served by `cfguard watch` at /metrics, or written once by status, verify
// and sync (--metrics-file) for node_exporter's textfile collector. Findings
// stay data; this is one more renderer of the same values.
package metrics

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/report"
)

const ns = "cfguard"

// Metrics is one registry with every cfguard metric. Its methods are safe
// for concurrent use (the collectors lock).
type Metrics struct {
	reg *prometheus.Registry

	guardProtected *prometheus.GaugeVec // no labels, Vec so it can be absent until set
	guardPresent   *prometheus.GaugeVec
	guardRanges    *prometheus.GaugeVec
	guardLastSync  *prometheus.GaugeVec
	guardRestores  *prometheus.CounterVec

	syncSuccess   *prometheus.GaugeVec
	syncTimestamp *prometheus.GaugeVec

	verifySuccess   *prometheus.GaugeVec
	verifyTimestamp *prometheus.GaugeVec
	pathUp          *prometheus.GaugeVec
	pathStatus      *prometheus.GaugeVec
	pathStage       *prometheus.GaugeVec
	pathsFailing    *prometheus.GaugeVec
	certExpiry      *prometheus.GaugeVec
	edgeResponses   *prometheus.GaugeVec

	backendUp      *prometheus.GaugeVec
	backendHung    *prometheus.GaugeVec
	backendProbe   *prometheus.GaugeVec
	fpmActive      *prometheus.GaugeVec
	fpmIdle        *prometheus.GaugeVec
	fpmQueue       *prometheus.GaugeVec
	fpmMaxChildren *prometheus.GaugeVec
	listenerUp     *prometheus.GaugeVec

	logEvents *prometheus.CounterVec
	oomKills  *prometheus.CounterVec

	recoveries *prometheus.CounterVec
	refused    *prometheus.CounterVec
	failed     *prometheus.CounterVec

	checkDuration *prometheus.GaugeVec
	lastCheck     *prometheus.GaugeVec

	all []prometheus.Collector
}

var pathLabels = []string{"zone", "hostname", "origin", "port", "scheme"}

// New makes an empty registry. Nothing is exposed until it is set, so a
// one-shot command's file holds only what that command knows.
func New() *Metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		reg:            prometheus.NewRegistry(),
		guardProtected: g("guard_protected", "1 when cfguard's table is present, hooked and its Cloudflare sets are not empty."),
		guardPresent:   g("guard_table_present", "1 when cfguard's nftables table exists."),
		guardRanges:    g("guard_ranges", "Cloudflare ranges in the kernel, as merged intervals.", "family"),
		guardLastSync:  g("guard_last_sync_timestamp_seconds", "When the cached list of Cloudflare's ranges was fetched (the last successful sync)."),
		guardRestores:  c("guard_restores_total", "Times the watch put a vanished table back from the cache.", "result"),

		syncSuccess:   g("sync_success", "1 when the last `cfguard sync` applied or confirmed the list, 0 when it failed."),
		syncTimestamp: g("sync_timestamp_seconds", "When `cfguard sync` last ran."),

		verifySuccess:   g("verify_success", "1 when the last verify could run (whatever it found), 0 when it could not."),
		verifyTimestamp: g("verify_timestamp_seconds", "When the last verify ran."),
		pathUp:          g("path_up", "1 when verify predicts the path from Cloudflare's edge to this origin succeeds, 0 when it would fail.", pathLabels...),
		pathStatus:      g("path_predicted_status", "The status verify predicts a visitor gets on the path (the origin's own status when it passes).", pathLabels...),
		pathStage:       g("path_stage_info", "The stage that judged the path (the failing one, or the last one passed).", append(append([]string{}, pathLabels...), "stage")...),
		pathsFailing:    g("paths_failing", "Paths verify predicts would fail."),
		certExpiry:      g("certificate_expiry_timestamp_seconds", "When the certificate the origin serves on the path expires (paths whose certificate Cloudflare checks: Full (strict), origin pull).", "zone", "hostname", "origin", "port"),
		edgeResponses:   g("edge_responses", "Visitor requests Cloudflare's edge answered with this status (502–530) in the 15 minutes before the last verify, from the GraphQL Analytics API (estimates when sampled); absent without Analytics:Read.", "zone", "hostname", "status"),

		backendUp:      g("backend_up", "1 when the backend behind the web server answered the last probe.", "backend", "unit"),
		backendHung:    g("backend_hung_probes", "Probes in a row that timed out or found the backend saturated.", "backend", "unit"),
		backendProbe:   g("backend_probe_duration_seconds", "Time the backend took to answer the last probe.", "backend", "unit"),
		fpmActive:      g("fpm_active_processes", "PHP-FPM pool children serving a request (status page).", "backend", "pool"),
		fpmIdle:        g("fpm_idle_processes", "PHP-FPM pool children waiting for a request (status page).", "backend", "pool"),
		fpmQueue:       g("fpm_listen_queue", "Requests waiting for a free PHP-FPM child (status page).", "backend", "pool"),
		fpmMaxChildren: g("fpm_max_children_reached", "Times the PHP-FPM pool hit pm.max_children since it started (status page).", "backend", "pool"),
		listenerUp:     g("listener_up", "1 when the web server accepts connections on the address.", "web", "address"),

		logEvents: c("log_events_total", "Error-log lines the watch classified as a cause of 5xx, as they were written.", "source", "kind"),
		oomKills:  c("oom_kills_total", "Processes the kernel's OOM killer killed while the watch ran.", "process"),

		recoveries: c("recoveries_total", "Restarts of a backend's unit the watch asked for and systemd ran.", "unit", "reason"),
		refused:    c("recoveries_refused_total", "Recoveries refused (configuration test failed, backing off, unit not loaded).", "unit", "reason"),
		failed:     c("recoveries_failed_total", "Recoveries whose restart job failed or could not be asked for.", "unit", "reason"),

		checkDuration: g("check_duration_seconds", "How long the last run of each check took.", "check"),
		lastCheck:     g("watch_last_check_timestamp_seconds", "When the watch last finished a round of checks."),
	}
	m.all = []prometheus.Collector{m.guardProtected, m.guardPresent, m.guardRanges, m.guardLastSync, m.guardRestores,
		m.syncSuccess, m.syncTimestamp,
		m.verifySuccess, m.verifyTimestamp, m.pathUp, m.pathStatus, m.pathStage, m.pathsFailing, m.certExpiry, m.edgeResponses,
		m.backendUp, m.backendHung, m.backendProbe, m.fpmActive, m.fpmIdle, m.fpmQueue, m.fpmMaxChildren, m.listenerUp,
		m.logEvents, m.oomKills, m.recoveries, m.refused, m.failed, m.checkDuration, m.lastCheck}
	m.reg.MustRegister(m.all...)
	return m
}

// Names lists the name of every metric cfguard can expose, sorted.
func Names() []string {
	var out []string
	for _, c := range New().all {
		ch := make(chan *prometheus.Desc, 1)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			out = append(out, descName.FindStringSubmatch(d.String())[1])
		}
	}
	sort.Strings(out)
	return out
}

// descName is the fqName in a Desc's String() (the library has no getter).
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// AddRuntime adds the process's own metrics (process_*, go_*: memory, CPU,
// open files of the watch itself), for a long-running exporter.
func (m *Metrics) AddRuntime() {
	m.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
}

// Registry is the registry, for tests and for serving.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WriteFile writes every metric to path in the text format, atomically
// (a temporary file renamed over it), for node_exporter's textfile
// collector.
func (m *Metrics) WriteFile(path string) error {
	if err := prometheus.WriteToTextfile(path, m.reg); err != nil {
		return fmt.Errorf("writing metrics to %s: %w", path, err)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func ts(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// SetGuard renders the guard's status.
func (m *Metrics) SetGuard(st guard.Status) {
	m.guardProtected.WithLabelValues().Set(b2f(st.Protected))
	m.guardPresent.WithLabelValues().Set(b2f(st.Present))
	m.guardRanges.WithLabelValues("ipv4").Set(float64(st.IPv4))
	m.guardRanges.WithLabelValues("ipv6").Set(float64(st.IPv6))
	if st.LastSync != nil {
		m.guardLastSync.WithLabelValues().Set(ts(*st.LastSync))
	}
}

// GuardRestored counts a table put back ("ok" or "error").
func (m *Metrics) GuardRestored(err error) {
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.guardRestores.WithLabelValues(r).Inc()
}

// SetSync renders the outcome of one sync.
func (m *Metrics) SetSync(at time.Time, err error) {
	m.syncSuccess.WithLabelValues().Set(b2f(err == nil))
	m.syncTimestamp.WithLabelValues().Set(ts(at))
}

// SetReport renders a verify report: one series per path, replacing the
// previous report's (a path that is gone disappears).
func (m *Metrics) SetReport(rep *report.Report, at time.Time) {
	m.verifyTimestamp.WithLabelValues().Set(ts(at))
	m.verifySuccess.WithLabelValues().Set(b2f(rep != nil))
	if rep == nil {
		return
	}
	m.pathUp.Reset()
	m.pathStatus.Reset()
	m.pathStage.Reset()
	m.certExpiry.Reset()
	m.setEdge(rep)
	failing := 0
	for _, p := range rep.Paths {
		l := []string{p.Zone, p.Hostname, p.OriginIP, strconv.Itoa(p.Port), p.Scheme}
		m.pathUp.WithLabelValues(valid(l...)...).Set(b2f(p.OK))
		m.pathStatus.WithLabelValues(valid(l...)...).Set(float64(p.Status))
		m.pathStage.WithLabelValues(valid(append(l, string(p.Stage))...)...).Set(1)
		if p.CertificateNotAfter != nil {
			m.certExpiry.WithLabelValues(valid(l[:4]...)...).Set(ts(*p.CertificateNotAfter))
		}
		if !p.OK {
			failing++
		}
	}
	m.pathsFailing.WithLabelValues().Set(float64(failing))
}

// SetBackend renders one backend check; hung is the probes in a row that
// timed out or found it saturated.
func (m *Metrics) SetBackend(b backend.Watched, c backend.Check, hung int) {
	m.backendUp.WithLabelValues(valid(b.Target, b.Unit)...).Set(b2f(c.State == backend.StateUp))
	m.backendHung.WithLabelValues(valid(b.Target, b.Unit)...).Set(float64(hung))
	if c.State == backend.StateUp {
		m.backendProbe.WithLabelValues(valid(b.Target, b.Unit)...).Set(c.Took.Seconds())
	}
	if p := c.Pool; p != nil {
		m.fpmActive.WithLabelValues(valid(b.Target, b.Pool)...).Set(float64(p.Active))
		m.fpmIdle.WithLabelValues(valid(b.Target, b.Pool)...).Set(float64(p.Idle))
		m.fpmQueue.WithLabelValues(valid(b.Target, b.Pool)...).Set(float64(p.ListenQueue))
		m.fpmMaxChildren.WithLabelValues(valid(b.Target, b.Pool)...).Set(float64(p.MaxChildrenReached))
	}
}

// DeleteBackend drops a backend the web servers no longer pass to.
func (m *Metrics) DeleteBackend(b backend.Watched) {
	for _, v := range []*prometheus.GaugeVec{m.backendUp, m.backendHung, m.backendProbe} {
		v.DeleteLabelValues(valid(b.Target, b.Unit)...)
	}
	for _, v := range []*prometheus.GaugeVec{m.fpmActive, m.fpmIdle, m.fpmQueue, m.fpmMaxChildren} {
		v.DeleteLabelValues(valid(b.Target, b.Pool)...)
	}
}

// SetListener renders whether a web server accepts on an address.
func (m *Metrics) SetListener(web, address string, up bool) {
	m.listenerUp.WithLabelValues(valid(web, address)...).Set(b2f(up))
}

// LogEvent counts one classified error-log line.
func (m *Metrics) LogEvent(source, kind string) {
	m.logEvents.WithLabelValues(valid(source, kind)...).Inc()
}

// OOMKill counts one OOM kill.
func (m *Metrics) OOMKill(process string) { m.oomKills.WithLabelValues(valid(process)...).Inc() }

// Action renders what the Recoverer did.
func (m *Metrics) Action(a recovery.Action) {
	switch {
	case a.Refused != "":
		m.refused.WithLabelValues(valid(a.Unit, a.Reason)...).Inc()
	case a.Err != nil || !a.Restarted || a.JobResult != "done":
		m.failed.WithLabelValues(valid(a.Unit, a.Reason)...).Inc()
	default:
		m.recoveries.WithLabelValues(valid(a.Unit, a.Reason)...).Inc()
	}
}

// CheckDuration records how long one check took.
func (m *Metrics) CheckDuration(check string, d time.Duration) {
	m.checkDuration.WithLabelValues(check).Set(d.Seconds())
}

// RoundDone records the end of a round of checks.
func (m *Metrics) RoundDone(at time.Time) { m.lastCheck.WithLabelValues().Set(ts(at)) }

// valid makes label values valid UTF-8 (client_golang panics on any that
// is not): a backend's path or a pool's name comes from a configuration
// file, a process name from the kernel log, as they are.
func valid(vs ...string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}
