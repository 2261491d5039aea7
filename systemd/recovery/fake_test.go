package recovery

import (
	"context"
	"errors"
	"sync"
	"time"
)

// fakeConn is systemd as the tests want it: units by name, a job result
// (or none, or an error) for each restart, and a record of the restarts.
type fakeConn struct {
	mu       sync.Mutex
	units    map[string]map[string]any // Unit properties
	services map[string]map[string]any // Service properties
	result   string                    // sent on the job channel; "" sends nothing
	err      error                     // returned by RestartUnitContext
	propErr  error
	closed   bool
	restarts []string
}

var _ conn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{
		units: map[string]map[string]any{
			"php8.2-fpm.service": {"LoadState": "loaded", "ActiveState": "failed", "SubState": "failed"},
			"masked.service":     {"LoadState": "masked", "ActiveState": "inactive", "SubState": "dead"},
		},
		services: map[string]map[string]any{
			"php8.2-fpm.service": {"Result": "signal", "MainPID": uint32(0), "NRestarts": uint32(2)},
		},
		result: "done",
	}
}

func (f *fakeConn) GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.propErr != nil {
		return nil, f.propErr
	}
	if p, ok := f.units[unit]; ok {
		return p, nil
	}
	// systemd answers for any name: a unit it cannot load is "not-found".
	return map[string]any{"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead"}, nil
}

func (f *fakeConn) GetUnitTypePropertiesContext(ctx context.Context, unit, typ string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if typ != "Service" {
		return nil, errors.New("unknown interface")
	}
	return f.services[unit], nil
}

func (f *fakeConn) RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.restarts = append(f.restarts, name+" "+mode)
	if f.result != "" {
		ch <- f.result
	}
	return len(f.restarts), nil
}

func (f *fakeConn) Connected() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.closed }
func (f *fakeConn) Close()          { f.mu.Lock(); defer f.mu.Unlock(); f.closed = true }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// fakeRun answers configuration tests: output and error per command line.
type fakeRun struct {
	out   string
	err   error
	block bool // wait for the context to end
	calls int
}

func (r *fakeRun) run(ctx context.Context, argv []string) ([]byte, error) {
	r.calls++
	if r.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte(r.out), r.err
}
