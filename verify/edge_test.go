package verify

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

// The fixture's clock: the window is the 15 minutes before it.
var (
	edgeEnd   = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	edgeStart = edgeEnd.Add(-15 * time.Minute)
)

func ec(edge, origin int, n int64) report.EdgeCount {
	return report.EdgeCount{EdgeStatus: edge, OriginStatus: origin, Count: n}
}

func edgeOf(t *testing.T, rep *report.Report, host string) *report.EdgeCounts {
	t.Helper()
	for _, p := range rep.Paths {
		if p.Hostname == host {
			return p.Edge
		}
	}
	t.Fatalf("no path for %s", host)
	return nil
}

// A predicted 502 is shown with what Cloudflare served the hostname; a
// hostname whose paths all pass while the edge serves 52x is a finding of
// its own, with what else it could be. The API is asked once per zone.
func TestEdgeCounts(t *testing.T) {
	s := strictSettings()
	s.AlwaysUseHTTPS = true
	f := newFixture(
		zoneWith("example.com", s, a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.1"), a("*.example.com", "192.0.2.1"), a("quiet.example.com", "192.0.2.1")),
		zoneWith("example.org", s, a("www.example.org", "192.0.2.1")))
	f.probe.outcomes["http www.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 502, Cause: "origin answered 502"}
	f.api.edge = map[string][]cloudflare.EdgeGroup{"id-example.com": {
		{Hostname: "www.example.com", EdgeStatus: 502, OriginStatus: 502, Count: 1200, SampleInterval: 1},
		{Hostname: "www.example.com:8443", EdgeStatus: 502, OriginStatus: 502, Count: 4, SampleInterval: 1},
		{Hostname: "www.example.com", EdgeStatus: 520, OriginStatus: 0, Count: 3, SampleInterval: 1},
		{Hostname: "api.example.com", EdgeStatus: 522, OriginStatus: 0, Count: 1500, SampleInterval: 10},
		{Hostname: "api.example.com", EdgeStatus: 502, OriginStatus: 502, Count: 2, SampleInterval: 10},
		{Hostname: "shop.example.com", EdgeStatus: 521, OriginStatus: 0, Count: 8, SampleInterval: 1},    // under the wildcard
		{Hostname: "quiet.example.com", EdgeStatus: 505, OriginStatus: 505, Count: 1, SampleInterval: 1}, // not a way-to-the-origin error
	}}
	rep := f.run(t)

	if f.api.edgeCalls != 2 {
		t.Errorf("EdgeErrors asked %d times, want once per zone (2)", f.api.edgeCalls)
	}
	want := map[string]*report.EdgeCounts{
		"www.example.com": {WindowStart: edgeStart, WindowEnd: edgeEnd, Counts: []report.EdgeCount{ec(502, 502, 1204), ec(520, 0, 3)}},
		"api.example.com": {WindowStart: edgeStart, WindowEnd: edgeEnd, Sampled: true, Counts: []report.EdgeCount{ec(522, 0, 1500), ec(502, 502, 2)}},
		"*.example.com":   {WindowStart: edgeStart, WindowEnd: edgeEnd, Counts: []report.EdgeCount{ec(521, 0, 8)}},
		"www.example.org": {WindowStart: edgeStart, WindowEnd: edgeEnd, Counts: []report.EdgeCount{}},
	}
	for host, w := range want {
		if d := cmp.Diff(w, edgeOf(t, rep, host)); d != "" {
			t.Errorf("%s edge (-want +got):\n%s", host, d)
		}
	}

	var text bytes.Buffer
	if err := report.WriteText(&text, rep, false); err != nil {
		t.Fatal(err)
	}
	if line := "      predicted 502 — Cloudflare served 1,204 × 502 and 3 × 520 in the last 15 minutes\n"; !strings.Contains(text.String(), line) {
		t.Errorf("text lacks %q:\n%s", line, text.String())
	}

	// api and the wildcard pass but the edge served them 52x; www fails
	// (its counts are next to its prediction); quiet served only a 505.
	got := map[string]report.Finding{}
	for _, fd := range rep.Findings {
		if strings.Contains(fd.Message, "the cause is not visible from this origin") {
			got[fd.Hostname] = fd
		}
	}
	if len(got) != 2 {
		t.Fatalf("findings of unexplained 52x for %v, want api.example.com and *.example.com:\n%s", got, strings.Join(messages(rep), "\n"))
	}
	api := got["api.example.com"]
	if w := "all paths to api.example.com pass, but Cloudflare served it about 1,500 × 522 and 2 × 502 in the last 15 minutes: the cause is not visible from this origin"; api.Message != w || api.Severity != report.SeverityWarning {
		t.Errorf("finding %s %q\nwant warning %q", api.Severity, api.Message, w)
	}
	for _, part := range []string{"522: some connections timed out: SYN flood limits or a full conntrack table", "502: the origin itself answered 502 to some requests", "for any of them: a Worker, a Load Balancer or an Origin Rule may send"} {
		if !strings.Contains(api.Fix, part) {
			t.Errorf("fix lacks %q: %s", part, api.Fix)
		}
	}
	if w := "521: the origin refused some connections: a banning tool (fail2ban, CSF)"; !strings.Contains(got["*.example.com"].Fix, w) {
		t.Errorf("wildcard fix lacks %q: %s", w, got["*.example.com"].Fix)
	}
}

// Without Analytics:Read: one finding for the run (however many zones),
// every path still walked, no edge counts.
func TestEdgeCountsNotPermitted(t *testing.T) {
	f := newFixture(zoneWith("example.com", strictSettings(), a("www.example.com", "192.0.2.1")),
		zoneWith("example.org", strictSettings(), a("www.example.org", "192.0.2.1")))
	f.api.edgeErr = &cloudflare.Error{Kind: cloudflare.KindPermission, What: "read Cloudflare's edge counts", APIMessage: "not authorized", Need: cloudflare.PermAnalyticsRead}
	rep := f.run(t)
	if d := cmp.Diff([]string{
		"www.example.com A 192.0.2.1 80/http ok 200 http", "www.example.com A 192.0.2.1 443/https ok 200 http",
		"www.example.org A 192.0.2.1 80/http ok 200 http", "www.example.org A 192.0.2.1 443/https ok 200 http",
	}, briefs(rep)); d != "" {
		t.Errorf("paths (-want +got):\n%s", d)
	}
	for _, p := range rep.Paths {
		if p.Edge != nil {
			t.Errorf("%s has edge counts without the permission", p.Hostname)
		}
	}
	want := []string{"info: edge error counts not read: the API token lacks Analytics:Read for zones example.com, example.org; predictions are shown without Cloudflare's own counts"}
	if d := cmp.Diff(want, messages(rep)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

// Any other failure is one warning, and the run goes on.
func TestEdgeCountsFailed(t *testing.T) {
	f := newFixture(zoneWith("example.com", strictSettings(), a("www.example.com", "192.0.2.1")))
	f.api.edgeErr = &cloudflare.Error{Kind: cloudflare.KindAPI, What: "read Cloudflare's edge counts", APIMessage: "in a form verify does not know (no data.viewer.zones)"}
	rep := f.run(t)
	want := []string{"warning: edge error counts not read (zone example.com: cannot read Cloudflare's edge counts: Cloudflare answered in a form verify does not know (no data.viewer.zones)); predictions are shown without Cloudflare's own counts"}
	if d := cmp.Diff(want, messages(rep)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
	if rep.Summary.Paths != 2 || rep.Summary.Failing != 0 {
		t.Errorf("summary %+v: the paths were not all walked", rep.Summary)
	}
}

// Without a token there is no API to ask, and nothing is said about it.
func TestEdgeCountsWithoutToken(t *testing.T) {
	f := newFixture()
	f.cfg = Config{Hostnames: []string{"www.example.com"}, SSLMode: ModeFull, Cloudflare: testCF}
	rep := f.run(t)
	if f.api.edgeCalls != 0 || len(rep.Findings) != 0 {
		t.Errorf("without a token: %d edge reads, findings %v", f.api.edgeCalls, messages(rep))
	}
}

// The zone cache keeps the counts and a refusal for its TTL, not a failure.
func TestEdgeCountsCached(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	cache := NewZoneCache(5 * time.Minute)
	cache.now = func() time.Time { return now }
	inner := &fakeAPI{edge: map[string][]cloudflare.EdgeGroup{"z1": {{Hostname: "www.example.com", EdgeStatus: 520, Count: 1}}}}
	a := cachedAPI{api: inner, cache: cache}
	ask := func() (cloudflare.EdgeCounts, error) {
		return a.EdgeErrors(context.Background(), "z1", []string{"www.example.com"}, now.Add(-edgeWindow), now)
	}
	for range 2 {
		if c, err := ask(); err != nil || len(c.Groups) != 1 {
			t.Fatalf("counts %v, %v", c, err)
		}
	}
	if inner.edgeCalls != 1 {
		t.Errorf("counts asked %d times within the TTL, want 1", inner.edgeCalls)
	}

	now = now.Add(6 * time.Minute)
	inner.edgeErr = &cloudflare.Error{Kind: cloudflare.KindPermission, Need: cloudflare.PermAnalyticsRead}
	for range 2 {
		if _, err := ask(); !errors.Is(err, inner.edgeErr) {
			t.Fatalf("refusal: %v", err)
		}
	}
	if inner.edgeCalls != 2 {
		t.Errorf("a refusal was asked again within the TTL (%d calls, want 2)", inner.edgeCalls)
	}

	now = now.Add(6 * time.Minute)
	inner.edgeErr = &cloudflare.Error{Kind: cloudflare.KindUnreachable, Err: errors.New("connection refused")}
	ask()
	ask()
	if inner.edgeCalls != 4 {
		t.Errorf("a failure was kept (%d calls, want 4)", inner.edgeCalls)
	}
}

// The report's idea of the statuses counted is the query's.
func TestEdgeStatusRange(t *testing.T) {
	if cloudflare.EdgeStatusMin != report.EdgeCountedMin || cloudflare.EdgeStatusMax != report.EdgeCountedMax {
		t.Errorf("the query counts %d–%d, the report says %d–%d", cloudflare.EdgeStatusMin, cloudflare.EdgeStatusMax, report.EdgeCountedMin, report.EdgeCountedMax)
	}
}

// A hostname that passes now, whose edge 502s were the origin's own
// answers: the cause was visible here (a failure that stopped, or another
// URL), not "not visible from this origin".
func TestEdgeCountsFromTheOriginItself(t *testing.T) {
	f := newFixture(zoneWith("example.com", strictSettings(), a("www.example.com", "192.0.2.1")))
	f.api.edge = map[string][]cloudflare.EdgeGroup{"id-example.com": {
		{Hostname: "www.example.com", EdgeStatus: 502, OriginStatus: 502, Count: 1204, SampleInterval: 1},
	}}
	rep := f.run(t)
	var got []string
	for _, fd := range rep.Findings {
		if fd.Hostname == "www.example.com" {
			got = append(got, fd.Message)
		}
	}
	want := []string{"all paths to www.example.com pass now, but Cloudflare served it 1,204 × 502 in the last 15 minutes, answered so by this origin: a failure that has stopped, or one on URLs other than / (verify asks only GET /)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}
