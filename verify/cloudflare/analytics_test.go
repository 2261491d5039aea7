package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

var (
	edgeUntil = time.Now().UTC().Truncate(time.Second)
	edgeSince = edgeUntil.Add(-15 * time.Minute)
)

func TestEdgeErrors(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.SetEdgeRows(id,
		cfapitest.EdgeRow{Host: "www.example.com", Edge: 502, Origin: 502, Count: 1204},
		cfapitest.EdgeRow{Host: "www.example.com", Edge: 520, Origin: 0, Count: 7, SampleInterval: 10},
		cfapitest.EdgeRow{Host: "api.example.com", Edge: 522, Count: 3},
		cfapitest.EdgeRow{Host: "other.example.com", Edge: 521, Count: 99},            // not asked for
		cfapitest.EdgeRow{Host: "www.example.com", Edge: 500, Origin: 500, Count: 50}, // not a 502–530
	)
	c := newClient(t, s, cfapitest.DefaultToken)
	got, err := c.EdgeErrors(context.Background(), id, []string{"www.example.com", "API.example.com.", "www.example.com"}, edgeSince, edgeUntil)
	if err != nil {
		t.Fatal(err)
	}
	want := EdgeCounts{Since: edgeSince, Until: edgeUntil, Groups: []EdgeGroup{
		{Hostname: "www.example.com", EdgeStatus: 502, OriginStatus: 502, Count: 1204, SampleInterval: 1},
		{Hostname: "www.example.com", EdgeStatus: 520, OriginStatus: 0, Count: 7, SampleInterval: 10},
		{Hostname: "api.example.com", EdgeStatus: 522, OriginStatus: 0, Count: 3, SampleInterval: 1},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("EdgeErrors (-want +got):\n%s", d)
	}
	if !got.Sampled() {
		t.Error("Sampled() = false with a sample interval of 10")
	}
	// One query for the zone, naming both hostnames once, for visitors only.
	qs := s.GraphQLQueries()
	if len(qs) != 1 {
		t.Fatalf("%d queries, want 1", len(qs))
	}
	f := qs[0].Filter
	wantFilter := map[string]any{
		"datetime_geq": edgeSince.Format(time.RFC3339), "datetime_lt": edgeUntil.Format(time.RFC3339),
		"requestSource": "eyeball", "edgeResponseStatus_geq": float64(502), "edgeResponseStatus_leq": float64(530),
		"clientRequestHTTPHost_in": []any{"www.example.com", "api.example.com"},
	}
	if d := cmp.Diff(wantFilter, f); d != "" {
		t.Errorf("filter (-want +got):\n%s", d)
	}

	// A wildcard asks for the whole zone.
	got, err = c.EdgeErrors(context.Background(), id, []string{"www.example.com", "*.example.com"}, edgeSince, edgeUntil)
	if err != nil || len(got.Groups) != 4 {
		t.Errorf("with a wildcard: %d groups, %v; want the zone's 4", len(got.Groups), err)
	}
	if qs := s.GraphQLQueries(); len(qs) != 2 || qs[1].Filter["clientRequestHTTPHost_in"] != nil {
		t.Errorf("with a wildcard the filter names hostnames: %v", qs[len(qs)-1].Filter)
	}
}

func TestEdgeErrorsRefused(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.AddToken(cfapitest.Token{Value: "no-analytics", Permissions: []string{cfapitest.PermZoneRead, cfapitest.PermZoneSettingsRead, cfapitest.PermDNSRead}})
	tests := []struct {
		name, tok, zone string
		kind            Kind
		want            string
	}{
		{"no Analytics:Read", "no-analytics", id, KindPermission,
			`the API token may not read Cloudflare's edge counts (Cloudflare said zones ["` + id + `"] are not authorized): give the token Analytics:Read`},
		{"another zone", cfapitest.DefaultToken, "0123456789abcdef0123456789abcdef", KindPermission, "are not authorized"},
		{"unknown token", "nope", id, KindToken, "the API token is not valid (Cloudflare said 9109 Invalid access token)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, s, tt.tok).EdgeErrors(context.Background(), tt.zone, []string{"www.example.com"}, edgeSince, edgeUntil)
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v (%T), want kind %d containing %q", err, err, tt.kind, tt.want)
			}
		})
	}
}

// A slow answer ends at the caller's deadline with one error, not a hang.
func TestEdgeErrorsDeadline(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	s.SetGraphQLDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newClient(t, s, cfapitest.DefaultToken).EdgeErrors(ctx, id, nil, edgeSince, edgeUntil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want KindUnreachable with context.DeadlineExceeded", err)
	}
}

func TestEdgeErrorsTooLarge(t *testing.T) {
	s := cfapitest.New(t)
	id := s.AddZone("example.com", nil)
	seen := s.SetOversize("/graphql", 64<<20)
	_, err := newClient(t, s, cfapitest.DefaultToken).EdgeErrors(context.Background(), id, nil, edgeSince, edgeUntil)
	if err == nil || !strings.Contains(err.Error(), "cannot read Cloudflare's edge counts: Cloudflare answered more than 16 MiB in one answer") {
		t.Fatalf("error = %v", err)
	}
	if o := <-seen; o.Complete {
		t.Errorf("the client read all %d bytes", o.Size)
	}
}

// A malformed answer from something that is not the API is one error.
func TestEdgeErrorsMalformed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[{"count":"many"}]}]}},"errors":null}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EdgeErrors(context.Background(), "z", nil, edgeSince, edgeUntil)
	want := "cannot read Cloudflare's edge counts: Cloudflare answered in a form verify does not know (group 0: no dimensions.clientRequestHTTPHost)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestParseEdgeAnswer(t *testing.T) {
	group := func(count, edge, origin, si string) string {
		return `{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[{"count":` + count + `,"avg":{"sampleInterval":` + si +
			`},"dimensions":{"clientRequestHTTPHost":"WWW.example.com","edgeResponseStatus":` + edge + `,"originResponseStatus":` + origin + `}}]}]}},"errors":null}`
	}
	tests := []struct {
		name    string
		in      string
		want    []EdgeGroup
		gql     *gqlError
		wantErr string
	}{
		{"one group", group("12", "502", "502", "1"), []EdgeGroup{{"www.example.com", 502, 502, 12, 1}}, nil, ""},
		{"sampled", group("120", "520", "0", "10"), []EdgeGroup{{"www.example.com", 520, 0, 120, 10}}, nil, ""},
		{"no avg", `{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[{"count":1,"dimensions":{"clientRequestHTTPHost":"a","edgeResponseStatus":522,"originResponseStatus":0}}]}]}}}`,
			[]EdgeGroup{{"a", 522, 0, 1, 1}}, nil, ""},
		{"no groups", `{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[]}]}},"errors":null}`, []EdgeGroup{}, nil, ""},
		{"authz", `{"data":null,"errors":[{"message":"not authorized","path":["viewer","zones","0"],"extensions":{"code":"authz","timestamp":"2026-12-02T06:00:00Z"}}]}`,
			nil, &gqlError{"not authorized", "authz"}, ""},
		{"plan", `{"data":null,"errors":[{"message":"cannot request data older than 2678400s","extensions":{"timestamp":"x"}}]}`,
			nil, &gqlError{"cannot request data older than 2678400s", ""}, ""},
		{"error without message", `{"data":null,"errors":[{}]}`, nil, nil, "an error without a message"},
		{"string count", group(`"12"`, "502", "502", "1"), nil, nil, "group 0: count: not a number"},
		{"fraction", group("1.5", "502", "502", "1"), nil, nil, "group 0: count: 1.5 is not an integer"},
		{"negative", group("-1", "502", "502", "1"), nil, nil, "group 0: count: -1 is not an integer"},
		{"status out of range", group("1", "999", "0", "1"), nil, nil, "group 0: edgeResponseStatus: 999"},
		{"origin status missing", group("1", "520", "null", "1"), nil, nil, "group 0: originResponseStatus: missing"},
		{"sample interval below 1", group("1", "520", "0", "0.5"), nil, nil, "avg.sampleInterval 0.5"},
		{"two zones", `{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[]},{"httpRequestsAdaptiveGroups":[]}]}}}`, nil, nil, "2 zones for one zoneTag"},
		{"no zones", `{"data":{"viewer":{"zones":[]}}}`, nil, nil, "0 zones"},
		{"no dataset", `{"data":{"viewer":{"zones":[{}]}}}`, nil, nil, "no httpRequestsAdaptiveGroups"},
		{"no viewer", `{"data":{}}`, nil, nil, "no data.viewer.zones"},
		{"nothing", `{"data":null,"errors":null}`, nil, nil, "neither data nor errors"},
		{"HTML", `<html>502 Bad Gateway</html>`, nil, nil, "not a GraphQL answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gql, err := parseEdgeAnswer([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("groups (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.gql, gql); d != "" {
				t.Errorf("GraphQL error (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzParseEdgeAnswer: any answer is either groups that satisfy the
// checks, a GraphQL error with a message, or an error; never a panic.
func FuzzParseEdgeAnswer(f *testing.F) {
	f.Add([]byte(`{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[{"count":3,"avg":{"sampleInterval":1},"dimensions":{"clientRequestHTTPHost":"a.example.com","edgeResponseStatus":520,"originResponseStatus":0}}]}]}},"errors":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		groups, gql, err := parseEdgeAnswer(b)
		if err != nil {
			if groups != nil || gql != nil {
				t.Fatal("an error with a result")
			}
			return
		}
		if gql != nil {
			if gql.Message == "" || groups != nil {
				t.Fatalf("GraphQL error %+v with groups %v", gql, groups)
			}
			return
		}
		for _, g := range groups {
			if g.Count < 0 || g.EdgeStatus < 100 || g.EdgeStatus > 599 || g.OriginStatus < 0 || g.OriginStatus > 599 || g.SampleInterval < 1 || len(g.Hostname) > maxHostLen {
				t.Fatalf("a group outside the checks: %+v", g)
			}
		}
	})
}

// BenchmarkEdgeErrors1000Hosts: one zone of 1,000 hostnames, each with
// three kinds of 5xx (3,000 groups), read in one query.
func BenchmarkEdgeErrors1000Hosts(b *testing.B) {
	s := cfapitest.New(b)
	id := s.AddZone("example.com", nil)
	var rows []cfapitest.EdgeRow
	var hosts []string
	for i := range 1000 {
		h := fmt.Sprintf("host-%d.example.com", i)
		hosts = append(hosts, h)
		rows = append(rows, cfapitest.EdgeRow{Host: h, Edge: 502, Origin: 502, Count: int64(i)},
			cfapitest.EdgeRow{Host: h, Edge: 520, Count: 3}, cfapitest.EdgeRow{Host: h, Edge: 522, Count: 1})
	}
	s.SetEdgeRows(id, rows...)
	c, err := New(Config{BaseURL: s.URL, Token: cfapitest.DefaultToken})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := c.EdgeErrors(context.Background(), id, hosts, edgeSince, edgeUntil)
		if err != nil || len(got.Groups) != 3000 {
			b.Fatalf("%d groups, %v", len(got.Groups), err)
		}
	}
}
