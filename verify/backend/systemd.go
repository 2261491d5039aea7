package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/report"
)

// Reading unit states.
//
// systemd is the service manager when /run/systemd/system is a directory
// (sd_booted(3)); then the state of the web server's and backends' units
// is read with `systemctl show -p …`, whose KEY=VALUE output is systemd's
// documented machine-readable form (one block per unit, blank line
// between, in the order asked). systemctl rather than go-systemd's D-Bus
// client: no new dependency, it works wherever systemd does (as root over
// systemd's private socket even with no dbus-daemon), and its text is easy
// to feed to tests as fixtures.
const (
	SystemctlTimeout = 5 * time.Second // one `systemctl show` for all units

	sdBootedDir = "/run/systemd/system"
	// restartLoop: this many automatic restarts make a unit "restarting
	// over and over".
	restartLoop = 3
)

// unitProps are the properties asked of systemctl show.
var unitProps = []string{"Id", "LoadState", "ActiveState", "SubState", "Result", "NRestarts",
	"ExecMainCode", "ExecMainStatus", "StateChangeTimestamp", "UnitFileState"}

// unitState is what systemd says about one unit.
type unitState struct {
	ID            string // "php8.2-fpm.service"
	LoadState     string // loaded, not-found, masked, error, bad-setting
	ActiveState   string // active, reloading, inactive, failed, activating, deactivating
	SubState      string // running, dead, failed, auto-restart, …
	Result        string // success, exit-code, signal, core-dump, oom-kill, timeout, watchdog, start-limit-hit, …
	UnitFileState string // enabled, disabled, static, masked, … ("" for a unit not found)
	NRestarts     int    // automatic restarts since it was last started by hand
	// ExecMainCode is the main process's si_code: 1 exited, 2 killed, 3
	// dumped; ExecMainStatus its exit status or signal number.
	ExecMainCode, ExecMainStatus int
	// Changed is StateChangeTimestamp (zero when never or unparseable);
	// ChangedText is it as systemctl wrote it.
	Changed     time.Time
	ChangedText string
}

// parseShow reads `systemctl show -p …` output for one or more units:
// KEY=VALUE lines, a blank line between units. Unknown keys are ignored.
func parseShow(out []byte) []unitState {
	var units []unitState
	var cur *unitState
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			cur = nil
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if cur == nil {
			units = append(units, unitState{})
			cur = &units[len(units)-1]
		}
		switch k {
		case "Id":
			cur.ID = v
		case "LoadState":
			cur.LoadState = v
		case "ActiveState":
			cur.ActiveState = v
		case "SubState":
			cur.SubState = v
		case "Result":
			cur.Result = v
		case "UnitFileState":
			cur.UnitFileState = v
		case "NRestarts":
			cur.NRestarts, _ = strconv.Atoi(v)
		case "ExecMainCode":
			cur.ExecMainCode, _ = strconv.Atoi(v)
		case "ExecMainStatus":
			cur.ExecMainStatus, _ = strconv.Atoi(v)
		case "StateChangeTimestamp":
			cur.ChangedText = v
			cur.Changed = parseSystemdTime(v)
		}
	}
	return units
}

// parseSystemdTime reads systemctl's default timestamp ("Mon 2026-11-23
// 20:41:07 CET"). systemctl writes local time in the zone this process has
// too, so the date and clock are read in time.Local and the abbreviation
// is not relied on (Go gives an abbreviation it does not know, like "+03",
// a zero offset). Zero when empty or in another form.
func parseSystemdTime(s string) time.Time {
	f := strings.Fields(s)
	if len(f) != 4 {
		return time.Time{}
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05", f[1]+" "+f[2], time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// validUnit is a service unit name safe to pass to systemctl.
var validUnit = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.service$`)

// serviceName turns "php8.2-fpm" into "php8.2-fpm.service" ("" if unfit).
func serviceName(unit string) string {
	if unit == "" {
		return ""
	}
	if !strings.HasSuffix(unit, ".service") {
		unit += ".service"
	}
	if !validUnit.MatchString(unit) {
		return ""
	}
	return unit
}

// sdBooted is sd_booted(3): systemd is the service manager when
// dir (/run/systemd/system) is a directory.
func sdBooted(dir string) bool {
	fi, err := os.Lstat(dir)
	return err == nil && fi.IsDir()
}

// systemctlShow runs `systemctl show` for units (each NAME.service).
func systemctlShow(ctx context.Context, units []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, SystemctlTimeout)
	defer cancel()
	args := append([]string{"show", "--no-pager", "-p", strings.Join(unitProps, ","), "--"}, units...)
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C") // English day names in timestamps
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(bytes.TrimSpace(ee.Stderr)) > 0 {
			first, _, _ := strings.Cut(strings.TrimSpace(string(ee.Stderr)), "\n")
			return nil, fmt.Errorf("systemctl show: %s", first)
		}
		return nil, fmt.Errorf("systemctl show: %w", err)
	}
	return out, nil
}

// fetchUnits asks systemd for the units (short or .service names) not yet
// known, in one call. Without systemd it does nothing.
func (a *Analyzer) fetchUnits(ctx context.Context, names []string) error {
	if !a.systemd || a.sys.showUnits == nil {
		return nil
	}
	a.umu.Lock()
	defer a.umu.Unlock()
	var ask []string
	seen := map[string]bool{}
	for _, n := range names {
		s := serviceName(n)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if _, ok := a.units[s]; !ok {
			ask = append(ask, s)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	out, err := a.sys.showUnits(ctx, ask)
	if err != nil {
		for _, s := range ask {
			a.units[s] = nil // asked once; not asked again
		}
		return err
	}
	got := parseShow(out)
	for i, s := range ask {
		var st *unitState
		switch {
		case len(got) == len(ask):
			st = &got[i] // in the order asked (an alias's Id is the unit it names)
		default:
			for j := range got {
				if got[j].ID == s {
					st = &got[j]
				}
			}
		}
		a.units[s] = st
	}
	return nil
}

// unitOf returns what systemd said about a unit, nil when it was not read
// (no systemd, not asked, or systemctl failed).
func (a *Analyzer) unitOf(unit string) *unitState {
	s := serviceName(unit)
	if s == "" || !a.systemd {
		return nil
	}
	a.umu.Lock()
	defer a.umu.Unlock()
	return a.units[s]
}

// unitCommand is the unit as commands name it: "php8.2-fpm" for
// "php8.2-fpm.service".
func unitCommand(unit string) string { return strings.TrimSuffix(unit, ".service") }

// when is a unit's last state change for a cause: " at 20:41:07" (the date
// too when it was not today), "" when unknown.
func (st *unitState) when(now time.Time) string {
	switch {
	case !st.Changed.IsZero():
		t := st.Changed.In(now.Location())
		if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
			return " at " + t.Format("15:04:05")
		}
		return " at " + t.Format("2006-01-02 15:04:05")
	case st.ChangedText != "":
		return " at " + st.ChangedText
	}
	return ""
}

// exitWhy says how the main process ended: "exited with status 78",
// "was killed by SIGKILL", "crashed with SIGSEGV and dumped core".
func (st *unitState) exitWhy() string {
	sig := func() string {
		if n := unix.SignalName(syscall.Signal(st.ExecMainStatus)); n != "" {
			return n
		}
		return fmt.Sprintf("signal %d", st.ExecMainStatus)
	}
	switch st.ExecMainCode {
	case 1: // CLD_EXITED
		return fmt.Sprintf("exited with status %d", st.ExecMainStatus)
	case 2: // CLD_KILLED
		return "was killed by " + sig()
	case 3: // CLD_DUMPED
		return fmt.Sprintf("crashed with %s and dumped core", sig())
	}
	return ""
}

// resultWhy explains a unit's Result in words.
func (st *unitState) resultWhy() string {
	switch st.Result {
	case "oom-kill":
		return "the kernel's OOM killer ended it"
	case "exit-code":
		if w := st.exitWhy(); w != "" {
			if st.ExecMainStatus == exConfig && st.ExecMainCode == 1 {
				return "it " + w + ", a configuration error"
			}
			return "it " + w
		}
		return "its main process exited with an error"
	case "signal", "core-dump":
		if w := st.exitWhy(); w != "" {
			return "it " + w
		}
		return "it was killed by a signal"
	case "timeout":
		return "it did not start or stop within its timeout"
	case "watchdog":
		return "its watchdog expired: it hung"
	case "start-limit-hit":
		return "it failed too often in a row and systemd stopped restarting it"
	case "resources":
		return "systemd could not set it up (a missing directory, user or PID file)"
	case "protocol":
		return "it did not keep the start-up protocol (PID file or readiness)"
	case "", "success":
		return ""
	}
	return "result: " + st.Result
}

// exConfig is sysexits' EX_CONFIG, php-fpm's exit status for a broken
// configuration.
const exConfig = 78

// configTest is the command that checks a unit's configuration, "" when
// unknown: php8.2-fpm → php-fpm8.2 -t, nginx → nginx -t.
func configTest(unit string) string {
	if m := fpmSockUnit.FindStringSubmatch(unit); m != nil {
		return "php-fpm" + m[1] + " -t"
	}
	switch unit {
	case "nginx":
		return "nginx -t"
	case "apache2":
		return "apache2ctl configtest"
	case "httpd":
		return "apachectl configtest"
	}
	return ""
}

// unitStory is what systemd adds to "the backend is not running": a
// clause for the cause and the fix that fits it. ok is false when systemd
// says nothing worth adding (no state read, or the unit runs): the caller
// keeps its own wording. unit is the command name ("php8.2-fpm"); from
// says where the name was derived from ("the socket path"), "" when it was
// read from a process; others are units of the same kind that exist (for a name not found);
// memFix is the fix for memory (an OOM kill).
func unitStory(unit string, st *unitState, from string, others []string, memFix string, now time.Time) (cause, fix string, ok bool) {
	if st == nil {
		return "", "", false
	}
	svc := unit + ".service"
	journal := fmt.Sprintf("journalctl -u %s -n 50", unit)
	check := ""
	if ct := configTest(unit); ct != "" {
		check = fmt.Sprintf(" (`%s` checks the configuration)", ct)
	}
	switch {
	case st.LoadState == "not-found":
		cause = fmt.Sprintf("there is no unit %s on this host", svc)
		if from != "" {
			cause += " (the name is a guess from " + from + ")"
		}
		switch {
		case len(others) > 0:
			fix = fmt.Sprintf("the units that exist are %s: start the one that should serve this (`systemctl start %s`) and point the web server at its socket, or install %s", strings.Join(others, ", "), others[0], unit)
		case fpmSockUnit.MatchString(unit):
			fix = fmt.Sprintf("install it (apt install %s) and start it, or point the web server at the backend that should serve this", unit)
		default:
			fix = "find the backend's real unit (systemctl list-units --all --type=service) and start it"
		}
		return cause, fix, true
	case st.LoadState == "masked" || strings.HasPrefix(st.UnitFileState, "masked"):
		cause = fmt.Sprintf("%s is masked (systemd will not start it)", svc)
		fix = fmt.Sprintf("systemctl unmask %s && systemctl enable --now %s (if it was masked on purpose, point the web server at the backend that replaced it)", unit, unit)
		return cause, fix, true
	case st.ActiveState == "failed":
		why := st.resultWhy()
		cause = fmt.Sprintf("%s failed%s", svc, st.when(now))
		if why != "" {
			cause += " (" + why + ")"
		}
		switch {
		case st.Result == "start-limit-hit":
			fix = fmt.Sprintf("`%s` shows why it keeps failing%s; fix that, then systemctl reset-failed %s && systemctl restart %s", journal, check, unit, unit)
		case st.Result == "exit-code" && st.ExecMainCode == 1 && st.ExecMainStatus == exConfig && configTest(unit) != "":
			fix = fmt.Sprintf("`%s` names the configuration error; correct it, then systemctl restart %s", configTest(unit), unit)
		case st.Result == "oom-kill":
			fix = fmt.Sprintf("systemctl restart %s; then, before it happens again: %s", unit, memFix)
		case st.Result == "exit-code":
			fix = fmt.Sprintf("systemctl restart %s; if it fails again, `%s` shows why%s", unit, journal, check)
		default:
			fix = fmt.Sprintf("systemctl restart %s (`%s` shows why it failed)", unit, journal)
		}
		return cause, fix, true
	case st.ActiveState == "activating" && st.SubState == "auto-restart":
		why := st.resultWhy()
		if st.NRestarts >= restartLoop {
			last := ""
			if why != "" {
				last = "; the last time " + why
			}
			cause = fmt.Sprintf("%s is restarting over and over (%d restarts%s)", svc, st.NRestarts, last)
			fix = fmt.Sprintf("`%s` shows why it keeps failing%s; fix that — systemd keeps restarting it, but a restart alone will not hold", journal, check)
			if st.Result == "oom-kill" {
				fix = fmt.Sprintf("%s; `%s` shows the kills", memFix, journal)
			}
			return cause, fix, true
		}
		cause = fmt.Sprintf("%s stopped%s and systemd is restarting it", svc, st.when(now))
		if why != "" {
			cause = fmt.Sprintf("%s stopped%s (%s) and systemd is restarting it", svc, st.when(now), why)
		}
		fix = fmt.Sprintf("systemd restarts it in a moment; `%s` shows why it stopped", journal)
		return cause, fix, true
	case st.ActiveState == "activating" || st.ActiveState == "deactivating":
		verb := "starting"
		if st.ActiveState == "deactivating" {
			verb = "stopping"
		}
		cause = fmt.Sprintf("%s is %s right now (%s)", svc, verb, st.SubState)
		fix = fmt.Sprintf("wait a moment and look again (systemctl status %s); if it stays %s, `%s` shows what it waits for", unit, st.ActiveState, journal)
		return cause, fix, true
	case st.ActiveState == "inactive":
		if st.UnitFileState == "disabled" {
			cause = fmt.Sprintf("%s is stopped and disabled (it does not start at boot)", svc)
			return cause, fmt.Sprintf("systemctl enable --now %s", unit), true
		}
		cause = fmt.Sprintf("%s is stopped (inactive since%s)", svc, strings.TrimPrefix(st.when(now), " at"))
		if st.when(now) == "" {
			cause = fmt.Sprintf("%s is stopped", svc)
		}
		return cause, fmt.Sprintf("systemctl start %s", unit), true
	}
	return "", "", false
}

// restartWarning is a warning for a unit that runs but has been restarted
// automatically restartLoop times or more ("" when not).
func restartWarning(unit string, st *unitState) string {
	if st == nil || st.NRestarts < restartLoop || (st.ActiveState != "active" && st.ActiveState != "reloading") {
		return ""
	}
	return fmt.Sprintf("%s.service runs now, but systemd has restarted it %d times since it was last started by hand: it keeps dying (`journalctl -u %s -n 50` shows why)", unit, st.NRestarts, unit)
}

// webUnitFindings reports web server units that failed or restart in a
// loop (an error: Cloudflare gets 521s while no web server runs), and
// running ones that keep being restarted (a warning). running says a
// master process of it was found.
func webUnitFindings(unit string, st *unitState, running bool, now time.Time) []report.Finding {
	if st == nil || st.LoadState == "not-found" {
		return nil
	}
	if w := restartWarning(unit, st); w != "" {
		return []report.Finding{{Severity: report.SeverityWarning, Message: w,
			Fix: fmt.Sprintf("`journalctl -u %s` shows why it dies; the OOM findings, if any, name what was killed", unit)}}
	}
	if running {
		return nil
	}
	failing := st.ActiveState == "failed" || (st.ActiveState == "activating" && st.SubState == "auto-restart")
	if !failing {
		return nil
	}
	cause, fix, ok := unitStory(unit, st, "", nil, "find what holds the memory (ps aux --sort=-rss | head) and lower it, or add memory", now)
	if !ok {
		return nil
	}
	return []report.Finding{{Severity: report.SeverityError,
		Message: fmt.Sprintf("the web server is not running: %s; Cloudflare gets refused connections (521) for every site on this host", cause),
		Fix:     fix}}
}

// webUnitNames are the units a web server runs as when none is found
// running: Debian's, and Red Hat's httpd.
var webUnitNames = []string{"nginx", "apache2", "httpd"}

// unitFindings reads the states of the web servers' and PHP-FPM's units in
// one systemctl call and reports the web server units that failed (with no
// master running) or keep being restarted. The FPM states are kept for the
// paths that lead to them.
func (a *Analyzer) unitFindings(ctx context.Context) ([]report.Finding, error) {
	type web struct {
		unit    string
		running bool
	}
	var webs []web
	for _, w := range a.webs {
		switch {
		case w.master == nil:
			webs = append(webs, web{w.unit, false})
		case w.master.unit != "" && !w.master.userUnit:
			webs = append(webs, web{unitCommand(w.master.unit), true})
		}
	}
	if len(a.webs) == 0 {
		for _, u := range webUnitNames {
			webs = append(webs, web{u, false})
		}
	}
	var names []string
	for _, w := range webs {
		names = append(names, w.unit)
	}
	for _, f := range a.fpms {
		if f.master == nil || !f.master.userUnit {
			names = append(names, f.unit)
		}
	}
	if err := a.fetchUnits(ctx, names); err != nil {
		return nil, err
	}
	var out []report.Finding
	seen := map[string]bool{}
	for _, w := range webs {
		if seen[w.unit] {
			continue
		}
		seen[w.unit] = true
		out = append(out, webUnitFindings(w.unit, a.unitOf(w.unit), w.running, a.now)...)
	}
	return out, nil
}
