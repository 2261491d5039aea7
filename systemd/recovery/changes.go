package recovery

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// changeBuffer is how many unit changes wait for the watch before newer
// ones are dropped (the watch only needs to know that something changed).
const changeBuffer = 64

// signals is the part of systemd's D-Bus API that follows unit changes;
// *sddbus.Conn is the real one.
type signals interface {
	Subscribe() error
	SetPropertiesSubscriber(updateCh chan<- *sddbus.PropertiesUpdate, errCh chan<- error)
	Close()
}

var _ signals = (*sddbus.Conn)(nil)

// ChangeFollower follows systemd's unit changes; the watch, given one,
// checks at once when a unit it depends on changes state.
type ChangeFollower interface {
	Changes(ctx context.Context) (<-chan string, error)
}

var _ ChangeFollower = (*Systemd)(nil)

// Changes follows systemd's signals and sends the name of each unit whose
// state changes (e.g. "php8.2-fpm.service" when its master is killed and
// systemd marks it failed), until ctx ends; then the channel is closed. It
// uses a connection of its own, so a restart job never waits behind a
// burst of signals. Sends never block: when the reader lags, changes are
// dropped (the next check reads the state anyway).
func (s *Systemd) Changes(ctx context.Context) (<-chan string, error) {
	if s.dialSignals == nil {
		return nil, fmt.Errorf("%w: no D-Bus connection for signals", ErrNoSystemd)
	}
	c, err := s.dialSignals(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(); err != nil {
		c.Close()
		return nil, fmt.Errorf("subscribing to systemd's unit changes: %w", err)
	}
	return forward(ctx, c), nil
}

// forward passes on the units whose ActiveState or SubState c reports
// changed, until ctx ends. The properties come with the signal: no call
// back into systemd per change. systemd sends a unit's whole property set
// whenever anything of it changes — PHP-FPM's STATUS= line every 10 s
// included — so a unit is passed on only when its state differs from the
// one last seen.
func forward(ctx context.Context, c signals) <-chan string {
	updates := make(chan *sddbus.PropertiesUpdate, changeBuffer)
	errs := make(chan error, changeBuffer)
	c.SetPropertiesSubscriber(updates, errs)
	out := make(chan string, changeBuffer)
	go func() {
		defer close(out)
		defer c.Close()
		seen := states{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				// "update channel is full": changes were dropped; the
				// ones still queued say enough.
			case u := <-updates:
				if u == nil || !seen.changed(u.UnitName, u.Changed) {
					continue
				}
				select {
				case out <- u.UnitName:
				default:
				}
			}
		}
	}()
	return out
}

// maxStates bounds the units whose state forward remembers; past it, it
// forgets them all (the next signal of each is then passed on once).
const maxStates = 4096

// states is the last ActiveState and SubState seen per unit.
type states map[string][2]string

// changed records what the signal says of unit's state and reports whether
// it differs from what was seen before (a unit first seen counts as
// changed). A signal without either property changes nothing.
func (st states) changed(unit string, props map[string]dbus.Variant) bool {
	a, okA := props["ActiveState"]
	b, okS := props["SubState"]
	if !okA && !okS {
		return false
	}
	prev, known := st[unit]
	now := prev
	if okA {
		now[0] = fmt.Sprint(a.Value())
	}
	if okS {
		now[1] = fmt.Sprint(b.Value())
	}
	if known && now == prev {
		return false
	}
	if !known && len(st) >= maxStates {
		clear(st)
	}
	st[unit] = now
	return true
}

// dialSignalConn dials a connection to systemd for signals.
func dialSignalConn(ctx context.Context) (signals, error) {
	c, err := dialSystemd(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := c.(*sddbus.Conn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%w: not a systemd D-Bus connection", ErrNoSystemd)
	}
	return sc, nil
}
