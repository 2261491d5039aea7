// Package recovery brings a dead or hung backend's systemd unit back, through
// systemd's D-Bus API, when the administrator allows it: the service's
// configuration is tested first (a broken one is never restarted), restarts
// are rate-limited per unit with backoff, and every decision is an Action
// that says what was done and why.
//
// This file is the contract between `cfguard watch` (verify/watch), which
// decides that a unit needs help, and the implementation in this package,
// which talks to systemd. Both sides code against it.
package recovery

import (
	"context"
	"time"
)

// Reasons a unit is brought back.
const (
	ReasonDown = "down" // unit failed or inactive, socket gone, connection refused
	ReasonHung = "hung" // probes time out in a row, or listen queue full with every child busy
)

// Request asks for one unit to be brought back.
type Request struct {
	Unit     string // e.g. "php8.2-fpm.service"
	Reason   string // ReasonDown or ReasonHung
	Evidence string // one line: what the watch saw, e.g. "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"
	// ConfigTest is the command run before restarting, e.g.
	// {"php-fpm8.2", "-t"}, {"nginx", "-t"}, {"apachectl", "configtest"};
	// nil when none is known (then the unit is restarted without a test).
	ConfigTest []string
}

// Action is what was done about a Request.
type Action struct {
	Request
	At        time.Time
	Restarted bool   // a restart job was run and systemd reported JobResult
	JobResult string // systemd's job result: "done", "failed", "timeout", …
	// Refused says why nothing was restarted, one line: "configuration test
	// failed: …", "backing off: 3 restarts in the last 10m0s, next attempt
	// after 2026-12-02T03:10:00Z", "unit is not loaded".
	Refused string
	Err     error // talking to systemd failed
}

// UnitState is what systemd says of a unit.
type UnitState struct {
	Unit        string
	LoadState   string // "loaded", "not-found", "masked"
	ActiveState string // "active", "inactive", "failed", "activating", …
	SubState    string // "running", "dead", "failed", "auto-restart", …
	Result      string // "success", "oom-kill", "exit-code", "signal", …
	MainPID     uint32
	NRestarts   uint32
}

// Recoverer is what the watch needs from systemd.
type Recoverer interface {
	// State reads a unit's state.
	State(ctx context.Context, unit string) (UnitState, error)
	// Recover tests the configuration, applies the rate limit and, when
	// both allow it, restarts the unit and waits (bounded) for the job.
	Recover(ctx context.Context, req Request) Action
}
