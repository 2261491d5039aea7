package firewall

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   Want
	}{
		{"standin", testCfg, standIn},
		{"merged_ranges_allow_top", Config{Table: "web", Ports: []uint16{8443, 443, 80, 8080, 8000, 81}}, Want{
			Cloudflare: pfx("198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24", "203.0.113.9/32", "240.0.0.0/4",
				"2001:db8:cf::/48", "2001:db8:cf1::/48", "2001:db8:cf2::/48"),
			Allow: pfx("192.0.2.10/32", "2001:db8:1::/64"),
		}},
		{"empty", testCfg, Want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Render(tc.cfg, tc.in)
			path := filepath.Join("testdata", tc.name+".nft")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Render (-want +got):\n%s", diff)
			}
		})
	}
}

// The golden files are what the real nft prints for the table Apply makes.
func TestRenderGoldenMatchesKernel(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   Want
	}{
		{"merged_ranges_allow_top", Config{Table: "web", Ports: []uint16{8443, 443, 80, 8080, 8000, 81}}, Want{
			Cloudflare: pfx("198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24", "203.0.113.9/32", "240.0.0.0/4",
				"2001:db8:cf::/48", "2001:db8:cf1::/48", "2001:db8:cf2::/48"),
			Allow: pfx("192.0.2.10/32", "2001:db8:1::/64"),
		}},
		{"standin", testCfg, standIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			mustApply(t, manager(t, ns, tc.cfg), tc.in)
			want, err := os.ReadFile(filepath.Join("testdata", tc.name+".nft"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), ns.Run("nft", "list", "table", "inet", tc.cfg.Table)); diff != "" {
				t.Errorf("nft list vs golden (-want +got):\n%s", diff)
			}
		})
	}
}
