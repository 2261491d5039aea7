package recovery

import (
	"fmt"
	"sync"
	"time"
)

// Policy is the per-unit rate limit on restarts.
//
// A unit may be restarted Burst times in any Window. After that every
// further restart waits a delay after the previous one: Initial at first,
// doubling with each restart, up to Max. The unit leaves backoff, and its
// history is forgotten, once Quiet has passed without a restart.
//
// With DefaultPolicy: 3 restarts in 10 minutes, then waits of 1, 2, 4, 8,
// 16, 30, 30, … minutes between restarts, reset after a quiet hour. A
// backend that dies every few seconds is thus restarted at most 3 times in
// its first ten minutes and about twice an hour after the first hour.
type Policy struct {
	Burst   int
	Window  time.Duration
	Initial time.Duration
	Max     time.Duration
	Quiet   time.Duration
}

// DefaultPolicy is the rate limit New uses.
var DefaultPolicy = Policy{
	Burst:   3,
	Window:  10 * time.Minute,
	Initial: time.Minute,
	Max:     30 * time.Minute,
	Quiet:   time.Hour,
}

// history is what the limiter remembers of one unit.
type history struct {
	restarts []time.Time   // within Window of the last one, oldest first
	delay    time.Duration // 0: not backing off
	last     time.Time     // the last restart
	first    time.Time     // the first restart since the history was forgotten
	total    int           // restarts since first
}

// limiter applies a Policy to every unit. It is safe for concurrent use.
type limiter struct {
	p     Policy
	mu    sync.Mutex
	units map[string]*history
}

func newLimiter(p Policy) *limiter {
	return &limiter{p: p, units: map[string]*history{}}
}

// allow says whether unit may be restarted at now; when not, the one-line
// reason names the restarts and the time of the next attempt.
func (l *limiter) allow(unit string, now time.Time) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.get(unit, now)
	recent := h.recent(now, l.p.Window)
	if h.delay == 0 && recent < l.p.Burst {
		return true, ""
	}
	delay := h.delay
	if delay == 0 {
		delay = l.p.Initial
	}
	next := h.last.Add(delay)
	if now.Before(next) {
		what := fmt.Sprintf("%d restarts in the last %s", recent, l.p.Window)
		if h.delay > 0 {
			what = fmt.Sprintf("%d restarts since %s", h.total, h.first.UTC().Format(time.RFC3339))
		}
		return false, fmt.Sprintf("backing off: %s, next attempt after %s", what, next.UTC().Format(time.RFC3339))
	}
	return true, ""
}

// record notes a restart of unit at now (whatever its result: a restart
// that fails counts, so a unit that never comes up is not retried in a loop).
func (l *limiter) record(unit string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.get(unit, now)
	inBackoff := h.delay > 0 || h.recent(now, l.p.Window) >= l.p.Burst
	switch {
	case h.delay > 0:
		h.delay = min(h.delay*2, l.p.Max)
	case inBackoff:
		h.delay = min(l.p.Initial*2, l.p.Max)
	}
	h.restarts = append(h.restarts, now)
	if h.total == 0 {
		h.first = now
	}
	h.total++
	h.last = now
	h.prune(now, l.p.Window)
}

// get returns unit's history, forgotten when it has been quiet long enough.
func (l *limiter) get(unit string, now time.Time) *history {
	h := l.units[unit]
	if h == nil || (!h.last.IsZero() && now.Sub(h.last) >= l.p.Quiet) {
		h = &history{}
		l.units[unit] = h
	}
	return h
}

func (h *history) recent(now time.Time, window time.Duration) int {
	n := 0
	for _, t := range h.restarts {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}

func (h *history) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(h.restarts) && now.Sub(h.restarts[i]) >= window {
		i++
	}
	h.restarts = h.restarts[i:]
}
