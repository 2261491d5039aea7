package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// countingAPI answers like the API and counts the calls; fail makes the
// next call fail.
type countingAPI struct {
	calls map[string]int
	fail  bool
}

func (c *countingAPI) hit(k string) error {
	c.calls[k]++
	if c.fail {
		c.fail = false
		return errors.New("API: 429 too many requests")
	}
	return nil
}
func (c *countingAPI) VerifyToken(context.Context) error { return c.hit("token") }
func (c *countingAPI) Zones(_ context.Context, names []string) ([]cloudflare.Zone, error) {
	return []cloudflare.Zone{{ID: "z1", Name: "example.com"}}, c.hit("zones")
}
func (c *countingAPI) Settings(_ context.Context, id string) (cloudflare.Settings, error) {
	return cloudflare.Settings{SSL: ModeStrict}, c.hit("settings " + id)
}
func (c *countingAPI) DNSRecords(_ context.Context, id string) ([]cloudflare.Record, error) {
	return []cloudflare.Record{{Type: "A", Name: "www.example.com", Content: "192.0.2.1", Proxied: true}}, c.hit("records " + id)
}

func (c *countingAPI) EdgeErrors(_ context.Context, id string, _ []string, since, until time.Time) (cloudflare.EdgeCounts, error) {
	return cloudflare.EdgeCounts{Since: since, Until: until}, c.hit("edge " + id)
}

func (c *countingAPI) Rules(_ context.Context, id string) (cloudflare.Rules, error) {
	return cloudflare.Rules{Config: []cloudflare.Rule{{ID: "c1"}}}, c.hit("rules " + id)
}

func TestZoneCache(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	cache := NewZoneCache(5 * time.Minute)
	cache.now = func() time.Time { return now }
	inner := &countingAPI{calls: map[string]int{}}
	a := cachedAPI{api: inner, cache: cache}
	ctx := context.Background()
	read := func() {
		if err := a.VerifyToken(ctx); err != nil {
			t.Fatal(err)
		}
		zs, err := a.Zones(ctx, nil)
		if err != nil || len(zs) != 1 {
			t.Fatalf("zones %v %v", zs, err)
		}
		if s, err := a.Settings(ctx, "z1"); err != nil || s.SSL != ModeStrict {
			t.Fatalf("settings %v %v", s, err)
		}
		if rs, err := a.DNSRecords(ctx, "z1"); err != nil || len(rs) != 1 {
			t.Fatalf("records %v %v", rs, err)
		}
		if rs, err := a.Rules(ctx, "z1"); err != nil || len(rs.Config) != 1 {
			t.Fatalf("rules %v %v", rs, err)
		}
	}
	read()
	now = now.Add(4 * time.Minute)
	read() // within the TTL: from the cache
	want := map[string]int{"token": 1, "zones": 1, "settings z1": 1, "records z1": 1, "rules z1": 1}
	if diff := cmp.Diff(want, inner.calls); diff != "" {
		t.Errorf("API calls within the TTL (-want +got)\n%s", diff)
	}
	now = now.Add(2 * time.Minute)
	read() // older than the TTL: asked again
	for k := range want {
		want[k] = 2
	}
	if diff := cmp.Diff(want, inner.calls); diff != "" {
		t.Errorf("API calls after the TTL (-want +got)\n%s", diff)
	}
	// An error is not kept: the next run asks again.
	now = now.Add(6 * time.Minute)
	inner.fail = true
	if _, err := a.Zones(ctx, nil); err == nil {
		t.Fatal("the failing call succeeded")
	}
	if _, err := a.Zones(ctx, nil); err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	if inner.calls["zones"] != 4 {
		t.Errorf("zones asked %d times, want 4 (a failure is not cached)", inner.calls["zones"])
	}
	if cache.Reads != 11 {
		t.Errorf("Reads = %d, want 11", cache.Reads)
	}
}
