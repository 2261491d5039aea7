package probe

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/probemark"
)

// TestHTTPMarksItsRequest: the request carries the id the outcome names, in
// the Referer (which error logs keep), the User-Agent and the CF-Ray, and
// the outcome names the source address the origin saw, over http and over
// the tls stage's connection alike.
func TestHTTPMarksItsRequest(t *testing.T) {
	type seen struct{ Referer, UserAgent, Ray, Remote string }
	for _, scheme := range []string{"http", "https"} {
		var mu sync.Mutex
		var got []seen
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, seen{r.Header.Get("Referer"), r.Header.Get("User-Agent"), r.Header.Get("CF-Ray"), r.RemoteAddr})
			mu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		if scheme == "https" {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
		tg := Target{Hostname: "www.example.com", Addr: ap.Addr(), Port: int(ap.Port()), Scheme: scheme, SSLMode: ModeFull}
		var o = HTTP(context.Background(), tg, time.Second)
		if scheme == "https" {
			r := TLSKeep(context.Background(), tg)
			o = HTTPOn(context.Background(), tg, r.Conn, time.Second)
		}
		srv.Close()
		if !o.Fail || o.Status != 502 {
			t.Fatalf("%s: outcome %+v, want a 502", scheme, o)
		}
		id := o.Sent.ID
		if len(id) != probemark.IDLen {
			t.Fatalf("%s: Sent = %+v, want an id", scheme, o.Sent)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		want := seen{probemark.Referer(id), "cfguard-verify (Cloudflare path probe " + id + ")", id + "-PRB", o.Sent.From.String()}
		if diff := cmp.Diff(want, last); diff != "" {
			t.Errorf("%s: the request (-want +got)\n%s", scheme, diff)
		}
	}
}

// TestHTTPNothingSentNoMark: a request that never reached a server names
// no mark, so nothing is looked for in the logs.
func TestHTTPNothingSentNoMark(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	srv.Close() // nothing listens there now
	o := HTTP(context.Background(), Target{Hostname: "www.example.com", Addr: ap.Addr(), Port: int(ap.Port()), Scheme: "http", SSLMode: ModeFull}, time.Second)
	if !o.Sent.IsZero() {
		t.Errorf("Sent = %+v for a request that was never sent", o.Sent)
	}
}
