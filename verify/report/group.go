package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// hostsNamed is how many hostnames a group of the text output names
// before "and N more", and wheresNamed how many of one hostname's paths:
// enough to see which sites a cause hits, bounded so that 10,000 paths
// with one cause stay a screenful.
const (
	hostsNamed  = 5
	wheresNamed = 4
)

// hostPlaceholder stands for each path's own hostname in a cause, fix,
// evidence or warning shared by several paths.
const hostPlaceholder = "<hostname>"

// group is the paths that share one outcome (a failure, a pass) or one
// warning: the text output says it once, then which paths.
type group struct {
	kind   groupKind
	status int
	stage  Stage
	// cause and fix are the first path's, with its hostname
	// replaced by hostPlaceholder when the group has more than one path.
	cause, fix string
	// raw* are the first path's words as they are, for a group of one.
	rawCause, rawFix string
	rawEvidence      []string
	first            Path
	hosts            []*hostPaths    // the first hostsNamed hostnames
	seen             map[string]bool // every hostname of the group
	n                int
	order            int // first appearance, for a stable order
	last             int // the index of the last path counted, so a path counts once
}

// hostPaths is one hostname of a group and the first wheresNamed of its
// paths ("https 192.0.2.1:443"); more counts the others.
type hostPaths struct {
	name   string
	wheres []string
	times  []int // how many of its paths each of wheres is (the ways only some requests take share one)
	more   int
	first  Path     // its first path in the group (its edge counts are the hostname's)
	rules  []string // the rules that changed its paths, at most rulesNamed
}

// rulesNamed bounds the rules named under one hostname of a group.
const rulesNamed = 4

// count adds p to the group's hostnames: O(hostsNamed) a path.
func (g *group) count(p Path) {
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	if !g.seen[p.Hostname] {
		g.seen[p.Hostname] = true
		if len(g.hosts) < hostsNamed {
			g.hosts = append(g.hosts, &hostPaths{name: p.Hostname, first: p})
		}
	}
	for _, h := range g.hosts {
		if h.name == p.Hostname {
			for _, r := range p.Rules {
				if len(h.rules) < rulesNamed && !slices.Contains(h.rules, r) {
					h.rules = append(h.rules, r)
				}
			}
			w := where(p)
			if i := slices.Index(h.wheres, w); i >= 0 {
				h.times[i]++
			} else if len(h.wheres) < wheresNamed {
				h.wheres, h.times = append(h.wheres, w), append(h.times, 1)
			} else {
				h.more++
			}
			return
		}
	}
}

type groupKind int

const (
	groupFail groupKind = iota
	groupWarning
	groupPass
)

// groupPaths folds the paths into groups, in one pass over them (a map
// lookup each): failures with the same stage, status, cause and fix; each
// distinct warning; passes with the same stage, status and cause. A cause
// that names the path's own hostname is compared with it abstracted, so
// "the certificate does not name a.example.com" and "… b.example.com" are
// one cause. Groups come failures first, then warnings, then passes; within
// each, the most paths first, ties in the order of the report.
func groupPaths(paths []Path) []*group {
	byKey := map[string]*group{}
	var groups []*group
	add := func(kind groupKind, key string, i int, p Path, mk func() *group) {
		key = strconv.Itoa(int(kind)) + "\x00" + key
		g, ok := byKey[key]
		if !ok {
			g = mk()
			g.kind, g.first, g.order, g.last = kind, p, len(groups), -1
			byKey[key] = g
			groups = append(groups, g)
		}
		if g.last == i {
			return // the same warning twice on one path
		}
		g.last = i
		g.n++
		g.count(p)
	}
	for i, p := range paths {
		cause, fix := abstractHost(p.Cause, p.Hostname), abstractHost(p.Fix, p.Hostname)
		kind := groupFail
		if p.OK {
			kind = groupPass
		}
		key := strings.Join([]string{string(p.Stage), strconv.Itoa(p.Status), cause, fix}, "\x00")
		add(kind, key, i, p, func() *group {
			return &group{status: p.Status, stage: p.Stage, cause: cause, fix: fix,
				rawCause: p.Cause, rawFix: p.Fix, rawEvidence: p.Evidence}
		})
		for _, w := range p.Warnings {
			aw := abstractHost(w, p.Hostname)
			add(groupWarning, aw, i, p, func() *group { return &group{cause: aw, rawCause: w} })
		}
	}
	slices.SortStableFunc(groups, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(b.n, a.n), cmp.Compare(a.order, b.order))
	})
	return groups
}

// writeGroups writes the groups of the text output: the line of the
// outcome (✘/✔, status, stage, cause) or the warning, the fix and evidence
// under a failure, then the paths it concerns.
func writeGroups(b *strings.Builder, p painter, paths []Path) {
	for i, g := range groupPaths(paths) {
		if i > 0 {
			b.WriteString("\n")
		}
		writeGroup(b, p, g)
	}
}

func writeGroup(b *strings.Builder, p painter, g *group) {
	// Evidence is the first path's, as it is: it is labelled with that
	// path when the group has others.
	cause, fix, evidence := g.cause, g.fix, g.rawEvidence
	if g.n == 1 {
		cause, fix = g.rawCause, g.rawFix
	}
	status := "   "
	if g.status != 0 {
		status = strconv.Itoa(g.status)
	}
	switch g.kind {
	case groupFail:
		fmt.Fprintf(b, "%s %s  %-12s %s\n", p.paint(ansiRed, "✘"), p.paint(ansiRed+ansiBold, status), g.stage, cause)
		if fix != "" {
			fmt.Fprintf(b, "    fix: %s\n", fix)
		}
		if len(evidence) > 0 && g.n > 1 {
			fmt.Fprintf(b, "    %s\n", p.paint(ansiDim, "evidence from "+pathName(g.first)+":"))
		}
		for _, e := range evidence {
			fmt.Fprintf(b, "    %s\n", p.paint(ansiDim, "· "+e))
		}
	case groupWarning:
		fmt.Fprintf(b, "%s %s\n", p.paint(ansiYellow, "! warning:"), cause)
	case groupPass:
		fmt.Fprintf(b, "%s %s  %-12s %s\n", p.paint(ansiGreen, "✔"), status, g.stage, cause)
	}
	writeOn(b, p, g)
}

// writeOn names the paths of a group: "on www.example.com https
// 192.0.2.1:443"; or "on 12 paths of 8 hostnames:", then the first
// hostsNamed hostnames, one a line with their paths, then how many more.
func writeOn(b *strings.Builder, p painter, g *group) {
	if g.n == 1 {
		fmt.Fprintf(b, "    on %s\n", pathName(g.first))
		writeNotes(b, p, g, g.first, g.first.Rules, "      ", false)
		return
	}
	if len(g.seen) == g.n {
		fmt.Fprintf(b, "    on %d paths:\n", g.n)
	} else {
		fmt.Fprintf(b, "    on %d paths of %s:\n", g.n, plural(len(g.seen), "hostname"))
	}
	width, listed, quiet := 0, 0, 0
	var quietEdge *EdgeCounts
	for _, h := range g.hosts {
		width = max(width, len(h.name))
	}
	for _, h := range g.hosts {
		ws := make([]string, len(h.wheres))
		n := 0
		for i, w := range h.wheres {
			ws[i] = w
			if h.times[i] > 1 {
				ws[i] += fmt.Sprintf(" (%d paths)", h.times[i])
			}
			n += h.times[i]
		}
		w := strings.Join(ws, ", ")
		if h.more > 0 {
			w += fmt.Sprintf(" and %d more", h.more)
		}
		fmt.Fprintf(b, "      %-*s %s\n", width, h.name, w)
		if writeNotes(b, p, g, h.first, h.rules, "        ", true) {
			quiet, quietEdge = quiet+1, h.first.Edge
		}
		listed += n + h.more
	}
	if quiet > 0 {
		// One line for the hostnames the edge served no 502–530 at all,
		// rather than the same line under each.
		who := "these " + plural(quiet, "hostname")
		if quiet < len(g.hosts) {
			who = plural(quiet, "hostname") + " above"
		} else if quiet == 1 {
			who = "this hostname"
		}
		fmt.Fprintf(b, "      Cloudflare served %s no 502–530 in %s\n", who, quietEdge.Window())
	}
	if hidden := len(g.seen) - len(g.hosts); hidden > 0 {
		paths := ""
		if g.n-listed != hidden {
			paths = plural(g.n-listed, "path") + "; "
		}
		fmt.Fprintf(b, "      and %d more %s (%s--json lists every path)\n", hidden, nouns(hidden, "hostname"), paths)
	}
}

// plural is "1 path", "2 paths".
func plural(n int, noun string) string { return fmt.Sprintf("%d %s", n, nouns(n, noun)) }

func nouns(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// pathName is "www.example.com https 192.0.2.1:443", or
// "gone.example.com CNAME" for a path that has no origin address.
func pathName(p Path) string {
	return strings.TrimSpace(p.Hostname + " " + where(p))
}

// where is a path without its hostname: "https 192.0.2.1:443", or the
// record type for a path that has no origin address.
func where(p Path) string {
	if p.OriginIP == "" {
		return p.RecordType
	}
	return fmt.Sprintf("%s %s", p.Scheme, hostPort(p.OriginIP, p.Port))
}

// abstractHost replaces host in s by hostPlaceholder where it stands as a
// whole name: not inside a longer one ("example.com" in "www.example.com"
// or "example.com.au" stays). Linear in len(s).
func abstractHost(s, host string) string {
	if host == "" || !strings.Contains(s, host) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, host)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(host)
		if (i == 0 || !nameByte(s[i-1]) && s[i-1] != '.') && (end == len(s) || !nameByte(s[end]) && !(s[end] == '.' && end+1 < len(s) && nameByte(s[end+1]))) {
			b.WriteString(s[:i])
			b.WriteString(hostPlaceholder)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

// nameByte reports whether c can be part of a DNS label.
func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*'
}

// writeNotes writes under a hostname of a group what is its own, not the
// group's: the rules that changed its paths, and for a failure what
// Cloudflare's edge served it. Among several hostnames (among), one the
// edge served no 502–530 at all gets no line of its own: writeNotes
// reports it (quiet) for one line under the group.
func writeNotes(b *strings.Builder, p painter, g *group, first Path, rules []string, indent string, among bool) (quiet bool) {
	if g.kind == groupWarning {
		return false
	}
	for _, r := range rules {
		fmt.Fprintf(b, "%s%s\n", indent, p.paint(ansiDim, "· as changed by "+r))
	}
	if g.kind != groupFail {
		return false
	}
	if among && first.Edge != nil && len(first.Edge.Counts) == 0 {
		return true
	}
	if note := edgeNote(first); note != "" {
		fmt.Fprintf(b, "%s%s\n", indent, note)
	}
	return false
}
