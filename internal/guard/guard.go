package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/firewall"
	"github.com/cfguard/cfguard/internal/sshport"
)

// Config is what every operation needs. The CLI fills it from flags and
// environment variables; nothing here reads either.
type Config struct {
	StateDir  string
	Table     string
	Ports     []uint16
	APIURL    string
	UserAgent string
	China     bool           // also allow the China Network (JD Cloud) ranges
	Allow     []netip.Prefix // extra sources allowed on the web ports
	Force     bool           // accept a list that drops more than half of what is installed
	DryRun    bool
	NetNSFd   int           // 0: this namespace (tests pass a test namespace)
	LockWait  time.Duration // 0: LockWait
	Fetch     time.Duration // 0: cfranges.FetchTimeout
	MaxAge    time.Duration // status: a last good sync older than this is stale (exit 1); 0: no limit
	Logger    *slog.Logger
	RealIP    RealIP // web servers' trusted-proxy files sync writes (realip.go)

	// SSH finds the ports SSH depends on (nil: this host's /proc); a
	// guarded one is refused unless GuardSSHPorts (--guard-ssh-port) names it.
	SSH           sshport.Finder
	GuardSSHPorts []uint16
}

// checkSSH refuses to guard a port SSH depends on: 22, sshd's listeners,
// the port of the SSH session running this command. Nothing is changed.
func (c Config) checkSSH() error {
	f := c.SSH
	if f == nil {
		f = sshport.System()
	}
	found, err := f.Find()
	if cerr := sshport.Check(c.Ports, found, c.GuardSSHPorts); cerr != nil {
		return cerr
	}
	if err != nil {
		for _, p := range c.Ports {
			if !slices.Contains(c.GuardSSHPorts, p) {
				return fmt.Errorf("cannot tell whether sshd listens on a port of --ports: %w; nothing changed", err)
			}
		}
	}
	return nil
}

// ApplyTimeout bounds one kernel transaction (read, plan, send, read
// back). The transaction runs to its end even when the run is cancelled
// (SIGTERM, SIGINT) once it has begun, so that the exit code says what the
// kernel holds; this bound keeps it from hanging instead.
const ApplyTimeout = 30 * time.Second

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c Config) firewall() (*firewall.Manager, error) {
	return firewall.New(firewall.Config{Table: c.Table, Ports: c.Ports, NetNSFd: c.NetNSFd})
}

// lock takes the run lock. With bestEffort (remove, restore, dry runs:
// none writes the state directory) a lock that cannot be had at all
// (ErrNoLock: read-only or full state directory, a lock that is not a
// regular file) is a warning, and the run goes on without it: an
// administrator mid-incident must still be able to remove the guard. Every
// kernel change is one whole transaction, so two unlocked runs still leave
// one complete list. Another run holding the lock is waited for as usual.
func (c Config) lock(ctx context.Context, bestEffort bool) (unlock func(), warning string, err error) {
	wait := c.LockWait
	if wait == 0 {
		wait = LockWait
	}
	unlock, err = lock(ctx, c.StateDir, wait)
	if err != nil && ctx.Err() != nil {
		return nil, "", beforeKernel(ctx, err)
	}
	if err != nil && bestEffort && errors.Is(err, ErrNoLock) {
		return func() {}, err.Error() + "; going on without it", nil
	}
	if err != nil && errors.Is(err, ErrNoLock) {
		return nil, "", fmt.Errorf("%w; nothing changed (sync needs its lock and a writable state directory)", err)
	}
	return unlock, "", err
}

// cleanStale removes the temp files of killed runs; it needs the lock.
func (c Config) cleanStale() {
	n, err := cfranges.CleanStale(c.StateDir)
	if n > 0 || err != nil {
		c.logger().Debug("removed stale temp files", "count", n, "err", err)
	}
}

// Result says what an apply did (or, with DryRun, would do).
type Result struct {
	Table        string          `json:"table"`
	Source       cfranges.Source `json:"source"`
	Etag         string          `json:"etag,omitempty"`
	FetchedAt    time.Time       `json:"fetched_at"`
	IPv4         int             `json:"ipv4"`
	IPv6         int             `json:"ipv6"`
	Allow        int             `json:"allow"`
	Added        []netip.Prefix  `json:"added"`
	Removed      []netip.Prefix  `json:"removed"`
	TableCreated bool            `json:"table_created"`
	Rebuilt      bool            `json:"rebuilt"`
	RebuildWhy   string          `json:"rebuild_reason,omitempty"`
	PortsChanged bool            `json:"ports_changed"`
	Changed      bool            `json:"changed"`
	DryRun       bool            `json:"dry_run"`
	Warnings     []string        `json:"warnings"`
	RealIP       []RealIPFile    `json:"real_ip_files,omitempty"`
}

// Summary is the one line a person reads, e.g. "15 IPv4 + 7 IPv6 Cloudflare
// ranges in table inet cfguard (1 added, 0 removed)".
func (r Result) Summary() string {
	verb := "in"
	if r.DryRun {
		verb = "would be in"
	}
	s := fmt.Sprintf("%d IPv4 + %d IPv6 Cloudflare ranges %s table inet %s", r.IPv4, r.IPv6, verb, r.Table)
	if r.Allow > 0 {
		s += fmt.Sprintf(", plus %d allowed", r.Allow)
	}
	switch {
	case !r.Changed:
		s += " (already up to date)"
	case r.TableCreated:
		s += " (table created)"
	case r.Rebuilt:
		s += fmt.Sprintf(" (%d added, %d removed; chains rebuilt: %s)", len(r.Added), len(r.Removed), r.RebuildWhy)
	default:
		s += fmt.Sprintf(" (%d added, %d removed)", len(r.Added), len(r.Removed))
	}
	return s
}

// Sync fetches Cloudflare's ranges, validates the whole answer, and applies
// it in one transaction. On any error the firewall and the cache are left
// exactly as they were. The order is what makes the exit code true:
//
//  1. lock, fetch, validate, refuse a shrinking or growing list: an error
//     here changes nothing;
//  2. write the new cache to a synced temp file: a full or read-only disk
//     fails here, before the kernel is touched (exit 1, nothing changed);
//  3. send the kernel transaction; from here on cancellation no longer
//     stops the run, so a SIGTERM cannot turn an applied list into a
//     reported failure;
//  4. rename the temp file over the cache. Should that fail, the kernel
//     holds the new list (success, with a warning); `status` reports the
//     difference and the next sync repairs it.
func Sync(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.checkSSH(); err != nil {
		return Result{}, err
	}
	unlock, lockWarn, err := cfg.lock(ctx, cfg.DryRun)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if lockWarn == "" && !cfg.DryRun {
		cfg.cleanStale()
	}

	f := cfranges.Fetcher{BaseURL: cfg.APIURL, UserAgent: cfg.UserAgent, Timeout: cfg.Fetch}
	list, err := f.Fetch(ctx, cfg.China)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, beforeKernel(ctx, err)
		}
		return Result{}, err // names the URL and the reason; nothing was touched
	}
	cfg.logger().Debug("fetched", "ipv4", len(list.IPv4), "ipv6", len(list.IPv6), "etag", list.Etag)
	if cfg.DryRun {
		res, err := apply(ctx, cfg, list, true)
		res.Warnings = warnFirst(lockWarn, res.Warnings)
		return withRealIP(ctx, cfg, list, res, err)
	}
	pending, err := cfranges.Prepare(cfg.StateDir, list)
	if err != nil {
		return Result{}, fmt.Errorf("%w; nothing changed (the cache is written before the firewall is touched)", err)
	}
	res, err := apply(ctx, cfg, list, true)
	if err != nil {
		pending.Discard()
		return res, err
	}
	if err := pending.Commit(); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the firewall holds the new list, but %v; `cfguard status` reports the difference until the next sync repairs it", err))
	}
	return withRealIP(ctx, cfg, list, res, nil)
}

// beforeKernel words an error that stopped a run before its kernel
// transaction: when the run was interrupted (SIGTERM, SIGINT) it says so
// instead of the error the cancellation caused on its way.
func beforeKernel(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("interrupted (%w) before the firewall was touched; nothing changed", cerr)
	}
	return err
}

func warnFirst(w string, ws []string) []string {
	if w == "" {
		return ws
	}
	return append([]string{w}, ws...)
}

// Restore applies the last good list from the cache, or the built-in list
// when there is no usable cache. It never touches the network and writes
// nothing to the state directory, so it goes on (with a warning) when the
// lock cannot be had there.
func Restore(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.checkSSH(); err != nil {
		return Result{}, err
	}
	unlock, lockWarn, err := cfg.lock(ctx, true)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if lockWarn == "" && !cfg.DryRun {
		cfg.cleanStale()
	}

	list, warn := Cached(cfg.StateDir)
	res, err := apply(ctx, cfg, list, false)
	if _, refused := errors.AsType[*firewall.NotOwnedError](err); refused {
		return res, err // the one line says it all; the cache does not matter
	}
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
	res.Warnings = warnFirst(lockWarn, res.Warnings)
	return res, err
}

// Cached returns the cached list, or the built-in one with a warning that
// says why and how old it is.
func Cached(stateDir string) (cfranges.List, string) {
	list, err := cfranges.Load(stateDir)
	if err == nil {
		return list, ""
	}
	b := cfranges.Builtin()
	why := "no cached list"
	if !errors.Is(err, cfranges.ErrNoCache) {
		why = err.Error() + "; ignored it"
	}
	return b, fmt.Sprintf("%s: using the built-in list of Cloudflare's ranges as of %s; run `cfguard sync` when the network is up",
		why, b.FetchedAt.Format("2006-01-02"))
}

// apply puts list (plus the configured extras) into the kernel in one
// transaction. It refuses, whatever the source, a merged allow set
// (Cloudflare's ranges and --allow together) with a range broader than a /8
// or /16; and for fresh answers (fresh), unless cfg.Force, a list that
// drops more than half of what is installed or covers more than
// cfranges.GrowthFactor times the addresses of the larger of the installed
// and the built-in list.
func apply(ctx context.Context, cfg Config, list cfranges.List, fresh bool) (Result, error) {
	res := Result{
		Table: cfg.Table, Source: list.Source, Etag: list.Etag, FetchedAt: list.FetchedAt,
		Allow: len(cfg.Allow), DryRun: cfg.DryRun, Added: []netip.Prefix{}, Removed: []netip.Prefix{}, Warnings: []string{},
	}
	for _, p := range list.All() {
		if p.Addr().Is4() {
			res.IPv4++
		} else {
			res.IPv6++
		}
	}
	fw, err := cfg.firewall()
	if err != nil {
		return res, err
	}
	defer fw.Close()

	if err := cfranges.CheckMerged("Cloudflare's ranges and --allow", append(list.All(), cfg.Allow...)); err != nil {
		return res, fmt.Errorf("%w; nothing changed", err)
	}
	if fresh && !cfg.Force {
		st, err := fw.Read(ctx)
		if err != nil {
			return res, beforeKernel(ctx, err) // the firewall names the table
		}
		installed := append(append([]netip.Prefix{}, st.Cloudflare4...), st.Cloudflare6...)
		if err := cfranges.CheckShrink(installed, list.All()); err != nil {
			return res, fmt.Errorf("%w; nothing changed (if Cloudflare really shrank its list, run `cfguard sync --force`)", err)
		}
		err = cfranges.CheckGrowth(installed, append(slices.Clone(list.IPv4), list.IPv6...))
		if err == nil && len(list.JDCloud) > 0 {
			err = cfranges.CheckChinaGrowth(list.JDCloud)
		}
		if err != nil {
			return res, fmt.Errorf("%w; nothing changed (if Cloudflare really grew its list this much, run `cfguard sync --force`)", err)
		}
	}
	want := firewall.Want{Cloudflare: list.All(), Allow: cfg.Allow}
	var ch firewall.Change
	if cfg.DryRun {
		ch, err = fw.Plan(ctx, want)
	} else {
		// Cancelled before the transaction: nothing changed, say so.
		// Once it is under way it runs to its end (bounded), so that
		// what is reported is what the kernel holds.
		if err := ctx.Err(); err != nil {
			return res, beforeKernel(ctx, err)
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ApplyTimeout)
		ch, err = fw.Apply(actx, want)
		cancel()
	}
	if err != nil {
		return res, err
	}
	res.Added, res.Removed = nonNil(ch.Added), nonNil(ch.Removed)
	res.TableCreated, res.Rebuilt, res.RebuildWhy, res.PortsChanged = ch.TableCreated, ch.ChainsRebuilt, ch.RebuildReason, ch.PortsChanged
	res.Changed = !ch.Empty()
	return res, nil
}

func nonNil(p []netip.Prefix) []netip.Prefix {
	if p == nil {
		return []netip.Prefix{}
	}
	return p
}

// Remove deletes cfguard's own table and nothing else. existed is false
// when it was already gone.
// warnings says what went less well than it should, e.g. that the lock in a
// read-only state directory could not be had: remove works without it.
// Like an apply, the removal runs to its end once begun.
func Remove(ctx context.Context, cfg Config) (existed bool, warnings []string, err error) {
	unlock, lockWarn, err := cfg.lock(ctx, true)
	if err != nil {
		return false, nil, err
	}
	defer unlock()
	warnings = warnFirst(lockWarn, nil)
	fw, err := cfg.firewall()
	if err != nil {
		return false, warnings, err
	}
	defer fw.Close()
	if err := ctx.Err(); err != nil {
		return false, warnings, beforeKernel(ctx, err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ApplyTimeout)
	defer cancel()
	existed, err = fw.Remove(rctx)
	return existed, warnings, err
}
