package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Under a group of several hostnames, the edge's counts are said per
// hostname only where Cloudflare served some 502–530; the hostnames it
// served none get one line together.
func TestGroupEdgeQuietHostsOneLine(t *testing.T) {
	end := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	quiet := &EdgeCounts{WindowStart: end.Add(-15 * time.Minute), WindowEnd: end, Counts: []EdgeCount{}}
	busy := &EdgeCounts{WindowStart: end.Add(-15 * time.Minute), WindowEnd: end, Counts: []EdgeCount{{EdgeStatus: 502, OriginStatus: 502, Count: 1204}}}
	var paths []Path
	for i, h := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		e := quiet
		if i == 1 {
			e = busy
		}
		paths = append(paths, Path{Zone: "example.com", Hostname: h, OriginIP: "192.0.2.1", Port: 80, Scheme: "http",
			Status: 502, Stage: StageUpstream, Cause: "php-fpm is not running", Fix: "start it", Edge: e})
	}
	r := &Report{Paths: paths, Summary: Summary{Paths: 3, Failing: 3, ByStatus: map[string]int{"502": 3}}}
	var b bytes.Buffer
	if err := WriteText(&b, r, false); err != nil {
		t.Fatal(err)
	}
	got := b.String()[:strings.Index(b.String(), "\n\n")+1]
	want := `✘ 502  upstream     php-fpm is not running
    fix: start it
    on 3 paths:
      a.example.com http 192.0.2.1:80
      b.example.com http 192.0.2.1:80
        predicted 502 — Cloudflare served 1,204 × 502 in the last 15 minutes
      c.example.com http 192.0.2.1:80
      Cloudflare served 2 hostnames above no 502–530 in the last 15 minutes
`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
