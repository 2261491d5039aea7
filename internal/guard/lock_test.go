package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

func TestLockRefusesNonRegular(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(path string) error
		what string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "is a FIFO"},
		{"symlink", func(p string) error { return os.Symlink("/etc/passwd", p) }, "is a symbolic link"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, "is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := c.make(filepath.Join(dir, LockFile)); err != nil {
				t.Fatal(err)
			}
			_, err := lock(context.Background(), dir, time.Second)
			if !errors.Is(err, ErrNoLock) || !strings.Contains(err.Error(), c.what) {
				t.Fatalf("lock = %v, want ErrNoLock saying %q", err, c.what)
			}
			cfg := Config{StateDir: dir, LockWait: time.Second}
			// sync: refused, and says nothing changed.
			if _, _, err := cfg.lock(context.Background(), false); err == nil || !strings.Contains(err.Error(), "nothing changed") {
				t.Errorf("cfg.lock(strict) = %v", err)
			}
			// remove, restore, dry runs: go on, with the reason as a warning.
			unlock, warn, err := cfg.lock(context.Background(), true)
			if err != nil || !strings.Contains(warn, c.what) || !strings.HasSuffix(warn, "going on without it") {
				t.Fatalf("cfg.lock(best effort) = %q, %v", warn, err)
			}
			unlock()
		})
	}
}

func TestLockBestEffortStillWaitsForAnotherRun(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lock(context.Background(), dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	cfg := Config{StateDir: dir, LockWait: 100 * time.Millisecond}
	if _, _, err := cfg.lock(context.Background(), true); !errors.Is(err, ErrLocked) {
		t.Errorf("best-effort lock while another run holds it = %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.LockWait = time.Minute
	if _, _, err := cfg.lock(ctx, false); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("interrupted while waiting = %v", err)
	}
}
