package cfapitest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// IPsFault makes GET /ips answer badly, the ways a real answer has gone or
// could go wrong.
type IPsFault int

const (
	FaultNone         IPsFault = iota // the real API's answer
	Fault500                          // HTTP 500 with the API's JSON error envelope
	FaultHTML                         // HTTP 200, text/html: a captive portal or error page
	FaultTruncated                    // HTTP 200, JSON cut off half-way (the framing is complete)
	FaultDisconnect                   // Content-Length promised, connection closed half-way
	FaultSuccessFalse                 // HTTP 200, "success": false, code 10000 "Authentication error"
	FaultEmpty                        // HTTP 200, success, but empty ipv4_cidrs and ipv6_cidrs
	FaultBadCIDR                      // HTTP 200, success, one IPv4 entry is not a CIDR
)

// Stand-in "Cloudflare" ranges (documentation / benchmarking prefixes).
var (
	DefaultIPv4    = []string{"198.51.100.0/24", "203.0.113.0/24"}
	DefaultIPv6    = []string{"2001:db8:cf::/48", "2001:db8:cf1::/48"}
	DefaultJDCloud = []string{"198.18.0.0/15", "2001:db8:cf2::/48"}
)

// ipsState is what GET /ips answers, and what it was asked.
type ipsState struct {
	v4, v6, jd []string
	etag       string
	fault      IPsFault
	delay      time.Duration
	last       IPsRequest
}

// IPsRequest is what the last GET /ips carried, for tests that check the
// query parameter, the User-Agent or that no credentials were sent.
type IPsRequest struct {
	Query  url.Values
	Header http.Header
}

func defaultIPs() ipsState {
	return ipsState{
		v4: DefaultIPv4, v6: DefaultIPv6, jd: DefaultJDCloud,
		etag: ipsEtagOf(DefaultIPv4, DefaultIPv6, DefaultJDCloud),
	}
}

// etagOf makes a hex digest of the lists, as the real etag is.
func ipsEtagOf(lists ...[]string) string {
	h := sha256.New()
	for _, l := range lists {
		h.Write([]byte(strings.Join(l, ",") + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// SetIPs replaces the ranges GET /ips answers. An empty etag is computed
// from the lists (so it changes when they do). nil slices are answered as
// empty arrays, as the real API would.
func (s *Server) SetIPs(v4, v6, jd []string, etag string) {
	if etag == "" {
		etag = ipsEtagOf(v4, v6, jd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips.v4, s.ips.v6, s.ips.jd, s.ips.etag = ipsClone(v4), ipsClone(v6), ipsClone(jd), etag
}

// SetIPsFault makes the following GET /ips answers fail as f says
// (FaultNone to heal).
func (s *Server) SetIPsFault(f IPsFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips.fault = f
}

// SetIPsDelay makes GET /ips wait d before answering. The wait ends early
// when the client goes away, so closing the server never hangs on it.
func (s *Server) SetIPsDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips.delay = d
}

// LastIPsRequest returns the query and headers of the last GET /ips (zero
// before the first).
func (s *Server) LastIPsRequest() IPsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return IPsRequest{Query: ipsCloneValues(s.ips.last.Query), Header: s.ips.last.Header.Clone()}
}

func (s *Server) routeIPs(mux *http.ServeMux) {
	mux.HandleFunc("GET /ips", s.serveIPs)
}

func (s *Server) serveIPs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.ips
	s.ips.last = IPsRequest{Query: r.URL.Query(), Header: r.Header.Clone()}
	s.mu.Unlock()

	if st.delay > 0 {
		t := time.NewTimer(st.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}

	result := map[string]any{
		"etag":       st.etag,
		"ipv4_cidrs": ipsNonNil(st.v4),
		"ipv6_cidrs": ipsNonNil(st.v6),
	}
	if r.URL.Query().Get("networks") == "jdcloud" {
		result["jdcloud_cidrs"] = ipsNonNil(st.jd)
	}

	switch st.fault {
	case Fault500:
		apiError(w, http.StatusInternalServerError, 10002, "An unknown error has occurred")
	case FaultHTML:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(ipsHTMLPage))
	case FaultTruncated:
		body := ipsFullBody(result)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
	case FaultDisconnect:
		body := ipsFullBody(result)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
	case FaultSuccessFalse:
		apiError(w, http.StatusOK, 10000, "Authentication error")
	case FaultEmpty:
		result["ipv4_cidrs"], result["ipv6_cidrs"] = []string{}, []string{}
		envelope(w, http.StatusOK, result, nil)
	case FaultBadCIDR:
		result["ipv4_cidrs"] = append(ipsClone(st.v4), "198.51.100.0/33")
		envelope(w, http.StatusOK, result, nil)
	default:
		envelope(w, http.StatusOK, result, nil)
	}
}

func ipsFullBody(result map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result})
	return b
}

const ipsHTMLPage = `<!DOCTYPE html>
<html lang="en"><head><title>Network login required</title></head>
<body><h1>Please sign in to use this network</h1><p>Your session has expired.</p></body></html>
`

func ipsNonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func ipsClone(l []string) []string {
	if l == nil {
		return nil
	}
	return append([]string(nil), l...)
}

func ipsCloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = ipsClone(vs)
	}
	return out
}
