package recovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// ErrNoSystemd is returned when systemd is not this machine's init (no
// /run/systemd/system) or cannot be reached over D-Bus.
var ErrNoSystemd = errors.New("systemd is not running here")

// DialTimeout bounds connecting to systemd.
const DialTimeout = 10 * time.Second

// runDir is where systemd says it booted the machine (sd_booted(3)).
var runDir = "/run/systemd/system"

// conn is the part of systemd's D-Bus API that recovery uses;
// *sddbus.Conn is the real one.
type conn interface {
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	Connected() bool
	Close()
}

var _ conn = (*sddbus.Conn)(nil)

// dialFunc connects to systemd.
type dialFunc func(ctx context.Context) (conn, error)

// dialSystemd connects to systemd: directly on its private socket when
// root (no dbus-daemon needed), else through the system bus. The dial is
// bounded by DialTimeout and ctx; the connection itself outlives ctx
// (godbus closes a connection when the context it was dialled with ends).
func dialSystemd(ctx context.Context) (conn, error) {
	if _, err := os.Stat(runDir); err != nil {
		return nil, fmt.Errorf("%w (no %s)", ErrNoSystemd, runDir)
	}
	done := make(chan dialResult, 1)
	go func() {
		bg := context.WithoutCancel(ctx)
		var c *sddbus.Conn
		var err error
		if os.Geteuid() == 0 {
			c, err = sddbus.NewSystemdConnectionContext(bg)
		}
		if c == nil {
			var err2 error
			if c, err2 = sddbus.NewSystemConnectionContext(bg); err == nil {
				err = err2
			}
		}
		done <- dialResult{c, err}
	}()
	t := time.NewTimer(DialTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.c == nil {
			return nil, fmt.Errorf("%w: connecting over D-Bus: %v", ErrNoSystemd, r.err)
		}
		return r.c, nil
	case <-t.C:
		go closeLate(done)
		return nil, fmt.Errorf("%w: connecting over D-Bus: no answer in %s", ErrNoSystemd, DialTimeout)
	case <-ctx.Done():
		go closeLate(done)
		return nil, ctx.Err()
	}
}

type dialResult struct {
	c   *sddbus.Conn
	err error
}

// closeLate closes a connection that arrived after its caller gave up.
func closeLate(done <-chan dialResult) {
	if r := <-done; r.c != nil {
		r.c.Close()
	}
}
