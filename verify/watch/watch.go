package watch

import (
	"context"
	"log/slog"
	"sync"
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
	// StopTimeout bounds the wait for a running full verify at shutdown.
	StopTimeout = 5 * time.Second
)

// Config is what the watch is told; the CLI fills it from flags.
type Config struct {
	Interval  time.Duration // between rounds of fast checks
	FullEvery time.Duration // between full verify runs (and rediscoveries)
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
	guardSeen  bool                     // the table was present at some point
	guardLast  string                   // the last guard problem logged
	restoreAt  time.Time                // last restore attempt
	discErr    string

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
		lastAsked: map[string]time.Time{}, listenDown: map[string]string{}, guardLast: "\x00"}
}

// Run checks every Interval until ctx ends. notify gets "READY=1" after the
// first round, "WATCHDOG=1" after every round and "STOPPING=1" when ctx
// ends; a running full verify is waited for at most StopTimeout.
func (w *Watcher) Run(ctx context.Context, notify func(state string)) error {
	if notify == nil {
		notify = func(string) {}
	}
	w.Step(ctx)
	notify("READY=1")
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			notify("STOPPING=1")
			w.stop()
			return nil
		case <-t.C:
			w.Step(ctx)
			notify("WATCHDOG=1")
		}
	}
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
