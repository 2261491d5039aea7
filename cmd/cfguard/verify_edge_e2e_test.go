package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/verify/report"
)

// Cloudflare's own counts through the binary: next to a prediction, as a
// finding when every path passes, and one line when the token may not read
// them.
func TestVerifyEdgeCounts(t *testing.T) {
	v := newVerifySite(t)
	var zoneID string
	{
		// The site's zone is the stand-in's only one.
		out, _, _ := v.verify(cfapitest.DefaultToken, "--json", "--timeout", "3s")
		var rep report.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(v.api.GraphQLQueries()) != 1 {
			t.Fatalf("verify --json: %v, %d GraphQL queries, want 1\n%s", err, len(v.api.GraphQLQueries()), out)
		}
		zoneID = v.api.GraphQLQueries()[0].ZoneTag
		for _, p := range rep.Paths {
			if p.Edge == nil || len(p.Edge.Counts) != 0 {
				t.Errorf("%s: edge %+v, want read and empty", p.Hostname, p.Edge)
			}
		}
	}
	v.api.SetEdgeRows(zoneID,
		cfapitest.EdgeRow{Host: "www.example.com", Edge: 522, Count: 1204},
		cfapitest.EdgeRow{Host: "api.example.com", Edge: 520, Count: 40})

	// Every path passes, yet the edge served 52x: a finding for each host.
	out, _, code := v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	for _, want := range []string{
		"all paths to api.example.com pass, but Cloudflare served it 40 × 520 in the last 15 minutes: the cause is not visible from this origin",
		"all paths to www.example.com pass, but Cloudflare served it 1,204 × 522 in the last 15 minutes: the cause is not visible from this origin",
		"522: some connections timed out",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("all pass, edge 52x: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	// A firewall drop predicts 522; the count stands next to it.
	rules := filepath.Join(t.TempDir(), "drop.nft")
	os.WriteFile(rules, []byte("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 203.0.113.0/24 tcp dport 80 drop\n\t}\n}\n"), 0o644)
	v.origin.Run("nft", "-f", rules)
	out, _, code = v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	v.origin.Run("nft", "delete", "table", "inet", "filter")
	if want := "      predicted 522 — Cloudflare served 1,204 × 522 in the last 15 minutes\n"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("firewall drop: exit %d, output lacks %q:\n%s", code, want, out)
	}

	// A token without Analytics:Read: said once, the rest runs, exit 0.
	v.api.AddToken(cfapitest.Token{Value: "no-analytics-token-0123456789",
		Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermZoneSettingsRead, cfapitest.PermDNSRead}})
	out, _, code = v.verify("no-analytics-token-0123456789", "--json", "--timeout", "3s")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, "edge error counts not read") {
			said = append(said, f.Message)
		}
	}
	if code != 0 || rep.Summary.Paths != 2 || len(said) != 1 || !strings.Contains(said[0], "lacks Analytics:Read for zone example.com") {
		t.Errorf("no Analytics:Read: exit %d, %d paths, findings %q", code, rep.Summary.Paths, said)
	}
}
