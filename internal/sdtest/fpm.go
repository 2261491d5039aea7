package sdtest

import (
	"os"
	"strings"
)

// FPMPool is Debian's PHP-FPM 8.2 pool with its ping page on (ping.path =
// /ping), as a File for Options.Files; ok is false when PHP-FPM 8.2 is not
// installed.
func FPMPool() (f File, ok bool) {
	const p = "/etc/php/8.2/fpm/pool.d/www.conf"
	b, err := os.ReadFile(p)
	if err != nil {
		return File{}, false
	}
	s := strings.Replace(string(b), "\n;ping.path = /ping\n", "\nping.path = /ping\n", 1)
	return File{Path: p, Data: []byte(s)}, strings.Contains(s, "\nping.path = /ping\n")
}
