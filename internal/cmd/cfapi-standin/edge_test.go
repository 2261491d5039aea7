package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

func TestParseEdge(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want cfapitest.EdgeRow
		err  bool
	}{
		{"www.example.com=502:1204:502", cfapitest.EdgeRow{Host: "www.example.com", Edge: 502, Origin: 502, Count: 1204, SampleInterval: 1}, false},
		{"www.example.com=520:7", cfapitest.EdgeRow{Host: "www.example.com", Edge: 520, Count: 7, SampleInterval: 1}, false},
		{"www.example.com", cfapitest.EdgeRow{}, true},
		{"=520:7", cfapitest.EdgeRow{}, true},
		{"w=520", cfapitest.EdgeRow{}, true},
		{"w=999:1", cfapitest.EdgeRow{}, true},
		{"w=520:-1", cfapitest.EdgeRow{}, true},
		{"w=520:1:2:3", cfapitest.EdgeRow{}, true},
	} {
		got, err := parseEdge(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("parseEdge(%q) error = %v, want error %v", tt.in, err, tt.err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("parseEdge(%q) (-want +got):\n%s", tt.in, d)
		}
	}
}

// FuzzParseEdge: a row in range or one error line, never a panic.
func FuzzParseEdge(f *testing.F) {
	f.Add("www.example.com=502:1204:502")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseEdge(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "want HOST=") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if r.Host == "" || r.Edge < 100 || r.Edge > 599 || r.Count < 0 || r.Origin < 0 || r.Origin > 599 {
			t.Fatalf("row out of range: %+v", r)
		}
	})
}
