package report

import (
	"strings"
	"testing"
)

// Paths of one hostname with the same scheme, address and port (the ways
// only some requests take, under a rule that depends on the request) are
// named once with how many they are, not repeated.
func TestGroupSameWhereNamedOnce(t *testing.T) {
	var r Report
	for range 3 {
		r.Paths = append(r.Paths, Path{Zone: "example.com", Hostname: "www.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 80, Scheme: "http", OK: true, Stage: StageHTTP, Status: 200, Cause: "GET / answered 200"})
	}
	r.Paths = append(r.Paths, Path{Zone: "example.com", Hostname: "api.example.com", RecordType: "A", OriginIP: "192.0.2.1", Port: 80, Scheme: "http", OK: true, Stage: StageHTTP, Status: 200, Cause: "GET / answered 200"})
	var b strings.Builder
	if err := WriteText(&b, &r, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "http 192.0.2.1:80") != 2 || !strings.Contains(out, "www.example.com http 192.0.2.1:80 (3 paths)\n") {
		t.Errorf("want www's three paths named once with their count:\n%s", out)
	}
	if !strings.Contains(out, "on 4 paths of 2 hostnames:") {
		t.Errorf("want the group's count of paths and hostnames:\n%s", out)
	}
}
