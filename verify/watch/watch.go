package watch

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/metrics"
	"github.com/cfguard/cfguard/verify/report"
)

// Defaults of Config.
const (
	DefaultInterval   = 5 * time.Second
	DefaultFullEvery  = 5 * time.Minute
	DefaultPathsEvery = time.Minute
	DefaultHungAfter  = 3
	DefaultDownAfter  = 2
	DefaultRetryEvery = time.Minute
	// DefaultProbeTimeout bounds one backend or listener probe.
	DefaultProbeTimeout = 3 * time.Second
	// DiscoverTimeout bounds one discovery of the web servers and backends.
	DiscoverTimeout = 30 * time.Second
	// RecoverTimeout bounds one Recover call (config test + restart job).
	RecoverTimeout = 2 * time.Minute
	// GuardTimeout bounds reading the guard's status, and one restore.
	GuardTimeout = 15 * time.Second
	// LogEvery is how often one kind of log line about one place is said
	// again while it keeps coming.
	LogEvery = time.Minute
	// ProbeConcurrency bounds the backend probes in flight.
	ProbeConcurrency = 8
	// VerifyTimeout is the least time one full verify may take.
	VerifyTimeout = 5 * time.Minute
	// StopTimeout bounds the wait for a running full verify at shutdown.
	StopTimeout = 5 * time.Second
)

// Config is what the watch is told; the CLI fills it from flags.
type Config struct {
	Interval time.Duration // between rounds of fast checks
	// FullEvery is between reads of the Cloudflare API (the verifier's
	// zone cache keeps them that long) and rediscoveries of the web servers.
	FullEvery time.Duration
	// PathsEvery is between walks of every path (the full verify, with the
	// zone data cached in between).
	PathsEvery time.Duration
	// Recover allows recovery.Requests (--recover); without it the watch
	// only says what it would ask for.
	Recover bool
	// HungAfter probes in a row that time out (or find the pool saturated)
	// make a backend hung; DownAfter probes in a row that find it gone or
	// refusing make it down.
	HungAfter, DownAfter int
	// RetryEvery is how long a unit still down waits before it is asked
	// for again (the Recoverer rate-limits on its own too).
	RetryEvery   time.Duration
	ProbeTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.FullEvery <= 0 {
		c.FullEvery = DefaultFullEvery
	}
	if c.PathsEvery <= 0 {
		c.PathsEvery = min(DefaultPathsEvery, c.FullEvery)
	}
	if c.HungAfter <= 0 {
		c.HungAfter = DefaultHungAfter
	}
	if c.DownAfter <= 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.RetryEvery <= 0 {
		c.RetryEvery = DefaultRetryEvery
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
}

// Backends is the analysis behind the web server (*backend.Analyzer).
type Backends interface {
	Backends() []backend.Watched
	Probe(ctx context.Context, b backend.Watched) backend.Check
	Webs() []backend.Web
	LogFiles() []backend.LogFile
}

var _ Backends = (*backend.Analyzer)(nil)

// Guard is cfguard's own table (internal/guard).
type Guard interface {
	Status(ctx context.Context, now time.Time) (guard.Status, error)
	Restore(ctx context.Context) (guard.Result, error)
}

// Follower yields the classified lines written since its last call.
type Follower interface {
	Read() []logs.Entry
	Close() error
}

// Seams are the watch's side effects, one small interface each; nil ones
// are skipped.
type Seams struct {
	// Discover finds the web servers and backends (backend.Discover).
	Discover func(ctx context.Context) (Backends, error)
	// Listener says whether something accepts on addr:port (probe.Listener);
	// "" means it does, else one line why not.
	Listener func(ctx context.Context, web backend.Web, i int) string
	Guard    Guard
	// Recoverer brings units back (systemd/recovery); nil or
	// !Config.Recover: nothing is restarted.
	Recoverer recovery.Recoverer
	// Verify runs the full verify (nil without a token or hostnames).
	Verify func(ctx context.Context) (*report.Report, error)
	// Follow follows these error logs from their current end.
	Follow func(files []backend.LogFile) Follower
	// Kernel follows the kernel log from its current end.
	Kernel Follower
	Now    func() time.Time
	// Alive is called before each step that may take long (discovery, a
	// recovery) so the command can tell systemd's watchdog it lives.
	Alive func()
	// Changes follows systemd's unit changes (recovery.Systemd.Changes):
	// a change of a unit the watch depends on starts a round at once
	// rather than at the next Interval. nil: rounds come every Interval.
	Changes func(ctx context.Context) (<-chan string, error)
}

// Watcher keeps the state between rounds.
type Watcher struct {
	cfg      Config
	s        Seams
	m        *metrics.Metrics
	log      *slog.Logger
	backs    Backends
	lastDisc time.Time
	follow   Follower
	files    []backend.LogFile

	state      map[string]*backendState // by Watched key
	lastAsked  map[string]time.Time     // unit → last Request
	listenDown map[string]string        // "nginx 127.0.0.1:80" → why, while down
	listenRun  map[string]int           // checks in a row it was down
	logGroups  map[string]*logGroup
	guardSeen  bool      // the table was present at some point
	guardLast  string    // the last guard problem logged
	restoreAt  time.Time // last restore attempt
	discErr    string

	rediscover atomic.Bool

	// Owned by the verify goroutine (one at a time).
	pathFail    map[string]string // failing path → status, stage and cause last logged
	pathsWalked int
	verifyErr   string

	vmu       sync.Mutex
	verifying bool
	lastFull  time.Time
	vdone     chan struct{}
}

type backendState struct {
	b          backend.Watched
	last       string // the last state logged
	downRun    int
	hungRun    int
	warnedOnce bool
}

// New makes a watcher. m and logger may be nil.
func New(cfg Config, s Seams, m *metrics.Metrics, logger *slog.Logger) *Watcher {
	cfg.defaults()
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Alive == nil {
		s.Alive = func() {}
	}
	if m == nil {
		m = metrics.New()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, s: s, m: m, log: logger, state: map[string]*backendState{},
		lastAsked: map[string]time.Time{}, listenDown: map[string]string{}, listenRun: map[string]int{}, logGroups: map[string]*logGroup{}, guardLast: "\x00"}
}

// Rediscover makes the next round look at the web servers' configuration
// again (SIGHUP, `systemctl reload cfguard-watch`). Safe to call from any
// goroutine.
func (w *Watcher) Rediscover() { w.rediscover.Store(true) }

// Run checks every Interval until ctx ends. notify gets "READY=1" after the
// first round, "WATCHDOG=1" after every round and "STOPPING=1" when ctx
// ends; a running full verify is waited for at most StopTimeout.
func (w *Watcher) Run(ctx context.Context, notify func(state string)) error {
	if notify == nil {
		notify = func(string) {}
	}
	changes := w.followChanges(ctx)
	w.Step(ctx)
	last := time.Now()
	notify("READY=1")
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	var soon <-chan time.Time // a round owed to a unit change, after WakeGap
	for {
		select {
		case <-ctx.Done():
			notify("STOPPING=1")
			w.stop()
			return nil
		case <-t.C:
		case u, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if !w.dependsOn(u) {
				continue
			}
			if gap := WakeGap - time.Since(last); gap > 0 {
				if soon == nil {
					soon = time.After(gap)
				}
				continue
			}
			w.log.Debug("systemd reports a change of a unit the watch depends on: checking now", "unit", u)
		case <-soon:
		}
		if ctx.Err() != nil {
			// A tick and the end of ctx were both ready: the end wins.
			notify("STOPPING=1")
			w.stop()
			return nil
		}
		soon = nil
		w.Step(ctx)
		last = time.Now()
		notify("WATCHDOG=1")
	}
}

// WakeGap is the least time between two rounds that unit changes start: a
// unit flapping through its states costs a round per WakeGap at most.
const WakeGap = 250 * time.Millisecond

// followChanges starts following systemd's unit changes, when it can.
func (w *Watcher) followChanges(ctx context.Context) <-chan string {
	if w.s.Changes == nil {
		return nil
	}
	ch, err := w.s.Changes(ctx)
	if err != nil {
		w.log.Info("not following systemd's unit changes: a backend that dies is seen at the next check", "interval", w.cfg.Interval, "err", err)
		return nil
	}
	return ch
}

// dependsOn reports whether unit serves a backend or a web server the
// watch checks.
func (w *Watcher) dependsOn(unit string) bool {
	for _, st := range w.state {
		if st.b.Unit == unit {
			return true
		}
	}
	if w.backs == nil {
		return false
	}
	for _, web := range w.backs.Webs() {
		if web.Unit == unit {
			return true
		}
	}
	return false
}

// alive runs fn, an operation bounded by limit (a discovery, a restart
// job, a restore), telling the watchdog every Interval that the watch lives
// — but no longer than limit: an fn that outlives its own bound is a hang
// the watchdog must see.
func (w *Watcher) alive(limit time.Duration, fn func()) {
	w.s.Alive()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		stop := time.After(limit)
		for {
			select {
			case <-done:
				return
			case <-stop:
				return
			case <-t.C:
				w.s.Alive()
			}
		}
	}()
	defer close(done)
	fn()
}

func (w *Watcher) stop() {
	if w.follow != nil {
		w.follow.Close()
	}
	if w.s.Kernel != nil {
		w.s.Kernel.Close()
	}
	w.vmu.Lock()
	done := w.vdone
	w.vmu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(StopTimeout):
		w.log.Warn("stopping while a full verify still runs")
	}
}
