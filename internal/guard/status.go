package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/cfguard/cfguard/cfranges"
)

// Status is whether this origin is protected, and how fresh that is.
type Status struct {
	Protected bool     `json:"protected"`
	Table     string   `json:"table"`
	Present   bool     `json:"table_present"`
	Owned     bool     `json:"owned"`       // the table carries cfguard's mark (or is an earlier cfguard's)
	UDPDrop   bool     `json:"udp_dropped"` // UDP to the ports is dropped from everyone (Cloudflare never uses it)
	Hooked    bool     `json:"hooked"`
	Problems  []string `json:"problems"`
	Ports     []uint16 `json:"ports"`            // in the kernel
	WantPorts []uint16 `json:"configured_ports"` // --ports
	IPv4      int      `json:"ipv4_ranges"`      // Cloudflare ranges in the kernel, as merged intervals
	IPv6      int      `json:"ipv6_ranges"`
	Allow     int      `json:"allow_ranges"`

	LastSync   *time.Time `json:"last_sync,omitempty"` // fetch time of the cached list
	AgeSeconds int64      `json:"age_seconds,omitempty"`
	Etag       string     `json:"etag,omitempty"`
	CacheError string     `json:"cache_error,omitempty"`

	// Stale: the kernel holds a list, but the last good sync is older than
	// Config.MaxAge (or its age cannot be told: no usable cache). The CLI
	// exits 1 on a stale status as on an unprotected one.
	Stale         bool  `json:"stale"`
	MaxAgeSeconds int64 `json:"max_age_seconds,omitempty"`

	// Drift between the kernel and the last good list: in the cache but not
	// in the kernel (Missing), in the kernel but not in the cache (Extra).
	Missing []netip.Prefix `json:"missing"`
	Extra   []netip.Prefix `json:"extra"`
}

// clockSkew is how far in the future the last good sync may be dated
// before status calls its age unknowable (NTP steps the clock by seconds).
const clockSkew = time.Hour

// ReadStatus reads the kernel and the cache; it changes nothing.
func ReadStatus(ctx context.Context, cfg Config, now time.Time) (Status, error) {
	st := Status{Table: cfg.Table, Problems: []string{}, Missing: []netip.Prefix{}, Extra: []netip.Prefix{}, WantPorts: sorted(cfg.Ports)}
	fw, err := cfg.firewall()
	if err != nil {
		return st, err
	}
	defer fw.Close()
	k, err := fw.Read(ctx)
	if err != nil {
		return st, err // the firewall names the table
	}
	st.Present, st.Hooked, st.Ports = k.Present, k.Hooked, k.Ports
	st.IPv4, st.IPv6, st.Allow = len(k.Cloudflare4), len(k.Cloudflare6), len(k.Allow)
	st.Owned = k.Owned
	portsDiffer := k.Owned && !slices.Equal(k.Ports, st.WantPorts)
	switch {
	case !k.Present:
		st.Problems = append(st.Problems, fmt.Sprintf("table inet %s does not exist: run `cfguard sync` (or `cfguard restore` offline)", cfg.Table))
	case k.Foreign:
		st.Problems = append(st.Problems, k.Problems...) // whose table it is, and what to do
	case !k.Hooked:
		st.Problems = append(st.Problems, k.Problems...)
		st.Problems = append(st.Problems, "the table drifted from what cfguard writes: run `cfguard sync` (or `cfguard restore`) to rebuild it")
	case st.IPv4+st.IPv6 == 0:
		st.Problems = append(st.Problems, "the Cloudflare sets are empty: web ports answer nobody but --allow sources")
	}
	if portsDiffer {
		st.Problems = append(st.Problems, fmt.Sprintf("the kernel guards ports %s but --ports is %s: run `cfguard sync` (or `cfguard restore`) to guard %s, or set --ports %s",
			portList(k.Ports), portList(st.WantPorts), portList(st.WantPorts), portList(k.Ports)))
	}
	st.UDPDrop = k.Owned && k.Hooked
	st.Protected = k.Present && k.Owned && k.Hooked && st.IPv4+st.IPv6 > 0 && !portsDiffer
	// What the kernel lets in, all sets together, judged as sync judges a
	// new list: a table that answers (nearly) everyone protects nothing.
	if err := cfranges.CheckMerged("the ranges in the kernel (Cloudflare's and --allow)", append(append(append([]netip.Prefix{}, k.Cloudflare4...), k.Cloudflare6...), k.Allow...)); k.Present && err != nil {
		st.Protected = false
		st.Problems = append(st.Problems, err.Error()+": run `cfguard sync` without the broad --allow")
	}

	st.MaxAgeSeconds = int64(cfg.MaxAge.Seconds())
	list, err := cfranges.Load(cfg.StateDir)
	switch {
	case errors.Is(err, cfranges.ErrNoCache):
		st.CacheError = "no successful sync recorded yet"
	case err != nil:
		st.CacheError = err.Error()
	default:
		t := list.FetchedAt
		st.LastSync, st.Etag = &t, list.Etag
		st.AgeSeconds = int64(now.Sub(t).Seconds())
		if age := now.Sub(t); cfg.MaxAge > 0 && age < -clockSkew && k.Owned {
			st.Stale = true
			st.Problems = append(st.Problems, fmt.Sprintf("the last good sync is dated %s in the future: the clock was changed or the cache was not written by cfguard; run `cfguard sync`",
				(-age).Round(time.Second)))
		} else if cfg.MaxAge > 0 && age > cfg.MaxAge && k.Owned {
			st.Stale = true
			st.Problems = append(st.Problems, fmt.Sprintf("the last good sync was %s ago, more than the maximum age %s: the sync timer is not running or cannot reach the API; run `cfguard sync`",
				age.Round(time.Second), cfg.MaxAge))
		}
		if k.Owned {
			kernel := append(append([]netip.Prefix{}, k.Cloudflare4...), k.Cloudflare6...)
			st.Missing, st.Extra = diff(list.All(), kernel)
			if len(st.Missing)+len(st.Extra) > 0 {
				st.Problems = append(st.Problems, fmt.Sprintf("the kernel differs from the last good list (%d missing, %d extra): run `cfguard sync`", len(st.Missing), len(st.Extra)))
			}
		}
	}
	if cfg.MaxAge > 0 && k.Owned && st.LastSync == nil {
		st.Stale = true
		st.Problems = append(st.Problems, "the age of the installed list cannot be told (no usable cache of a successful sync): run `cfguard sync`")
	}
	return st, nil
}

func sorted(p []uint16) []uint16 {
	p = slices.Clone(p)
	slices.Sort(p)
	return p
}

// portList is "80,443" ("none" for no port).
func portList(ports []uint16) string {
	if len(ports) == 0 {
		return "none"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// diff compares two prefix lists as address sets and returns what only a
// holds and what only b holds, as merged prefixes.
func diff(a, b []netip.Prefix) (onlyA, onlyB []netip.Prefix) {
	sa, sb := set(a), set(b)
	var x, y netipx.IPSetBuilder
	x.AddSet(sa)
	x.RemoveSet(sb)
	y.AddSet(sb)
	y.RemoveSet(sa)
	ra, _ := x.IPSet()
	rb, _ := y.IPSet()
	return nonNil(ra.Prefixes()), nonNil(rb.Prefixes())
}

func set(ps []netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, _ := b.IPSet()
	return s
}
