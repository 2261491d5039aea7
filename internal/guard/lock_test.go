package guard

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLockSerialisesAndGivesUp(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	unlock, err := lock(ctx, dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second run waits, then gives up with ErrLocked while the first holds it.
	if _, err := lock(ctx, dir, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock while held: %v, want ErrLocked", err)
	}
	// A waiting run gets the lock as soon as the first lets go.
	got := make(chan error, 1)
	go func() {
		u, err := lock(ctx, dir, time.Minute)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("the waiting run did not wait: %v", err)
	default:
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiting run after release: %v", err)
	}
	// A cancelled context stops the wait.
	unlock, _ = lock(ctx, dir, time.Second)
	defer unlock()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := lock(cctx, dir, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock with a cancelled context: %v", err)
	}
}
