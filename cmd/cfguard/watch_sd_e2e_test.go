package main

// End-to-end tests of `cfguard watch --recover` under a real systemd
// (internal/sdtest): Debian's nginx and php8.2-fpm units serve a PHP page in
// the sandbox, the watch runs there as cfguard-watch.service — the unit
// `make install` installs, with its hardening, Type=notify and watchdog —
// with CFGUARD_RECOVER=yes in /etc/default/cfguard, and the test breaks
// PHP-FPM the ways production does. Every wait polls with a bound; no
// timing is asserted.

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cfguard/cfguard/internal/sdtest"
)

const (
	fpmUnit   = "php8.2-fpm.service"
	fpmSock   = "unix:/run/php/php8.2-fpm.sock"
	watchUnit = "cfguard-watch.service"
	// recoverWait bounds the wait for the watch to bring FPM back: two
	// (down) or three (hung, each up to the probe timeout) rounds, the
	// config test and the restart.
	recoverWait = 60 * time.Second
)

// phpSite replaces Debian's default site: PHP through PHP-FPM's socket.
const phpSite = `server {
	listen 127.0.0.1:80 default_server;
	root /var/www/cfguard-test;
	index index.php;
	location ~ \.php$ {
		include snippets/fastcgi-php.conf;
		fastcgi_pass unix:/run/php/php8.2-fpm.sock;
	}
}
`

// watchDefaults is /etc/default/cfguard for the test: recovery on, and
// rounds every second so that the test is short.
const watchDefaults = `CFGUARD_RECOVER=yes
CFGUARD_WATCH_INTERVAL=1s
CFGUARD_WATCH_PROBE_TIMEOUT=1s
`

// sandboxSite boots nginx + PHP-FPM (with its ping and status pages) under
// systemd, with cfguard and cfguard-watch.service installed (not started)
// and its table restored.
func sandboxSite(t *testing.T) *sdtest.Sandbox {
	unit, err := os.ReadFile("../../systemd/" + watchUnit)
	if err != nil {
		t.Fatal(err)
	}
	pool, ok := sdtest.FPMPool()
	if !ok {
		t.Skip("skipped: php8.2-fpm is not installed")
	}
	pool.Data = []byte(strings.Replace(string(pool.Data), "\n;pm.status_path = /status\n", "\npm.status_path = /status\n", 1))
	sb := sdtest.Boot(t, sdtest.Options{Files: []sdtest.File{
		pool,
		{Path: "/usr/local/bin/cfguard", Src: cfguardBin, Mode: 0o755},
		{Path: "/etc/systemd/system/" + watchUnit, Data: []byte(strings.ReplaceAll(string(unit), "@BINDIR@", "/usr/local/bin"))},
		{Path: "/etc/default/cfguard", Data: []byte(watchDefaults)},
		{Path: "/etc/cfguard/api-token", Data: []byte{}, Mode: 0o600}, // as make install leaves it
		{Path: "/etc/nginx/sites-enabled/default", Data: []byte(phpSite)},
		{Path: "/var/www/cfguard-test/index.php", Data: []byte("<?php echo 'ok from php';\n")},
	}})
	for _, u := range []string{"nginx.service", fpmUnit} {
		sb.WaitFor(t, 30*time.Second, u+" active", func() bool { return unitProp(sb, u, "ActiveState") == "active" })
	}
	sb.WaitFor(t, 10*time.Second, "the PHP page through nginx", func() bool { return page(sb) })
	sb.MustExec(t, "/usr/local/bin/cfguard", "restore")
	return sb
}

func unitProp(sb *sdtest.Sandbox, unit, prop string) string {
	out, _ := sb.Exec("systemctl", "show", "-p", prop, "--value", unit)
	return strings.TrimSpace(out)
}

// page says whether the PHP page answers through nginx.
func page(sb *sdtest.Sandbox) bool {
	out, err := sb.Exec("curl", "-s", "--max-time", "2", "http://127.0.0.1/index.php")
	return err == nil && out == "ok from php"
}

// scrapeIn reads /metrics inside the sandbox; it fails t when it does not parse.
func scrapeIn(t *testing.T, sb *sdtest.Sandbox) map[string]*dtoFamily {
	t.Helper()
	body, err := sb.Exec("curl", "-sf", "--max-time", "5", "http://127.0.0.1:9847/metrics")
	if err != nil {
		return nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	out := map[string]*dtoFamily{}
	for name, f := range fams {
		df := &dtoFamily{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			df.series = append(df.series, series{labels, v})
		}
		out[name] = df
	}
	return out
}

type series struct {
	labels map[string]string
	value  float64
}
type dtoFamily struct{ series []series }

// value is the series of name whose labels include want (ok false when none).
func value(fams map[string]*dtoFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, s := range f.series {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestWatchRecoverUnderSystemd(t *testing.T) {
	sb := sandboxSite(t)
	// Type=notify: start returns once the watch said READY=1.
	sb.MustExec(t, "systemctl", "start", watchUnit)
	if s := unitProp(sb, watchUnit, "ActiveState") + " " + unitProp(sb, watchUnit, "SubState"); s != "active running" {
		t.Fatalf("%s is %s", watchUnit, s)
	}
	journal := func() string { return sb.Journal(watchUnit) }
	defer func() {
		if t.Failed() {
			t.Logf("watch journal:\n%s\nphp-fpm journal:\n%s", journal(), sb.Journal(fpmUnit))
		}
	}()
	up := map[string]string{"backend": fpmSock, "unit": fpmUnit}
	sb.WaitFor(t, 30*time.Second, "cfguard_backend_up{php-fpm} = 1", func() bool {
		v, ok := value(scrapeIn(t, sb), "cfguard_backend_up", up)
		return ok && v == 1
	})

	t.Run("killed php-fpm comes back", func(t *testing.T) {
		pid := unitProp(sb, fpmUnit, "MainPID")
		sb.MustExec(t, "systemctl", "kill", "-s", "KILL", fpmUnit)
		// The page may answer a little before systemd's restart job ends
		// (ExecStartPost): wait for the watch to report the job too.
		sb.WaitFor(t, recoverWait, "the PHP page answering again after kill -9, and the watch saying it restarted FPM", func() bool {
			return page(sb) && unitProp(sb, fpmUnit, "MainPID") != pid &&
				strings.Contains(journal(), "restarted php8.2-fpm.service because it was down")
		})
		// The watch sees it up again (and forgets it asked).
		sb.WaitFor(t, 30*time.Second, "cfguard_backend_up{php-fpm} = 1 again", func() bool {
			v, ok := value(scrapeIn(t, sb), "cfguard_backend_up", up)
			return ok && v == 1
		})
		if v, _ := value(scrapeIn(t, sb), "cfguard_recoveries_total", map[string]string{"unit": fpmUnit, "reason": "down"}); v != 1 {
			t.Errorf("cfguard_recoveries_total{down} = %v, want 1", v)
		}
	})

	t.Run("SIGSTOPped php-fpm comes back", func(t *testing.T) {
		sb.MustExec(t, "systemctl", "kill", "-s", "STOP", fpmUnit)
		if page(sb) {
			t.Fatal("the page answered with every FPM process stopped")
		}
		sb.WaitFor(t, recoverWait, "the PHP page answering again after SIGSTOP, and the watch saying it restarted FPM", func() bool {
			return page(sb) && strings.Contains(journal(), "restarted php8.2-fpm.service because it was hung")
		})
	})

	t.Run("guard table comes back after nft flush ruleset", func(t *testing.T) {
		sb.MustExec(t, "nft", "flush", "ruleset")
		sb.WaitFor(t, 30*time.Second, "table inet cfguard back", func() bool {
			out, err := sb.Exec("nft", "list", "table", "inet", "cfguard")
			return err == nil && strings.Contains(out, "cloudflare4")
		})
		if v, _ := value(scrapeIn(t, sb), "cfguard_guard_restores_total", map[string]string{"result": "ok"}); v < 1 {
			t.Errorf("cfguard_guard_restores_total{ok} = %v", v)
		}
	})

	t.Run("broken configuration is not restarted in a loop", func(t *testing.T) {
		const broken = "/etc/php/8.2/fpm/pool.d/broken.conf"
		sb.WriteFile(t, broken, []byte("[broken]\nbogus_key = 1\n"), 0o644)
		n := unitProp(sb, fpmUnit, "NRestarts")
		sb.MustExec(t, "systemctl", "kill", "-s", "KILL", fpmUnit)
		const want = "did not restart php8.2-fpm.service: configuration test failed: ERROR: [" + broken + ":2] unknown entry 'bogus_key'"
		sb.WaitFor(t, recoverWait, "the journal naming the configuration error", func() bool {
			return strings.Contains(journal(), want)
		})
		// Ten more rounds: the watch asks again at most once a minute,
		// and a refused restart starts nothing.
		for i := 0; i < 10; i++ {
			time.Sleep(time.Second)
		}
		if c := strings.Count(journal(), want); c != 1 {
			t.Errorf("the refusal was logged %d times in ten rounds, want once", c)
		}
		if s := unitProp(sb, fpmUnit, "ActiveState"); s != "failed" || unitProp(sb, fpmUnit, "NRestarts") != n {
			t.Errorf("php8.2-fpm.service with a broken config was touched: %s, NRestarts %s (was %s)", s, unitProp(sb, fpmUnit, "NRestarts"), n)
		}
		if v, _ := value(scrapeIn(t, sb), "cfguard_recoveries_refused_total", map[string]string{"unit": fpmUnit}); v != 1 {
			t.Errorf("cfguard_recoveries_refused_total = %v, want 1", v)
		}
		if v, ok := value(scrapeIn(t, sb), "cfguard_backend_up", up); !ok || v != 0 {
			t.Errorf("cfguard_backend_up = %v (%v), want 0", v, ok)
		}
		sb.MustExec(t, "rm", "-f", broken)
		sb.MustExec(t, "systemctl", "start", fpmUnit)
	})

	t.Run("the unit is still up, its watchdog fed", func(t *testing.T) {
		if s := unitProp(sb, watchUnit, "ActiveState"); s != "active" {
			t.Errorf("%s is %s", watchUnit, s)
		}
		if n := unitProp(sb, watchUnit, "NRestarts"); n != "0" {
			t.Errorf("%s restarted %s times (watchdog?)", watchUnit, n)
		}
		if u := unitProp(sb, watchUnit, "WatchdogUSec"); u != "1min" && u != "60000000" {
			t.Errorf("WatchdogUSec = %q", u)
		}
	})

	t.Run("metrics parse", func(t *testing.T) {
		fams := scrapeIn(t, sb)
		if fams == nil {
			t.Fatal("/metrics did not answer")
		}
		for _, name := range []string{"cfguard_backend_up", "cfguard_guard_protected", "cfguard_listener_up", "cfguard_watch_last_check_timestamp_seconds"} {
			if _, ok := fams[name]; !ok {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})
}
