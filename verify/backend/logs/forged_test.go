package logs

import (
	"testing"
)

// A visitor who sends verify's Referer with an id of their own
// (https://cfguard-probe.invalid/ and 16 hex digits) stays in the
// visitors' counts: only a mark verify made on this host leaves a line
// out, so nobody can hide the errors they cause (or an outage they cause)
// from verify and watch.
func TestVisitorsCountsForgedMarks(t *testing.T) {
	forged := `2026/12/02 06:08:36 [error] 27257#27257: *9 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 198.51.100.7, server: example.test, request: "GET /slow HTTP/1.1", upstream: "fastcgi://unix:/run/php.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/0123456789abcdef"`
	own := `2026/12/02 06:08:37 [error] 27257#27257: *10 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/` + probeID + `"`
	var es []Entry
	for _, l := range []string{forged, own} {
		e, ok := Classify(Nginx, l)
		if !ok {
			t.Fatalf("Classify does not know %q", l)
		}
		es = append(es, e)
	}
	vs, probes := Visitors(es)
	if probes != 1 || len(vs) != 1 || vs[0].Probe != "0123456789abcdef" {
		t.Errorf("Visitors kept %v and left out %d, want the forged line kept and verify's own left out", vs, probes)
	}
	if Own(es[0]) || !Own(es[1]) {
		t.Errorf("Own = %v, %v; want false for the forged mark, true for verify's", Own(es[0]), Own(es[1]))
	}
}
