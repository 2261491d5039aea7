// Package regfile reads a configuration file the way a parser of other
// people's files must: only a regular file (symbolic links followed, as
// Debian's sites-enabled and pool.d hold them), opened without blocking so
// that a FIFO is refused instead of waited on, and at most a bounded size so
// that an include naming /dev/zero or a huge file is refused instead of read
// without end. State files that cfguard writes itself go through
// internal/statefile, which also refuses symbolic links.
package regfile

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Read returns the contents of the regular file name, at most max bytes.
func Read(name string, max int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB, more than any configuration file", name, max>>20)
	}
	return b, nil
}
