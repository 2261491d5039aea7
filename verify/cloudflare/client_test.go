package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

func newClient(t *testing.T, s *cfapitest.Server, tok string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: s.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyToken(t *testing.T) {
	s := cfapitest.New(t)
	s.AddZone("example.com", nil)
	s.AddToken(cfapitest.Token{Value: "account-tok", Account: cfapitest.AccountID})
	s.AddToken(cfapitest.Token{Value: "disabled-tok", Status: "disabled"})
	s.AddToken(cfapitest.Token{Value: "stranger-account-tok", Account: "someone-else", Permissions: []string{}})
	tests := []struct {
		name, tok string
		want      string // "" = no error; else a substring of the one line
	}{
		{"user token", cfapitest.DefaultToken, ""},
		{"account token", "account-tok", ""},
		{"unknown token", "nope", "the API token is not valid (Cloudflare said 9109 Invalid access token): create a token with Zone:Read, Zone Settings:Read, DNS:Read"},
		{"malformed token", "has space", "the API token is not valid (Cloudflare said 6003 Invalid request headers: Invalid format for Authorization header)"},
		{"disabled token", "disabled-tok", "the API token is disabled: create a token with"},
		{"account token without zones", "stranger-account-tok", "the API token is not valid (Cloudflare said 1000 Invalid API Token)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newClient(t, s, tt.tok).VerifyToken(context.Background())
			got := ""
			if err != nil {
				got = err.Error()
				if !IsToken(err) {
					t.Errorf("IsToken(%v) = false", err)
				}
				if strings.Contains(got, tt.tok) {
					t.Errorf("the error shows the token: %s", got)
				}
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("VerifyToken: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoToken(t *testing.T) {
	_, err := New(Config{BaseURL: "http://127.0.0.1:1"})
	if !IsToken(err) {
		t.Fatalf("New without token: %v", err)
	}
}

func TestZonesPaging(t *testing.T) {
	s := cfapitest.New(t)
	var want []string
	for i := range 123 {
		name := fmt.Sprintf("z%03d.example", i)
		s.AddZone(name, nil)
		want = append(want, name)
	}
	c := newClient(t, s, cfapitest.DefaultToken)
	zs, err := c.Zones(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range zs {
		got = append(got, z.Name)
		if z.Status != "active" || z.ID == "" || z.AccountID != cfapitest.AccountID {
			t.Errorf("zone %+v", z)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("zones (-want +got):\n%s", d)
	}
	if n := s.Requests["/zones"]; n != 3 {
		t.Errorf("%d requests for 123 zones at 50 a page, want 3", n)
	}

	zs, err = c.Zones(context.Background(), []string{"Z007.example.", "z100.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(zs) != 2 || zs[0].Name != "z007.example" || zs[1].Name != "z100.example" {
		t.Errorf("by name: %+v", zs)
	}
	_, err = c.Zones(context.Background(), []string{"missing.example"})
	if err == nil || err.Error() != "zone missing.example is not in any account the API token can read: check the name, or give the token Zone:Read for that zone" {
		t.Errorf("missing zone: %v", err)
	}
}

func TestDNSRecordsPaging(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	var want []Record
	for i := range 2500 {
		r := Record{Type: "A", Name: fmt.Sprintf("h%04d.example.com", i), Content: "192.0.2.10", Proxied: i%2 == 0}
		s.AddRecord(id, r.Type, r.Name, r.Content, r.Proxied)
		want = append(want, r)
	}
	s.AddRecord(id, "MX", "example.com", "mail.example.com", false)
	want = append(want, Record{Type: "MX", Name: "example.com", Content: "mail.example.com"})
	s.AddRecord(id, "TXT", "example.com", "v=spf1 -all", true) // not proxiable: comes back unproxied
	want = append(want, Record{Type: "TXT", Name: "example.com", Content: "v=spf1 -all"})
	s.AddRecord(id, "CNAME", "www.example.com", "example.com", true)
	want = append(want, Record{Type: "CNAME", Name: "www.example.com", Content: "example.com", Proxied: true})
	s.AddRecord(id, "AAAA", "v6.example.com", "2001:db8:1::10", true)
	want = append(want, Record{Type: "AAAA", Name: "v6.example.com", Content: "2001:db8:1::10", Proxied: true})

	got, err := newClient(t, s, cfapitest.DefaultToken).DNSRecords(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	if n := s.Requests["/zones/"+id+"/dns_records"]; n != 3 {
		t.Errorf("%d requests for 2504 records at 1000 a page, want 3", n)
	}
}

// TestContextAcrossPages: a deadline that falls between pages ends the
// listing with the context's error (the SDK's auto-pager would carry on).
func TestContextAcrossPages(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	for i := range 3500 {
		s.AddRecord(id, "A", fmt.Sprintf("h%d.example.com", i), "192.0.2.10", true)
	}
	s.SetPageDelay(40 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newClient(t, s, cfapitest.DefaultToken).DNSRecords(ctx, id)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DNSRecords past the deadline: %v, want context.DeadlineExceeded", err)
	}
	if n := s.Requests["/zones/"+id+"/dns_records"]; n >= 4 {
		t.Errorf("%d pages asked after the deadline", n)
	}
}

func TestSettings(t *testing.T) {
	s := cfapitest.New(t)
	plain := s.AddZone("plain.example", nil)
	ent := s.AddZone("ent.example", map[string]any{"ssl": "strict", "always_use_https": "on", "min_tls_version": "1.2", "tls_client_auth": "on", "proxy_read_timeout": 300})
	tests := []struct {
		name, zone string
		want       Settings
	}{
		{"defaults, proxy_read_timeout unreadable", plain, Settings{SSL: "full", MinTLSVersion: "1.0", ProxyReadTimeout: 125 * time.Second,
			Notes: []string{"proxy_read_timeout could not be read (Cloudflare said 1015 This setting is not available on your plan); assuming Cloudflare's default of 125 s"}}},
		{"all set", ent, Settings{SSL: "strict", AlwaysUseHTTPS: true, MinTLSVersion: "1.2", TLSClientAuth: true, ProxyReadTimeout: 300 * time.Second}},
	}
	c := newClient(t, s, cfapitest.DefaultToken)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Settings(context.Background(), tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("settings (-want +got):\n%s", d)
			}
		})
	}
}

func TestMissingPermission(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.AddToken(cfapitest.Token{Value: "no-dns", Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermZoneSettingsRead}})
	s.AddToken(cfapitest.Token{Value: "no-settings", Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermDNSRead}})
	s.AddToken(cfapitest.Token{Value: "no-zone", Permissions: []string{cfapitest.PermDNSRead}})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"dns", func() error { _, err := newClient(t, s, "no-dns").DNSRecords(ctx, id); return err },
			"the API token may not list DNS records (Cloudflare said 10000 Authentication error): give the token DNS:Read"},
		{"settings", func() error { _, err := newClient(t, s, "no-settings").Settings(ctx, id); return err },
			"the API token may not read the zone setting ssl (Cloudflare said 10000 Authentication error): give the token Zone Settings:Read"},
		{"zones", func() error { _, err := newClient(t, s, "no-zone").Zones(ctx, nil); return err },
			"the API token may not list zones (Cloudflare said 10000 Authentication error): give the token Zone:Read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindPermission {
				t.Fatalf("got %v, want a permission error", err)
			}
			if d := cmp.Diff(tt.want, err.Error()); d != "" {
				t.Errorf("message (-want +got):\n%s", d)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	s := cfapitest.New(t)
	url := s.URL
	s.Close()
	c, _ := New(Config{BaseURL: url, Token: "x"})
	err := c.VerifyToken(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable {
		t.Fatalf("got %v, want unreachable", err)
	}
	if !strings.HasPrefix(err.Error(), "cannot verify the API token: the Cloudflare API did not answer") {
		t.Errorf("message: %s", err)
	}
}

// A page of DNS records that is not the API's JSON is one line, not
// retried and not handed to the SDK's decoder.
func TestDNSRecordsNotJSON(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`<html>502 Bad Gateway</html>`, "cannot list DNS records: Cloudflare answered something that is not JSON (invalid character '<' looking for beginning of value)"},
		{`{"success":true,"errors":[],"messages":[],"result":{"type":"A"}}`, "cannot list DNS records: Cloudflare answered in a form verify does not know (the result is not a list of records)"},
	} {
		requests := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests++
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, tt.body)
		}))
		c, err := New(Config{BaseURL: srv.URL, Token: "test-token"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DNSRecords(context.Background(), "z")
		srv.Close()
		if err == nil || err.Error() != tt.want {
			t.Errorf("DNSRecords: %v\nwant %s", err, tt.want)
		}
		if requests != 1 {
			t.Errorf("%d requests, want 1 (no retry)", requests)
		}
	}
}
