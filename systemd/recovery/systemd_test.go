package recovery

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// exitErr is a real *exec.ExitError (status 78, as php-fpm -t exits).
func exitErr(t *testing.T) error {
	err := exec.Command("sh", "-c", "exit 78").Run()
	if err == nil {
		t.Fatal("sh -c 'exit 78' succeeded")
	}
	return err
}

const fpmBroken = `[02-Dec-2026 02:47:20] ERROR: [/etc/php/8.2/fpm/pool.d/www.conf:7] unknown entry 'bogus_key'
[02-Dec-2026 02:47:20] ERROR: failed to load configuration file '/etc/php/8.2/fpm/php-fpm.conf'
[02-Dec-2026 02:47:20] ERROR: FPM initialization failed
`

func TestRecover(t *testing.T) {
	fpmTest := []string{"php-fpm8.2", "-t"}
	tests := []struct {
		name   string
		req    Request
		setup  func(*testing.T, *fakeConn, *fakeRun)
		ctx    func() (context.Context, context.CancelFunc)
		want   Action
		wantRe []string // restarts systemd saw
		err    string   // substring of Action.Err
	}{
		{
			name:   "down, config ok: restarted",
			req:    Request{Unit: "php8.2-fpm.service", Reason: ReasonDown, ConfigTest: fpmTest},
			want:   Action{Restarted: true, JobResult: "done"},
			wantRe: []string{"php8.2-fpm.service replace"},
		},
		{
			name:   "bare name gets .service",
			req:    Request{Unit: "php8.2-fpm", Reason: ReasonHung},
			want:   Action{Restarted: true, JobResult: "done"},
			wantRe: []string{"php8.2-fpm.service replace"},
		},
		{
			name: "config test fails: refused with the first error line, not restarted",
			req:  Request{Unit: "php8.2-fpm.service", Reason: ReasonDown, ConfigTest: fpmTest},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) {
				r.out, r.err = "PHP notice: something\n"+fpmBroken, exitErr(t)
			},
			want: Action{Refused: "configuration test failed: ERROR: [/etc/php/8.2/fpm/pool.d/www.conf:7] unknown entry 'bogus_key'"},
		},
		{
			name:  "config test not installed",
			req:   Request{Unit: "php8.2-fpm.service", ConfigTest: fpmTest},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) { r.err = exec.ErrNotFound },
			want:  Action{Refused: "configuration test failed: executable file not found in $PATH"},
		},
		{
			name:  "config test hangs: refused after its timeout",
			req:   Request{Unit: "php8.2-fpm.service", ConfigTest: fpmTest},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) { r.block = true },
			ctx: func() (context.Context, context.CancelFunc) {
				// The parent's deadline stands in for ConfigTestTimeout.
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			err: "context deadline exceeded",
		},
		{
			name: "unit not found",
			req:  Request{Unit: "php7.4-fpm.service", ConfigTest: fpmTest},
			want: Action{Refused: "unit php7.4-fpm.service is not loaded (not-found)"},
		},
		{
			name: "unit masked",
			req:  Request{Unit: "masked.service"},
			want: Action{Refused: "unit masked.service is masked"},
		},
		{
			name:   "job failed",
			req:    Request{Unit: "php8.2-fpm.service"},
			setup:  func(t *testing.T, c *fakeConn, r *fakeRun) { c.result = "failed" },
			want:   Action{Restarted: true, JobResult: "failed"},
			wantRe: []string{"php8.2-fpm.service replace"},
		},
		{
			name:  "restart call fails",
			req:   Request{Unit: "php8.2-fpm.service"},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) { c.err = errors.New("Access denied") },
			err:   "restarting php8.2-fpm.service: Access denied",
		},
		{
			name:  "reading the unit fails",
			req:   Request{Unit: "php8.2-fpm.service"},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) { c.propErr = errors.New("connection closed") },
			err:   "reading unit php8.2-fpm.service: connection closed",
		},
		{
			name:  "context ends while waiting for the job",
			req:   Request{Unit: "php8.2-fpm.service"},
			setup: func(t *testing.T, c *fakeConn, r *fakeRun) { c.result = "" },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			wantRe: []string{"php8.2-fpm.service replace"},
			err:    "restarting php8.2-fpm.service: waiting for the job: context deadline exceeded",
		},
		{
			name: "context already cancelled: nothing restarted",
			req:  Request{Unit: "php8.2-fpm.service"},
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			err: "context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r := newFakeConn(), &fakeRun{}
			if tt.setup != nil {
				tt.setup(t, c, r)
			}
			clk := &fakeClock{t: t0}
			s := newSystemd(func(context.Context) (conn, error) { return c, nil }, r.run, clk.now, DefaultPolicy)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			got := s.Recover(ctx, tt.req)
			want := tt.want
			want.Request, want.At = tt.req, t0
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Action{}, "Err")); diff != "" {
				t.Errorf("Recover (-want +got):\n%s", diff)
			}
			if tt.err == "" && got.Err != nil || tt.err != "" && (got.Err == nil || !strings.Contains(got.Err.Error(), tt.err)) {
				t.Errorf("Err = %v, want %q", got.Err, tt.err)
			}
			if diff := cmp.Diff(tt.wantRe, c.restarts); diff != "" {
				t.Errorf("restarts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecoverJobTimeout(t *testing.T) {
	c := newFakeConn()
	c.result = ""
	s := newSystemd(func(context.Context) (conn, error) { return c, nil }, (&fakeRun{}).run, time.Now, DefaultPolicy)
	s.timeout = 20 * time.Millisecond
	a := s.Recover(context.Background(), Request{Unit: "php8.2-fpm.service"})
	if !errors.Is(a.Err, ErrJobTimeout) || a.Restarted {
		t.Errorf("got %+v, want ErrJobTimeout and not restarted", a)
	}
}

// TestRecoverBackoff drives one unit that keeps failing through the
// policy: three restarts, then waits of 1, 2, 4 … minutes, and a fresh
// start after a quiet hour.
func TestRecoverBackoff(t *testing.T) {
	c := newFakeConn()
	clk := &fakeClock{t: t0}
	s := newSystemd(func(context.Context) (conn, error) { return c, nil }, (&fakeRun{}).run, clk.now, DefaultPolicy)
	req := Request{Unit: "php8.2-fpm.service", Reason: ReasonDown}
	steps := []struct {
		after   time.Duration // since the previous step
		refused string        // "" = restarted
	}{
		{0, ""},
		{10 * time.Second, ""},
		{10 * time.Second, ""},
		{10 * time.Second, "backing off: 3 restarts in the last 10m0s, next attempt after 2026-12-02T03:01:20Z"},
		{30 * time.Second, "backing off: 3 restarts in the last 10m0s, next attempt after 2026-12-02T03:01:20Z"},
		{20 * time.Second, ""}, // 03:01:20: one minute after the third
		{time.Minute, "backing off: 4 restarts since 2026-12-02T03:00:00Z, next attempt after 2026-12-02T03:03:20Z"},
		{time.Minute, ""},     // 03:03:20
		{4 * time.Minute, ""}, // 03:07:20
		{7 * time.Minute, "backing off: 6 restarts since 2026-12-02T03:00:00Z, next attempt after 2026-12-02T03:15:20Z"},
		{time.Minute, ""},      // 03:15:20, next wait 16 min
		{16 * time.Minute, ""}, // 03:31:20, next 30 (capped)
		{29 * time.Minute, "backing off: 8 restarts since 2026-12-02T03:00:00Z, next attempt after 2026-12-02T04:01:20Z"},
		{time.Minute, ""}, // 04:01:20, still 30
		{29 * time.Minute, "backing off: 9 restarts since 2026-12-02T03:00:00Z, next attempt after 2026-12-02T04:31:20Z"},
		{31 * time.Minute, ""}, // 05:01:20: quiet for an hour, forgotten
		{time.Second, ""},
		{time.Second, ""},
		{time.Second, "backing off: 3 restarts in the last 10m0s, next attempt after 2026-12-02T05:02:22Z"},
	}
	for i, st := range steps {
		clk.advance(st.after)
		a := s.Recover(context.Background(), req)
		if a.Err != nil {
			t.Fatalf("step %d: %v", i, a.Err)
		}
		if a.Refused != st.refused || a.Restarted != (st.refused == "") {
			t.Errorf("step %d at %s: Restarted=%v Refused=%q, want refused %q", i, clk.now().Format("15:04:05"), a.Restarted, a.Refused, st.refused)
		}
	}
	// Units are limited one by one.
	if a := s.Recover(context.Background(), Request{Unit: "nginx.service"}); a.Refused != "unit nginx.service is not loaded (not-found)" {
		t.Errorf("nginx: %+v", a)
	}
}

// TestRecoverRedials: a connection systemd closed is replaced.
func TestRecoverRedials(t *testing.T) {
	dials := 0
	var last *fakeConn
	s := newSystemd(func(context.Context) (conn, error) {
		dials++
		last = newFakeConn()
		return last, nil
	}, (&fakeRun{}).run, time.Now, DefaultPolicy)
	if _, err := s.State(context.Background(), "php8.2-fpm"); err != nil {
		t.Fatal(err)
	}
	last.Close()
	st, err := s.State(context.Background(), "php8.2-fpm")
	if err != nil || dials != 2 {
		t.Fatalf("dials=%d err=%v", dials, err)
	}
	want := UnitState{Unit: "php8.2-fpm.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "signal", NRestarts: 2}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("State (-want +got):\n%s", diff)
	}
}

func TestNoSystemd(t *testing.T) {
	old := runDir
	runDir = t.TempDir() + "/absent"
	defer func() { runDir = old }()
	_, err := New(context.Background())
	if !errors.Is(err, ErrNoSystemd) || !strings.Contains(err.Error(), "no "+runDir) {
		t.Errorf("New without systemd: %v", err)
	}
}

func TestFirstErrorLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"php-fpm pool", fpmBroken, "ERROR: [/etc/php/8.2/fpm/pool.d/www.conf:7] unknown entry 'bogus_key'"},
		{"php ini syntax", "PHP:  syntax error, unexpected end of file, expecting ']' in Unknown on line 1\n[02-Dec-2026 02:47:20] ERROR: failed to load configuration file\n",
			"PHP:  syntax error, unexpected end of file, expecting ']' in Unknown on line 1"},
		{"nginx", "nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/sites-enabled/default:3\nnginx: configuration file /etc/nginx/nginx.conf test failed\n",
			"nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/sites-enabled/default:3"},
		{"no error word: first line", "\n  something odd\nmore\n", "something odd"},
		{"control characters dropped", "ERROR: bad \x1b[31mname\x00\n", "ERROR: bad [31mname"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstErrorLine([]byte(tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	long := "ERROR: " + strings.Repeat("x", 1000)
	if got := firstErrorLine([]byte(long)); len(got) > maxReasonLine+len("…") {
		t.Errorf("not bounded: %d bytes", len(got))
	}
}

func TestExecRunBounded(t *testing.T) {
	out, err := execRun(context.Background(), []string{"sh", "-c", "head -c 1000000 /dev/zero; echo ERROR: late >&2; exit 3"})
	if err == nil || len(out) != maxTestOutput {
		t.Errorf("err=%v len=%d, want an exit error and %d bytes", err, len(out), maxTestOutput)
	}
	old := configTestTimeout
	configTestTimeout = 100 * time.Millisecond
	defer func() { configTestTimeout = old }()
	if r, err := configTest(context.Background(), execRun, []string{"sleep", "5"}); r != "configuration test sleep 5 did not finish in 100ms" || err != nil {
		t.Errorf("a hung test: %q, %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := configTest(ctx, execRun, []string{"sleep", "5"}); r != "" || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %q, %v", r, err)
	}
}
