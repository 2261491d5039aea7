package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// manyUndecided is n rules that depend on the request and give its
// requests what every request gets (a later rule that always matches sets
// the same port), with one more after them that would make a difference.
func manyUndecided(n int) cloudflare.Rules {
	var rs cloudflare.Rules
	for i := range n {
		rs.Origin = append(rs.Origin, cloudflare.Rule{ID: fmt.Sprint("u", i), Expression: `starts_with(http.request.uri.path, "/x")`,
			Enabled: true, Action: "route", OriginPort: 8443})
	}
	rs.Origin = append(rs.Origin,
		cloudflare.Rule{ID: "differs", Expression: `starts_with(http.request.uri.path, "/y")`, Enabled: true, Action: "route", HostHeader: "other.example.com"},
		cloudflare.Rule{ID: "always", Expression: `true`, Enabled: true, Action: "route", OriginPort: 8443})
	return rs
}

// Alternatives tries at most maxAlternativeTries rules: a zone with
// thousands of rules that make no difference cost a walk of all its rules
// for each of them, per hostname (2,000 rules: 44 s a hostname).
func TestAlternativesTriesBounded(t *testing.T) {
	rs := manyUndecided(maxAlternativeTries)
	if alts := Alternatives(rs, "www.example.com"); len(alts) != 0 {
		t.Errorf("%d alternatives, want none: the rule that differs comes after %d tries", len(alts), maxAlternativeTries)
	}
	// Within the bound, the rule that differs is found.
	if alts := Alternatives(manyUndecided(maxAlternativeTries-1), "www.example.com"); len(alts) != 1 || alts[0].Rule.ID != "differs" {
		t.Errorf("alternatives %v, want the rule that differs", alts)
	}
}

// A Page Rule URL pattern longer than an expression may be is not matched
// (O(len(host)·len(pattern)) per hostname) but said to be undecided.
func TestMatchPageTargetHuge(t *testing.T) {
	p := strings.Repeat("*a", MaxExprLen) + "/*"
	r := MatchPageTarget(p, "www.example.com")
	if r.Truth != Unknown || len(r.Why) != 1 || !strings.Contains(r.Why[0], "more than the") {
		t.Errorf("MatchPageTarget(huge) = %+v, want unknown saying it is too long", r)
	}
}

func BenchmarkAlternatives2000Rules(b *testing.B) {
	rs := manyUndecided(2000)
	for b.Loop() {
		For(rs, "www.example.com")
		Alternatives(rs, "www.example.com")
	}
}

// What verify says of an expression it cannot decide quotes at most
// cloudflare.ClipName's bound of it: a 16 KiB regular expression or
// string is not repeated whole on every path.
func TestEvalRuleReasonsBounded(t *testing.T) {
	long := strings.Repeat("(", 8000)
	for _, src := range []string{
		`http.host matches "` + long + `"`,
		`http.host eq "a" "` + strings.Repeat("b", 10000) + `"`,
		`http.request.` + strings.Repeat("x", 10000) + ` eq "a"`,
	} {
		res := evalRule(src, Env{Host: "www.example.com"})
		for _, s := range append(res.Why, res.Fields...) {
			if len(s) > 300 {
				t.Errorf("a reason of %d bytes for an expression of %d: %.60q…", len(s), len(src), s)
			}
		}
		if res.Truth != Unknown {
			t.Errorf("%.40q: %v, want unknown", src, res.Truth)
		}
	}
}

// A regular expression that would compile to millions of instructions
// (one second to compile, milliseconds per hostname to run) is not run:
// the rule is undecided, saying why; an ordinary one still decides.
func TestMatchesTooLarge(t *testing.T) {
	huge := strings.Repeat("[a-z]{1,1000}", 100)
	e, err := Parse(`http.host matches "` + huge + `"`)
	if err != nil {
		t.Fatal(err)
	}
	r := e.Eval(Env{Host: "www.example.com"})
	if r.Truth != Unknown || len(r.Why) != 1 || !strings.Contains(r.Why[0], "too large for verify to run") {
		t.Errorf("%+v, want unknown: too large", r)
	}
	for _, tt := range []struct {
		expr string
		want Truth
	}{
		{`http.host matches "^(www|api)\\.example\\.com$"`, True},
		{`http.host matches "^([a-z0-9-]{1,63}\\.){1,10}example\\.org$"`, False},
		{`http.host matches "(?:(?:w{2}){2}){2}"`, False},
	} {
		e, err := Parse(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Eval(Env{Host: "www.example.com"}); got.Truth != tt.want {
			t.Errorf("%s: %+v, want %v", tt.expr, got, tt.want)
		}
	}
}

// At most MaxDepends rules are named as depending on the request, then one
// sentence for how many more; the alternatives still see every one.
func TestDependsBounded(t *testing.T) {
	rs := manyUndecided(40)
	d := For(rs, "www.example.com").Depends
	if len(d) != MaxDepends+1 || !strings.HasPrefix(d[MaxDepends], "and 25 more rules that depend on the request") {
		t.Errorf("%d sentences, the last %q; want %d and one saying 25 more", len(d), d[len(d)-1], MaxDepends)
	}
	// The alternatives see the rules past MaxDepends too.
	if alts := Alternatives(manyUndecided(MaxDepends+4), "www.example.com"); len(alts) != 1 || alts[0].Rule.ID != "differs" {
		t.Errorf("alternatives %v, want the rule that differs (the %dth)", alts, MaxDepends+5)
	}
}
