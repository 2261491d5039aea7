package watch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/metrics"
	"github.com/cfguard/cfguard/verify/report"
)

type rig struct {
	clk  *clock
	bk   *fakeBackends
	g    *fakeGuard
	rec  *fakeRecoverer
	m    *metrics.Metrics
	w    *Watcher
	logs *strings.Builder
}

func newRig(t *testing.T, cfg Config) *rig {
	r := &rig{clk: newClock(), bk: &fakeBackends{bs: []backend.Watched{fpmBackend}, script: map[string][]backend.Check{}},
		g: &fakeGuard{present: true}, rec: &fakeRecoverer{act: recovery.Action{Restarted: true, JobResult: "done"}},
		m: metrics.New(), logs: &strings.Builder{}}
	s := Seams{
		Discover:  func(context.Context) (Backends, error) { return r.bk, nil },
		Guard:     r.g,
		Recoverer: r.rec,
		Now:       r.clk.now,
	}
	r.w = New(cfg, s, r.m, testLogger(r.logs))
	return r
}

// rounds runs n rounds, the clock moving by the interval between them.
func (r *rig) rounds(n int) []Round {
	var out []Round
	for range n {
		out = append(out, r.w.Step(context.Background()))
		r.clk.step(r.w.cfg.Interval)
	}
	return out
}

var down = backend.Check{State: backend.StateDown, Detail: "unix:/run/php/php8.2-fpm.sock: the socket does not exist"}
var hung = backend.Check{State: backend.StateHung, Detail: "unix:/run/php/php8.2-fpm.sock: accepted, but no answer within 3s"}
var up = backend.Check{State: backend.StateUp, Detail: "answered"}

func TestDownBackendOneRequest(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	r.rec.state = recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "oom-kill"}
	r.bk.set(fpmBackend.Target, down)
	r.rounds(6) // 30 s down: one request (the next waits for RetryEvery)
	want := []recovery.Request{{Unit: "php8.2-fpm.service", Reason: recovery.ReasonDown,
		Evidence:   "unix:/run/php/php8.2-fpm.sock: the socket does not exist; systemd: php8.2-fpm.service is failed (failed), result oom-kill",
		ConfigTest: []string{"php-fpm8.2", "-t"}}}
	if diff := cmp.Diff(want, r.rec.reqs); diff != "" {
		t.Errorf("requests (-want +got)\n%s", diff)
	}
	if !strings.Contains(r.logs.String(), "restarted php8.2-fpm.service because it was down") {
		t.Errorf("log lacks the action:\n%s", r.logs)
	}
	// Still down after RetryEvery: asked again.
	r.clk.step(DefaultRetryEvery)
	r.rounds(1)
	if len(r.rec.reqs) != 2 {
		t.Errorf("after RetryEvery still down: %d requests, want 2", len(r.rec.reqs))
	}
}

func TestDownOnceIsNoRequest(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	r.bk.set(fpmBackend.Target, down, up) // one failed probe: an administrator's restart, say
	r.rounds(5)
	if len(r.rec.reqs) != 0 {
		t.Errorf("requests %+v after one down probe, want none", r.rec.reqs)
	}
}

// A backend down in its first round whose unit systemd reports failed (a
// crash, an OOM kill) is brought back at once; one whose unit is active, or
// whose state cannot be read, waits for the second round.
func TestDownAndUnitDeadAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name    string
		state   recovery.UnitState
		firstAt int
	}{
		{"failed", recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "signal"}, 0},
		{"inactive", recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}, 0},
		{"active (socket gone, process alive)", recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "active", SubState: "running"}, 1},
		{"unknown", recovery.UnitState{}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, Config{Recover: true})
			r.rec.state = tt.state
			r.bk.set(fpmBackend.Target, down, down, down)
			rs := r.rounds(3)
			first := -1
			for i, x := range rs {
				if len(x.Actions) > 0 && first < 0 {
					first = i
				}
			}
			if first != tt.firstAt || len(r.rec.reqs) != 1 {
				t.Errorf("first request in round %d (%d requests), want round %d and one request", first, len(r.rec.reqs), tt.firstAt)
			}
		})
	}
	// Recovery off: systemd is not even asked, nothing is requested.
	r := newRig(t, Config{})
	r.rec.state = recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed"}
	r.bk.set(fpmBackend.Target, down)
	r.rounds(1)
	if len(r.rec.reqs) != 0 {
		t.Errorf("recovery off: %d requests", len(r.rec.reqs))
	}
}

func TestHungThreeInARow(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	r.bk.set(fpmBackend.Target, hung, hung, up, hung, hung, hung, up)
	rs := r.rounds(7)
	var at []int
	for i, x := range rs {
		if len(x.Actions) > 0 {
			at = append(at, i)
		}
	}
	if diff := cmp.Diff([]int{5}, at); diff != "" {
		t.Errorf("rounds with an action (-want +got)\n%s", diff)
	}
	if len(r.rec.reqs) != 1 || r.rec.reqs[0].Reason != recovery.ReasonHung ||
		r.rec.reqs[0].Evidence != hung.Detail+" (3 probes in a row)" {
		t.Errorf("requests = %+v, want one hung", r.rec.reqs)
	}
}

func TestRecoveryOffAsksNothing(t *testing.T) {
	r := newRig(t, Config{})
	r.bk.set(fpmBackend.Target, down)
	r.rounds(4)
	if len(r.rec.reqs) != 0 {
		t.Errorf("requests %+v with recovery off", r.rec.reqs)
	}
	if n := strings.Count(r.logs.String(), "recovery is off"); n != 1 {
		t.Errorf("said recovery is off %d times, want once:\n%s", n, r.logs)
	}
}

func TestRefusedCounted(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	r.rec.act = recovery.Action{Refused: "configuration test failed: php-fpm8.2 -t: ERROR: [pool www] cannot get uid for user 'nobody2'"}
	r.bk.set(fpmBackend.Target, down)
	r.rounds(3)
	r.clk.step(DefaultRetryEvery)
	r.rounds(1)
	want := `
# HELP cfguard_recoveries_refused_total Recoveries refused (configuration test failed, backing off, unit not loaded).
# TYPE cfguard_recoveries_refused_total counter
cfguard_recoveries_refused_total{reason="down",unit="php8.2-fpm.service"} 2
`
	if err := testutil.GatherAndCompare(r.m.Registry(), strings.NewReader(want), "cfguard_recoveries_refused_total", "cfguard_recoveries_total"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(r.logs.String(), "did not restart php8.2-fpm.service: configuration test failed") {
		t.Errorf("log lacks the refusal:\n%s", r.logs)
	}
}

func TestVanishedTableRestoredOnce(t *testing.T) {
	r := newRig(t, Config{})
	r.rounds(2)
	r.g.present = false // nft flush ruleset
	rs := r.rounds(3)
	if r.g.restores != 1 || !rs[0].Restored {
		t.Errorf("restores = %d (first round restored: %v), want 1 at once", r.g.restores, rs[0].Restored)
	}
	want := `
# HELP cfguard_guard_protected 1 when cfguard's table is present, hooked and its Cloudflare sets are not empty.
# TYPE cfguard_guard_protected gauge
cfguard_guard_protected 1
# HELP cfguard_guard_restores_total Times the watch put a vanished table back from the cache.
# TYPE cfguard_guard_restores_total counter
cfguard_guard_restores_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(r.m.Registry(), strings.NewReader(want), "cfguard_guard_protected", "cfguard_guard_restores_total"); err != nil {
		t.Error(err)
	}
}

func TestNeverSeenTableNotCreated(t *testing.T) {
	r := newRig(t, Config{})
	r.g.present = false
	r.rounds(3)
	if r.g.restores != 0 {
		t.Errorf("restores = %d for a table the watch never saw, want 0", r.g.restores)
	}
}

func TestFailedRestoreRetried(t *testing.T) {
	r := newRig(t, Config{})
	r.rounds(1)
	r.g.present, r.g.err = false, errTest
	r.rounds(3)
	if r.g.restores != 1 {
		t.Errorf("restores = %d within RetryEvery, want 1", r.g.restores)
	}
	r.clk.step(DefaultRetryEvery)
	r.rounds(1)
	if r.g.restores != 2 {
		t.Errorf("restores = %d after RetryEvery, want 2", r.g.restores)
	}
}

func TestWebListenerDown(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	r.bk.webs = []backend.Web{nginxWeb}
	r.w.s.Listener = func(ctx context.Context, web backend.Web, i int) string { return "nothing listens on 127.0.0.1:80" }
	r.rounds(2)
	want := []recovery.Request{{Unit: "nginx.service", Reason: recovery.ReasonDown,
		Evidence:   "nginx does not accept connections on 127.0.0.1:80: nothing listens on 127.0.0.1:80",
		ConfigTest: []string{"nginx", "-t"}}}
	if diff := cmp.Diff(want, r.rec.reqs); diff != "" {
		t.Errorf("requests (-want +got)\n%s", diff)
	}
}

func TestLogLinesCountedAndEvidence(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	line := `2026/12/02 03:00:01 [error] 12#12: *5 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 198.51.100.7, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.test"`
	e, ok := logs.Classify(logs.Nginx, line)
	if !ok {
		t.Fatal("the classifier does not know the line")
	}
	f := &fakeFollower{}
	r.w.s.Follow = func([]backend.LogFile) Follower { return f }
	r.w.s.Kernel = &fakeFollower{q: []logs.Entry{{Source: logs.Kernel, Kind: logs.OOMKill, Victim: "php-fpm8.2"}}}
	r.bk.set(fpmBackend.Target, down)
	r.rounds(1)
	f.q = []logs.Entry{e, e}
	r.rounds(1)
	if len(r.rec.reqs) != 1 || !strings.Contains(r.rec.reqs[0].Evidence, "nginx logged 'connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream' 2 times since the last check") {
		t.Errorf("requests %+v lack the log evidence", r.rec.reqs)
	}
	want := `
# HELP cfguard_oom_kills_total Processes the kernel's OOM killer killed while the watch ran.
# TYPE cfguard_oom_kills_total counter
cfguard_oom_kills_total{process="php-fpm8.2"} 1
`
	if err := testutil.GatherAndCompare(r.m.Registry(), strings.NewReader(want), "cfguard_oom_kills_total"); err != nil {
		t.Error(err)
	}
	want = `
# HELP cfguard_log_events_total Error-log lines the watch classified as a cause of 5xx, as they were written.
# TYPE cfguard_log_events_total counter
cfguard_log_events_total{kind="killed by the OOM killer",source="kernel"} 1
cfguard_log_events_total{kind="no such file",source="nginx"} 2
`
	if err := testutil.GatherAndCompare(r.m.Registry(), strings.NewReader(want), "cfguard_log_events_total"); err != nil {
		t.Error(err)
	}
}

func TestRunNotifies(t *testing.T) {
	r := newRig(t, Config{Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	done := make(chan error)
	go func() {
		done <- r.w.Run(ctx, func(s string) {
			got = append(got, s)
			if len(got) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after its context ended")
	}
	if diff := cmp.Diff([]string{"READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"}, got); diff != "" {
		t.Errorf("notifications (-want +got)\n%s", diff)
	}
}

// slowRecoverer holds Recover until the watchdog has been told three times
// that the watch lives (bounded).
type slowRecoverer struct {
	fakeRecoverer
	pings chan struct{}
	saw   int
}

func (r *slowRecoverer) Recover(ctx context.Context, req recovery.Request) recovery.Action {
	deadline := time.After(30 * time.Second)
	for r.saw < 3 {
		select {
		case <-r.pings:
			r.saw++
		case <-deadline:
			return recovery.Action{Request: req, Err: errTest}
		}
	}
	return recovery.Action{Request: req, Restarted: true, JobResult: "done"}
}

func TestWatchdogFedDuringRecovery(t *testing.T) {
	r := newRig(t, Config{Recover: true, Interval: time.Millisecond})
	slow := &slowRecoverer{pings: make(chan struct{}, 100)}
	r.w.s.Recoverer = slow
	r.w.s.Alive = func() {
		select {
		case slow.pings <- struct{}{}:
		default:
		}
	}
	r.bk.set(fpmBackend.Target, down)
	rs := r.rounds(2)
	if len(rs[1].Actions) != 1 || rs[1].Actions[0].Err != nil {
		t.Fatalf("actions = %+v: the watchdog was not fed while the restart job ran", rs[1].Actions)
	}
}

// gatedBackends holds each probe until ProbeConcurrency are in flight (or
// its context ends) and records the most in flight.
type gatedBackends struct {
	fakeBackends
	mu            sync.Mutex
	inFlight, max int
}

func (g *gatedBackends) Probe(ctx context.Context, b backend.Watched) backend.Check {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.mu.Unlock()
	for {
		g.mu.Lock()
		full := g.max >= ProbeConcurrency
		g.mu.Unlock()
		if full || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return backend.Check{State: backend.StateUp}
}

func TestProbesBoundedConcurrency(t *testing.T) {
	g := &gatedBackends{}
	for i := range 3 * ProbeConcurrency {
		g.bs = append(g.bs, backend.Watched{Target: fmt.Sprintf("127.0.0.1:%d", 9000+i)})
	}
	w := New(Config{ProbeTimeout: 5 * time.Second}, Seams{Discover: func(context.Context) (Backends, error) { return g, nil }}, nil, nil)
	r := w.Step(context.Background())
	if len(r.Backends) != len(g.bs) {
		t.Fatalf("%d results for %d backends", len(r.Backends), len(g.bs))
	}
	if g.max != ProbeConcurrency {
		t.Errorf("at most %d probes in flight, want %d", g.max, ProbeConcurrency)
	}
}

func TestRediscover(t *testing.T) {
	r := newRig(t, Config{})
	n := 0
	r.w.s.Discover = func(context.Context) (Backends, error) { n++; return r.bk, nil }
	r.rounds(3)
	if n != 1 {
		t.Fatalf("discovered %d times in 3 rounds, want once", n)
	}
	r.bk.bs = append(r.bk.bs, backend.Watched{Web: "nginx", Module: "proxy", Target: "127.0.0.1:3000", Unit: "node-app.service"})
	r.w.Rediscover()
	rs := r.rounds(2)
	if n != 2 || len(rs[0].Backends) != 2 {
		t.Errorf("after Rediscover: discovered %d times, %d backends watched; want 2 and 2", n, len(rs[0].Backends))
	}
	r.clk.step(DefaultFullEvery)
	r.rounds(1)
	if n != 3 {
		t.Errorf("after --full-every: discovered %d times, want 3", n)
	}
}

func TestFullVerifyEveryPathsEvery(t *testing.T) {
	r := newRig(t, Config{PathsEvery: time.Minute})
	n := 0
	r.w.s.Verify = func(context.Context) (*report.Report, error) {
		n++
		return &report.Report{Paths: []report.Path{{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.1", Port: 443, Scheme: "https", Status: 502, Stage: report.StageUpstream}}}, nil
	}
	for range 25 { // two minutes at 5 s
		r.w.Step(context.Background())
		r.w.vmu.Lock()
		done := r.w.vdone
		r.w.vmu.Unlock()
		if done != nil {
			<-done
		}
		r.clk.step(DefaultInterval)
	}
	if n != 3 {
		t.Errorf("verify ran %d times in 2 minutes with --paths-every 1m, want 3 (at 0, 1m, 2m)", n)
	}
	want := `
# HELP cfguard_paths_failing Paths verify predicts would fail.
# TYPE cfguard_paths_failing gauge
cfguard_paths_failing 1
`
	if err := testutil.GatherAndCompare(r.m.Registry(), strings.NewReader(want), "cfguard_paths_failing"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(r.logs.String(), "a path would fail"); n != 1 {
		t.Errorf("a path failing the same way three times is logged %d times, want once:\n%s", n, r.logs)
	}
}

// TestTwoPoolsOneUnit: one pool of a unit down, the other up: the unit is
// asked for once, not again every round because its other pool answers.
func TestTwoPoolsOneUnit(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	other := fpmBackend
	other.Target, other.Pool = "unix:/run/php/shop.sock", "shop"
	r.bk.bs = append(r.bk.bs, other)
	r.rec.act = recovery.Action{Refused: "backing off"}
	r.bk.set(fpmBackend.Target, down)
	r.rounds(8)
	if len(r.rec.reqs) != 1 {
		t.Errorf("%d requests in 8 rounds, want 1", len(r.rec.reqs))
	}
}

// TestBackendGoneFromConfig: a backend the configuration no longer names
// leaves the metrics.
func TestBackendGoneFromConfig(t *testing.T) {
	r := newRig(t, Config{})
	r.rounds(1)
	r.bk.bs = nil
	r.w.Rediscover()
	r.rounds(1)
	if n := testutil.CollectAndCount(r.m.Registry(), "cfguard_backend_up"); n != 0 {
		t.Errorf("%d cfguard_backend_up series after the backend left the configuration, want 0", n)
	}
}

func TestPathLogOnChange(t *testing.T) {
	r := newRig(t, Config{})
	p := report.Path{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.1", Port: 443, Scheme: "https"}
	fail502, fail504, ok := p, p, p
	fail502.Status, fail502.Stage, fail502.Cause = 502, report.StageUpstream, "php-fpm is not running"
	fail504.Status, fail504.Stage, fail504.Cause = 504, report.StageUpstream, "every child is busy"
	ok.OK, ok.Status = true, 200
	for _, x := range []report.Path{fail502, fail502, fail504, ok, ok} {
		r.w.logPaths(&report.Report{Paths: []report.Path{x}})
	}
	out := r.logs.String()
	for want, n := range map[string]int{"a path would fail": 2, "a path passes again": 1, "every path walked": 2} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%q logged %d times, want %d:\n%s", want, got, n, out)
		}
	}
}

// TestLogLinesSaidOncePerMinute: the same error every round is said at
// once, then once a minute with the count since.
func TestLogLinesSaidOncePerMinute(t *testing.T) {
	r := newRig(t, Config{})
	e, _ := logs.Classify(logs.Nginx, `2026/12/02 03:00:01 [error] 12#12: *5 connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to upstream, client: 198.51.100.7, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.test"`)
	f := &fakeFollower{}
	r.w.s.Follow = func([]backend.LogFile) Follower { return f }
	for range 13 { // one minute at 5 s, and the round after it
		f.q = []logs.Entry{e, e}
		r.rounds(1)
	}
	var said []string
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(l, "nginx logged") {
			_, msg, _ := strings.Cut(l, "times")
			said = append(said, strings.TrimSpace(strings.SplitN(msg, `"`, 2)[0]))
		}
	}
	if diff := cmp.Diff([]string{"", "since 03:00:00"}, said); diff != "" {
		t.Errorf("what was said after the count (-want +got)\n%s\n%s", diff, r.logs)
	}
	if !strings.Contains(r.logs.String(), "2 times\"") || !strings.Contains(r.logs.String(), "24 times since 03:00:00") {
		t.Errorf("counts: want 2 at once, then 24 since the first:\n%s", r.logs)
	}
}

// A change systemd signals for a unit the watch depends on starts a round
// at once (the interval here is an hour); a change of any other unit does
// not. The backend is down and its unit failed: that first round asks for
// the restart.
func TestUnitChangeStartsARound(t *testing.T) {
	r := newRig(t, Config{Recover: true, Interval: time.Hour})
	r.rec.state = recovery.UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "signal"}
	changes := make(chan string, 4)
	r.w.s.Changes = func(context.Context) (<-chan string, error) { return changes, nil }
	ctx, cancel := context.WithCancel(context.Background())
	notified := make(chan string, 16)
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx, func(s string) { notified <- s }) }()
	next := func() string {
		select {
		case s := <-notified:
			return s
		case <-time.After(30 * time.Second):
			t.Fatal("no round within 30 s")
		}
		return ""
	}
	if s := next(); s != "READY=1" {
		t.Fatalf("first notification %q", s)
	}
	r.bk.set(fpmBackend.Target, down)
	changes <- "cron.service"
	changes <- "php8.2-fpm.service"
	if s := next(); s != "WATCHDOG=1" {
		t.Fatalf("after the change: %q, want a round (WATCHDOG=1)", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(r.rec.reqs) != 1 || r.rec.reqs[0].Unit != "php8.2-fpm.service" {
		t.Errorf("requests after the change's round: %+v, want one for php8.2-fpm.service", r.rec.reqs)
	}
	select {
	case s := <-notified:
		if s != "STOPPING=1" {
			t.Errorf("a second round (%q) after one change of a watched unit and one of cron.service", s)
		}
	default:
	}
}

func TestUnitChangesUnavailable(t *testing.T) {
	r := newRig(t, Config{Interval: time.Millisecond})
	r.w.s.Changes = func(context.Context) (<-chan string, error) { return nil, errTest }
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	if err := r.w.Run(ctx, func(string) {
		if n++; n == 3 {
			cancel()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.logs.String(), "not following systemd's unit changes") {
		t.Errorf("log does not say unit changes are not followed:\n%s", r.logs)
	}
}
