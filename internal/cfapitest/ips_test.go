package cfapitest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ipsGet(t *testing.T, s *Server, path string) (int, string, string) {
	t.Helper()
	resp, err := s.Client().Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestIPsDefault(t *testing.T) {
	s := New(t)
	s.SetIPs(DefaultIPv4, DefaultIPv6, DefaultJDCloud, "0123abcd")
	tests := []struct {
		name, path, want string
	}{
		{"plain", "/ips", `{"errors":[],"messages":[],"result":{"etag":"0123abcd",` +
			`"ipv4_cidrs":["198.51.100.0/24","203.0.113.0/24"],"ipv6_cidrs":["2001:db8:cf::/48","2001:db8:cf1::/48"]},"success":true}`},
		{"china", "/ips?networks=jdcloud", `{"errors":[],"messages":[],"result":{"etag":"0123abcd",` +
			`"ipv4_cidrs":["198.51.100.0/24","203.0.113.0/24"],"ipv6_cidrs":["2001:db8:cf::/48","2001:db8:cf1::/48"],` +
			`"jdcloud_cidrs":["198.18.0.0/15","2001:db8:cf2::/48"]},"success":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ct, body := ipsGet(t, s, tt.path)
			if status != 200 || ct != "application/json" {
				t.Errorf("status %d, Content-Type %q", status, ct)
			}
			if diff := cmp.Diff(tt.want, strings.TrimSpace(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if got := s.LastIPsRequest().Query.Get("networks"); got != "jdcloud" {
		t.Errorf("LastIPsRequest networks = %q", got)
	}
}

func TestIPsEtagComputed(t *testing.T) {
	s := New(t)
	etag := func() string {
		_, _, body := ipsGet(t, s, "/ips")
		var v struct{ Result struct{ Etag string } }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		return v.Result.Etag
	}
	first := etag()
	s.SetIPs([]string{"192.0.2.0/24"}, DefaultIPv6, nil, "")
	second := etag()
	if len(first) != 32 || first == second {
		t.Errorf("etags %q then %q: want 32 hex digits that change with the lists", first, second)
	}
}

func TestIPsFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    IPsFault
		status   int
		ct       string
		contains string
	}{
		{"500", Fault500, 500, "application/json", `"errors":[{"code":10002,"message":"An unknown error has occurred"}]`},
		{"html", FaultHTML, 200, "text/html; charset=UTF-8", "<title>Network login required</title>"},
		{"truncated", FaultTruncated, 200, "application/json", `{"errors":[]`},
		{"disconnect", FaultDisconnect, 200, "application/json", `{"errors":[]`},
		{"success false", FaultSuccessFalse, 200, "application/json", `"success":false`},
		{"empty", FaultEmpty, 200, "application/json", `"ipv4_cidrs":[],"ipv6_cidrs":[]`},
		{"bad cidr", FaultBadCIDR, 200, "application/json", `"198.51.100.0/33"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.SetIPsFault(tt.fault)
			status, ct, body := ipsGet(t, s, "/ips")
			if status != tt.status || ct != tt.ct {
				t.Errorf("status %d, Content-Type %q; want %d, %q", status, ct, tt.status, tt.ct)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body %q does not contain %q", body, tt.contains)
			}
			if tt.fault == FaultTruncated || tt.fault == FaultDisconnect {
				if json.Valid([]byte(body)) {
					t.Errorf("body is complete JSON: %s", body)
				}
			}
		})
	}
}

func TestIPsDelayEndsWithClient(t *testing.T) {
	s := New(t)
	s.SetIPsDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/ips", nil)
	_, err := s.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the client's deadline", err)
	}
	// The test's cleanup closes the server: it must not wait an hour.
}
