package cfranges

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/google/go-cmp/cmp"
)

// testFetchTimeout bounds each test fetch; long enough for the SDK's two
// retries (0.5 s + 1 s) on a loaded CI machine.
const testFetchTimeout = 20 * time.Second

func newFetcher(s *cfapitest.Server) *Fetcher {
	return &Fetcher{BaseURL: s.URL, HTTPClient: s.Client(), Timeout: testFetchTimeout, UserAgent: "cfguard/test"}
}

func TestFetch(t *testing.T) {
	s := cfapitest.New(t)
	const etag = "5f1c0a7e9d2b4c6a8e0f1a3b5c7d9e1f"
	s.SetIPs(cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, cfapitest.DefaultJDCloud, etag)

	before := time.Now()
	got, err := newFetcher(s).Fetch(context.Background(), false)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	want := List{IPv4: standV4, IPv6: standV6, Etag: etag, Source: SourceAPI}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmpIgnoreTime); diff != "" {
		t.Errorf("Fetch (-want +got):\n%s", diff)
	}
	if got.FetchedAt.Before(before) {
		t.Errorf("FetchedAt = %v, before the fetch started (%v)", got.FetchedAt, before)
	}

	req := s.LastIPsRequest()
	if q := req.Query.Encode(); q != "" {
		t.Errorf("query = %q, want none without china", q)
	}
	if ua := req.Header.Get("User-Agent"); ua != "cfguard/test" {
		t.Errorf("User-Agent = %q, want cfguard/test", ua)
	}
	for _, h := range []string{"Authorization", "X-Auth-Key", "X-Auth-Email", "X-Auth-User-Service-Key"} {
		if v := req.Header.Get(h); v != "" {
			t.Errorf("request carries %s: %q; GET /ips needs no credentials", h, v)
		}
	}
	if n := s.Requests["/ips"]; n != 1 {
		t.Errorf("GET /ips asked %d times, want 1", n)
	}
}

var cmpIgnoreTime = cmp.Comparer(func(a, b time.Time) bool { return true })

func TestFetchIgnoresEnvironment(t *testing.T) {
	// The root SDK client would read these; NewIPService must not.
	t.Setenv("CLOUDFLARE_API_TOKEN", "env-token-must-not-be-sent")
	t.Setenv("CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/") // loopback: never dial out, even if read
	s := cfapitest.New(t)
	if _, err := newFetcher(s).Fetch(context.Background(), false); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if v := s.LastIPsRequest().Header.Get("Authorization"); v != "" {
		t.Errorf("Authorization = %q, want none", v)
	}
}

func TestFetchChina(t *testing.T) {
	s := cfapitest.New(t)
	got, err := newFetcher(s).Fetch(context.Background(), true)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if diff := cmp.Diff("jdcloud", s.LastIPsRequest().Query.Get("networks")); diff != "" {
		t.Errorf("networks query (-want +got):\n%s", diff)
	}
	want := []string{"198.18.0.0/15", "2001:db8:cf2::/48"}
	var gotJD []string
	for _, p := range got.JDCloud {
		gotJD = append(gotJD, p.String())
	}
	if diff := cmp.Diff(want, gotJD); diff != "" {
		t.Errorf("JDCloud (-want +got):\n%s", diff)
	}
	if len(got.IPv4) != 2 || len(got.IPv6) != 2 {
		t.Errorf("IPv4/IPv6 = %v / %v, want the stand-in ranges", got.IPv4, got.IPv6)
	}
}

func TestFetchFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(s *cfapitest.Server)
		china    bool
		kind     error
		contains string // part of the one-line message
		requests int    // GET /ips expected (retries), 0 = don't check
	}{
		{"500", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.Fault500) }, false,
			ErrHTTPStatus, "the API answered HTTP 500 Internal Server Error (3 attempts): error 10002: An unknown error has occurred", 1 + FetchRetries},
		{"HTML page", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultHTML) }, false,
			ErrNotAPIJSON, `the answer is an HTML page titled "Network login required", not the API's JSON`, 1},
		{"truncated JSON", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultTruncated) }, false,
			ErrNotAPIJSON, "the answer is truncated after 99 bytes (application/json), not the API's JSON", 1},
		{"connection cut", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultDisconnect) }, false,
			ErrNotAPIJSON, "the answer is truncated: the connection closed before all of it arrived", 0},
		{"success false", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultSuccessFalse) }, false,
			ErrAPIFailure, "the API answered success=false: error 10000: Authentication error", 1},
		{"empty lists", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultEmpty) }, false,
			ErrNoIPv4, "IPv4 ranges refused: the list has no IPv4 range", 1},
		{"no IPv6", func(s *cfapitest.Server) { s.SetIPs(cfapitest.DefaultIPv4, nil, nil, "") }, false,
			ErrNoIPv6, "no IPv6 range", 1},
		{"bad CIDR", func(s *cfapitest.Server) { s.SetIPsFault(cfapitest.FaultBadCIDR) }, false,
			ErrInvalidPrefix, `IPv4 range "198.51.100.0/33" refused: not a valid CIDR`, 1},
		{"private range", func(s *cfapitest.Server) {
			s.SetIPs([]string{"198.51.100.0/24", "10.0.0.0/8"}, cfapitest.DefaultIPv6, nil, "")
		}, false, ErrReserved, "IPv4 range 10.0.0.0/8 refused: private address space", 1},
		{"default route v6", func(s *cfapitest.Server) { s.SetIPs(cfapitest.DefaultIPv4, []string{"::/0"}, nil, "") }, false,
			ErrDefaultRoute, "IPv6 range ::/0 refused: default route", 1},
		{"china without jdcloud", func(s *cfapitest.Server) {
			s.SetIPs(cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, nil, "")
		}, true, ErrNoChina, "asked for China Network ranges (networks=jdcloud) but the answer's jdcloud_cidrs is missing or empty", 1},
		{"china bad jdcloud", func(s *cfapitest.Server) {
			s.SetIPs(cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, []string{"fd00::/8"}, "")
		}, true, ErrReserved, "China Network range fd00::/8 refused", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cfapitest.New(t)
			tt.setup(s)
			got, err := newFetcher(s).Fetch(context.Background(), tt.china)
			checkFetchErr(t, got, err, tt.kind, tt.contains)
			if !strings.Contains(err.Error(), "fetching Cloudflare ranges from "+s.URL+"/ips: ") {
				t.Errorf("error %q does not name the URL", err)
			}
			if tt.requests != 0 {
				if n := s.Requests["/ips"]; n != tt.requests {
					t.Errorf("GET /ips asked %d times, want %d", n, tt.requests)
				}
			}
		})
	}
}

func checkFetchErr(t *testing.T, got List, err error, kind error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Fetch accepted the answer: %+v", got)
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, kind) {
		t.Errorf("error %q does not match %v", err, kind)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q\ndoes not contain %q", err, contains)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error is not one line: %q", err)
	}
	if diff := cmp.Diff(List{}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("a refused fetch returned a partly filled List:\n%s", diff)
	}
}

func TestFetchSlowAnswer(t *testing.T) {
	s := cfapitest.New(t)
	s.SetIPsDelay(time.Minute) // ends early when the client gives up
	f := newFetcher(s)
	f.Timeout = 200 * time.Millisecond
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrTimeout, "gave up after 200ms without a complete answer (")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not match context.DeadlineExceeded", err)
	}
}

func TestFetchCallerCancels(t *testing.T) {
	s := cfapitest.New(t)
	s.SetIPsDelay(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	got, err := newFetcher(s).Fetch(ctx, false)
	checkFetchErr(t, got, err, context.Canceled, "interrupted: context canceled")
	if errors.Is(err, ErrTimeout) {
		t.Errorf("a cancel by the caller reported as our timeout: %v", err)
	}
}

func TestFetchWrongURL(t *testing.T) {
	s := cfapitest.New(t)
	f := newFetcher(s)
	f.BaseURL = s.URL + "/nope"
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrHTTPStatus, "the API answered HTTP 404 Not Found with a text/plain body")
}

func TestFetchBadBaseURL(t *testing.T) {
	for _, base := range []string{"api.cloudflare.com/client/v4", "ftp://127.0.0.1/", "http://"} {
		f := &Fetcher{BaseURL: base}
		got, err := f.Fetch(context.Background(), false)
		checkFetchErr(t, got, err, err, "the API URL must be an absolute http:// or https:// URL")
	}
}

func TestFetchConnectionRefused(t *testing.T) {
	s := cfapitest.New(t)
	url := s.URL
	s.Close()
	f := &Fetcher{BaseURL: url, Timeout: testFetchTimeout}
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, err, "connect: connection refused (3 attempts)")
}

func TestFetchRedactsURLPassword(t *testing.T) {
	s := cfapitest.New(t)
	s.SetIPsFault(cfapitest.FaultHTML)
	f := newFetcher(s)
	f.BaseURL = strings.Replace(s.URL, "http://", "http://user:s3cr3t@", 1)
	_, err := f.Fetch(context.Background(), false)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v shows the URL's password", err)
	}
}

func TestFetchTooLarge(t *testing.T) {
	big := `{"success":true,"errors":[],"messages":[],"result":{"etag":"` + strings.Repeat("a", MaxAnswerBytes) + `"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(big))
	}))
	t.Cleanup(srv.Close)
	f := &Fetcher{BaseURL: srv.URL, HTTPClient: srv.Client(), Timeout: testFetchTimeout}
	got, err := f.Fetch(context.Background(), false)
	checkFetchErr(t, got, err, ErrNotAPIJSON, "the answer is larger than 1048576 bytes, not the API's JSON")
}

func BenchmarkFetch(b *testing.B) {
	s := cfapitest.New(b)
	f := newFetcher(s)
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.Fetch(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFetchRealShapedList(t *testing.T) {
	// Cloudflare's own 15 + 7 ranges as list data only (nothing dials them).
	b := Builtin()
	var v4, v6 []string
	for _, p := range b.IPv4 {
		v4 = append(v4, p.String())
	}
	for _, p := range b.IPv6 {
		v6 = append(v6, p.String())
	}
	s := cfapitest.New(t)
	s.SetIPs(v4, v6, nil, "")
	got, err := newFetcher(s).Fetch(context.Background(), false)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if diff := cmp.Diff(b.All(), got.All(), cmpPrefix); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
