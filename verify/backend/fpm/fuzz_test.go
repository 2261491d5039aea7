package fpm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no php-fpm.conf panics the reader, and every pool it finds can
// say where it listens. Inputs with an include are skipped: those are read
// from this host's disk.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/php-fpm.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	if ms, _ := filepath.Glob("testdata/pool.d/*"); len(ms) > 0 {
		for _, m := range ms {
			if b, err := os.ReadFile(m); err == nil {
				f.Add(string(b))
			}
		}
	}
	for _, s := range []string{
		"",
		"[global]\nerror_log = /var/log/php8.2-fpm.log\n[www]\nlisten = /run/php/php8.2-fpm.sock\npm = dynamic\npm.max_children = 5\nrequest_terminate_timeout = 30s\n",
		"[api]\nlisten = 127.0.0.1:9000\nlisten.mode = 0660\npm.status_path = /status\nping.path = /ping\n",
		"[$pool]\nlisten = /run/$pool.sock\n",
		"[x]\nlisten = [::1]:9001\nrequest_terminate_timeout = 1m\n",
		"key without equals\n",
		"[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(strings.ToLower(text), "include") {
			t.Skip("includes are read from this host's disk")
		}
		c, err := Parse("/nonexistent/php/8.2/fpm/php-fpm.conf", text)
		if err != nil {
			return
		}
		c.Unit()
		for _, p := range c.Pools {
			p.Target()
		}
	})
}
