package backend

import (
	"fmt"

	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
)

// This file is how the verdicts quote the web server's log: the line of
// verify's own request first (readback.go), told apart from the visitors'
// count of the window, which leaves verify's requests out.

// seen is a kind of log line a verdict quotes: from verify's own request
// (own), or the visitors' count of the window.
type seen struct {
	logs.Count
	own bool
}

// ownCounts tallies the lines of verify's own request that Classify knows
// (a web server's: they are about the request).
func ownCounts(own []logs.Entry) []logs.Count {
	var es []logs.Entry
	for _, e := range own {
		if e.Kind != "" && (e.Source == logs.Nginx || e.Source == logs.Apache) {
			es = append(es, e)
		}
	}
	return logs.Tally(es)
}

// ownBest is the line of verify's own request of the first of kinds.
func ownBest(own []logs.Count, kinds []logs.Kind) (seen, bool) {
	for _, k := range kinds {
		for _, c := range own {
			if c.Kind == k {
				return seen{Count: c, own: true}, true
			}
		}
	}
	return seen{}, false
}

// bestSeen is the line a verdict explained by kinds quotes: verify's own
// request's, else the visitors' latest.
func (a *Analyzer) bestSeen(rt *route, kinds []logs.Kind, own []logs.Count) (seen, bool) {
	if s, ok := ownBest(own, kinds); ok {
		return s, true
	}
	c, ok := a.bestCount(rt, kinds)
	return seen{Count: c}, ok
}

// said quotes s: "nginx logged for verify's own request: '…'; visitors'
// requests: 12 such lines in the last 15 minutes", or for the visitors'
// alone "nginx logged '…' 12 times in the last 15 minutes".
func (a *Analyzer) said(rt *route, s seen) string {
	if !s.own {
		return fmt.Sprintf("%s logged '%s' %s in the last %s", sourceName(s.Source), s.Latest.Message, times(s.N), window(a.opts.Since))
	}
	n := 0
	for _, c := range a.matchingCounts(rt) {
		if c.Source == s.Source && c.Kind == s.Kind {
			n += c.N
		}
	}
	visitors := "none"
	switch {
	case n == 1:
		visitors = "1 such line"
	case n > 1:
		visitors = fmt.Sprintf("%d such lines", n)
	}
	return fmt.Sprintf("%s logged for verify's own request: '%s'; visitors' requests: %s in the last %s", sourceName(s.Source), s.Latest.Message, visitors, window(a.opts.Since))
}

// ownEvidence says what the web server logged for verify's own request,
// or that it logged nothing for it.
func (a *Analyzer) ownEvidence(rt *route, sent probemark.Mark, own []logs.Entry, looked bool) []string {
	var out []string
	for _, e := range own {
		out = append(out, fmt.Sprintf("%s logged for verify's own request (probe %s): %s", sourceName(e.Source), sent.ID, e.Message))
	}
	if len(own) == 0 && looked {
		out = append(out, fmt.Sprintf("%s logged nothing for verify's own request (probe %s) in its error log", rt.web.kind, sent.ID))
	}
	earlier := 0
	for _, c := range a.ownEarlier {
		if a.countMatches(rt, c) {
			earlier += c.N
		}
	}
	if earlier > 0 {
		out = append(out, fmt.Sprintf("left out of the visitors' counts: %s about verify's own earlier requests (Referer %s)", lineCount(earlier), probemark.Referer("…")))
	}
	return out
}

func lineCount(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}
