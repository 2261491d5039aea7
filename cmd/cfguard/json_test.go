package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestPrintJSONSchemaVersionFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"fields", struct {
			A int    `json:"a"`
			B string `json:"b"`
		}{1, "x"}, "{\n  \"schema_version\": 1,\n  \"a\": 1,\n  \"b\": \"x\"\n}\n"},
		{"empty", struct{}{}, "{\n  \"schema_version\": 1\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			g := &globals{stdout: &out}
			if err := g.printJSON(tc.in); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
			var m map[string]any
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
		})
	}
	var out bytes.Buffer
	if err := (&globals{stdout: &out}).printJSON([]int{1}); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Errorf("an array: err = %v, want 'not an object'", err)
	}
}
