package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hostile is a report whose every text field carries what a hostile API,
// DNS name or log line could: a window-title sequence, CR, a C1 CSI and a
// bidi override.
func hostile() *Report {
	const evil = "\x1b]0;pwned\x07\r\u009b2J\u202e"
	return &Report{
		Paths: []Path{{Zone: "z" + evil, Hostname: "h" + evil, RecordType: "A" + evil, OriginIP: "192.0.2.1" + evil, Port: 443, Scheme: "https" + evil,
			Status: 502, Stage: Stage("upstream" + evil), Cause: "c" + evil, Fix: "f" + evil, Evidence: []string{"e" + evil}, Warnings: []string{"w" + evil}}},
		Findings: []Finding{{Severity: Severity("error" + evil), Zone: "z" + evil, Hostname: "h" + evil, Message: "m" + evil, Fix: "f" + evil}},
		Summary:  Summary{Paths: 1, Failing: 1, ByStatus: map[string]int{"502": 1}},
	}
}

func TestWriteTextEscapesControls(t *testing.T) {
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		if err := WriteText(&b, hostile(), color); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if color {
			// The renderer's own colours are the only escapes left.
			for _, c := range []string{ansiRed, ansiGreen, ansiYellow, ansiBold, ansiDim, ansiReset} {
				out = strings.ReplaceAll(out, c, "")
			}
		}
		for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("color=%v: the text report holds %q raw:\n%s", color, bad, out)
			}
		}
		if n := strings.Count(out, `\x1b]0;pwned\x07\r\u009b2J\u202e`); n < 10 {
			t.Errorf("color=%v: the escaped sequence appears %d times, want every field (≥10):\n%s", color, n, out)
		}
	}
}

func TestWriteJSONEscapesControlsAndStaysJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, hostile()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
		if strings.Contains(b.String(), bad) {
			t.Errorf("the JSON report holds %q raw:\n%s", bad, b.String())
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	want := hostile()
	if diff := cmp.Diff(want.Paths[0].Cause, back.Paths[0].Cause); diff != "" {
		t.Errorf("JSON must carry the value itself, escaped only as JSON (-want +got):\n%s", diff)
	}
}
