package guard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/internal/statefile"
)

// LockWait bounds how long a run waits for another run (the timer and a
// person, say) to finish before giving up without touching anything.
const LockWait = 2 * time.Minute

// lockPoll is how often a waiting run tries the lock again.
const lockPoll = 50 * time.Millisecond

// LockFile is the name of the lock in the state directory.
const LockFile = "lock"

// ErrLocked is returned when another run held the lock for longer than the
// wait allowed.
var ErrLocked = errors.New("another cfguard run holds the lock")

// ErrNoLock is matched when the lock cannot be had at all: the state
// directory is read-only or full and holds no lock file yet, or the lock is
// not a regular file. remove and --dry-run go on without it (with a
// warning); sync and restore refuse.
var ErrNoLock = errors.New("cannot take the lock")

type noLockError struct {
	path string
	err  error
}

func (e *noLockError) Error() string {
	if errors.Is(e.err, statefile.ErrNotRegular) {
		return fmt.Sprintf("cannot take the lock: %v", e.err) // names the path
	}
	return fmt.Sprintf("cannot take the lock %s: %v", e.path, e.err)
}
func (e *noLockError) Unwrap() []error { return []error{ErrNoLock, e.err} }

// lock takes an exclusive flock on dir/lock, waiting up to wait. The lock is
// released by the returned function, or by the kernel if the process dies.
// The lock file is opened without following a symlink and without blocking,
// and refused unless it is a regular file. On a read-only or full state
// directory an existing lock file is opened read-only (flock needs no write
// access); when there is none, the error matches ErrNoLock.
func lock(ctx context.Context, dir string, wait time.Duration) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := openLock(dir, path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, &noLockError{path, err}
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w %s (waited %s)", ErrLocked, path, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

func openLock(dir, path string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		if readOnlyOrFull(err) {
			return nil, &noLockError{path, fmt.Errorf("state directory: %w", unwrapPath(err))}
		}
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := statefile.Open(path, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, statefile.ErrNotRegular) {
		return nil, &noLockError{path, err}
	}
	if !readOnlyOrFull(err) {
		return nil, fmt.Errorf("lock: %w", err)
	}
	// Read-only or full: an existing lock still locks, opened read-only.
	f, rerr := statefile.Open(path, unix.O_RDONLY, 0)
	if rerr == nil {
		return f, nil
	}
	if errors.Is(rerr, statefile.ErrNotRegular) {
		return nil, &noLockError{path, rerr}
	}
	return nil, &noLockError{path, unwrapPath(err)}
}

// readOnlyOrFull reports whether err says the state directory cannot be
// written: read-only, no space or quota, permission.
func readOnlyOrFull(err error) bool {
	for _, e := range []error{unix.EROFS, unix.ENOSPC, unix.EDQUOT, unix.EACCES, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
