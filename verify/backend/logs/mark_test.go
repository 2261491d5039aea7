package logs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/probemark"
)

// probeID is an id verify made on this host: only such a mark leaves a
// line out of the visitors' counts.
var probeID = probemark.New()

// Lines as nginx 1.22 and Apache 2.4 wrote them for a GET / with and
// without verify's Referer (the Apache ones interleave two threads).
var markLines = map[Source]string{
	Nginx: strings.ReplaceAll(`2026/12/02 06:08:36 [crit] 27257#27257: *1 connect() to unix:/tmp/pexp/php.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/pexp/php.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/0123456789abcdef"
2026/12/02 06:08:36 [crit] 27257#27257: *3 connect() to unix:/tmp/pexp/php.sock failed (2: No such file or directory) while connecting to upstream, client: 198.51.100.7, server: example.test, request: "GET /?x=cfguard-probe.invalid HTTP/1.1", upstream: "fastcgi://unix:/tmp/pexp/php.sock:", host: "example.test"
2026/12/02 06:08:37 [error] 27257#27257: *5 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/pexp/php.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/fedcba9876543210"`, "0123456789abcdef", probeID),
	Apache: strings.ReplaceAll(`[Wed Dec 02 06:08:36.947990 2026] [proxy:error] [pid 27258:tid 27261] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /tmp/pexp/php.sock (localhost:8000) failed
[Wed Dec 02 06:08:36.947991 2026] [proxy:error] [pid 27258:tid 27262] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /tmp/pexp/php.sock (localhost:8000) failed
[Wed Dec 02 06:08:36.948040 2026] [proxy_fcgi:error] [pid 27258:tid 27261] [client 127.0.0.1:38622] AH01079: failed to make connection to backend: localhost, referer: https://cfguard-probe.invalid/0123456789abcdef
[Wed Dec 02 06:08:36.948041 2026] [proxy_fcgi:error] [pid 27258:tid 27262] [client 198.51.100.7:40000] AH01079: failed to make connection to backend: localhost
[Wed Dec 02 06:08:36.957826 2026] [proxy:error] [pid 27259:tid 27289] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:9999 (127.0.0.1:9999) failed
[Wed Dec 02 06:08:36.957905 2026] [proxy_http:error] [pid 27259:tid 27289] [client 127.0.0.1:59900] AH01114: HTTP: failed to make connection to backend: 127.0.0.1`, "0123456789abcdef", probeID),
}

type markOf struct{ Kind, Probe, Client, Thread string }

func TestMarks(t *testing.T) {
	want := map[Source][]markOf{
		Nginx: {
			{string(NoSuchFile), probeID, "", ""},
			{string(NoSuchFile), "", "", ""}, // the host name alone is no mark
		},
		Apache: {
			{string(NoSuchFile), probeID, "127.0.0.1:38622", "27258:tid 27261"}, // from the request line after it on its thread
			{string(NoSuchFile), "", "198.51.100.7:40000", "27258:tid 27262"},
			{string(ConnectFailed), probeID, "127.0.0.1:38622", "27258:tid 27261"},
			{string(ConnectFailed), "", "198.51.100.7:40000", "27258:tid 27262"},
			{string(Refused), "", "127.0.0.1:59900", "27259:tid 27289"}, // no referer: the client's port still names it
			{string(ConnectFailed), "", "127.0.0.1:59900", "27259:tid 27289"},
		},
	}
	for src, text := range markLines {
		es, _, err := Scan(context.Background(), src, strings.NewReader(text), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var got []markOf
		for _, e := range es {
			got = append(got, markOf{string(e.Kind), e.Probe, e.Client, e.Thread})
		}
		if diff := cmp.Diff(want[src], got); diff != "" {
			t.Errorf("%s (-want +got)\n%s", src, diff)
		}
		vs, probes := Visitors(es)
		if len(vs)+probes != len(es) || probes != map[Source]int{Nginx: 1, Apache: 2}[src] {
			t.Errorf("%s: Visitors kept %d and left out %d of %d", src, len(vs), probes, len(es))
		}
	}
}

// TestLineKeepsUnclassified: reading back a request keeps a line Classify
// does not know, with its mark and message.
func TestLineKeepsUnclassified(t *testing.T) {
	line := strings.Split(markLines[Nginx], "\n")[2]
	e := Line(Nginx, line)
	got := markOf{string(e.Kind), e.Probe, e.Message, ""}
	want := markOf{"", "fedcba9876543210", `FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream`, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if e.Time.IsZero() {
		t.Errorf("the time stamp was lost")
	}
}
