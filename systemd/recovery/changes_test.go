package recovery

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// fakeSignals plays systemd's PropertiesChanged signals.
type fakeSignals struct {
	mu      sync.Mutex
	updates chan<- *sddbus.PropertiesUpdate
	closed  chan struct{}
}

func (f *fakeSignals) Subscribe() error { return nil }
func (f *fakeSignals) SetPropertiesSubscriber(u chan<- *sddbus.PropertiesUpdate, _ chan<- error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = u
}
func (f *fakeSignals) Close() { close(f.closed) }

func TestChangesPassesStateChangesOnly(t *testing.T) {
	f := &fakeSignals{closed: make(chan struct{})}
	s := newSystemd(nil, nil, time.Now, DefaultPolicy)
	s.dialSignals = func(context.Context) (signals, error) { return f, nil }
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(unit string, kv ...string) {
		m := map[string]dbus.Variant{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = dbus.MakeVariant(kv[i+1])
		}
		f.updates <- &sddbus.PropertiesUpdate{UnitName: unit, Changed: m}
	}
	send("cron.service", "CPUUsageNSec", "x")
	send("php8.2-fpm.service", "ActiveState", "active", "SubState", "running", "StatusText", "Processes active: 0")
	// PHP-FPM's STATUS= every 10 s: systemd sends the whole set again,
	// the state unchanged: not a change.
	send("php8.2-fpm.service", "ActiveState", "active", "SubState", "running", "StatusText", "Processes active: 1")
	send("nginx.service", "SubState", "running")
	send("php8.2-fpm.service", "ActiveState", "failed", "SubState", "failed")
	for _, want := range []string{"php8.2-fpm.service", "nginx.service", "php8.2-fpm.service"} {
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("got %q, want %q (a change of another property must not be passed on)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change passed on; want %q", want)
		}
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("a change after the end of the context")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the channel was not closed when the context ended")
	}
	select {
	case <-f.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the signal connection was not closed")
	}
}

func TestChangesNeverBlockTheSender(t *testing.T) {
	f := &fakeSignals{closed: make(chan struct{})}
	s := newSystemd(nil, nil, time.Now, DefaultPolicy)
	s.dialSignals = func(context.Context) (signals, error) { return f, nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Changes(ctx); err != nil {
		t.Fatal(err)
	}
	// Nobody reads: far more updates than the buffers hold must not block
	// forward (the real sender drops what does not fit; this one too).
	v := dbus.MakeVariant("x")
	for i := 0; i < 10*changeBuffer; i++ {
		select {
		case f.updates <- &sddbus.PropertiesUpdate{UnitName: "a.service", Changed: map[string]dbus.Variant{"ActiveState": v}}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { cancel(); <-f.closed; close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("forward hung with an unread channel")
	}
}

func TestChangesWithoutSignalConnection(t *testing.T) {
	s := newSystemd(nil, nil, time.Now, DefaultPolicy)
	if _, err := s.Changes(context.Background()); err == nil {
		t.Fatal("Changes without a way to reach systemd succeeded")
	}
}

func TestStatesBounded(t *testing.T) {
	st := states{}
	for i := range 3 * maxStates {
		if !st.changed(fmt.Sprint("u", i, ".service"), map[string]dbus.Variant{"ActiveState": dbus.MakeVariant("active")}) {
			t.Fatalf("unit %d, first seen, not reported as changed", i)
		}
	}
	if len(st) > maxStates {
		t.Errorf("%d units remembered, want at most %d", len(st), maxStates)
	}
}
