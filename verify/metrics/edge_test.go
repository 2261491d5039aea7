package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cfguard/cfguard/verify/report"
)

func TestEdgeResponses(t *testing.T) {
	m := New()
	edge := &report.EdgeCounts{WindowStart: at.Add(-15 * time.Minute), WindowEnd: at, Counts: []report.EdgeCount{
		{EdgeStatus: 502, OriginStatus: 502, Count: 1200}, {EdgeStatus: 502, OriginStatus: 0, Count: 4}, {EdgeStatus: 520, Count: 3}}}
	m.SetReport(&report.Report{Paths: []report.Path{
		{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.10", Port: 443, Scheme: "https", Status: 502, Edge: edge},
		{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.10", Port: 80, Scheme: "http", Status: 502, Edge: edge},
		{Zone: "example.com", Hostname: "api.example.com", OriginIP: "192.0.2.10", Port: 443, Scheme: "https", OK: true, Status: 200,
			Edge: &report.EdgeCounts{Counts: []report.EdgeCount{}}},
	}}, at)
	want := `
# HELP cfguard_edge_responses Visitor requests Cloudflare's edge answered with this status (502–530) in the 15 minutes before the last verify, from the GraphQL Analytics API (estimates when sampled); absent without Analytics:Read.
# TYPE cfguard_edge_responses gauge
cfguard_edge_responses{hostname="www.example.com",status="502",zone="example.com"} 1204
cfguard_edge_responses{hostname="www.example.com",status="520",zone="example.com"} 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cfguard_edge_responses"); err != nil {
		t.Error(err)
	}
	// The next report without counts (no permission) drops the series.
	m.SetReport(&report.Report{Paths: []report.Path{{Zone: "example.com", Hostname: "www.example.com", Status: 502}}}, at)
	if n := testutil.CollectAndCount(m.edgeResponses); n != 0 {
		t.Errorf("%d edge series after a report without counts, want 0", n)
	}
}
