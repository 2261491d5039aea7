package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The GraphQL Analytics read: how many 5xx Cloudflare's edge served per
// hostname in a recent window (cloudflare.md §7).
const (
	// AnalyticsTimeout bounds the one GraphQL query per zone (connection,
	// answer and body).
	AnalyticsTimeout = 20 * time.Second
	// PermAnalyticsRead is the permission the query needs, as the token
	// editor names it (Zone → Analytics → Read).
	PermAnalyticsRead = "Analytics:Read"
	// EdgeGroupLimit is the most groups one query asks for: the API's
	// maximum for `limit`.
	EdgeGroupLimit = 10000
	// maxHostsInFilter bounds the hostnames named in the filter; with more
	// (or a wildcard) the query covers the whole zone and the caller picks.
	maxHostsInFilter = 500
	// EdgeStatusMin, EdgeStatusMax are the edge statuses asked for
	// (report.EdgeCountedMin, Max say the same): the origin's 502–504 as
	// Cloudflare passed them on, and Cloudflare's own 520–530.
	EdgeStatusMin = 502
	EdgeStatusMax = 530
)

// edgeQuery asks for the visitor requests of one zone answered 502–530,
// grouped by hostname, the edge's status and the origin's status (0 when
// the origin gave none). avg.sampleInterval is above 1 when Cloudflare
// sampled the data (the counts are then estimates).
const edgeQuery = `query EdgeErrors($zoneTag: string!, $filter: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) {
  viewer {
    zones(filter: {zoneTag: $zoneTag}) {
      httpRequestsAdaptiveGroups(limit: 10000, filter: $filter, orderBy: [count_DESC]) {
        count
        avg { sampleInterval }
        dimensions { clientRequestHTTPHost edgeResponseStatus originResponseStatus }
      }
    }
  }
}`

// EdgeGroup is one group of the answer: Count requests for Hostname that
// Cloudflare answered EdgeStatus, the origin having answered OriginStatus
// (0: no answer from the origin).
type EdgeGroup struct {
	Hostname     string
	EdgeStatus   int
	OriginStatus int
	Count        int64
	// SampleInterval is 1 for unsampled data, 10 when one request in 10
	// was kept, …
	SampleInterval float64
}

// EdgeCounts is what Cloudflare's edge served in [Since, Until).
type EdgeCounts struct {
	Since, Until time.Time
	Groups       []EdgeGroup
	// Truncated is set when the answer had EdgeGroupLimit groups: there
	// may be more.
	Truncated bool
}

// Sampled reports whether any count is an estimate from sampled data.
func (c EdgeCounts) Sampled() bool {
	for _, g := range c.Groups {
		if g.SampleInterval > 1 {
			return true
		}
	}
	return false
}

// EdgeErrors asks the GraphQL Analytics API how many visitor requests to
// the hostnames of a zone Cloudflare answered with 502–530 in [since,
// until): one query per zone. With no hostnames, or a wildcard among them,
// or more than a few hundred, the whole zone is asked for. A token without
// Analytics:Read gets an *Error of KindPermission; a malformed answer an
// *Error of KindAPI.
func (c *Client) EdgeErrors(ctx context.Context, zoneID string, hostnames []string, since, until time.Time) (EdgeCounts, error) {
	const what = "read Cloudflare's edge counts"
	filter := map[string]any{
		"datetime_geq":           since.UTC().Format(time.RFC3339),
		"datetime_lt":            until.UTC().Format(time.RFC3339),
		"requestSource":          "eyeball",
		"edgeResponseStatus_geq": EdgeStatusMin,
		"edgeResponseStatus_leq": EdgeStatusMax,
	}
	if hs := hostFilter(hostnames); hs != nil {
		filter["clientRequestHTTPHost_in"] = hs
	}
	body, err := json.Marshal(map[string]any{"query": edgeQuery, "variables": map[string]any{"zoneTag": zoneID, "filter": filter}})
	if err != nil {
		return EdgeCounts{}, fmt.Errorf("%s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, AnalyticsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.baseURL, "/")+"/graphql", bytes.NewReader(body))
	if err != nil {
		return EdgeCounts{}, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return EdgeCounts{}, fmt.Errorf("%s: %w", what, err)
		}
		return EdgeCounts{}, &Error{Kind: KindUnreachable, What: what, Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(capBody(res.Body))
	if errors.Is(err, errBodyTooLarge) {
		return EdgeCounts{}, tooLarge(what)
	}
	if err != nil {
		return EdgeCounts{}, &Error{Kind: KindUnreachable, What: what, Err: err}
	}
	if res.StatusCode != http.StatusOK {
		return EdgeCounts{}, envelopeError(what, res.StatusCode, raw, PermAnalyticsRead)
	}
	groups, gerr, err := parseEdgeAnswer(raw)
	if err != nil {
		return EdgeCounts{}, &Error{Kind: KindAPI, What: what, APIMessage: "in a form verify does not know (" + err.Error() + ")"}
	}
	if gerr != nil {
		return EdgeCounts{}, gerr.asError(what)
	}
	return EdgeCounts{Since: since, Until: until, Groups: groups, Truncated: len(groups) >= EdgeGroupLimit}, nil
}

// hostFilter is the clientRequestHTTPHost_in list, or nil for the whole zone.
func hostFilter(hostnames []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range hostnames {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h == "" || seen[h] {
			continue
		}
		if strings.Contains(h, "*") {
			return nil
		}
		seen[h] = true
		out = append(out, h)
	}
	if len(out) > maxHostsInFilter {
		return nil
	}
	return out
}

// envelopeError reads the v4 error envelope of a non-200 answer (a refused
// token comes back as 400/403 with code 9109, not as a GraphQL error).
func envelopeError(what string, status int, body []byte, need string) *Error {
	e := &Error{What: what, Status: status, Need: need}
	var env struct {
		Errors []struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		e.Code, e.APIMessage = env.Errors[0].Code, env.Errors[0].Message
	}
	e.Kind = kindOf(e.Code, e.Status, e.APIMessage, need)
	return e
}

// gqlError is the first entry of a GraphQL answer's errors array.
type gqlError struct {
	Message string
	Code    string // extensions.code, e.g. "authz"
}

// asError classifies it: an authorization error means the token lacks
// Analytics:Read for the zone; the rest (plan limits, bad arguments) are
// Cloudflare's own words.
func (g *gqlError) asError(what string) *Error {
	e := &Error{Kind: KindAPI, What: what, APIMessage: g.Message, Need: PermAnalyticsRead}
	m := strings.ToLower(g.Message)
	if g.Code == "authz" || strings.Contains(m, "not authorized") || strings.Contains(m, "unauthorized") {
		e.Kind = KindPermission
	}
	return e
}

// maxHostLen bounds a hostname in the answer (a DNS name is at most 253).
const maxHostLen = 1024

// parseEdgeAnswer reads the answer to edgeQuery strictly: a GraphQL error
// (the first one), or exactly one zone whose groups each have a count, a
// hostname and two statuses in range. Anything else is an error that says
// what was wrong.
func parseEdgeAnswer(body []byte) ([]EdgeGroup, *gqlError, error) {
	var ans struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    *string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, nil, fmt.Errorf("not a GraphQL answer: %v", err)
	}
	if len(ans.Errors) > 0 {
		e := ans.Errors[0]
		if e.Message == nil || *e.Message == "" {
			return nil, nil, errors.New("an error without a message")
		}
		return nil, &gqlError{Message: *e.Message, Code: e.Extensions.Code}, nil
	}
	if len(ans.Data) == 0 || string(ans.Data) == "null" {
		return nil, nil, errors.New("neither data nor errors")
	}
	var data struct {
		Viewer *struct {
			Zones *[]struct {
				Groups *[]struct {
					Count json.RawMessage `json:"count"`
					Avg   *struct {
						SampleInterval json.RawMessage `json:"sampleInterval"`
					} `json:"avg"`
					Dimensions *struct {
						Host   *string         `json:"clientRequestHTTPHost"`
						Edge   json.RawMessage `json:"edgeResponseStatus"`
						Origin json.RawMessage `json:"originResponseStatus"`
					} `json:"dimensions"`
				} `json:"httpRequestsAdaptiveGroups"`
			} `json:"zones"`
		} `json:"viewer"`
	}
	if err := json.Unmarshal(ans.Data, &data); err != nil {
		return nil, nil, fmt.Errorf("data: %v", err)
	}
	if data.Viewer == nil || data.Viewer.Zones == nil {
		return nil, nil, errors.New("no data.viewer.zones")
	}
	zones := *data.Viewer.Zones
	if len(zones) != 1 {
		return nil, nil, fmt.Errorf("%d zones for one zoneTag", len(zones))
	}
	if zones[0].Groups == nil {
		return nil, nil, errors.New("no httpRequestsAdaptiveGroups")
	}
	groups := *zones[0].Groups
	if len(groups) > EdgeGroupLimit {
		return nil, nil, fmt.Errorf("%d groups, more than the %d asked for", len(groups), EdgeGroupLimit)
	}
	out := make([]EdgeGroup, 0, len(groups))
	var total int64 // at most 2^53: the sums of any groups stay in an int64
	for i, g := range groups {
		d := g.Dimensions
		if d == nil || d.Host == nil {
			return nil, nil, fmt.Errorf("group %d: no dimensions.clientRequestHTTPHost", i)
		}
		if len(*d.Host) > maxHostLen {
			return nil, nil, fmt.Errorf("group %d: a hostname of %d bytes", i, len(*d.Host))
		}
		count, err := jsonInt(g.Count, 0, 1<<53)
		if err != nil {
			return nil, nil, fmt.Errorf("group %d: count: %v", i, err)
		}
		if total += count; total > 1<<53 {
			return nil, nil, fmt.Errorf("group %d: counts adding up to more than 2^53 requests", i)
		}
		edge, err := jsonInt(d.Edge, 100, 599)
		if err != nil {
			return nil, nil, fmt.Errorf("group %d: edgeResponseStatus: %v", i, err)
		}
		origin, err := jsonInt(d.Origin, 0, 599)
		if err != nil {
			return nil, nil, fmt.Errorf("group %d: originResponseStatus: %v", i, err)
		}
		si := 1.0
		if g.Avg != nil && len(g.Avg.SampleInterval) > 0 && string(g.Avg.SampleInterval) != "null" {
			if err := json.Unmarshal(g.Avg.SampleInterval, &si); err != nil || !(si >= 1 && si <= 1e9) {
				return nil, nil, fmt.Errorf("group %d: avg.sampleInterval %s", i, truncate(g.Avg.SampleInterval))
			}
		}
		out = append(out, EdgeGroup{Hostname: strings.ToLower(*d.Host), EdgeStatus: int(edge), OriginStatus: int(origin), Count: count, SampleInterval: si})
	}
	return out, nil, nil
}

// jsonInt reads a JSON integer (not a string, not a fraction) in [lo, hi].
func jsonInt(raw json.RawMessage, lo, hi int64) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	var n json.Number
	if raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return 0, fmt.Errorf("not a number: %s", truncate(raw))
	}
	v, err := n.Int64()
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s is not an integer in %d–%d", truncate(raw), lo, hi)
	}
	return v, nil
}

func truncate(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
