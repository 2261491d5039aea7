package verify

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// TestUpstreamGetsTheRequestSent: the upstream stage is told which request
// the http stage sent, so that it reads back that request's log lines.
func TestUpstreamGetsTheRequestSent(t *testing.T) {
	always := strictSettings()
	always.AlwaysUseHTTPS = true
	f := newFixture(zoneWith("example.com", always, a("www.example.com", "192.0.2.1")))
	mark := probemark.Mark{ID: "0123456789abcdef", From: netip.MustParseAddrPort("192.0.2.1:40000")}
	f.probe.outcomes["http www.example.com 192.0.2.1:443"] = report.Outcome{Fail: true, Status: 502, Cause: "origin answered 502", Sent: mark}
	f.run(t)
	if diff := cmp.Diff(map[string]probemark.Mark{"www.example.com:443": mark}, f.up.sent); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
