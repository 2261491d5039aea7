package rules

import (
	"fmt"
	"testing"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// BenchmarkFor1000Hosts: the rules of a zone at the Enterprise limit (125
// Origin Rules, 125 Configuration Rules) applied to 1,000 hostnames, with
// their alternatives, as one verify run does.
func BenchmarkFor1000Hosts(b *testing.B) {
	var rs cloudflare.Rules
	for i := range 125 {
		rs.Origin = append(rs.Origin, cloudflare.Rule{ID: fmt.Sprint("o", i), Enabled: true, Action: "route", OriginPort: 8000 + i,
			Expression: fmt.Sprintf(`(http.host eq "host-%d.example.com" or http.host in {"a-%d.example.com" "b-%d.example.com"}) and not starts_with(http.request.uri.path, "/static/")`, i, i, i)})
		rs.Config = append(rs.Config, cloudflare.Rule{ID: fmt.Sprint("c", i), Enabled: true, Action: "set_config", SSL: "strict",
			Expression: fmt.Sprintf(`ends_with(http.host, "-%d.example.com")`, i)})
	}
	b.ResetTimer()
	for b.Loop() {
		for h := range 1000 {
			host := fmt.Sprintf("host-%d.example.com", h)
			Plan(rs, host)
		}
	}
}
