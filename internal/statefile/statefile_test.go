package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("hello"), 0o644)
	if b, err := Read(ok, 5); err != nil || string(b) != "hello" {
		t.Errorf("Read(5 bytes, max 5) = %q, %v", b, err)
	}
	if _, err := Read(ok, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read(5 bytes, max 4) = %v, want ErrTooLarge", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want fs.ErrNotExist", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Would block for ever without O_NONBLOCK: no writer ever comes.
	if _, err := Read(fifo, 4); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a FIFO") {
		t.Errorf("Read(fifo) = %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(ok, link)
	if _, err := Read(link, 10); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("Read(symlink) = %v", err)
	}
	if _, err := Read(dir, 10); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Read(dir) = %v", err)
	}
}

func TestOpenFIFOForWriting(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "lock")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flags := range []int{unix.O_RDWR | unix.O_CREAT, unix.O_WRONLY, unix.O_RDONLY} {
		if f, err := Open(fifo, flags, 0o600); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(fifo, %#x) = %v, want ErrNotRegular", flags, err)
			if f != nil {
				f.Close()
			}
		}
	}
}

func TestOpenClearsNonblock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := Open(path, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("flags %#x, %v: O_NONBLOCK still set", fl, err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := Check(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("Check(missing) = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	if err := Check(filepath.Join(dir, "f")); err != nil {
		t.Errorf("Check(file) = %v", err)
	}
	if err := Check(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Check(dir) = %v", err)
	}
}
