package verify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// ZoneCache keeps what the API answered (the token check, the zones, their
// settings, DNS records and rules) between runs, so that a caller running verify
// often — cfguard watch — asks the API only once per TTL and walks the paths
// in between from the cached zones. Errors are never kept. Safe for
// concurrent use.
type ZoneCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedAnswer
	// Reads counts the answers fetched from the API (a test can tell a
	// cached run from a fresh one).
	Reads int
}

type cachedAnswer struct {
	at time.Time
	v  any
}

// NewZoneCache keeps answers for ttl.
func NewZoneCache(ttl time.Duration) *ZoneCache {
	return &ZoneCache{ttl: ttl, now: time.Now, m: map[string]cachedAnswer{}}
}

// cached returns the answer for key when younger than the TTL, else asks fn.
func cached[T any](c *ZoneCache, key string, fn func() (T, error)) (T, error) {
	c.mu.Lock()
	a, ok := c.m[key]
	c.mu.Unlock()
	if ok && c.now().Sub(a.at) < c.ttl {
		return a.v.(T), nil
	}
	v, err := fn()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	c.m[key] = cachedAnswer{at: c.now(), v: v}
	c.Reads++
	c.mu.Unlock()
	return v, nil
}

// cachedAPI is the api seam through a ZoneCache.
type cachedAPI struct {
	api   api
	cache *ZoneCache
}

var _ api = cachedAPI{}

func (c cachedAPI) VerifyToken(ctx context.Context) error {
	_, err := cached(c.cache, "token", func() (struct{}, error) { return struct{}{}, c.api.VerifyToken(ctx) })
	return err
}

func (c cachedAPI) Zones(ctx context.Context, names []string) ([]cloudflare.Zone, error) {
	return cached(c.cache, "zones|"+strings.Join(names, ","), func() ([]cloudflare.Zone, error) { return c.api.Zones(ctx, names) })
}

func (c cachedAPI) Settings(ctx context.Context, zoneID string) (cloudflare.Settings, error) {
	return cached(c.cache, "settings|"+zoneID, func() (cloudflare.Settings, error) { return c.api.Settings(ctx, zoneID) })
}

func (c cachedAPI) DNSRecords(ctx context.Context, zoneID string) ([]cloudflare.Record, error) {
	return cached(c.cache, "records|"+zoneID, func() ([]cloudflare.Record, error) { return c.api.DNSRecords(ctx, zoneID) })
}

// EdgeErrors keeps the counts, and a refusal for want of the permission
// (an answer, not a failure: asking again each run would be refused too).
func (c cachedAPI) EdgeErrors(ctx context.Context, zoneID string, hostnames []string, since, until time.Time) (cloudflare.EdgeCounts, error) {
	type answer struct {
		counts  cloudflare.EdgeCounts
		refused error
	}
	a, err := cached(c.cache, "edge|"+zoneID+"|"+strings.Join(hostnames, ","), func() (answer, error) {
		ec, err := c.api.EdgeErrors(ctx, zoneID, hostnames, since, until)
		var e *cloudflare.Error
		if errors.As(err, &e) && e.Kind == cloudflare.KindPermission {
			return answer{refused: err}, nil
		}
		return answer{counts: ec}, err
	})
	if err != nil {
		return cloudflare.EdgeCounts{}, err
	}
	return a.counts, a.refused
}

func (c cachedAPI) Rules(ctx context.Context, zoneID string) (cloudflare.Rules, error) {
	return cached(c.cache, "rules|"+zoneID, func() (cloudflare.Rules, error) { return c.api.Rules(ctx, zoneID) })
}
