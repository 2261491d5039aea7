// Package cfapitest is a stand-in for Cloudflare's v4 API, served by
// httptest, answering in the real API's shapes (envelope, errors, paging).
// Tests and benchmarks point cfguard's --api-url at it; nothing else in
// cfguard is stood in for.
package cfapitest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Server is the stand-in API. Its fields may be changed between requests
// (under Lock) by the test that owns it. Each endpoint group lives in its
// own file: ips.go (GET /ips), zones.go (token check, zones, settings, DNS),
// analytics.go (POST /graphql), rulesets.go (entrypoint rulesets per phase,
// page rules).
type Server struct {
	*httptest.Server
	mu sync.Mutex
	// Requests counts requests by path, for tests that assert what was asked.
	Requests map[string]int

	ips      ipsState                  // see ips.go
	zs       zonesState                // see zones.go
	rs       rulesetState              // see rulesets.go
	oversize map[string]*oversizeState // see oversize.go
	an       analyticsState            // see analytics.go
}

// New starts a stand-in API; it is closed when the test ends. The base URL
// for --api-url is s.URL (the stand-in serves at the root, as /client/v4
// would be on the real one).
func New(tb testing.TB) *Server {
	s := NewServer()
	tb.Cleanup(s.Close)
	return s
}

// NewOn starts a stand-in API on a listener the test made, e.g. one opened
// inside a test network namespace with nstest.NS.Do, so that a cfguard
// process running in that namespace can reach it.
func NewOn(tb testing.TB, ln net.Listener) *Server {
	s := build()
	s.Server.Listener.Close()
	s.Server.Listener = ln
	s.Start()
	tb.Cleanup(s.Close)
	return s
}

// NewServerOn starts a stand-in API on ln outside a test (the
// cfapi-standin command); the caller closes it.
func NewServerOn(ln net.Listener) *Server {
	s := build()
	s.Server.Listener.Close()
	s.Server.Listener = ln
	s.Start()
	return s
}

// NewServer starts a stand-in API outside a test (benchmark scripts); the
// caller closes it.
func NewServer() *Server {
	s := build()
	s.Start()
	return s
}

func build() *Server {
	s := &Server{Requests: map[string]int{}}
	s.ips = defaultIPs()
	mux := http.NewServeMux()
	s.routeIPs(mux)
	s.routeZones(mux)
	s.routeAnalytics(mux)
	s.routeRulesets(mux)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.Requests[r.URL.Path]++
		s.mu.Unlock()
		if s.serveOversize(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

// envelope writes the API's standard success envelope around result.
func envelope(w http.ResponseWriter, status int, result any, resultInfo any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result}
	if resultInfo != nil {
		body["result_info"] = resultInfo
	}
	json.NewEncoder(w).Encode(body)
}

// apiError writes the API's error envelope, e.g. code 9109 "Invalid access token".
func apiError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"success": false, "messages": []any{}, "result": nil,
		"errors": []any{map[string]any{"code": code, "message": message}},
	})
}
