package rules

import "testing"

// FuzzParse: any input parses or is refused with an error, never a panic;
// what parses evaluates to one of the three values, an unknown one with a
// reason. The input is also matched as a Page Rule URL pattern.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`http.host eq "api.example.com"`,
		`http.host in {"a.example.com" "b.example.com"} and not starts_with(http.request.uri.path, "/x")`,
		`(ends_with(http.host, ".example.com") || http.host wildcard "*.example.org") ^^ ssl`,
		`http.host strict wildcard r#"*.Ex"ample.com"#`,
		`ip.src in {192.0.2.0/24 2001:db8::/32} or http.request.headers["x"][0] == "1"`,
		`lower(concat(http.host, "x")) matches "^a.*x$" and len(http.host) ge 3 and http.host in $list`,
		`tcp.dstport in {80 443 8000..8080}`,
		`*example.com/*`,
		`https://www.example.com:8443/shop/*`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The same input as a Page Rule URL pattern.
		if r := MatchPageTarget(s, "api.example.com"); r.Truth == Unknown && len(r.Fields)+len(r.Why) == 0 {
			t.Fatalf("MatchPageTarget(%q): unknown without a reason", s)
		}
		e, err := Parse(s)
		if err != nil {
			return
		}
		r := e.Eval(Env{Host: "api.example.com"})
		if r.Truth != True && r.Truth != False && r.Truth != Unknown {
			t.Fatalf("Eval(%q) = %d", s, r.Truth)
		}
		if r.Truth == Unknown && len(r.Fields) == 0 && len(r.Why) == 0 {
			t.Fatalf("Eval(%q): unknown without a reason", s)
		}
	})
}
