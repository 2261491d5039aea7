package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cfguard/cfguard/internal/textsafe"
)

// SchemaVersion is the version of the JSON contract of a report. It changes
// only when a field is removed, renamed or changes meaning.
const SchemaVersion = 1

// WriteJSON writes the report as the stable JSON contract:
// {"paths": [...], "findings": [...], "summary": {...}}, indented, with empty
// lists as [] (never null).
func WriteJSON(w io.Writer, r *Report) error {
	sum := r.Summary
	if sum.ByStatus == nil {
		sum.ByStatus = map[string]int{}
	}
	// The document is written a path at a time (20,000 paths are a 16 MB
	// document: encoding it whole held it three times over), byte for byte
	// what encoding/json writes for the whole Report with this indent.
	jw := &jsonWriter{w: bufio.NewWriterSize(w, 64<<10)}
	jw.enc = json.NewEncoder(&jw.buf)
	jw.enc.SetIndent("    ", "  ")
	jw.enc.SetEscapeHTML(false)
	jw.raw(fmt.Sprintf("{\n  \"schema_version\": %d,\n  \"paths\": ", SchemaVersion))
	jw.array(len(r.Paths), func(i int) any {
		p := r.Paths[i]
		if p.Evidence == nil {
			p.Evidence = []string{}
		}
		if p.Warnings == nil {
			p.Warnings = []string{}
		}
		return p
	})
	jw.raw(",\n  \"findings\": ")
	jw.array(len(r.Findings), func(i int) any { return r.Findings[i] })
	jw.raw(",\n  \"summary\": ")
	jw.enc.SetIndent("  ", "  ")
	jw.value(sum)
	jw.raw("\n}\n")
	if jw.err != nil {
		return jw.err
	}
	return jw.w.Flush()
}

// jsonWriter writes a JSON document piece by piece, each value escaped by
// textsafe.JSON (which needs no context: outside strings JSON is ASCII).
type jsonWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	buf bytes.Buffer
	err error
}

func (jw *jsonWriter) raw(s string) {
	if jw.err == nil {
		_, jw.err = jw.w.WriteString(s)
	}
}

// value writes v without the encoder's trailing newline.
func (jw *jsonWriter) value(v any) {
	if jw.err != nil {
		return
	}
	jw.buf.Reset()
	if jw.err = jw.enc.Encode(v); jw.err != nil {
		return
	}
	_, jw.err = jw.w.Write(textsafe.JSON(bytes.TrimSuffix(jw.buf.Bytes(), []byte("\n"))))
}

// array writes n elements as an array at the document's second level.
func (jw *jsonWriter) array(n int, elem func(int) any) {
	if n == 0 {
		jw.raw("[]")
		return
	}
	jw.raw("[\n")
	for i := range n {
		jw.raw("    ")
		jw.value(elem(i))
		if i < n-1 {
			jw.raw(",")
		}
		jw.raw("\n")
	}
	jw.raw("  ]")
}

// escaped returns a copy of r whose every text field is safe to print on a
// terminal (textsafe.String): hostnames, zone names, causes and evidence can
// hold what the API, DNS or a log line said.
func escaped(r *Report) *Report {
	out := &Report{Summary: r.Summary}
	for _, p := range r.Paths {
		p.Zone, p.Hostname, p.RecordType, p.OriginIP, p.Scheme = textsafe.String(p.Zone), textsafe.String(p.Hostname), textsafe.String(p.RecordType), textsafe.String(p.OriginIP), textsafe.String(p.Scheme)
		p.Stage = Stage(textsafe.String(string(p.Stage)))
		p.Cause, p.Fix = textsafe.String(p.Cause), textsafe.String(p.Fix)
		p.Evidence, p.Warnings = textsafe.Strings(p.Evidence), textsafe.Strings(p.Warnings)
		p.Rules = textsafe.Strings(p.Rules)
		out.Paths = append(out.Paths, p)
	}
	for _, f := range r.Findings {
		f.Zone, f.Hostname, f.Message, f.Fix = textsafe.String(f.Zone), textsafe.String(f.Hostname), textsafe.String(f.Message), textsafe.String(f.Fix)
		f.Severity = Severity(textsafe.String(string(f.Severity)))
		out.Findings = append(out.Findings, f)
	}
	return out
}

// ANSI colours, used only when WriteText is told the output is a terminal.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

type painter bool

func (p painter) paint(code, s string) string {
	if !p {
		return s
	}
	return code + s + ansiReset
}

// WriteText writes the report for people: each distinct cause once
// (failures first, then warnings, then passes; group.go), with its fix and
// evidence and the paths it concerns, then the findings and a closing
// summary. JSON keeps one entry per path.
//
// Every text field is escaped first: a control character from the API, a
// DNS name or a log line is shown, never obeyed by the terminal.
func WriteText(w io.Writer, r *Report, color bool) error {
	r = escaped(r)
	p := painter(color)
	var b strings.Builder

	writeGroups(&b, p, r.Paths)

	if len(r.Findings) > 0 {
		if len(r.Paths) > 0 {
			b.WriteString("\n")
		}
		b.WriteString(p.paint(ansiBold, "Findings") + "\n")
		for _, f := range r.Findings {
			mark := "i"
			code := ansiDim
			switch f.Severity {
			case SeverityError:
				mark, code = "✘", ansiRed
			case SeverityWarning:
				mark, code = "!", ansiYellow
			}
			fmt.Fprintf(&b, "  %s %s\n", p.paint(code, mark), f.Message)
			if f.Fix != "" {
				fmt.Fprintf(&b, "      fix: %s\n", f.Fix)
			}
		}
	}

	if len(r.Paths) > 0 || len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	line := SummaryLine(r.Summary)
	if r.Summary.Failing > 0 {
		line = p.paint(ansiRed+ansiBold, line)
	} else if r.Summary.Paths > 0 {
		line = p.paint(ansiGreen, line)
	}
	b.WriteString(line + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

// SummaryLine is the closing line: "3 of 12 paths would fail: 2 × 502,
// 1 × 522" or "all 12 paths pass".
func SummaryLine(s Summary) string {
	noun := "paths"
	if s.Paths == 1 {
		noun = "path"
	}
	if s.Paths == 0 {
		return "no path to check"
	}
	if s.Failing == 0 {
		if s.Paths == 1 {
			return "the 1 path passes"
		}
		return fmt.Sprintf("all %d %s pass", s.Paths, noun)
	}
	type kv struct {
		status string
		n      int
	}
	var counts []kv
	for st, n := range s.ByStatus {
		counts = append(counts, kv{st, n})
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].n != counts[j].n {
			return counts[i].n > counts[j].n
		}
		return counts[i].status < counts[j].status
	})
	var parts []string
	for _, c := range counts {
		parts = append(parts, fmt.Sprintf("%d × %s", c.n, c.status))
	}
	verb := "would fail"
	return fmt.Sprintf("%d of %d %s %s: %s", s.Failing, s.Paths, noun, verb, strings.Join(parts, ", "))
}
