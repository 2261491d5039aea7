package verify

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	"github.com/cfguard/cfguard/verify/report"
)

// Finish sorts the report's paths and findings into their stable order and
// computes the summary. Run calls it; tests that build reports by hand may.
func Finish(rep *report.Report) {
	slices.SortStableFunc(rep.Paths, comparePaths)
	slices.SortStableFunc(rep.Findings, compareFindings)
	rep.Findings = slices.Compact(rep.Findings)
	s := report.Summary{Paths: len(rep.Paths), ByStatus: map[string]int{}}
	for _, p := range rep.Paths {
		if !p.OK {
			s.Failing++
			s.ByStatus[strconv.Itoa(p.Status)]++
		}
		s.Warnings += len(p.Warnings)
	}
	for _, f := range rep.Findings {
		switch f.Severity {
		case report.SeverityError:
			s.Errors++
		case report.SeverityWarning:
			s.Warnings++
		}
	}
	rep.Summary = s
}

// comparePaths orders by hostname, zone, origin address (numerically),
// port, scheme.
func comparePaths(a, b report.Path) int {
	return cmp.Or(
		cmp.Compare(a.Hostname, b.Hostname),
		cmp.Compare(a.Zone, b.Zone),
		compareAddrs(a.OriginIP, b.OriginIP),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Scheme, b.Scheme),
		cmp.Compare(a.RecordType, b.RecordType),
	)
}

func compareAddrs(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	if errA != nil || errB != nil {
		return cmp.Compare(a, b)
	}
	return x.Compare(y)
}

func severityRank(s report.Severity) int {
	switch s {
	case report.SeverityError:
		return 0
	case report.SeverityWarning:
		return 1
	}
	return 2
}

// compareFindings orders by severity (errors first), zone, hostname, message.
func compareFindings(a, b report.Finding) int {
	return cmp.Or(
		cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
		cmp.Compare(a.Zone, b.Zone),
		cmp.Compare(a.Hostname, b.Hostname),
		cmp.Compare(a.Message, b.Message),
		cmp.Compare(a.Fix, b.Fix),
	)
}
