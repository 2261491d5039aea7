package backend

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/report"
)

// `systemctl show -p Id,LoadState,ActiveState,SubState,Result,NRestarts,
// ExecMainCode,ExecMainStatus,StateChangeTimestamp,UnitFileState UNIT…` as
// systemd 252 writes it: the properties in D-Bus order (the Service
// interface's before the Unit's), an empty property as "KEY=" (asked for
// with -p), timestamps "Mon 2026-11-23 20:41:07 UTC", a blank line between
// units.
const (
	showRunning = `Result=success
NRestarts=0
ExecMainCode=0
ExecMainStatus=0
Id=php8.2-fpm.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
StateChangeTimestamp=Mon 2026-11-23 08:02:11 UTC
`
	showOOM = `Result=oom-kill
NRestarts=0
ExecMainCode=2
ExecMainStatus=15
Id=php8.2-fpm.service
LoadState=loaded
ActiveState=failed
SubState=failed
UnitFileState=enabled
StateChangeTimestamp=Mon 2026-11-23 20:41:07 UTC
`
	showExit78 = `Result=exit-code
NRestarts=0
ExecMainCode=1
ExecMainStatus=78
Id=php8.2-fpm.service
LoadState=loaded
ActiveState=failed
SubState=failed
UnitFileState=enabled
StateChangeTimestamp=Mon 2026-11-23 20:41:07 UTC
`
	showLoop = `Result=exit-code
NRestarts=7
ExecMainCode=1
ExecMainStatus=78
Id=php8.2-fpm.service
LoadState=loaded
ActiveState=activating
SubState=auto-restart
UnitFileState=enabled
StateChangeTimestamp=Mon 2026-11-23 20:44:52 UTC
`
	showDisabled = `Result=success
NRestarts=0
ExecMainCode=0
ExecMainStatus=0
Id=php8.2-fpm.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=disabled
StateChangeTimestamp=
`
	showMasked = `Result=success
NRestarts=0
ExecMainCode=0
ExecMainStatus=0
Id=php8.2-fpm.service
LoadState=masked
ActiveState=inactive
SubState=dead
UnitFileState=masked
StateChangeTimestamp=Sun 2026-11-22 09:15:00 UTC
`
	showNotFound = `Result=success
NRestarts=0
ExecMainCode=0
ExecMainStatus=0
Id=php8.2-fpm.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
StateChangeTimestamp=
`
	showNginxFailed = `Result=exit-code
NRestarts=0
ExecMainCode=1
ExecMainStatus=1
Id=nginx.service
LoadState=loaded
ActiveState=failed
SubState=failed
UnitFileState=enabled
StateChangeTimestamp=Mon 2026-11-23 20:39:58 UTC
`
)

// sdNow is the tests' "now" (a Monday, like the fixtures); systemctl
// writes local time.
var sdNow = time.Date(2026, 11, 23, 21, 0, 0, 0, time.Local)

// systemdTimestamp is how systemctl writes a timestamp by default.
const systemdTimestamp = "Mon 2006-01-02 15:04:05 MST"

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseShow(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []unitState
	}{
		{"active (running)", showRunning, []unitState{{ID: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "active", SubState: "running", Result: "success",
			UnitFileState: "enabled", Changed: at("2026-11-23 08:02:11"), ChangedText: "Mon 2026-11-23 08:02:11 UTC"}}},
		{"failed, OOM killed", showOOM, []unitState{{ID: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "oom-kill",
			UnitFileState: "enabled", ExecMainCode: 2, ExecMainStatus: 15, Changed: at("2026-11-23 20:41:07"), ChangedText: "Mon 2026-11-23 20:41:07 UTC"}}},
		{"restart loop", showLoop, []unitState{{ID: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "activating", SubState: "auto-restart", Result: "exit-code",
			UnitFileState: "enabled", NRestarts: 7, ExecMainCode: 1, ExecMainStatus: 78, Changed: at("2026-11-23 20:44:52"), ChangedText: "Mon 2026-11-23 20:44:52 UTC"}}},
		{"never started: empty timestamp", showDisabled, []unitState{{ID: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "inactive", SubState: "dead", Result: "success",
			UnitFileState: "disabled"}}},
		{"not found", showNotFound, []unitState{{ID: "php8.2-fpm.service", LoadState: "not-found", ActiveState: "inactive", SubState: "dead", Result: "success"}}},
		{"two units, a blank line between", showOOM + "\n" + showNginxFailed, []unitState{
			{ID: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "oom-kill",
				UnitFileState: "enabled", ExecMainCode: 2, ExecMainStatus: 15, Changed: at("2026-11-23 20:41:07"), ChangedText: "Mon 2026-11-23 20:41:07 UTC"},
			{ID: "nginx.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "exit-code",
				UnitFileState: "enabled", ExecMainCode: 1, ExecMainStatus: 1, Changed: at("2026-11-23 20:39:58"), ChangedText: "Mon 2026-11-23 20:39:58 UTC"}}},
		{"unknown keys, a timestamp in another form, garbage", "Id=x.service\nFreezerState=running\nStateChangeTimestamp=@1795466467\nnot a property\nNRestarts=many\n",
			[]unitState{{ID: "x.service", ChangedText: "@1795466467"}}},
		{"a zone abbreviation Go does not know: local time all the same", "Id=x.service\nStateChangeTimestamp=Mon 2026-11-23 20:41:07 +03\n",
			[]unitState{{ID: "x.service", Changed: at("2026-11-23 20:41:07"), ChangedText: "Mon 2026-11-23 20:41:07 +03"}}},
		{"empty output", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseShow([]byte(tt.in)), cmp.AllowUnexported(unitState{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func mustShow(s string) *unitState {
	us := parseShow([]byte(s))
	if len(us) != 1 {
		panic("fixture is not one unit")
	}
	return &us[0]
}

// with changes a fixture's KEY=VALUE lines.
func with(fixture string, kv ...string) string {
	lines := strings.Split(fixture, "\n")
	for i := 0; i+1 < len(kv); i += 2 {
		for j, l := range lines {
			if strings.HasPrefix(l, kv[i]+"=") {
				lines[j] = kv[i] + "=" + kv[i+1]
			}
		}
	}
	return strings.Join(lines, "\n")
}

const fpmMemFix = "lower pm.max_children or memory_limit, or add memory"

// TestUnitStory: the clause systemd adds to "php-fpm is not running" and
// the fix that fits it, for every state; a running unit adds nothing.
func TestUnitStory(t *testing.T) {
	type story struct {
		Cause, Fix string
		OK         bool
	}
	tests := []struct {
		name   string
		st     string // fixture; "" = not read
		from   string
		others []string
		want   story
	}{
		{"not read (no systemd)", "", "", nil, story{}},
		{"active (running): nothing to add", showRunning, "", nil, story{}},
		{"reloading: nothing to add", with(showRunning, "ActiveState", "reloading", "SubState", "reload"), "", nil, story{}},
		{"failed, OOM kill", showOOM, "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (the kernel's OOM killer ended it)",
			"systemctl restart php8.2-fpm; then, before it happens again: " + fpmMemFix, true}},
		{"failed, exit status 78 (php-fpm's broken configuration)", showExit78, "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it exited with status 78, a configuration error)",
			"`php-fpm8.2 -t` names the configuration error; correct it, then systemctl restart php8.2-fpm", true}},
		{"failed, exit status 255", with(showExit78, "ExecMainStatus", "255"), "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it exited with status 255)",
			"systemctl restart php8.2-fpm; if it fails again, `journalctl -u php8.2-fpm -n 50` shows why (`php-fpm8.2 -t` checks the configuration)", true}},
		{"failed, killed by a signal", with(showOOM, "Result", "signal", "ExecMainStatus", "9"), "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it was killed by SIGKILL)",
			"systemctl restart php8.2-fpm (`journalctl -u php8.2-fpm -n 50` shows why it failed)", true}},
		{"failed, core dump", with(showOOM, "Result", "core-dump", "ExecMainCode", "3", "ExecMainStatus", "11"), "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it crashed with SIGSEGV and dumped core)",
			"systemctl restart php8.2-fpm (`journalctl -u php8.2-fpm -n 50` shows why it failed)", true}},
		{"failed, start timeout", with(showOOM, "Result", "timeout"), "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it did not start or stop within its timeout)",
			"systemctl restart php8.2-fpm (`journalctl -u php8.2-fpm -n 50` shows why it failed)", true}},
		{"failed yesterday: the date too", with(showOOM, "StateChangeTimestamp", "Sun 2026-11-22 23:59:01 UTC"), "", nil, story{
			"php8.2-fpm.service failed at 2026-11-22 23:59:01 (the kernel's OOM killer ended it)",
			"systemctl restart php8.2-fpm; then, before it happens again: " + fpmMemFix, true}},
		{"failed, gave up restarting", with(showExit78, "Result", "start-limit-hit", "NRestarts", "5"), "", nil, story{
			"php8.2-fpm.service failed at 20:41:07 (it failed too often in a row and systemd stopped restarting it)",
			"`journalctl -u php8.2-fpm -n 50` shows why it keeps failing (`php-fpm8.2 -t` checks the configuration); fix that, then systemctl reset-failed php8.2-fpm && systemctl restart php8.2-fpm", true}},
		{"restarting over and over", showLoop, "", nil, story{
			"php8.2-fpm.service is restarting over and over (7 restarts; the last time it exited with status 78, a configuration error)",
			"`journalctl -u php8.2-fpm -n 50` shows why it keeps failing (`php-fpm8.2 -t` checks the configuration); fix that — systemd keeps restarting it, but a restart alone will not hold", true}},
		{"restarting over and over, OOM kills", with(showLoop, "Result", "oom-kill", "ExecMainCode", "2", "ExecMainStatus", "9"), "", nil, story{
			"php8.2-fpm.service is restarting over and over (7 restarts; the last time the kernel's OOM killer ended it)",
			fpmMemFix + "; `journalctl -u php8.2-fpm -n 50` shows the kills", true}},
		{"restarting once (2 restarts)", with(showLoop, "NRestarts", "2", "ExecMainStatus", "1"), "", nil, story{
			"php8.2-fpm.service stopped at 20:44:52 (it exited with status 1) and systemd is restarting it",
			"systemd restarts it in a moment; `journalctl -u php8.2-fpm -n 50` shows why it stopped", true}},
		{"starting right now", with(showRunning, "ActiveState", "activating", "SubState", "start"), "", nil, story{
			"php8.2-fpm.service is starting right now (start)",
			"wait a moment and look again (systemctl status php8.2-fpm); if it stays activating, `journalctl -u php8.2-fpm -n 50` shows what it waits for", true}},
		{"stopped and disabled", showDisabled, "", nil, story{
			"php8.2-fpm.service is stopped and disabled (it does not start at boot)",
			"systemctl enable --now php8.2-fpm", true}},
		{"stopped, enabled", with(showRunning, "ActiveState", "inactive", "SubState", "dead", "StateChangeTimestamp", "Mon 2026-11-23 20:30:00 UTC"), "", nil, story{
			"php8.2-fpm.service is stopped (inactive since 20:30:00)",
			"systemctl start php8.2-fpm", true}},
		{"masked", showMasked, "", nil, story{
			"php8.2-fpm.service is masked (systemd will not start it)",
			"systemctl unmask php8.2-fpm && systemctl enable --now php8.2-fpm (if it was masked on purpose, point the web server at the backend that replaced it)", true}},
		{"not found, the name a guess, no other unit", showNotFound, "the socket path", nil, story{
			"there is no unit php8.2-fpm.service on this host (the name is a guess from the socket path)",
			"install it (apt install php8.2-fpm) and start it, or point the web server at the backend that should serve this", true}},
		{"not found, another PHP-FPM exists", showNotFound, "the socket path", []string{"php8.3-fpm"}, story{
			"there is no unit php8.2-fpm.service on this host (the name is a guess from the socket path)",
			"the units that exist are php8.3-fpm: start the one that should serve this (`systemctl start php8.3-fpm`) and point the web server at its socket, or install php8.2-fpm", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *unitState
			if tt.st != "" {
				st = mustShow(tt.st)
			}
			var got story
			got.Cause, got.Fix, got.OK = unitStory("php8.2-fpm", st, tt.from, tt.others, fpmMemFix, sdNow)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if got.OK {
				checkFixFitsCause(t, "php-fpm is not running: "+got.Cause, got.Fix)
			}
		})
	}
}

func TestWebUnitFindings(t *testing.T) {
	nginxRunning := with(showRunning, "Id", "nginx.service")
	tests := []struct {
		name    string
		st      string
		running bool
		want    []report.Finding
	}{
		{"not read", "", false, nil},
		{"running under its unit", nginxRunning, true, nil},
		{"not installed", with(showNotFound, "Id", "nginx.service"), false, nil},
		{"stopped (not failed): no finding", with(nginxRunning, "ActiveState", "inactive", "SubState", "dead"), false, nil},
		{"failed", showNginxFailed, false, []report.Finding{{Severity: report.SeverityError,
			Message: "the web server is not running: nginx.service failed at 20:39:58 (it exited with status 1); Cloudflare gets refused connections (521) for every site on this host",
			Fix:     "systemctl restart nginx; if it fails again, `journalctl -u nginx -n 50` shows why (`nginx -t` checks the configuration)"}}},
		{"restarting over and over", with(showLoop, "Id", "nginx.service", "ExecMainStatus", "1"), false, []report.Finding{{Severity: report.SeverityError,
			Message: "the web server is not running: nginx.service is restarting over and over (7 restarts; the last time it exited with status 1); Cloudflare gets refused connections (521) for every site on this host",
			Fix:     "`journalctl -u nginx -n 50` shows why it keeps failing (`nginx -t` checks the configuration); fix that — systemd keeps restarting it, but a restart alone will not hold"}}},
		{"runs, but restarted 4 times", with(nginxRunning, "NRestarts", "4"), true, []report.Finding{{Severity: report.SeverityWarning,
			Message: "nginx.service runs now, but systemd has restarted it 4 times since it was last started by hand: it keeps dying (`journalctl -u nginx -n 50` shows why)",
			Fix:     "`journalctl -u nginx` shows why it dies; the OOM findings, if any, name what was killed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *unitState
			if tt.st != "" {
				st = mustShow(tt.st)
			}
			if diff := cmp.Diff(tt.want, webUnitFindings("nginx", st, tt.running, sdNow)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// fakeSystemctl answers `systemctl show` from fixtures by unit name and
// counts the calls; a unit without a fixture is not found.
type fakeSystemctl struct {
	t      *testing.T
	units  map[string]string // "php8.2-fpm.service" → fixture
	err    error
	calls  [][]string
	forbid bool // fail the test if called (no systemd)
}

func (f *fakeSystemctl) show(_ context.Context, units []string) ([]byte, error) {
	if f.forbid {
		f.t.Errorf("systemctl show %v called without systemd", units)
	}
	f.calls = append(f.calls, units)
	if f.err != nil {
		return nil, f.err
	}
	var blocks []string
	for _, u := range units {
		fx, ok := f.units[u]
		if !ok {
			fx = with(showNotFound, "Id", u)
		}
		blocks = append(blocks, strings.TrimSuffix(fx, "\n"))
	}
	return []byte(strings.Join(blocks, "\n\n") + "\n"), nil
}

func TestFetchUnits(t *testing.T) {
	f := &fakeSystemctl{t: t, units: map[string]string{"php8.2-fpm.service": showOOM, "nginx.service": showNginxFailed}}
	a := &Analyzer{systemd: true, sys: system{showUnits: f.show}, units: map[string]*unitState{}}
	if err := a.fetchUnits(context.Background(), []string{"php8.2-fpm", "nginx.service", "php8.2-fpm", "bad name;rm", ""}); err != nil {
		t.Fatal(err)
	}
	if err := a.fetchUnits(context.Background(), []string{"nginx", "php8.2-fpm.service"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"php8.2-fpm.service", "nginx.service"}}, f.calls); diff != "" {
		t.Errorf("systemctl calls (-want +got)\n%s", diff)
	}
	got := map[string]string{}
	for _, u := range []string{"php8.2-fpm", "nginx", "apache2"} {
		if st := a.unitOf(u); st != nil {
			got[u] = st.ActiveState + "/" + st.Result
		}
	}
	if diff := cmp.Diff(map[string]string{"php8.2-fpm": "failed/oom-kill", "nginx": "failed/exit-code"}, got); diff != "" {
		t.Errorf("states (-want +got)\n%s", diff)
	}

	// systemctl fails: the error is returned once, nothing is asked again.
	f = &fakeSystemctl{t: t, err: errors.New("systemctl show: Failed to connect to bus: No such file or directory")}
	a = &Analyzer{systemd: true, sys: system{showUnits: f.show}, units: map[string]*unitState{}}
	if err := a.fetchUnits(context.Background(), []string{"nginx"}); err == nil {
		t.Error("no error from a failing systemctl")
	}
	if err := a.fetchUnits(context.Background(), []string{"nginx"}); err != nil || len(f.calls) != 1 || a.unitOf("nginx") != nil {
		t.Errorf("after a failure: err %v, %d calls, state %v", err, len(f.calls), a.unitOf("nginx"))
	}

	// No systemd: nothing is asked.
	f = &fakeSystemctl{t: t, forbid: true}
	a = &Analyzer{sys: system{showUnits: f.show}, units: map[string]*unitState{}}
	if err := a.fetchUnits(context.Background(), []string{"nginx"}); err != nil || a.unitOf("nginx") != nil {
		t.Errorf("without systemd: err %v, state %v", err, a.unitOf("nginx"))
	}
}

func TestCgroupUnit(t *testing.T) {
	type got struct {
		Unit string
		User bool
	}
	tests := []struct {
		name, in string
		want     got
	}{
		{"system service (cgroup v2)", "0::/system.slice/php8.2-fpm.service\n", got{"php8.2-fpm.service", false}},
		{"cgroup v1 lines", "12:pids:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n", got{"nginx.service", false}},
		{"a user's service", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/gunicorn.service\n", got{"gunicorn.service", true}},
		{"the user manager itself", "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n", got{"user@1000.service", false}},
		{"a login session", "0::/user.slice/user-1000.slice/session-3.scope\n", got{}},
		{"a container root", "0::/\n", got{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g got
			g.Unit, g.User = cgroupUnit(tt.in)
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestSdBooted(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		in   string
		want bool
	}{
		{"a directory", dir, true},
		{"missing", filepath.Join(dir, "none"), false},
		{"a file", file, false},
	} {
		if got := sdBooted(tt.in); got != tt.want {
			t.Errorf("%s: sdBooted(%s) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestSystemctlShowReal runs the real systemctl. Where systemd is the
// service manager it reads a unit every systemd host has and one that does
// not exist (read-only); where it is not (a container), systemctl fails and
// the error is one line.
func TestSystemctlShowReal(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("skipped: no systemctl")
	}
	ctx := context.Background()
	if !sdBooted(sdBootedDir) {
		_, err := systemctlShow(ctx, []string{"nginx.service"})
		t.Logf("without systemd: %v", err)
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "systemctl show: ") {
			t.Errorf("err = %q, want one line starting with systemctl show:", err)
		}
		return
	}
	out, err := systemctlShow(ctx, []string{"systemd-journald.service", "cfguard-test-no-such-unit.service"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemctl show:\n%s", out)
	us := parseShow(out)
	if len(us) != 2 {
		t.Fatalf("%d units parsed, want 2", len(us))
	}
	type idLoad struct{ ID, Load string }
	if diff := cmp.Diff([]idLoad{{"systemd-journald.service", "loaded"}, {"cfguard-test-no-such-unit.service", "not-found"}},
		[]idLoad{{us[0].ID, us[0].LoadState}, {us[1].ID, us[1].LoadState}}); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if us[0].ActiveState == "active" && us[0].Changed.IsZero() {
		t.Errorf("StateChangeTimestamp %q of an active unit not parsed", us[0].ChangedText)
	}
}
