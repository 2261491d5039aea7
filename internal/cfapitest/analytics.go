package cfapitest

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PermAnalyticsRead lets a token query POST /graphql (Zone → Analytics →
// Read). A token whose Permissions lack it gets the GraphQL authorization
// error, with HTTP 200, as on the real API.
const PermAnalyticsRead = "Analytics:Read"

// Limits of the real httpRequestsAdaptiveGroups node the stand-in enforces.
const (
	graphqlMaxLimit = 10000
	// graphqlMaxAge is how far back data may be asked for (the docs'
	// example error: "cannot request data older than 2678400s").
	graphqlMaxAge  = 2678400 * time.Second
	graphqlMaxBody = 1 << 20
)

// EdgeRow is Count visitor requests for Host that Cloudflare answered Edge,
// the origin having answered Origin (0: no answer), with the sample
// interval the answer reports (0 is taken as 1, unsampled).
type EdgeRow struct {
	Host           string
	Edge, Origin   int
	Count          int64
	SampleInterval float64
}

// analyticsState holds the counts served by POST /graphql, per zone id.
type analyticsState struct {
	rows  map[string][]EdgeRow
	delay time.Duration
	// Queries keeps the variables of each query served, for tests.
	queries []GraphQLQuery
}

// GraphQLQuery is one query the stand-in served.
type GraphQLQuery struct {
	ZoneTag string
	Filter  map[string]any
}

// SetEdgeRows makes POST /graphql report rows for the zone (replacing any).
func (s *Server) SetEdgeRows(zoneID string, rows ...EdgeRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.an.rows == nil {
		s.an.rows = map[string][]EdgeRow{}
	}
	s.an.rows[zoneID] = rows
}

// SetGraphQLDelay makes POST /graphql wait d before answering (or until the
// client goes away): for tests of deadlines.
func (s *Server) SetGraphQLDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.an.delay = d
}

// GraphQLQueries returns the queries served so far.
func (s *Server) GraphQLQueries() []GraphQLQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.an.queries)
}

func (s *Server) routeAnalytics(mux *http.ServeMux) {
	mux.HandleFunc("POST /graphql", s.graphql)
}

type gqlErr struct {
	Message    string         `json:"message"`
	Path       []string       `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions"`
}

// graphqlErrors writes a GraphQL error answer: HTTP 200, data null.
func graphqlErrors(w http.ResponseWriter, errs ...gqlErr) {
	for i := range errs {
		if errs[i].Extensions == nil {
			errs[i].Extensions = map[string]any{}
		}
		errs[i].Extensions["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(map[string]any{"data": nil, "errors": errs})
}

var limitArg = regexp.MustCompile(`httpRequestsAdaptiveGroups\s*\(\s*limit:\s*(\d+)`)

// graphql answers the one query verify sends: httpRequestsAdaptiveGroups of
// one zone, filtered by time, request source, edge status range and
// hostnames, grouped by hostname and both statuses.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authenticate(w, r, "")
	if !ok {
		return
	}
	if tok.Status != "" && tok.Status != "active" {
		writeErrors(w, http.StatusForbidden, authError{Code: 9109, Message: "Invalid access token"})
		return
	}
	var req struct {
		Query     string `json:"query"`
		Variables struct {
			ZoneTag string         `json:"zoneTag"`
			Filter  map[string]any `json:"filter"`
		} `json:"variables"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, graphqlMaxBody))
	if err != nil || json.Unmarshal(body, &req) != nil || req.Query == "" {
		graphqlErrors(w, gqlErr{Message: "failed to parse the request body"})
		return
	}
	if !strings.Contains(req.Query, "httpRequestsAdaptiveGroups") || !strings.Contains(req.Query, "zoneTag: $zoneTag") {
		graphqlErrors(w, gqlErr{Message: "cfapitest: only the httpRequestsAdaptiveGroups query of one zone is stood in for"})
		return
	}
	m := limitArg.FindStringSubmatch(req.Query)
	if m == nil {
		graphqlErrors(w, gqlErr{Message: "error parsing args: limit is required"})
		return
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > graphqlMaxLimit {
		graphqlErrors(w, gqlErr{Message: "limit must be between 1 and 10000", Path: []string{"viewer", "zones", "0", "httpRequestsAdaptiveGroups"}})
		return
	}
	limit, _ := strconv.Atoi(m[1])
	f := req.Variables.Filter
	since, err1 := time.Parse(time.RFC3339, str(f["datetime_geq"]))
	until, err2 := time.Parse(time.RFC3339, str(f["datetime_lt"]))
	if err1 != nil || err2 != nil || !since.Before(until) {
		graphqlErrors(w, gqlErr{Message: "error parsing args: datetime_geq and datetime_lt must be times, the first before the second"})
		return
	}
	if time.Since(since) > graphqlMaxAge {
		graphqlErrors(w, gqlErr{Message: "cannot request data older than 2678400s", Path: []string{"viewer", "zones", "0", "httpRequestsAdaptiveGroups"}})
		return
	}
	s.mu.Lock()
	z := s.zoneByID(req.Variables.ZoneTag)
	s.an.queries = append(s.an.queries, GraphQLQuery{ZoneTag: req.Variables.ZoneTag, Filter: f})
	delay := s.an.delay
	rows := slices.Clone(s.an.rows[req.Variables.ZoneTag])
	s.mu.Unlock()
	if z == nil || (tok.Permissions != nil && !slices.Contains(tok.Permissions, PermAnalyticsRead)) {
		// What the real API says for a zone the token may not query.
		graphqlErrors(w, gqlErr{Message: "zones [\"" + req.Variables.ZoneTag + "\"] are not authorized", Path: []string{"viewer", "zones", "0"},
			Extensions: map[string]any{"code": "authz"}})
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	lo, hasLo := num(f["edgeResponseStatus_geq"])
	hi, hasHi := num(f["edgeResponseStatus_leq"])
	var hosts []string
	if hs, ok := f["clientRequestHTTPHost_in"].([]any); ok {
		for _, h := range hs {
			hosts = append(hosts, strings.ToLower(str(h)))
		}
	}
	type key struct {
		host         string
		edge, origin int
	}
	sums := map[key]*EdgeRow{}
	var keys []key
	for _, row := range rows {
		if (hasLo && float64(row.Edge) < lo) || (hasHi && float64(row.Edge) > hi) {
			continue
		}
		if _, named := f["clientRequestHTTPHost_in"]; named && !slices.Contains(hosts, strings.ToLower(row.Host)) {
			continue
		}
		k := key{strings.ToLower(row.Host), row.Edge, row.Origin}
		if sums[k] == nil {
			sum := row
			sum.Count = 0
			sums[k] = &sum
			keys = append(keys, k)
		}
		sums[k].Count += row.Count
		sums[k].SampleInterval = max(sums[k].SampleInterval, row.SampleInterval)
	}
	sort.SliceStable(keys, func(i, j int) bool { return sums[keys[i]].Count > sums[keys[j]].Count })
	groups := []any{}
	for _, k := range keys {
		if len(groups) == limit {
			break
		}
		row := sums[k]
		si := row.SampleInterval
		if si < 1 {
			si = 1
		}
		groups = append(groups, map[string]any{
			"count": row.Count,
			"avg":   map[string]any{"sampleInterval": si},
			"dimensions": map[string]any{
				"clientRequestHTTPHost": row.Host, "edgeResponseStatus": row.Edge, "originResponseStatus": row.Origin,
			},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"data":   map[string]any{"viewer": map[string]any{"zones": []any{map[string]any{"httpRequestsAdaptiveGroups": groups}}}},
		"errors": nil,
	})
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) (float64, bool) {
	n, ok := v.(float64)
	return n, ok
}
