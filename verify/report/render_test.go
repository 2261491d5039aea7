package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func sample() *Report {
	return &Report{
		Paths: []Path{
			{Zone: "example.com", Hostname: "api.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
				Status: 502, Stage: StageUpstream, Cause: "php-fpm is not running: /run/php/php8.2-fpm.sock does not exist",
				Fix: "systemctl start php8.2-fpm", Evidence: []string{"GET / answered 502 Bad Gateway", "nginx logged 'connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)' 14 times"}},
			{Zone: "example.com", Hostname: "www.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 80, Scheme: "http",
				OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK"},
			{Zone: "example.com", Hostname: "www.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 443, Scheme: "https",
				OK: true, Status: 200, Stage: StageHTTP, Cause: "GET / answered 200 OK",
				Warnings: []string{"the certificate for www.example.com expires on 2026-11-20, in 9 days"}},
			{Zone: "example.com", Hostname: "www.example.com", RecordType: "AAAA", OriginIP: "2001:db8:1::1", Port: 443, Scheme: "https",
				Status: 522, Stage: StageFirewall, Cause: "the firewall drops connections from Cloudflare to [2001:db8:1::1]:443",
				Fix: "Allow Cloudflare's ranges to port 443 before that rule.", Evidence: []string{"table inet filter chain input, rule handle 7: ip6 saddr 2001:db8:cf::/48 drop"}},
			{Zone: "example.com", Hostname: "gone.example.com", RecordType: "CNAME", Status: 530, Stage: StageRecord,
				Cause: "gone.example.com is a CNAME to nothing.invalid, which does not resolve (Cloudflare error 1016)",
				Fix:   "Point the CNAME at a name that resolves."},
		},
		Findings: []Finding{
			{Severity: SeverityError, Zone: "example.com", Hostname: "www.example.com", Message: "www.example.com: an endless redirect loop", Fix: "Set the SSL mode to Full (strict)."},
			{Severity: SeverityInfo, Zone: "example.com", Message: "zone example.com: proxy_read_timeout could not be read; assuming 125 s"},
		},
		Summary: Summary{Paths: 5, Failing: 3, ByStatus: map[string]int{"502": 1, "522": 1, "530": 1}, Errors: 1, Warnings: 1},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", name, d)
	}
}

func TestWriteText(t *testing.T) {
	for _, tt := range []struct {
		name  string
		r     *Report
		color bool
	}{
		{"report.txt", sample(), false},
		{"report_color.txt", sample(), true},
		{"empty.txt", &Report{}, false},
		{"pass.txt", &Report{Paths: sample().Paths[1:3], Summary: Summary{Paths: 2}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, tt.r, tt.color); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

func TestWriteJSON(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    *Report
	}{
		{"report.json", sample()},
		{"empty.json", &Report{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJSON(&b, tt.r); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
			var back Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		in   Summary
		want string
	}{
		{Summary{}, "no path to check"},
		{Summary{Paths: 1}, "the 1 path passes"},
		{Summary{Paths: 12}, "all 12 paths pass"},
		{Summary{Paths: 12, Failing: 3, ByStatus: map[string]int{"522": 1, "502": 2}}, "3 of 12 paths would fail: 2 × 502, 1 × 522"},
		{Summary{Paths: 1, Failing: 1, ByStatus: map[string]int{"521": 1}}, "1 of 1 path would fail: 1 × 521"},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, SummaryLine(tt.in)); d != "" {
			t.Errorf("SummaryLine(%+v) (-want +got):\n%s", tt.in, d)
		}
	}
}
