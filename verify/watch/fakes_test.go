package watch

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// clock is a fake clock the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time       { return c.t }
func (c *clock) step(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                { return &clock{t: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)} }

var errTest = errors.New("test: injected failure")

// testLogger writes text lines without times to b.
func testLogger(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{b: b}, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}}))
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// fakeBackends answers each target's probe with the next scripted state
// (the last one repeats).
type fakeBackends struct {
	mu     sync.Mutex
	bs     []backend.Watched
	script map[string][]backend.Check
	webs   []backend.Web
	probes int
}

var _ Backends = (*fakeBackends)(nil)

func (f *fakeBackends) Backends() []backend.Watched { return f.bs }
func (f *fakeBackends) Webs() []backend.Web         { return f.webs }
func (f *fakeBackends) LogFiles() []backend.LogFile { return nil }
func (f *fakeBackends) Probe(ctx context.Context, b backend.Watched) backend.Check {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	s := f.script[b.Target]
	if len(s) == 0 {
		return backend.Check{State: backend.StateUp, Detail: b.Target + " answered"}
	}
	c := s[0]
	if len(s) > 1 {
		f.script[b.Target] = s[1:]
	}
	return c
}

func (f *fakeBackends) set(target string, cs ...backend.Check) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[target] = cs
}

// fakeGuard holds a table that a test can make vanish.
type fakeGuard struct {
	present  bool
	restores int
	err      error
}

func (g *fakeGuard) Status(ctx context.Context, now time.Time) (guard.Status, error) {
	st := guard.Status{Table: "cfguard", Present: g.present, Hooked: g.present, Problems: []string{}}
	if g.present {
		st.IPv4, st.IPv6, st.Protected = 15, 7, true
		t := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
		st.LastSync = &t
	} else {
		st.Problems = append(st.Problems, "table inet cfguard does not exist")
	}
	return st, nil
}

func (g *fakeGuard) Restore(ctx context.Context) (guard.Result, error) {
	g.restores++
	if g.err != nil {
		return guard.Result{}, g.err
	}
	g.present = true
	return guard.Result{Table: "cfguard", IPv4: 15, IPv6: 7, Changed: true, TableCreated: true}, nil
}

// fakeRecoverer records the requests and answers with act (its Request
// filled in).
type fakeRecoverer struct {
	reqs  []recovery.Request
	act   recovery.Action
	state recovery.UnitState
}

var _ recovery.Recoverer = (*fakeRecoverer)(nil)

func (r *fakeRecoverer) State(ctx context.Context, unit string) (recovery.UnitState, error) {
	if r.state.Unit == "" {
		return recovery.UnitState{}, errors.New("no such unit")
	}
	return r.state, nil
}

func (r *fakeRecoverer) Recover(ctx context.Context, req recovery.Request) recovery.Action {
	r.reqs = append(r.reqs, req)
	a := r.act
	a.Request = req
	return a
}

// fakeFollower yields queued entries once.
type fakeFollower struct{ q []logs.Entry }

func (f *fakeFollower) Read() []logs.Entry { q := f.q; f.q = nil; return q }
func (f *fakeFollower) Close() error       { return nil }

var fpmBackend = backend.Watched{Web: "nginx", Module: "fastcgi", Target: "unix:/run/php/php8.2-fpm.sock",
	Unit: "php8.2-fpm.service", Pool: "www", ConfigTest: []string{"php-fpm8.2", "-t"}, Host: "example.test"}

var nginxWeb = backend.Web{Kind: "nginx", Unit: "nginx.service", ConfigTest: []string{"nginx", "-t"},
	Listens: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:80")}}
