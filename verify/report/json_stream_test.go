package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/textsafe"
)

// WriteJSON writes a path at a time; the bytes are what encoding/json
// writes for the whole document (with the same escaping), empty arrays
// and hostile text included.
func TestWriteJSONStreamsTheSameDocument(t *testing.T) {
	for name, r := range map[string]*Report{
		"empty": {},
		"paths and findings": {
			Paths: []Path{
				{Zone: "example.com", Hostname: "www.example.com", OriginIP: "192.0.2.1", Port: 443, Scheme: "https", Status: 502, Cause: "a <b> & \u202e\x7f\u0085 c", Evidence: []string{"x"}},
				{Zone: "example.com", Hostname: "api.example.com", OK: true, Status: 200, Rules: []string{`Origin Rule "a"`}},
			},
			Findings: []Finding{{Severity: SeverityWarning, Message: "m\u2028"}},
			Summary:  Summary{Paths: 2, Failing: 1, ByStatus: map[string]int{"502": 1}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteJSON(&got, r); err != nil {
				t.Fatal(err)
			}
			whole := Report{SchemaVersion: SchemaVersion, Paths: []Path{}, Findings: []Finding{}, Summary: r.Summary}
			for _, p := range r.Paths {
				if p.Evidence == nil {
					p.Evidence = []string{}
				}
				if p.Warnings == nil {
					p.Warnings = []string{}
				}
				whole.Paths = append(whole.Paths, p)
			}
			whole.Findings = append(whole.Findings, r.Findings...)
			if whole.Summary.ByStatus == nil {
				whole.Summary.ByStatus = map[string]int{}
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(whole); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(textsafe.JSON(b.Bytes())), got.String()); d != "" {
				t.Errorf("(-whole +streamed):\n%s", d)
			}
		})
	}
}
