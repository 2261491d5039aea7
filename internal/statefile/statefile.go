// Package statefile opens cfguard's own files in the state directory (the
// cache, the lock) so that nothing placed there can make a run hang or read
// without end: no symlink is followed, a FIFO or device is refused before
// anything blocks on it, and every read is bounded.
package statefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is matched by every *NotRegularError.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned by Read for a file larger than its limit.
var ErrTooLarge = errors.New("file too large")

// NotRegularError says what sits where a regular file was expected.
type NotRegularError struct {
	Path string
	What string // "a FIFO", "a symbolic link", "a directory", …
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file (remove it)", e.Path, e.What)
}

func (e *NotRegularError) Unwrap() error { return ErrNotRegular }

// Open opens path with flags plus O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC and
// returns it only if it is a regular file; O_NONBLOCK is cleared again
// afterwards. A missing file gives an error matching fs.ErrNotExist.
func Open(path string, flags int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if errors.Is(err, unix.ELOOP) {
		return nil, &NotRegularError{Path: path, What: "a symbolic link"}
	}
	if errors.Is(err, unix.EISDIR) {
		return nil, &NotRegularError{Path: path, What: "a directory"}
	}
	if errors.Is(err, unix.ENXIO) { // a FIFO opened write-only with no reader, a socket
		return nil, &NotRegularError{Path: path, What: describe(path)}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, What: what(fi.Mode())}
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return f, nil
}

// Check returns a *NotRegularError when path exists and is not a regular
// file (without following a symlink), nil when it is one or is missing.
func Check(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return &NotRegularError{Path: path, What: what(fi.Mode())}
	}
	return nil
}

// Read reads at most max bytes of the regular file at path; a longer file
// gives ErrTooLarge.
func Read(path string, max int64) ([]byte, error) {
	f, err := Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, max)
	}
	return data, nil
}

func describe(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return "not a regular file"
	}
	return what(fi.Mode())
}

func what(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "not a regular file"
	}
}
