package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/metrics"
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
