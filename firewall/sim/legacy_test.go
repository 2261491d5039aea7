package sim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLegacyWarning(t *testing.T) {
	for _, tt := range []struct {
		name   string
		legacy []string
		want   string
	}{
		{"IPv4 filter", []string{"ip_tables: filter"},
			"iptables-legacy has table filter (IPv4), whose rules nftables cannot show: cfguard cannot tell whether its rules drop Cloudflare's connections, so a path nftables accepts is reported as \"cannot tell\" instead of passing. " +
				"List the rules with `iptables-legacy -S`; move the ones you need to nftables (iptables-nft) and flush the legacy ones, or check by hand that none drops Cloudflare's ranges."},
		{"both families, nat", []string{"ip_tables: filter", "ip_tables: nat", "ip6_tables: filter"},
			"iptables-legacy has tables filter (IPv4), nat (IPv4) and filter (IPv6), whose rules nftables cannot show: cfguard cannot tell whether their rules drop Cloudflare's connections, so a path nftables accepts is reported as \"cannot tell\" instead of passing. " +
				"List the rules with `iptables-legacy -S` and `iptables-legacy -t nat -S` and `ip6tables-legacy -S`; move the ones you need to nftables (iptables-nft) and flush the legacy ones, or check by hand that none drops Cloudflare's ranges."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, legacyWarning(tt.legacy)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestLegacyNote(t *testing.T) {
	rs := &Ruleset{legacy: []string{"ip_tables: filter", "ip6_tables: filter", "ip6_tables: raw"}}
	for _, tt := range []struct {
		name string
		in   Result
		v6   bool
		want Result
	}{
		{"IPv4 accept", Result{Verdict: Accept}, false, Result{Verdict: CannotTell,
			Reason: "nftables accepts, but iptables-legacy table filter (IPv4) may drop the connection first, and nftables cannot show its rules (iptables-legacy -S lists them)"}},
		{"IPv6 accept, two tables", Result{Verdict: Accept}, true, Result{Verdict: CannotTell,
			Reason: "nftables accepts, but iptables-legacy tables filter (IPv6) and raw (IPv6) may drop the connection first, and nftables cannot show their rules"}},
		{"drop stays", Result{Verdict: Drop, Table: "filter", Reason: "policy drop"}, false, Result{Verdict: Drop, Table: "filter",
			Reason: "policy drop; iptables-legacy table filter (IPv4) may decide first, but this nftables rule blocks the connection either way"}},
		{"no table of the family", Result{Verdict: Accept}, false, Result{Verdict: Accept}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rs
			if tt.name == "no table of the family" {
				r = &Ruleset{legacy: []string{"ip6_tables: filter"}}
			}
			if d := cmp.Diff(tt.want, r.legacyNote(tt.in, tt.v6)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
