package logs

import (
	"regexp"
	"strings"

	"github.com/cfguard/cfguard/verify/probemark"
)

// This file tells the lines about verify's own requests (probemark) from
// the visitors': Entry.Probe is the id a line carries, Entry.Client and
// Entry.Thread are what Apache logs of the request and of the thread.

var (
	apacheThread = regexp.MustCompile(`\] \[pid (\d+(?::tid \d+)?)\] `)
	apacheClient = regexp.MustCompile(`\] \[client ([^\]]+)\] `)
)

// marked fills in what an entry says of the request it is about.
func marked(e Entry, ok bool) (Entry, bool) {
	if ok {
		markEntry(&e)
	}
	return e, ok
}

func markEntry(e *Entry) {
	if !strings.Contains(e.Line, probemark.Host) {
		e.Probe = ""
	} else {
		e.Probe = probemark.Find(e.Line)
	}
	if e.Source != Apache {
		return
	}
	head := e.Line
	if i := strings.Index(head, "AH"); i >= 0 {
		head = head[:i] // the message itself may quote anything
	}
	if m := apacheThread.FindStringSubmatch(head); m != nil {
		e.Thread = m[1]
	}
	if m := apacheClient.FindStringSubmatch(head); m != nil {
		e.Client = m[1]
	}
}

// Line returns what a line says whether or not it explains a 5xx: an
// Entry with Kind set when Classify knows it, else with Kind "" and the
// line's message, time, probe id, client and thread. Reading back the
// lines of one request keeps them all (a PHP error, "Primary script
// unknown").
func Line(src Source, line string) Entry {
	if e, ok := Classify(src, line); ok {
		return e
	}
	e := Entry{Source: src, Line: line, Message: line}
	switch src {
	case Nginx:
		if m := nginxTime.FindStringSubmatch(line); m != nil {
			e.Time = lineTime(src, line)
			e.Message = m[3]
			if i := strings.Index(e.Message, ", client: "); i >= 0 {
				e.Message = e.Message[:i]
			}
		}
	case Apache:
		if m := apacheHead.FindStringSubmatch(line); m != nil {
			e.Time = lineTime(src, line)
			e.Message = m[3]
		}
	}
	markEntry(&e)
	return e
}

// MarkThreads gives Apache's lines that name no request (AH02454, AH00957:
// the connection to the backend failed) the request of the line that
// follows on the same thread (AH01079, AH01114: the request failed), which
// Apache writes right after: es is in the order of the log. Lines of
// other sources are left as they are.
func MarkThreads(es []Entry) {
	pending := map[string][]int{}
	for i := range es {
		e := &es[i]
		if e.Source != Apache || e.Thread == "" {
			continue
		}
		if e.Client == "" && e.Probe == "" {
			if len(pending[e.Thread]) < maxPending {
				pending[e.Thread] = append(pending[e.Thread], i)
			}
			continue
		}
		for _, j := range pending[e.Thread] {
			es[j].Probe, es[j].Client = e.Probe, e.Client
		}
		delete(pending, e.Thread)
	}
}

// maxPending bounds the lines of one thread waiting for their request.
const maxPending = 16

// Visitors are the entries that are not about one of verify's own
// requests; probes is how many were left out. A mark verify did not make
// (probemark.Ours: a visitor's forged Referer) leaves the line a visitor's.
func Visitors(es []Entry) (visitors []Entry, probes int) {
	visitors = make([]Entry, 0, len(es))
	for _, e := range es {
		if Own(e) {
			probes++
			continue
		}
		visitors = append(visitors, e)
	}
	return visitors, probes
}

// Own reports whether e is about one of verify's own requests: it carries
// a mark verify made on this host.
func Own(e Entry) bool { return e.Probe != "" && probemark.Ours(e.Probe) }
