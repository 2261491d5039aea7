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

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c Config) firewall() (*firewall.Manager, error) {
	return firewall.New(firewall.Config{Table: c.Table, Ports: c.Ports, NetNSFd: c.NetNSFd})
}

func (c Config) lock(ctx context.Context) (func(), error) {
	wait := c.LockWait
	if wait == 0 {
		wait = LockWait
	}
	return lock(ctx, c.StateDir, wait)
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
// exactly as they were.
func Sync(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.checkSSH(); err != nil {
		return Result{}, err
	}
	unlock, err := cfg.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	f := cfranges.Fetcher{BaseURL: cfg.APIURL, UserAgent: cfg.UserAgent, Timeout: cfg.Fetch}
	list, err := f.Fetch(ctx, cfg.China)
	if err != nil {
		return Result{}, err // names the URL and the reason; nothing was touched
	}
	cfg.logger().Debug("fetched", "ipv4", len(list.IPv4), "ipv6", len(list.IPv6), "etag", list.Etag)
	res, err := apply(ctx, cfg, list, true)
	if err != nil || cfg.DryRun {
		return withRealIP(ctx, cfg, list, res, err)
	}
	if err := cfranges.Save(cfg.StateDir, list); err != nil {
		// The firewall holds the new list; only the cache is stale. Say so,
		// but the protection itself is in place.
		return res, fmt.Errorf("applied, but saving the cache failed: %w", err)
	}
	return withRealIP(ctx, cfg, list, res, nil)
}

// Restore applies the last good list from the cache, or the built-in list
// when there is no usable cache. It never touches the network.
func Restore(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.checkSSH(); err != nil {
		return Result{}, err
	}
	unlock, err := cfg.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	list, warn := Cached(cfg.StateDir)
	res, err := apply(ctx, cfg, list, false)
	if _, refused := errors.AsType[*firewall.NotOwnedError](err); refused {
		return res, err // the one line says it all; the cache does not matter
	}
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
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
// transaction, refusing a list that drops more than half of what is
// installed unless cfg.Force (checkShrink: only for fresh answers).
func apply(ctx context.Context, cfg Config, list cfranges.List, checkShrink bool) (Result, error) {
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

	if checkShrink && !cfg.Force {
		st, err := fw.Read(ctx)
		if err != nil {
			return res, fmt.Errorf("reading table inet %s: %w", cfg.Table, err)
		}
		installed := append(append([]netip.Prefix{}, st.Cloudflare4...), st.Cloudflare6...)
		if err := cfranges.CheckShrink(installed, list.All()); err != nil {
			return res, fmt.Errorf("%w; nothing changed (if Cloudflare really shrank its list, run `cfguard sync --force`)", err)
		}
	}
	want := firewall.Want{Cloudflare: list.All(), Allow: cfg.Allow}
	var ch firewall.Change
	if cfg.DryRun {
		ch, err = fw.Plan(ctx, want)
	} else {
		ch, err = fw.Apply(ctx, want)
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
func Remove(ctx context.Context, cfg Config) (existed bool, err error) {
	unlock, err := cfg.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	fw, err := cfg.firewall()
	if err != nil {
		return false, err
	}
	defer fw.Close()
	return fw.Remove(ctx)
}
