package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/sdtest"
	"github.com/cfguard/cfguard/verify/backend/fastcgi"
)

// The tests below run the Recoverer inside a sandbox whose PID 1 is a real
// systemd (internal/sdtest), against Debian's php8.2-fpm.service.

const fpmUnit = "php8.2-fpm.service"

var fpmConfigTest = []string{"php-fpm8.2", "-t"}

func TestMain(m *testing.M) {
	sdtest.Main(m, map[string]func() error{
		"recover": childRecover,
		"state":   childState,
		"ping":    childPing,
		"backoff": childBackoff,
		"changes": childChanges,
	})
}

// jsonAction is an Action as the child prints it.
type jsonAction struct {
	Restarted bool
	JobResult string
	Refused   string
	Err       string
}

func toJSON(a Action) jsonAction {
	j := jsonAction{Restarted: a.Restarted, JobResult: a.JobResult, Refused: a.Refused}
	if a.Err != nil {
		j.Err = a.Err.Error()
	}
	return j
}

func childRequest() Request {
	req := Request{Unit: os.Getenv("UNIT"), Reason: os.Getenv("REASON"), Evidence: "test"}
	if ct := os.Getenv("CONFIGTEST"); ct != "" {
		req.ConfigTest = strings.Fields(ct)
	}
	return req
}

// childRecover: one Recover, the Action printed as JSON.
func childRecover() error {
	ctx := context.Background()
	s, err := New(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return json.NewEncoder(os.Stdout).Encode(toJSON(s.Recover(ctx, childRequest())))
}

// childState: the unit's State as JSON.
func childState() error {
	ctx := context.Background()
	s, err := New(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.State(ctx, os.Getenv("UNIT"))
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}

// childPing asks PHP-FPM's ping page over FastCGI, bounded by 2 s; prints
// the body.
func childPing() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", "/run/php/php8.2-fpm.sock")
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := fastcgi.Do(ctx, c, fastcgi.Params("/ping", "/nonexistent", "a.test"))
	if err != nil {
		return err
	}
	fmt.Printf("%d %s\n", r.Status, bytes.TrimSpace(r.Body))
	return nil
}

// childBackoff: one Recoverer, four rounds of "kill FPM, wait for failed,
// Recover"; prints the four Actions as JSON.
func childBackoff() error {
	ctx := context.Background()
	s, err := New(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var out []jsonAction
	for i := 0; i < 4; i++ {
		if b, err := exec.Command("systemctl", "kill", "-s", "KILL", fpmUnit).CombinedOutput(); err != nil {
			return fmt.Errorf("round %d: systemctl kill: %v: %s", i, err, b)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st, err := s.State(ctx, fpmUnit)
			if err != nil {
				return err
			}
			if st.ActiveState == "failed" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("round %d: %s is %s, not failed, 30s after SIGKILL", i, fpmUnit, st.ActiveState)
			}
		}
		out = append(out, toJSON(s.Recover(ctx, Request{Unit: fpmUnit, Reason: ReasonDown, ConfigTest: fpmConfigTest})))
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// childChanges follows systemd's unit changes, kills FPM and prints the
// first change of its unit seen within 30 s (JSON: the unit name, "" if
// none).
func childChanges() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	ch, err := s.Changes(ctx)
	if err != nil {
		return err
	}
	if b, err := exec.Command("systemctl", "kill", "-s", "KILL", fpmUnit).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl kill: %v: %s", err, b)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case u := <-ch:
			if u == fpmUnit {
				return json.NewEncoder(os.Stdout).Encode(u)
			}
		case <-deadline:
			return json.NewEncoder(os.Stdout).Encode("")
		}
	}
}

// run runs child inside sb and decodes its JSON into v.
func run(t *testing.T, sb *sdtest.Sandbox, child string, v any, env ...string) {
	t.Helper()
	out, err := sb.RunChild(t, child, env...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("child %s: %v\n%s", child, err, out)
	}
}

func state(t *testing.T, sb *sdtest.Sandbox) UnitState {
	t.Helper()
	var st UnitState
	run(t, sb, "state", &st, "UNIT="+fpmUnit)
	return st
}

func activeState(sb *sdtest.Sandbox, unit string) string { return unitProp(sb, unit, "ActiveState") }

func unitProp(sb *sdtest.Sandbox, unit, prop string) string {
	out, _ := sb.Exec("systemctl", "show", "-p", prop, "--value", unit)
	return strings.TrimSpace(out)
}

func pong(t *testing.T, sb *sdtest.Sandbox) bool {
	out, err := sb.RunChild(t, "ping")
	return err == nil && out == "200 pong\n"
}

func recoverFPM(t *testing.T, sb *sdtest.Sandbox, reason string) jsonAction {
	t.Helper()
	var a jsonAction
	run(t, sb, "recover", &a, "UNIT="+fpmUnit, "REASON="+reason, "CONFIGTEST="+strings.Join(fpmConfigTest, " "))
	return a
}

// TestRealSystemd: the Recoverer against a real systemd and Debian's
// php8.2-fpm.service — a killed FPM, a stopped (hung) FPM, a broken pool
// file, and the backoff.
func TestRealSystemd(t *testing.T) {
	pool, ok := sdtest.FPMPool()
	if !ok {
		t.Skip("skipped: php8.2-fpm is not installed")
	}
	sb := sdtest.Boot(t, sdtest.Options{Mask: []string{"nginx.service"}, Files: []sdtest.File{pool}})
	sb.WaitFor(t, 30*time.Second, fpmUnit+" active after boot", func() bool { return activeState(sb, fpmUnit) == "active" })
	sb.WaitFor(t, 10*time.Second, "FPM answering its ping page", func() bool { return pong(t, sb) })

	t.Run("down", func(t *testing.T) {
		before := state(t, sb)
		sb.MustExec(t, "systemctl", "kill", "-s", "KILL", fpmUnit)
		sb.WaitFor(t, 30*time.Second, fpmUnit+" failed after SIGKILL", func() bool { return activeState(sb, fpmUnit) == "failed" })
		if st := state(t, sb); st.Result != "signal" || st.ActiveState != "failed" || st.MainPID != 0 {
			t.Errorf("after SIGKILL: %+v", st)
		}
		a := recoverFPM(t, sb, ReasonDown)
		if (a != jsonAction{Restarted: true, JobResult: "done"}) {
			t.Fatalf("Recover: %+v", a)
		}
		st := state(t, sb)
		if st.ActiveState != "active" || st.SubState != "running" || st.MainPID == 0 || st.MainPID == before.MainPID {
			t.Errorf("after Recover: %+v (before %+v)", st, before)
		}
		sb.WaitFor(t, 10*time.Second, "FPM answering again", func() bool { return pong(t, sb) })
	})

	t.Run("changes", func(t *testing.T) {
		var got string
		run(t, sb, "changes", &got)
		if got != fpmUnit {
			t.Fatalf("no change of %s was signalled within 30 s of SIGKILL", fpmUnit)
		}
		sb.WaitFor(t, 30*time.Second, fpmUnit+" failed after SIGKILL", func() bool { return activeState(sb, fpmUnit) == "failed" })
		if a := recoverFPM(t, sb, ReasonDown); (a != jsonAction{Restarted: true, JobResult: "done"}) {
			t.Fatalf("Recover: %+v", a)
		}
		sb.WaitFor(t, 10*time.Second, "FPM answering again", func() bool { return pong(t, sb) })
	})

	t.Run("hung", func(t *testing.T) {
		sb.MustExec(t, "systemctl", "kill", "-s", "STOP", fpmUnit)
		if pong(t, sb) {
			t.Fatal("FPM answered with every process stopped")
		}
		if st := state(t, sb); st.ActiveState != "active" {
			t.Errorf("systemd should still think a stopped FPM active: %+v", st)
		}
		a := recoverFPM(t, sb, ReasonHung)
		if (a != jsonAction{Restarted: true, JobResult: "done"}) {
			t.Fatalf("Recover: %+v", a)
		}
		sb.WaitFor(t, 10*time.Second, "FPM answering after the restart", func() bool { return pong(t, sb) })
	})

	t.Run("broken config", func(t *testing.T) {
		const broken = "/etc/php/8.2/fpm/pool.d/broken.conf"
		sb.WriteFile(t, broken, []byte("[broken]\nbogus_key = 1\n"), 0o644)
		defer sb.MustExec(t, "rm", "-f", broken)
		sb.MustExec(t, "systemctl", "kill", "-s", "KILL", fpmUnit)
		sb.WaitFor(t, 30*time.Second, fpmUnit+" failed after SIGKILL", func() bool { return activeState(sb, fpmUnit) == "failed" })
		n := state(t, sb).NRestarts
		want := jsonAction{Refused: "configuration test failed: ERROR: [" + broken + ":2] unknown entry 'bogus_key'"}
		for i := 0; i < 3; i++ {
			if a := recoverFPM(t, sb, ReasonDown); a != want {
				t.Fatalf("Recover #%d: %+v, want %+v", i+1, a, want)
			}
		}
		st := state(t, sb)
		if st.ActiveState != "failed" || st.NRestarts != n {
			t.Errorf("a broken FPM was touched: %+v", st)
		}
		sb.MustExec(t, "rm", "-f", broken)
		if a := recoverFPM(t, sb, ReasonDown); (a != jsonAction{Restarted: true, JobResult: "done"}) {
			t.Fatalf("Recover once fixed: %+v", a)
		}
	})

	t.Run("backoff", func(t *testing.T) {
		// The subtests above started FPM often enough for systemd's own
		// start limit (5 in 10 s): forget that, so only cfguard's applies.
		sb.MustExec(t, "systemctl", "reset-failed", fpmUnit)
		defer func() {
			if t.Failed() {
				t.Logf("journal:\n%s", sb.Journal(fpmUnit))
			}
		}()
		var got []jsonAction
		run(t, sb, "backoff", &got)
		if len(got) != 4 {
			t.Fatalf("got %d actions", len(got))
		}
		for i, a := range got[:3] {
			if (a != jsonAction{Restarted: true, JobResult: "done"}) {
				t.Errorf("restart %d: %+v", i+1, a)
			}
		}
		if !strings.HasPrefix(got[3].Refused, "backing off: 3 restarts in the last 10m0s, next attempt after ") || got[3].Restarted {
			t.Errorf("4th: %+v", got[3])
		}
		if s := activeState(sb, fpmUnit); s != "failed" {
			t.Errorf("after the refused 4th restart the unit is %s, want failed (left alone)", s)
		}
	})

	t.Run("held by systemd's start limit", func(t *testing.T) {
		// Debian's php8.2-fpm.service has systemd's default start limit (5
		// starts in 10 s): start it more often than that.
		sb.MustExec(t, "systemctl", "reset-failed", fpmUnit)
		for i := 0; i < 8 && unitProp(sb, fpmUnit, "Result") != "start-limit-hit"; i++ {
			sb.Exec("systemctl", "restart", fpmUnit)
		}
		if r := unitProp(sb, fpmUnit, "Result"); r != "start-limit-hit" {
			t.Skipf("skipped: eight restarts did not hit the start limit (Result=%s)", r)
		}
		a := recoverFPM(t, sb, ReasonDown)
		want := "systemd's start limit holds php8.2-fpm.service (start-limit-hit): it restarted too often; `systemctl reset-failed php8.2-fpm.service` lets it start again"
		if (a != jsonAction{Refused: want}) {
			t.Errorf("Recover: %+v", a)
		}
		sb.MustExec(t, "systemctl", "reset-failed", fpmUnit)
		if a := recoverFPM(t, sb, ReasonDown); (a != jsonAction{Restarted: true, JobResult: "done"}) {
			t.Errorf("Recover after reset-failed: %+v", a)
		}
	})

	t.Run("unit not found", func(t *testing.T) {
		var a jsonAction
		run(t, sb, "recover", &a, "UNIT=php7.4-fpm.service", "REASON=down")
		if (a != jsonAction{Refused: "unit php7.4-fpm.service is not loaded (not-found)"}) {
			t.Errorf("Recover: %+v", a)
		}
	})
}

// TestNoSystemdHere: on a machine (or container) whose init is not
// systemd, New says so in one error.
func TestNoSystemdHere(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("skipped: this machine runs systemd")
	}
	_, err := New(context.Background())
	if !errors.Is(err, ErrNoSystemd) || err.Error() != "systemd is not running here (no /run/systemd/system)" {
		t.Errorf("New: %v", err)
	}
}
