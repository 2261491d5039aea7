package rules

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEval(t *testing.T) {
	tests := []struct {
		expr   string
		host   string
		want   Truth
		fields []string // the request fields named when Unknown
	}{
		{`http.host eq "api.example.com"`, "api.example.com", True, nil},
		{`http.host eq "api.example.com"`, "www.example.com", False, nil},
		{`http.host == "api.example.com"`, "api.example.com", True, nil},
		{`http.host ne "api.example.com"`, "www.example.com", True, nil},
		{`http.host != "api.example.com"`, "api.example.com", False, nil},
		{`http.host in {"a.example.com" "api.example.com"}`, "api.example.com", True, nil},
		{`http.host in {"a.example.com", "b.example.com"}`, "api.example.com", False, nil},
		{`not http.host in {"a.example.com"}`, "api.example.com", True, nil},
		{`ends_with(http.host, ".example.com")`, "api.example.com", True, nil},
		{`ends_with(http.host, ".example.org")`, "api.example.com", False, nil},
		{`starts_with(http.host, "api.")`, "api.example.com", True, nil},
		{`http.host contains "pi.ex"`, "api.example.com", True, nil},
		{`lower(http.host) eq "api.example.com"`, "api.example.com", True, nil},
		{`upper(http.host) eq "API.EXAMPLE.COM"`, "api.example.com", True, nil},
		{`concat("x.", http.host) eq "x.api.example.com"`, "api.example.com", True, nil},
		{`len(http.host) gt 3`, "api.example.com", True, nil},
		{`http.host wildcard "*.EXAMPLE.com"`, "api.example.com", True, nil},
		{`http.host strict wildcard "*.EXAMPLE.com"`, "api.example.com", False, nil},
		{`http.host wildcard "a*i.*.com"`, "api.example.com", True, nil},
		{`http.host wildcard "\\*.example.com"`, "api.example.com", False, nil},
		{`http.host matches "^api\\.example\\.com$"`, "api.example.com", True, nil},
		{`http.host ~ "^www"`, "api.example.com", False, nil},
		// Precedence: not > and > xor > or.
		{`http.host eq "x" or http.host eq "api.example.com" and true`, "api.example.com", True, nil},
		{`(http.host eq "x" or http.host eq "api.example.com") and false`, "api.example.com", False, nil},
		{`http.host eq "api.example.com" xor true`, "api.example.com", False, nil},
		{`http.host eq "api.example.com" ^^ false`, "api.example.com", True, nil},
		{`http.host eq "api.example.com" && !(http.host eq "b")`, "api.example.com", True, nil},
		{`true`, "api.example.com", True, nil},
		// Three values: the request decides.
		{`starts_with(http.request.uri.path, "/api/")`, "api.example.com", Unknown, []string{"http.request.uri.path"}},
		{`http.host eq "api.example.com" and starts_with(http.request.uri.path, "/api/")`, "api.example.com", Unknown, []string{"http.request.uri.path"}},
		{`http.host eq "www.example.com" and starts_with(http.request.uri.path, "/api/")`, "api.example.com", False, nil},
		{`http.host eq "api.example.com" or ip.src.country eq "DE"`, "api.example.com", True, nil},
		{`http.host eq "www.example.com" or ip.src.country eq "DE"`, "api.example.com", Unknown, []string{"ip.src.country"}},
		{`not http.request.uri.path eq "/"`, "api.example.com", Unknown, []string{"http.request.uri.path"}},
		{`http.request.headers["x-test"][0] eq "1" xor true`, "api.example.com", Unknown, []string{"http.request.headers"}},
		{`any(http.request.headers.names[*] == "x")`, "api.example.com", Unknown, []string{"http.request.headers.names"}},
		{`ssl`, "api.example.com", Unknown, []string{"ssl"}},
		{`ip.src in {192.0.2.0/24 2001:db8::/32}`, "api.example.com", Unknown, []string{"ip.src"}},
		{`http.host eq "api.example.com"`, "", Unknown, []string{"http.host (a wildcard record covers many hostnames)"}},
		// Undecidable without the request's fields.
		{`http.host in $hosts`, "api.example.com", Unknown, nil},
		{`http.host matches "(?<=a)pi"`, "api.example.com", Unknown, nil},
		{`http.host eq 443`, "api.example.com", Unknown, nil},
		{`http.host in {1..10}`, "api.example.com", Unknown, nil},
		{`concat(` + strings.Repeat(`http.host, `, 300) + `"") wildcard "*a*a*a*a*b"`, "api.example.com", Unknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := e.Eval(Env{Host: tt.host})
			if got.Truth != tt.want {
				t.Errorf("Eval = %v (%v %v), want %v", got.Truth, got.Fields, got.Why, tt.want)
			}
			if tt.want == Unknown && tt.fields != nil {
				if diff := cmp.Diff(tt.fields, got.Fields); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			}
			if tt.want == Unknown && len(got.Fields) == 0 && len(got.Why) == 0 {
				t.Errorf("unknown without a reason")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ expr, want string }{
		{``, "want a field or a value"},
		{`http.host eq`, "want a field or a value"},
		{`http.host eq "a`, "unterminated string"},
		{`http.host eq "a\n"`, "unknown escape"},
		{`(http.host eq "a"`, "want )"},
		{`http.host eq "a")`, "unexpected"},
		{`http.host eq "a" and`, "want a field or a value"},
		{`http.host eq and`, "operator"},
		{`http.host strict eq "a"`, "want wildcard after strict"},
		{`http.host in {http.host}`, "a set holds literals"},
		{`http.host @ "a"`, "unexpected character"},
		{strings.Repeat("(", 100) + `true` + strings.Repeat(")", 100), "nested deeper"},
		{strings.Repeat("not ", 100) + `true`, "nested deeper"},
		{`http.host eq "` + strings.Repeat("a", MaxExprLen) + `"`, "more than"},
	}
	for _, tt := range tests {
		name := tt.expr
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tt.expr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRawStrings(t *testing.T) {
	e, err := Parse(`http.host eq r"api.example.com" or http.host eq r#"a"b"#`)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Eval(Env{Host: `a"b`}).Truth; got != True {
		t.Errorf("raw string with a quote: %v, want true", got)
	}
}

func TestWildcard(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"", "", true}, {"", "*", true}, {"a", "", false}, {"abc", "a*c", true}, {"abc", "a*b", false},
		{"aaa", "*a", true}, {"ab", "**b", true}, {"a*b", `a\*b`, true}, {"axb", `a\*b`, false},
		{strings.Repeat("a", 2000), strings.Repeat("*a", 500) + "b", false},
	}
	for _, tt := range tests {
		if got := wildcard(tt.s, tt.p); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
}
