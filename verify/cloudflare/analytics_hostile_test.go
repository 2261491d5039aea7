package cloudflare

import (
	"fmt"
	"strings"
	"testing"
)

// Hostile or broken GraphQL answers: each is refused with one line saying
// what was wrong, or read within its bounds; none panics.
func TestParseEdgeAnswerHostile(t *testing.T) {
	group := func(count, host, edge, origin string) string {
		return fmt.Sprintf(`{"count":%s,"dimensions":{"clientRequestHTTPHost":%s,"edgeResponseStatus":%s,"originResponseStatus":%s}}`, count, host, edge, origin)
	}
	answer := func(groups ...string) string {
		return `{"data":{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[` + strings.Join(groups, ",") + `]}]}}}`
	}
	big := fmt.Sprint(int64(1) << 53)
	var overflow []string
	for range 1025 { // 1,025 × 2^53 is more than an int64 holds
		overflow = append(overflow, group(big, `"a.example.com"`, "502", "502"))
	}
	tests := []struct {
		name, body string
		want       string // the error; "" when read
		groups     int
	}{
		{"negative count", answer(group("-5", `"a.example.com"`, "502", "0")), "group 0: count: -5 is not an integer in 0–9007199254740992", 0},
		{"count over 2^53", answer(group("9007199254740993", `"a.example.com"`, "502", "0")), "group 0: count: 9007199254740993 is not an integer in 0–9007199254740992", 0},
		{"count as a string", answer(group(`"5"`, `"a.example.com"`, "502", "0")), `group 0: count: not a number: "5"`, 0},
		{"count null", answer(group("null", `"a.example.com"`, "502", "0")), "group 0: count: missing", 0},
		{"count a fraction", answer(group("1.5", `"a.example.com"`, "502", "0")), "group 0: count: 1.5 is not an integer in 0–9007199254740992", 0},
		{"hostname null", answer(group("1", "null", "502", "0")), "group 0: no dimensions.clientRequestHTTPHost", 0},
		{"hostname a number", answer(group("1", "5", "502", "0")), "data: json: cannot unmarshal number into Go struct field .viewer.zones.httpRequestsAdaptiveGroups.dimensions.clientRequestHTTPHost of type string", 0},
		{"status 999", answer(group("1", `"a.example.com"`, "999", "0")), "group 0: edgeResponseStatus: 999 is not an integer in 100–599", 0},
		{"errors and data both", `{"data":{"viewer":{"zones":[]}},"errors":[{"message":"quota exceeded","extensions":{"code":"limit"}}]}`, "", 0},
		{"sums past an int64", answer(overflow...), "group 1: counts adding up to more than 2^53 requests", 0},
		{"a hostname not asked for, with control characters", answer(group("7", `"evil\u001b[2J.example.com"`, "502", "0")), "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, gql, err := parseEdgeAnswer([]byte(tt.body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if tt.name == "errors and data both" && (gql == nil || gql.Message != "quota exceeded" || groups != nil) {
				t.Errorf("GraphQL error %+v, groups %v: want the error, no groups", gql, groups)
			}
			if len(groups) != tt.groups {
				t.Errorf("%d groups, want %d", len(groups), tt.groups)
			}
		})
	}
}
