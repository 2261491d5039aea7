package fpm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoad(t *testing.T) {
	dir, _ := filepath.Abs("testdata")
	text, _ := os.ReadFile(filepath.Join(dir, "php-fpm.conf"))
	conf := filepath.Join(t.TempDir(), "php-fpm.conf")
	os.WriteFile(conf, []byte(strings.ReplaceAll(string(text), "TESTDATA", dir)), 0o644)
	c, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if c.ErrorLog != "/var/log/php8.2-fpm.log" {
		t.Errorf("ErrorLog = %q", c.ErrorLog)
	}
	want := []*Pool{
		{Name: "shop", Listen: "127.0.0.1:9001", ListenMode: "0660", ListenBacklog: 64, User: "shop", Group: "shop", PM: "ondemand", MaxChildren: 20,
			RequestTerminateTimeout: 2 * time.Minute, MaxExecutionTime: 90 * time.Second, PingPath: "/ping", PingResponse: "pong", StatusPath: "/fpm-status", ErrorLog: "/var/log/fpm-shop.log",
			Slowlog: "log/shop.log.slow", RequestSlowlogTimeout: 5 * time.Second},
		{Name: "www", Listen: "/run/php/php8.2-fpm.sock", ListenOwner: "www-data", ListenGroup: "www-data", ListenMode: "0660", ListenBacklog: 511, User: "www-data", Group: "www-data", PM: "dynamic", MaxChildren: 5},
	}
	if d := cmp.Diff(want, c.Pools, cmpopts.IgnoreFields(Pool{}, "File", "Line")); d != "" {
		t.Errorf("pools (-want +got)\n%s", d)
	}
	type tgt struct{ N, A string }
	var got []tgt
	for _, p := range c.Pools {
		n, a := p.Target()
		got = append(got, tgt{n, a})
	}
	if d := cmp.Diff([]tgt{{"tcp", "127.0.0.1:9001"}, {"unix", "/run/php/php8.2-fpm.sock"}}, got); d != "" {
		t.Errorf("targets (-want +got)\n%s", d)
	}
}

func TestUnitFromPath(t *testing.T) {
	for in, want := range map[string]string{"/etc/php/8.2/fpm/php-fpm.conf": "php8.2-fpm", "/etc/php/7.4/fpm/pool.d/www.conf": "php7.4-fpm", "/opt/fpm.conf": ""} {
		if got := UnitFromPath(in); got != want {
			t.Errorf("UnitFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseError(t *testing.T) {
	if _, err := Parse("x.conf", "[www]\nthis is not ini\n"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v", err)
	}
}
