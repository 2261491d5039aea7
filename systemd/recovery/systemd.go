package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// JobTimeout bounds the wait for a restart job. systemd's own start and
// stop timeouts (TimeoutStartSec=, TimeoutStopSec=, 90 s by default) end
// the job before this in the usual case.
const JobTimeout = 90 * time.Second

// ErrJobTimeout is returned (wrapped) when the restart job did not end in
// JobTimeout.
var ErrJobTimeout = errors.New("restart job did not finish")

// Systemd is the Recoverer that talks to systemd over D-Bus. It is safe for
// concurrent use.
type Systemd struct {
	dial        dialFunc
	dialSignals func(ctx context.Context) (signals, error) // nil: Changes is refused
	run         runFunc
	now         func() time.Time
	limit       *limiter
	timeout     time.Duration

	mu sync.Mutex
	c  conn
}

var _ Recoverer = (*Systemd)(nil)

// New connects to systemd and returns a Recoverer with DefaultPolicy. When
// systemd is not this machine's init or not reachable, the error wraps
// ErrNoSystemd.
func New(ctx context.Context) (*Systemd, error) {
	s := newSystemd(dialSystemd, execRun, time.Now, DefaultPolicy)
	s.dialSignals = dialSignalConn
	if _, err := s.conn(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newSystemd takes every seam: how to reach systemd, how to run the
// configuration test, the clock and the rate limit.
func newSystemd(dial dialFunc, run runFunc, now func() time.Time, p Policy) *Systemd {
	return &Systemd{dial: dial, run: run, now: now, limit: newLimiter(p), timeout: JobTimeout}
}

// Close ends the connection to systemd.
func (s *Systemd) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// conn returns the connection, dialling again when systemd closed it (a
// daemon-reexec does).
func (s *Systemd) conn(ctx context.Context) (conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && s.c.Connected() {
		return s.c, nil
	}
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

// unitName adds ".service" to a name without a unit type, as systemctl
// does ("php8.2-fpm" is php8.2-fpm.service).
func unitName(u string) string {
	for _, suf := range []string{".service", ".socket", ".target", ".timer", ".mount", ".path", ".slice", ".scope", ".swap", ".device", ".automount"} {
		if strings.HasSuffix(u, suf) {
			return u
		}
	}
	return u + ".service"
}

// State reads what systemd says of unit.
func (s *Systemd) State(ctx context.Context, unit string) (UnitState, error) {
	name := unitName(unit)
	st := UnitState{Unit: name}
	c, err := s.conn(ctx)
	if err != nil {
		return st, err
	}
	p, err := c.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return st, fmt.Errorf("reading unit %s: %w", name, err)
	}
	st.LoadState, _ = p["LoadState"].(string)
	st.ActiveState, _ = p["ActiveState"].(string)
	st.SubState, _ = p["SubState"].(string)
	if st.LoadState != "loaded" || !strings.HasSuffix(name, ".service") {
		return st, nil
	}
	sp, err := c.GetUnitTypePropertiesContext(ctx, name, "Service")
	if err != nil {
		return st, fmt.Errorf("reading service %s: %w", name, err)
	}
	st.Result, _ = sp["Result"].(string)
	st.MainPID, _ = sp["MainPID"].(uint32)
	st.NRestarts, _ = sp["NRestarts"].(uint32)
	return st, nil
}

// Recover brings req.Unit back: it must be loaded and not held by systemd's
// own start limit, its configuration test must pass and the rate limit
// must allow a restart; then the unit is
// restarted (job mode "replace") and the job's result awaited, at most
// JobTimeout.
func (s *Systemd) Recover(ctx context.Context, req Request) Action {
	a := Action{Request: req, At: s.now()}
	name := unitName(req.Unit)
	st, err := s.State(ctx, name)
	if err != nil {
		a.Err = err
		return a
	}
	switch st.LoadState {
	case "loaded":
	case "masked":
		a.Refused = fmt.Sprintf("unit %s is masked", name)
		return a
	default:
		a.Refused = fmt.Sprintf("unit %s is not loaded (%s)", name, st.LoadState)
		return a
	}
	if st.Result == "start-limit-hit" {
		// A restart job would fail at once: systemd's own StartLimitBurst=
		// holds the unit until someone resets it.
		a.Refused = fmt.Sprintf("systemd's start limit holds %s (start-limit-hit): it restarted too often; `systemctl reset-failed %s` lets it start again", name, name)
		return a
	}
	refused, err := configTest(ctx, s.run, req.ConfigTest)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		a.Err = err
		return a
	}
	if refused != "" {
		a.Refused = refused
		return a
	}
	if ok, why := s.limit.allow(name, s.now()); !ok {
		a.Refused = why
		return a
	}
	c, err := s.conn(ctx)
	if err != nil {
		a.Err = err
		return a
	}
	// Buffered: go-systemd sends the result while holding its job lock,
	// so a result nobody waits for any more must not block it.
	ch := make(chan string, 1)
	s.limit.record(name, s.now())
	if _, err := c.RestartUnitContext(ctx, name, "replace", ch); err != nil {
		a.Err = fmt.Errorf("restarting %s: %w", name, err)
		return a
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		a.Restarted, a.JobResult = true, r
	case <-t.C:
		a.Err = fmt.Errorf("restarting %s: %w in %s", name, ErrJobTimeout, s.timeout)
	case <-ctx.Done():
		a.Err = fmt.Errorf("restarting %s: waiting for the job: %w", name, ctx.Err())
	}
	return a
}
