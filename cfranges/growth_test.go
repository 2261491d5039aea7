package cfranges

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sixteenSlash8s is the widening of issue 8: sixteen public /8s (11/8 …
// 26/8, contiguous) added to the real list.
func sixteenSlash8s() []netip.Prefix {
	var out []netip.Prefix
	for i := 11; i < 27; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("%d.0.0.0/8", i)))
	}
	return out
}

// everyOtherSlash8 is sixteen /8s that touch nowhere: each passes the merged
// check, together they must fail the growth check.
func everyOtherSlash8() []netip.Prefix {
	var out []netip.Prefix
	for i := 0; i < 16; i++ {
		out = append(out, netip.MustParsePrefix(fmt.Sprintf("%d.0.0.0/8", 130+2*i)))
	}
	return out
}

func TestCheckGrowth(t *testing.T) {
	real := Builtin()
	// 4x the built-in IPv4 space is about 6.1 million addresses; a /10 is
	// 4.2 million, a /9 8.4 million.
	tests := []struct {
		name      string
		installed []netip.Prefix
		next      []netip.Prefix
		want      string
	}{
		{"same", real.All(), real.All(), ""},
		{"nothing installed, real list", nil, real.All(), ""},
		{"nothing installed, stand-in list", nil, append(standV4, standV6...), ""},
		{"stand-in installed, real list", append(standV4, standV6...), real.All(), ""},
		{"one more /13", real.All(), append(real.All(), pfx("45.64.0.0/13")...), ""},
		{"one more /10 (within 4x)", real.All(), append(real.All(), pfx("45.64.0.0/10")...), ""},
		{"one more /9 (beyond 4x)", real.All(), append(real.All(), pfx("45.0.0.0/9")...), "Growth"},
		{"sixteen /8s", real.All(), append(real.All(), sixteenSlash8s()...), "Growth"},
		{"sixteen scattered /8s", real.All(), append(real.All(), everyOtherSlash8()...), "Growth"},
		{"sixteen /8s, nothing installed", nil, append(real.All(), sixteenSlash8s()...), "Growth"},
		{"v6 grows by 56 /32s", real.All(), append(real.All(), pfx("2a00::/26")...), "Growth"},
		{"v6 one more /29", real.All(), append(real.All(), pfx("2a10::/29")...), ""},
		{"overlaps count once", real.All(), append(real.All(), real.All()...), ""},
		// A larger installed list (accepted with --force once) is the reference.
		{"installed bigger than built-in", append(pfx("45.0.0.0/9"), real.IPv6...), append(pfx("45.0.0.0/8"), real.IPv6...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckGrowth(tt.installed, tt.next)
			got := ""
			if errors.Is(err, ErrGrowth) {
				got = "Growth"
			} else if err != nil {
				got = "other: " + err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckGrowth (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}
}

func TestCheckGrowthMessage(t *testing.T) {
	real := Builtin()
	err := CheckGrowth(append(real.All(), pfx("45.0.0.0/9")...), append(real.All(), sixteenSlash8s()...))
	want := "the new list covers 269960192 IPv4 addresses, more than 4 times the 9913344 of the installed list (a hijacked or broken answer looks like this)"
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
	err = CheckGrowth(nil, append(real.All(), sixteenSlash8s()...))
	want = "the new list covers 269960192 IPv4 addresses, more than 4 times the 1524736 of the built-in list (nothing is installed) (a hijacked or broken answer looks like this)"
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
	err = CheckGrowth(append(standV4, standV6...), append(real.All(), sixteenSlash8s()...))
	want = "the new list covers 269960192 IPv4 addresses, more than 4 times the 1524736 of the built-in list (larger than what is installed) (a hijacked or broken answer looks like this)"
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
}

func TestCheckChinaGrowth(t *testing.T) {
	if err := CheckChinaGrowth(pfx("198.18.0.0/15", "2001:db8:cf2::/48", "45.64.0.0/10")); err != nil {
		t.Errorf("a few blocks: %v", err)
	}
	err := CheckChinaGrowth(everyOtherSlash8())
	want := "the China Network ranges cover 268435456 IPv4 addresses, more than 4 times the 1524736 of Cloudflare's built-in list"
	if !errors.Is(err, ErrGrowth) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("sixteen /8s as China Network ranges: %v (want %q…)", err, want)
	}
}

func TestCheckMerged(t *testing.T) {
	tests := []struct {
		name string
		in   []netip.Prefix
		want string
	}{
		{"real list", Builtin().All(), ""},
		{"stand-in", append(standV4, standV6...), ""},
		{"one /8", pfx("11.0.0.0/8"), ""},
		{"one /16 v6", pfx("2001::/16"), ""},
		{"two halves of the Internet", pfx("0.0.0.0/1", "128.0.0.0/1"), "DefaultRoute"},
		{"v6 halves", pfx("::/1", "8000::/1"), "DefaultRoute"},
		{"v6 default", pfx("::/0"), "DefaultRoute"},
		{"a /1", pfx("0.0.0.0/1"), "TooBroad"},
		{"two adjacent /8s", pfx("11.0.0.0/8", "12.0.0.0/8"), "TooBroad"},
		{"two /9s make a /8", pfx("11.0.0.0/9", "11.128.0.0/9"), ""},
		{"a /8 and the next /24", pfx("11.0.0.0/8", "12.0.0.0/24"), "TooBroad"},
		{"sixteen /8s", sixteenSlash8s(), "TooBroad"},
		{"scattered /8s", everyOtherSlash8(), ""},
		{"adjacent v6 /16s", pfx("2001::/16", "2002::/16"), "TooBroad"},
		{"host routes", pfx("198.51.100.7/32", "2001:db8::1/128"), ""},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMerged("these", tt.in)
			if diff := cmp.Diff(tt.want, kindOf(err)); diff != "" {
				t.Errorf("CheckMerged (-want +got):\n%s\nerr: %v", diff, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidList) {
				t.Errorf("%v does not match ErrInvalidList", err)
			}
		})
	}
}

func TestCheckMergedMessage(t *testing.T) {
	for _, c := range []struct {
		in   []netip.Prefix
		want string
	}{
		{pfx("0.0.0.0/1", "128.0.0.0/1"), "the allowed sources together cover every address (0.0.0.0-255.255.255.255): that is no guard at all"},
		{pfx("11.0.0.0/8", "12.0.0.0/8"), "the allowed sources together cover 11.0.0.0-12.255.255.255 (33554432 addresses), more than one /8; cfguard would no longer guard anything"},
		{pfx("2001::/16", "2002::/16"), "the allowed sources together cover 2001::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff (2^113 addresses), more than one /16; cfguard would no longer guard anything"},
	} {
		if err := CheckMerged("the allowed sources", c.in); err == nil || err.Error() != c.want {
			t.Errorf("CheckMerged(%v):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

func BenchmarkCheckGrowth(b *testing.B) {
	all := Builtin().All()
	for b.Loop() {
		if err := CheckGrowth(all, all); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckMerged(b *testing.B) {
	all := Builtin().All()
	for b.Loop() {
		if err := CheckMerged("x", all); err != nil {
			b.Fatal(err)
		}
	}
}
