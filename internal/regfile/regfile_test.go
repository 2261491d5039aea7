package regfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(file, []byte("listen 80;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, make([]byte, 2<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want, err string
	}{
		{"regular", file, "listen 80;\n", ""},
		{"symlink followed", link, "listen 80;\n", ""},
		{"fifo refused, not waited on", fifo, "", "not a regular file"},
		{"directory", dir, "", "not a regular file"},
		{"device", "/dev/zero", "", "not a regular file"},
		{"too big", big, "", "larger than 2 MiB"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	} {
		b, err := Read(tt.path, 2<<20)
		if string(b) != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: %q, %v; want %q, error containing %q", tt.name, b, err, tt.want, tt.err)
		}
	}
}
