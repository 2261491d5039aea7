package report

import (
	"bytes"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1204: "1,204", 12345: "12,345", 1234567: "1,234,567", -1204: "-1,204"} {
		if got := Thousands(in); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", in, got, want)
		}
	}
}

func edgeSample(sampled bool, counts ...EdgeCount) *EdgeCounts {
	end := time.Date(2026, 12, 2, 6, 15, 0, 0, time.UTC)
	return &EdgeCounts{WindowStart: end.Add(-15 * time.Minute), WindowEnd: end, Sampled: sampled, Counts: counts}
}

func TestEdgeSummary(t *testing.T) {
	for _, tt := range []struct {
		name      string
		e         *EdgeCounts
		predicted int
		want      string
	}{
		{"the predicted status, summed over origin statuses", edgeSample(false, EdgeCount{502, 502, 1200}, EdgeCount{502, 0, 4}), 502, "1,204 × 502"},
		{"predicted first, then the others", edgeSample(false, EdgeCount{520, 0, 40}, EdgeCount{502, 502, 3}, EdgeCount{522, 0, 2}), 502, "3 × 502, 40 × 520 and 2 × 522"},
		{"sampled", edgeSample(true, EdgeCount{520, 0, 1200}), 520, "about 1,200 × 520"},
		{"none of the predicted", edgeSample(false, EdgeCount{520, 0, 40}), 522, "no 522 but 40 × 520"},
		{"nothing", edgeSample(false), 522, "no 522"},
		{"nothing, no prediction", edgeSample(false), 0, "no 502–530"},
		{"all, no prediction", edgeSample(false, EdgeCount{520, 0, 1}, EdgeCount{521, 0, 5}), 0, "5 × 521 and 1 × 520"},
		{"truncated", &EdgeCounts{Truncated: true, Counts: []EdgeCount{{520, 0, 9}}}, 520, "9 × 520 (and perhaps more: the answer was cut at the API's limit)"},
	} {
		if got := EdgeSummary(tt.e, tt.predicted); got != tt.want {
			t.Errorf("%s: EdgeSummary = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := edgeSample(false).Window(); got != "the last 15 minutes" {
		t.Errorf("Window() = %q", got)
	}
}

// edgeReport: a predicted 502 the edge confirms, a predicted 522 the edge
// did not see, and a passing path (no line: the findings speak for it).
func edgeReport() *Report {
	return &Report{
		Paths: []Path{
			{Zone: "example.com", Hostname: "api.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
				Status: 502, Stage: StageUpstream, Cause: "php-fpm is not running", Fix: "systemctl start php8.2-fpm",
				Edge: edgeSample(false, EdgeCount{502, 502, 1204}, EdgeCount{520, 0, 3})},
			{Zone: "example.com", Hostname: "old.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 80, Scheme: "http",
				Status: 522, Stage: StageFirewall, Cause: "the firewall drops Cloudflare", Edge: edgeSample(true)},
			{Zone: "example.com", Hostname: "private.example.com", RecordType: "A", OriginIP: "192.0.2.10", Port: 443, Scheme: "https",
				Status: 403, Stage: StageRecord, Cause: "the record points to a reserved address (Cloudflare error 1002)",
				Edge: edgeSample(false, EdgeCount{520, 0, 12})},
			{Zone: "example.com", Hostname: "www.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
				OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK", Edge: edgeSample(true, EdgeCount{520, 0, 4100})},
		},
		Findings: []Finding{{Severity: SeverityWarning, Zone: "example.com", Hostname: "www.example.com",
			Message: "all paths to www.example.com pass, but Cloudflare served it about 4,100 × 520 in the last 15 minutes: the cause is not visible from this origin"}},
		Summary: Summary{Paths: 4, Failing: 3, ByStatus: map[string]int{"403": 1, "502": 1, "522": 1}, Warnings: 1},
	}
}

func TestWriteTextEdge(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, edgeReport(), false); err != nil {
		t.Fatal(err)
	}
	golden(t, "edge.txt", b.Bytes())
}

func TestWriteJSONEdge(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, edgeReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "edge.json", b.Bytes())
}
