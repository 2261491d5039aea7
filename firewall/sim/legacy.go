package sim

import (
	"fmt"
	"os"
	"strings"
)

// legacyTables lists the iptables-legacy tables of the calling thread's
// network namespace, e.g. "ip_tables: filter". The files exist once the
// ip_tables / ip6_tables modules are loaded and list a table once it was
// instantiated in the namespace (by iptables-legacy, or Docker on legacy).
func legacyTables() []string {
	var out []string
	for _, f := range []string{"ip_tables_names", "ip6_tables_names"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			continue // module not loaded: no legacy tables
		}
		for _, n := range strings.Fields(string(b)) {
			out = append(out, strings.TrimSuffix(f, "_names")+": "+n)
		}
	}
	return out
}

// legacyTable is one iptables-legacy table as a person names it.
type legacyTable struct {
	name string // "filter"
	v6   bool   // ip6_tables
}

func parseLegacy(l string) legacyTable {
	mod, name, _ := strings.Cut(l, ": ")
	return legacyTable{name: name, v6: mod == "ip6_tables"}
}

func (t legacyTable) family() string {
	if t.v6 {
		return "IPv6"
	}
	return "IPv4"
}

// command lists the table's rules: "iptables-legacy -S",
// "ip6tables-legacy -t nat -S".
func (t legacyTable) command() string {
	bin := "iptables-legacy"
	if t.v6 {
		bin = "ip6tables-legacy"
	}
	if t.name != "filter" {
		return fmt.Sprintf("%s -t %s -S", bin, t.name)
	}
	return bin + " -S"
}

// nameLegacy words tables as "table filter (IPv4)" or "tables filter
// (IPv4), nat (IPv4) and filter (IPv6)".
func nameLegacy(ts []legacyTable) string {
	var names []string
	for _, t := range ts {
		names = append(names, fmt.Sprintf("%s (%s)", t.name, t.family()))
	}
	if len(names) == 1 {
		return "table " + names[0]
	}
	return "tables " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// legacyWarning is the sentence Warnings carries when iptables-legacy
// tables exist: what is there, what it does to the verdicts, what to do.
func legacyWarning(legacy []string) string {
	var ts []legacyTable
	var cmds []string
	for _, l := range legacy {
		t := parseLegacy(l)
		ts = append(ts, t)
		cmds = append(cmds, "`"+t.command()+"`")
	}
	pron := "their"
	if len(ts) == 1 {
		pron = "its"
	}
	return fmt.Sprintf("iptables-legacy has %s, whose rules nftables cannot show: cfguard cannot tell whether %s rules drop Cloudflare's connections, so a path nftables accepts is reported as \"cannot tell\" instead of passing. "+
		"List the rules with %s; move the ones you need to nftables (iptables-nft) and flush the legacy ones, or check by hand that none drops Cloudflare's ranges.",
		nameLegacy(ts), pron, strings.Join(cmds, " and "))
}

// legacyNote qualifies a result when iptables-legacy tables of the family
// exist: ip_tables hooks only IPv4 packets, ip6_tables only IPv6 ones.
func (r *Ruleset) legacyNote(res Result, v6 bool) Result {
	var ts []legacyTable
	for _, l := range r.legacy {
		if t := parseLegacy(l); t.v6 == v6 {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return res
	}
	switch res.Verdict {
	case Accept:
		res.Verdict = CannotTell
		res.Reason = fmt.Sprintf("nftables accepts, but iptables-legacy %s may drop the connection first, and nftables cannot show its rules (%s lists them)", nameLegacy(ts), ts[0].command())
		if len(ts) > 1 {
			res.Reason = fmt.Sprintf("nftables accepts, but iptables-legacy %s may drop the connection first, and nftables cannot show their rules", nameLegacy(ts))
		}
	case Drop, Reject:
		res.Reason = strings.TrimPrefix(res.Reason+"; ", "; ") + fmt.Sprintf("iptables-legacy %s may decide first, but this nftables rule blocks the connection either way", nameLegacy(ts))
	}
	return res
}
