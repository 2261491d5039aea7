package watch

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
)

// ownID is an id verify made on this host (probemark.Ours).
var ownID = probemark.New()

var (
	ownNginx     = `2026/12/02 03:00:01 [crit] 12#12: *7 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.test", referrer: "https://cfguard-probe.invalid/` + ownID + `"` + "\n"
	apacheServer = `[Wed Dec 02 03:00:01.947990 2026] [proxy:error] [pid 58:tid 61] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /run/php/php8.2-fpm.sock (localhost:8000) failed` + "\n"
	apacheOwn    = `[Wed Dec 02 03:00:01.948040 2026] [proxy_fcgi:error] [pid 58:tid 61] [client 127.0.0.1:38622] AH01079: failed to make connection to backend: localhost, referer: https://cfguard-probe.invalid/` + ownID + "\n"
)

// TestFollowerMarksOwnRequests: the follower gives Apache's line that names
// no request the mark of the request line after it on its thread, also
// when a round's read falls between the two.
func TestFollowerMarksOwnRequests(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "apache-error.log")
	appendTo(t, p, "")
	ff := FollowFiles([]backend.LogFile{{Source: logs.Apache, Path: p}})
	defer ff.Close()
	type line struct{ Kind, Probe string }
	marks := func(es []logs.Entry) []line {
		out := []line{}
		for _, e := range es {
			out = append(out, line{string(e.Kind), e.Probe})
		}
		return out
	}
	appendTo(t, p, apacheServer)
	if diff := cmp.Diff([]line{}, marks(ff.Read())); diff != "" {
		t.Errorf("the line naming no request was not held back (-want +got)\n%s", diff)
	}
	appendTo(t, p, apacheOwn)
	want := []line{{string(logs.NoSuchFile), ownID}, {string(logs.ConnectFailed), ownID}}
	if diff := cmp.Diff(want, marks(ff.Read())); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	appendTo(t, p, apacheServer)
	ff.Read()
	if diff := cmp.Diff([]line{{string(logs.NoSuchFile), ""}}, marks(ff.Read())); diff != "" {
		t.Errorf("a line whose request never came is held back once only (-want +got)\n%s", diff)
	}
}

// TestOwnRequestsNotVisitors: lines about verify's own requests (the full
// verify the watch runs) are neither said, counted in metrics, nor taken
// as a recovery's evidence.
func TestOwnRequestsNotVisitors(t *testing.T) {
	r := newRig(t, Config{Recover: true})
	var es []logs.Entry
	for _, l := range []string{ownNginx, noFile} {
		e, ok := logs.Classify(logs.Nginx, strings.TrimSuffix(l, "\n"))
		if !ok {
			t.Fatalf("the classifier does not know %q", l)
		}
		es = append(es, e)
	}
	f := &fakeFollower{}
	r.w.s.Follow = func([]backend.LogFile) Follower { return f }
	r.bk.set(fpmBackend.Target, down)
	r.rounds(1)
	f.q = []logs.Entry{es[0], es[0], es[0], es[1]}
	r.rounds(1)
	if len(r.rec.reqs) != 1 || !strings.Contains(r.rec.reqs[0].Evidence, "nginx logged 'connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream' 1 times since the last check") {
		t.Errorf("requests %+v: want the visitor's one line as evidence, verify's three left out", r.rec.reqs)
	}
}
