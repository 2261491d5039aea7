package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"go4.org/netipx"
)

// elemText shows an element as "addr" (start) or "addr end".
func elemText(es []nftables.SetElement) []string {
	var out []string
	for _, e := range es {
		a, _ := netip.AddrFromSlice(e.Key)
		s := a.String()
		if e.IntervalEnd {
			s += " end"
		}
		out = append(out, s)
	}
	return out
}

func TestIntervals(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []netip.Prefix
		want []string
	}{
		{"one prefix, end-exclusive", pfx("198.51.100.0/24"), []string{"198.51.100.0", "198.51.101.0 end"}},
		{"single address", pfx("192.0.2.7/32"), []string{"192.0.2.7", "192.0.2.8 end"}},
		{"adjacent merged", pfx("203.0.113.128/25", "203.0.113.0/25"), []string{"203.0.113.0", "203.0.114.0 end"}},
		{"overlap merged", pfx("198.51.100.0/24", "198.51.100.64/26", "198.51.0.0/16"), []string{"198.51.0.0", "198.52.0.0 end"}},
		{"disjoint, sorted", pfx("203.0.113.0/24", "198.51.100.0/24"),
			[]string{"198.51.100.0", "198.51.101.0 end", "203.0.113.0", "203.0.114.0 end"}},
		{"host bits masked", pfx("198.51.100.77/24"), []string{"198.51.100.0", "198.51.101.0 end"}},
		{"top of v4 space: start only", pfx("240.0.0.0/4"), []string{"240.0.0.0"}},
		{"from zero", pfx("0.0.0.0/8"), []string{"0.0.0.0", "1.0.0.0 end"}},
		{"v6", pfx("2001:db8:cf::/48"), []string{"2001:db8:cf::", "2001:db8:d0:: end"}},
		{"v6 adjacent", pfx("2001:db8:cf1::/48", "2001:db8:cf0::/48"), []string{"2001:db8:cf0::", "2001:db8:cf2:: end"}},
		{"top of v6 space", pfx("ff00::/8"), []string{"ff00::"}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, elemText(Intervals(tc.in))); diff != "" {
				t.Errorf("Intervals(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func elems(spec ...string) []nftables.SetElement {
	var out []nftables.SetElement
	for _, s := range spec {
		addr, end := strings.CutSuffix(s, " end")
		a := netip.MustParseAddr(addr)
		out = append(out, nftables.SetElement{Key: a.AsSlice(), IntervalEnd: end})
	}
	return out
}

func rangesText(rs []netipx.IPRange) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestRangesFromElements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []nftables.SetElement
		keyLen  int
		want    []string
		wantErr string
	}{
		{"descending as the kernel lists",
			elems("203.0.114.0 end", "203.0.113.0", "198.51.101.0 end", "198.51.100.0"), 4,
			[]string{"198.51.100.0-198.51.100.255", "203.0.113.0-203.0.113.255"}, ""},
		{"nft's zero sentinel", elems("198.51.101.0 end", "198.51.100.0", "0.0.0.0 end"), 4,
			[]string{"198.51.100.0-198.51.100.255"}, ""},
		{"open top", elems("240.0.0.0", "198.51.101.0 end", "198.51.100.0"), 4,
			[]string{"198.51.100.0-198.51.100.255", "240.0.0.0-255.255.255.255"}, ""},
		{"adjacent unmerged", elems("198.51.101.0 end", "198.51.100.128", "198.51.100.128 end", "198.51.100.0"), 4,
			[]string{"198.51.100.0-198.51.100.127", "198.51.100.128-198.51.100.255"}, ""},
		{"v6", elems("2001:db8:cf:1:: end", "2001:db8:cf::", "::"), 16, nil, "start 2001:db8:cf:: follows start ::"},
		{"v6 ok", elems("2001:db8:cf:1:: end", "2001:db8:cf::"), 16, []string{"2001:db8:cf::-2001:db8:cf:0:ffff:ffff:ffff:ffff"}, ""},
		{"wrong key length", elems("2001:db8::"), 4, nil, "key of 16 bytes, want 4"},
		{"empty", nil, 4, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RangesFromElements(tc.in, tc.keyLen)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rangesText(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Encoding then decoding gives back the normalised prefixes.
func TestIntervalsRoundTrip(t *testing.T) {
	in := pfx("198.51.100.0/24", "198.51.101.0/24", "203.0.113.0/25", "192.0.2.9/32", "240.0.0.0/4")
	v4, _, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RangesFromElements(Intervals(in), 4)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v4, PrefixesOf(r), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []netip.Prefix
		want4   string
		want6   string
		wantErr string
	}{
		{"mixed, sorted", pfx("2001:db8:cf1::/48", "203.0.113.0/24", "198.51.100.0/24", "2001:db8:cf::/48"),
			"198.51.100.0/24 203.0.113.0/24", "2001:db8:cf::/48 2001:db8:cf1::/48", ""},
		{"adjacency merges", pfx("198.51.100.0/25", "198.51.100.128/25"), "198.51.100.0/24", "", ""},
		{"overlap absorbed", pfx("198.51.100.0/24", "198.51.100.7/32"), "198.51.100.0/24", "", ""},
		{"range not a prefix splits", pfx("198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"),
			"198.51.100.0/23 198.51.102.0/24", "", ""},
		{"host bits", pfx("203.0.113.9/24"), "203.0.113.0/24", "", ""},
		{"top of space", pfx("240.0.0.0/4", "248.0.0.0/5"), "240.0.0.0/4", "", ""},
		{"duplicates", pfx("2001:db8:cf::/48", "2001:db8:cf::/48"), "", "2001:db8:cf::/48", ""},
		{"empty", nil, "", "", ""},
		{"invalid", []netip.Prefix{{}}, "", "", "invalid prefix"},
		{"4in6", pfx("::ffff:198.51.100.0/120"), "", "", "IPv4-mapped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6, err := Normalize(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want4+"|"+tc.want6, join(v4)+"|"+join(v6)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func join(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func TestDiffPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name           string
		have, want     []netip.Prefix
		added, removed string
	}{
		{"same", pfx("198.51.100.0/24"), pfx("198.51.100.0/24"), "", ""},
		{"one added", pfx("198.51.100.0/24"), pfx("198.51.100.0/24", "203.0.113.0/24"), "203.0.113.0/24", ""},
		{"one removed", pfx("198.51.100.0/24", "203.0.113.0/24"), pfx("203.0.113.0/24"), "", "198.51.100.0/24"},
		{"replaced", pfx("198.51.100.0/24"), pfx("198.51.100.0/25"), "198.51.100.0/25", "198.51.100.0/24"},
		{"from nothing", nil, pfx("2001:db8:cf::/48"), "2001:db8:cf::/48", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, r := diffPrefixes(tc.have, tc.want)
			if diff := cmp.Diff(tc.added+"|"+tc.removed, join(a)+"|"+join(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func BenchmarkIntervals(b *testing.B) {
	// The size of Cloudflare's list: 15 IPv4 and 7 IPv6 prefixes.
	var in []netip.Prefix
	for i := range 15 {
		in = append(in, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i * 4), 0}), 22))
	}
	b.ReportAllocs()
	for b.Loop() {
		v4, _, _ := Normalize(in)
		_ = Intervals(v4)
	}
}
