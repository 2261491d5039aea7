package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/verify/report"
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

// TestJSONFieldsDocumented fails when a command's JSON has a field that
// docs/json.md does not list (a contract nobody wrote down is no contract).
func TestJSONFieldsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{guard.Result{}, guard.RealIPFile{}, guard.Status{}, cfranges.List{},
		report.Report{}, report.Path{}, report.Finding{}, report.Summary{},
		report.EdgeCounts{}, report.EdgeCount{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !bytes.Contains(doc, []byte("`"+name+"`")) && !bytes.Contains(doc, []byte("."+name+"`")) {
				t.Errorf("%s field %q is not in docs/json.md", typ, name)
			}
		}
	}
	if !bytes.Contains(doc, []byte(fmt.Sprintf("now **%d**", jsonSchemaVersion))) || report.SchemaVersion != jsonSchemaVersion {
		t.Errorf("docs/json.md, report.SchemaVersion (%d) and jsonSchemaVersion (%d) disagree", report.SchemaVersion, jsonSchemaVersion)
	}
}
