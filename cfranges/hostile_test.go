package cfranges

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

// redirector answers every request with a 302 to target+path.
func redirector(t *testing.T, tls bool, target string) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusFound)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchRefusesRedirects(t *testing.T) {
	api := cfapitest.New(t) // a valid answer, on plain http at another port
	t.Run("https to plain http", func(t *testing.T) {
		srv := redirector(t, true, api.URL)
		f := &Fetcher{BaseURL: srv.URL, HTTPClient: srv.Client(), Timeout: testFetchTimeout}
		got, err := f.Fetch(context.Background(), false)
		checkFetchErr(t, got, err, ErrRedirect, "from https to plain http; not followed")
		if n := api.Requests["/ips"]; n != 0 {
			t.Errorf("the redirect was followed: the target was asked %d times", n)
		}
	})
	t.Run("another host", func(t *testing.T) {
		srv := redirector(t, false, api.URL)
		f := &Fetcher{BaseURL: srv.URL, HTTPClient: srv.Client(), Timeout: testFetchTimeout}
		got, err := f.Fetch(context.Background(), false)
		checkFetchErr(t, got, err, ErrRedirect, "the API redirected to "+api.URL+"/ips, another host; not followed")
		if n := api.Requests["/ips"]; n != 0 {
			t.Errorf("the redirect was followed: the target was asked %d times", n)
		}
	})
	t.Run("same host is followed", func(t *testing.T) {
		mux := http.NewServeMux()
		var srv *httptest.Server
		mux.HandleFunc("/old/ips", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/new/ips", http.StatusMovedPermanently)
		})
		mux.HandleFunc("/new/ips", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":{"etag":"e","ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"]}}`))
		})
		srv = httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		f := &Fetcher{BaseURL: srv.URL + "/old", HTTPClient: srv.Client(), Timeout: testFetchTimeout}
		if l, err := f.Fetch(context.Background(), false); err != nil || len(l.IPv4) != 1 {
			t.Errorf("same-host redirect: %v, %+v", err, l)
		}
	})
	t.Run("the caller's client keeps its policy", func(t *testing.T) {
		c := &http.Client{}
		f := &Fetcher{BaseURL: redirector(t, false, api.URL).URL, HTTPClient: c, Timeout: testFetchTimeout}
		f.Fetch(context.Background(), false)
		if c.CheckRedirect != nil {
			t.Error("Fetch changed the caller's http.Client")
		}
	})
}

// TestFetchSlowDrip: a server that sends the body a byte at a time, slower
// than the deadline allows, is cut off by the one deadline over the whole
// fetch (not a per-read timeout that every byte would reset).
func TestFetchSlowDrip(t *testing.T) {
	var stop atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		body := `{"success":true,"errors":[],"messages":[],"result":{"ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"]}}`
		for i := 0; i < len(body) && !stop.Load(); i++ {
			w.Write([]byte{body[i]})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(func() { stop.Store(true); srv.Close() })
	f := &Fetcher{BaseURL: srv.URL, HTTPClient: srv.Client(), Timeout: 300 * time.Millisecond}
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrTimeout, "gave up after 300ms without a complete answer")
}

// TestFetchHugeStream: an endless body is cut at MaxAnswerBytes, not read
// to the end.
func TestFetchHugeStream(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success":true,"result":{"etag":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for sent.Load() < 1<<30 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	t.Cleanup(srv.Close)
	f := &Fetcher{BaseURL: srv.URL, HTTPClient: srv.Client(), Timeout: testFetchTimeout}
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrNotAPIJSON, "larger than 1048576 bytes")
	if n := sent.Load(); n >= 1<<30 {
		t.Errorf("the server sent %d bytes: the body was read to the end", n)
	}
}

// TestFetchRefusesWidening: an answer that passes every per-prefix rule
// but adds up to the whole Internet is refused by the fetch itself.
func TestFetchRefusesWidening(t *testing.T) {
	s := cfapitest.New(t)
	s.SetIPs([]string{"0.0.0.0/1", "128.0.0.0/1"}, cfapitest.DefaultIPv6, nil, "")
	got, err := newFetcher(s).Fetch(context.Background(), false)
	if err == nil || !errors.Is(err, ErrInvalidList) {
		t.Fatalf("Fetch(0/1 + 128/1) = %v, %+v; want refused", err, got)
	}
	s.SetIPs([]string{"11.0.0.0/8", "12.0.0.0/8"}, cfapitest.DefaultIPv6, nil, "")
	got, err = newFetcher(s).Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrTooBroad, "the ranges of the answer together cover 11.0.0.0-12.255.255.255")
}
