package cfranges

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseAnswer feeds the parser and validator of GET /ips any body: it
// must never panic, never return a partly filled list, and only ever accept
// a list that Validate and CheckMerged accept, refusing with one line.
// Seeds: testdata/fuzz/FuzzParseAnswer and the rows below.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"success":true,"errors":[],"messages":[],"result":{"etag":"e","ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"]}}`), false)
	f.Add([]byte(`{"success":true,"result":{"ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"],"jdcloud_cidrs":["198.18.0.0/15"]}}`), true)
	f.Add([]byte(`{"success":true,"result":{"ipv4_cidrs":["0.0.0.0/1","128.0.0.0/1"],"ipv6_cidrs":["2001:db8:cf::/48"]}}`), false)
	f.Add([]byte(`{"success":false,"errors":[{"code":10000,"message":"Authentication error\n"}]}`), false)
	f.Add([]byte(`<html><title>portal</title></html>`), false)
	f.Add([]byte(`{"success":true}`), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, raw []byte, china bool) {
		l, err := ParseAnswer(raw, china)
		if err != nil {
			if l.IPv4 != nil || l.IPv6 != nil || l.JDCloud != nil || l.Source != "" || l.Etag != "" {
				t.Fatalf("partly filled List with error %v: %+v", err, l)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if verr := Validate(l); verr != nil {
			t.Fatalf("accepted a list Validate refuses: %v", verr)
		}
		if merr := CheckMerged("x", l.All()); merr != nil {
			t.Fatalf("accepted a list CheckMerged refuses: %v", merr)
		}
		if l.Source != SourceAPI || (china && len(l.JDCloud) == 0) || (!china && l.JDCloud != nil) {
			t.Fatalf("accepted %+v (china=%v)", l, china)
		}
		if errors.Is(CheckGrowth(nil, l.All()), ErrGrowth) && len(l.All()) < 2 {
			t.Fatalf("one prefix that passes the merged check cannot be a growth: %v", l.All())
		}
	})
}
