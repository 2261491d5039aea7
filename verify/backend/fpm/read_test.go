package fpm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An include of /dev/zero, or of a file past the cap, is refused with a
// reason instead of read without end.
func TestIncludeIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, []byte("[big]\nlisten = /run/big.sock\n"+strings.Repeat(";", maxConfigBytes)), 0o644)
	for _, tt := range []struct{ include, want string }{
		{"/dev/zero", "/dev/zero is not a regular file"},
		{big, "big.conf is larger than 8 MiB"},
	} {
		c, err := Parse(filepath.Join(dir, "php-fpm.conf"), "[global]\ninclude = "+tt.include+"\n")
		if err != nil {
			t.Fatalf("include %s: %v", tt.include, err)
		}
		if len(c.Errors) != 1 || !strings.Contains(c.Errors[0], tt.want) {
			t.Errorf("include %s: errors %q, want one containing %q", tt.include, c.Errors, tt.want)
		}
	}
}
