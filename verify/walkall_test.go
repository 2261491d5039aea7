package verify

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// TestWalkAllPool: 2,000 hostnames (4,000 paths) with Concurrency 8 are
// walked by a pool of 8 workers, not a goroutine per path: each path is
// reported exactly once, the progress count climbs by one to the total,
// and the goroutines alive stay near the pool's size.
func TestWalkAllPool(t *testing.T) {
	const hosts = 2000
	var recs []cloudflare.Record
	for i := range hosts {
		recs = append(recs, a(fmt.Sprintf("h%04d.example.com", i), "192.0.2.1"))
	}
	f := newFixture(zoneWith("example.com", strictSettings(), recs...))
	f.cfg.Concurrency = 8
	base := runtime.NumGoroutine()
	last, maxG, steps := 0, 0, 0
	f.cfg.Progress = func(done, total int) {
		if done != last+1 || total != 2*hosts {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
		steps++
		maxG = max(maxG, runtime.NumGoroutine()-base)
	}
	rep := f.run(t)
	if rep.Summary.Paths != 2*hosts || rep.Summary.Failing != 0 {
		t.Errorf("summary %+v", rep.Summary)
	}
	seen := map[string]int{}
	for _, p := range rep.Paths {
		seen[fmt.Sprint(p.Hostname, p.Port)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s reported %d times", k, n)
		}
	}
	if len(seen) != 2*hosts || steps != 2*hosts {
		t.Errorf("%d distinct paths, %d progress calls; want %d", len(seen), steps, 2*hosts)
	}
	if maxG > 8+16 {
		t.Errorf("%d goroutines beside the test's while walking with Concurrency 8, want about 8", maxG)
	}
	if f.probe.maxInFlight > 8 {
		t.Errorf("%d probes at once with Concurrency 8", f.probe.maxInFlight)
	}
}
