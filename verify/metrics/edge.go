package metrics

import (
	"strconv"

	"github.com/cfguard/cfguard/verify/report"
)

// setEdge renders what Cloudflare's edge served each hostname, as the
// report's paths carry it (every path of a hostname carries the same
// counts: one series per zone, hostname and edge status).
func (m *Metrics) setEdge(rep *report.Report) {
	m.edgeResponses.Reset()
	type key struct{ zone, host string }
	seen := map[key]bool{}
	for _, p := range rep.Paths {
		k := key{p.Zone, p.Hostname}
		if p.Edge == nil || seen[k] {
			continue
		}
		seen[k] = true
		for _, c := range p.Edge.ByEdgeStatus() {
			m.edgeResponses.WithLabelValues(valid(p.Zone, p.Hostname, strconv.Itoa(c.EdgeStatus))...).Set(float64(c.Count))
		}
	}
}
