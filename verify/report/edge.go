package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EdgeCounts is what Cloudflare's edge served visitors of a path's hostname
// in a recent window, from the GraphQL Analytics API: the requests it
// answered 502–530, by its status and the origin's.
type EdgeCounts struct {
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// Sampled is true when Cloudflare sampled the data: the counts are
	// estimates.
	Sampled bool `json:"sampled"`
	// Truncated is true when the answer held as many groups as the API
	// gives: there may be more.
	Truncated bool        `json:"truncated"`
	Counts    []EdgeCount `json:"counts"`
}

// MarshalJSON writes counts as [] when there are none (never null).
func (e EdgeCounts) MarshalJSON() ([]byte, error) {
	type plain EdgeCounts
	if e.Counts == nil {
		e.Counts = []EdgeCount{}
	}
	return json.Marshal(plain(e))
}

// The edge statuses verify asks Cloudflare to count (verify/cloudflare):
// a prediction outside them has no count to stand next to.
const (
	EdgeCountedMin = 502
	EdgeCountedMax = 530
)

// EdgeCount is Count requests answered EdgeStatus by Cloudflare, the origin
// having answered OriginStatus (0: the origin gave no answer).
type EdgeCount struct {
	EdgeStatus   int   `json:"edge_status"`
	OriginStatus int   `json:"origin_status"`
	Count        int64 `json:"count"`
}

// ByEdgeStatus sums the counts per edge status, largest first (then by
// status).
func (e *EdgeCounts) ByEdgeStatus() []EdgeCount {
	sums := map[int]int64{}
	for _, c := range e.Counts {
		sums[c.EdgeStatus] += c.Count
	}
	out := make([]EdgeCount, 0, len(sums))
	for st, n := range sums {
		out = append(out, EdgeCount{EdgeStatus: st, Count: n})
	}
	slices.SortFunc(out, func(a, b EdgeCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return a.EdgeStatus - b.EdgeStatus
	})
	return out
}

// Window says the window for people: "the last 15 minutes".
func (e *EdgeCounts) Window() string {
	d := e.WindowEnd.Sub(e.WindowStart).Round(time.Minute)
	switch m := int(d / time.Minute); {
	case m <= 1:
		return "the last minute"
	case m%60 == 0 && m > 60:
		return fmt.Sprintf("the last %d hours", m/60)
	case m == 60:
		return "the last hour"
	default:
		return fmt.Sprintf("the last %d minutes", m)
	}
}

// EdgeSummary says what the edge served, leading with the predicted status
// when there is one: "about 1,204 × 502 and 3 × 520", "no 502 but 40 ×
// 520", "no 502–530". predicted 0 lists them all.
func EdgeSummary(e *EdgeCounts, predicted int) string {
	byStatus := e.ByEdgeStatus()
	about := ""
	if e.Sampled {
		about = "about "
	}
	var parts []string
	lead := ""
	if predicted != 0 {
		if i := slices.IndexFunc(byStatus, func(c EdgeCount) bool { return c.EdgeStatus == predicted }); i >= 0 {
			parts = append(parts, Thousands(byStatus[i].Count)+" × "+strconv.Itoa(predicted))
			byStatus = slices.Delete(byStatus, i, i+1)
		} else {
			lead = "no " + strconv.Itoa(predicted)
		}
	}
	for _, c := range byStatus {
		parts = append(parts, Thousands(c.Count)+" × "+strconv.Itoa(c.EdgeStatus))
	}
	more := ""
	if e.Truncated {
		more = " (and perhaps more: the answer was cut at the API's limit)"
	}
	switch {
	case lead != "" && len(parts) == 0:
		return lead
	case lead != "":
		return lead + " but " + about + joinAnd(parts) + more
	case len(parts) == 0:
		return "no 502–530"
	}
	return about + joinAnd(parts) + more
}

func joinAnd(parts []string) string {
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Thousands writes n with comma separators: 1204 → "1,204".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// edgeNote is what Cloudflare served a failing path's hostname, next to
// the prediction: "predicted 502 — Cloudflare served 1,204 × 502 in the
// last 15 minutes"; "" when not read or the path passes.
func edgeNote(path Path) string {
	e := path.Edge
	if e == nil || path.OK {
		return ""
	}
	if path.Status < EdgeCountedMin || path.Status > EdgeCountedMax {
		return fmt.Sprintf("predicted %d — Cloudflare served %s in %s (it counts 502–530 only)", path.Status, EdgeSummary(e, 0), e.Window())
	}
	return fmt.Sprintf("predicted %d — Cloudflare served %s in %s", path.Status, EdgeSummary(e, path.Status), e.Window())
}
