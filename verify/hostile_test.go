package verify

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

// TestRunHostileRules: rules an API could send to make verify misbehave —
// expressions nested past the bound, over 16 KiB, with unknown functions,
// regular expressions, control and bidi characters in names — and
// hostnames in upper case, with a trailing dot, in punycode. The run
// finishes, every path is walked, the text output holds no character a
// terminal would act on, and the JSON parses.
func TestRunHostileRules(t *testing.T) {
	deep := strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200)
	huge := `http.host eq "` + strings.Repeat("a", 1<<20) + `"`
	bidi := "pay\u202eevil\x1b[2J\r\nX-Injected: 1\x00"
	rs := cloudflare.Rules{
		Config: []cloudflare.Rule{
			cfgRule("c1", bidi, deep, ModeStrict),
			cfgRule("c2", "huge", huge, ModeFlexible),
			cfgRule("c3", "unknown fn", `frobnicate(http.host) eq "x"`, ModeOff),
			cfgRule("c4", "regex", `http.host matches "^(a+)+$" or http.host matches "(("`, ModeFull),
			cfgRule("c5", "lower", `lower(http.host) eq "www.example.com"`, ModeStrict),
			cfgRule("c6", "wildcard", `http.host wildcard "*.EXAMPLE.com" and http.host strict wildcard "*.EXAMPLE.com"`, ModeOff),
		},
		Origin: []cloudflare.Rule{
			routeRule("o1", bidi, `http.host in {"www.example.com" "xn--bcher-kva.example.com"}`, func(r *cloudflare.Rule) { r.OriginPort = 8443 }),
		},
		Page: []cloudflare.PageRule{{ID: "p1", Target: bidi + "*example.com/*", Status: "active", SSL: ModeFull}},
	}
	z := withRules(zoneWith("example.com", cloudflare.Settings{SSL: ModeFull},
		a("WWW.Example.COM.", "192.0.2.1"), a("xn--bcher-kva.example.com", "192.0.2.1"), a("*.example.com", "192.0.2.1")), rs)
	f := newFixture(z)
	rep := f.run(t)
	if len(rep.Paths) == 0 {
		t.Fatal("no paths")
	}
	var text bytes.Buffer
	if err := report.WriteText(&text, rep, false); err != nil {
		t.Fatal(err)
	}
	for i, r := range text.String() {
		if r != '\n' && (r < 0x20 || r == 0x7f || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Cc, r)) {
			t.Fatalf("the text output holds %U at %d: %q", r, i, text.String()[max(0, i-40):min(text.Len(), i+40)])
		}
	}
	if strings.Contains(text.String(), "\nX-Injected") {
		t.Errorf("a rule's name broke a line of the text output")
	}
	var js bytes.Buffer
	if err := report.WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if n := text.Len(); n > 1<<20 {
		t.Errorf("text output of %d bytes for %d paths: a 1 MiB expression is repeated", n, len(rep.Paths))
	}
	t.Logf("%d paths, %d bytes of text, %d of JSON\n%s", len(rep.Paths), text.Len(), js.Len(), text.String())
}
