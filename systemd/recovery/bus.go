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
// root (no dbus-daemon needed), else through the system bus.
func dialSystemd(ctx context.Context) (conn, error) {
	if _, err := os.Stat(runDir); err != nil {
		return nil, fmt.Errorf("%w (no %s)", ErrNoSystemd, runDir)
	}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	var c *sddbus.Conn
	var err error
	if os.Geteuid() == 0 {
		c, err = sddbus.NewSystemdConnectionContext(ctx)
	}
	if c == nil {
		var err2 error
		c, err2 = sddbus.NewSystemConnectionContext(ctx)
		if err2 != nil {
			if err == nil {
				err = err2
			}
			return nil, fmt.Errorf("%w: connecting over D-Bus: %v", ErrNoSystemd, err)
		}
	}
	return c, nil
}
