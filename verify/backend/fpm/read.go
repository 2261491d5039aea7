package fpm

import (
	"fmt"
	"io"
	"os"
)

// maxConfigBytes caps one configuration file: the largest real ones are a
// few hundred kilobytes. An include that names /dev/zero, a FIFO or a huge
// file is refused instead of read without end.
const maxConfigBytes = 8 << 20

// readConfig reads one configuration file: a regular file (symbolic links
// followed) of at most maxConfigBytes.
func readConfig(name string) ([]byte, error) {
	f, err := os.Open(name)
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
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB, more than any configuration file", name, maxConfigBytes>>20)
	}
	return b, nil
}
