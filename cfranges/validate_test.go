package cfranges

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

var (
	standV4 = pfx("198.51.100.0/24", "203.0.113.0/24")
	standV6 = pfx("2001:db8:cf::/48", "2001:db8:cf1::/48")
)

// kindOf names the sentinel an error matches, for table comparison.
func kindOf(err error) string {
	for _, k := range []struct {
		name string
		err  error
	}{
		{"NoIPv4", ErrNoIPv4}, {"NoIPv6", ErrNoIPv6}, {"InvalidPrefix", ErrInvalidPrefix},
		{"WrongFamily", ErrWrongFamily}, {"HostBits", ErrHostBits}, {"DefaultRoute", ErrDefaultRoute},
		{"TooBroad", ErrTooBroad}, {"Reserved", ErrReserved}, {"Shrink", ErrShrink},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestValidatePrefixes(t *testing.T) {
	// Each row puts one prefix into the IPv4 or IPv6 list (by its family)
	// of an otherwise valid list.
	tests := []struct {
		name string
		in   netip.Prefix
		want string // sentinel name, "" = accepted
	}{
		// Accepted: documentation and benchmarking prefixes, real Cloudflare blocks, boundaries.
		{"doc TEST-NET-1", netip.MustParsePrefix("192.0.2.0/24"), ""},
		{"doc TEST-NET-2", netip.MustParsePrefix("198.51.100.0/24"), ""},
		{"doc TEST-NET-3", netip.MustParsePrefix("203.0.113.0/24"), ""},
		{"benchmarking", netip.MustParsePrefix("198.18.0.0/15"), ""},
		{"doc v6 /32", netip.MustParsePrefix("2001:db8::/32"), ""},
		{"stand-in v6 /48", netip.MustParsePrefix("2001:db8:cf::/48"), ""},
		{"cloudflare v4 /13", netip.MustParsePrefix("104.16.0.0/13"), ""},
		{"cloudflare v6 /29", netip.MustParsePrefix("2a06:98c0::/29"), ""},
		{"v4 exactly /8", netip.MustParsePrefix("11.0.0.0/8"), ""},
		{"v6 exactly /16", netip.MustParsePrefix("2001::/16"), ""},
		{"v4 host /32", netip.MustParsePrefix("198.51.100.7/32"), ""},
		{"v6 host /128", netip.MustParsePrefix("2001:db8:cf::1/128"), ""},
		{"next to 172.16/12", netip.MustParsePrefix("172.64.0.0/13"), ""},
		{"next to 10/8", netip.MustParsePrefix("11.0.0.0/16"), ""},

		// Invalid: the zero prefix (what a bad entry becomes before parsing refuses it).
		{"zero prefix", netip.Prefix{}, "InvalidPrefix"},

		// Default routes and too broad.
		{"v4 default", netip.MustParsePrefix("0.0.0.0/0"), "DefaultRoute"},
		{"v6 default", netip.MustParsePrefix("::/0"), "DefaultRoute"},
		{"v4 /7", netip.MustParsePrefix("198.0.0.0/7"), "TooBroad"},
		{"v4 /1", netip.MustParsePrefix("128.0.0.0/1"), "TooBroad"},
		{"v6 /15", netip.MustParsePrefix("2000::/15"), "TooBroad"},
		{"v6 /3 global unicast", netip.MustParsePrefix("2000::/3"), "TooBroad"},
		{"v6 /8 over ula", netip.MustParsePrefix("fc00::/6"), "TooBroad"},

		// Host bits.
		{"v4 host bits", netip.MustParsePrefix("198.51.100.1/24"), "HostBits"},
		{"v6 host bits", netip.MustParsePrefix("2001:db8:cf::1/48"), "HostBits"},

		// Private, loopback, link-local, multicast, unspecified and friends.
		{"rfc1918 10/8", netip.MustParsePrefix("10.0.0.0/8"), "Reserved"},
		{"rfc1918 inside 10/8", netip.MustParsePrefix("10.1.2.0/24"), "Reserved"},
		{"rfc1918 172.16/12", netip.MustParsePrefix("172.16.0.0/12"), "Reserved"},
		{"contains 172.16/12", netip.MustParsePrefix("172.0.0.0/8"), "Reserved"},
		{"rfc1918 192.168/16", netip.MustParsePrefix("192.168.1.0/24"), "Reserved"},
		{"cgnat 100.64/10", netip.MustParsePrefix("100.64.0.0/10"), "Reserved"},
		{"v4 loopback", netip.MustParsePrefix("127.0.0.0/8"), "Reserved"},
		{"v4 loopback host", netip.MustParsePrefix("127.0.0.1/32"), "Reserved"},
		{"v4 link-local", netip.MustParsePrefix("169.254.0.0/16"), "Reserved"},
		{"v4 multicast", netip.MustParsePrefix("224.0.0.0/4"), "Reserved"},
		{"v4 multicast inside", netip.MustParsePrefix("239.1.0.0/16"), "Reserved"},
		{"v4 unspecified", netip.MustParsePrefix("0.0.0.0/32"), "Reserved"},
		{"v4 this network /8", netip.MustParsePrefix("0.0.0.0/8"), "Reserved"},
		{"v4 reserved 240/4", netip.MustParsePrefix("240.0.0.0/4"), "Reserved"},
		{"v4 broadcast", netip.MustParsePrefix("255.255.255.255/32"), "Reserved"},
		{"ula fc00::/7", netip.MustParsePrefix("fc00::/7"), "Reserved"},
		{"ula fd00::/8", netip.MustParsePrefix("fd12:3456::/32"), "Reserved"},
		{"v6 loopback", netip.MustParsePrefix("::1/128"), "Reserved"},
		{"v6 unspecified", netip.MustParsePrefix("::/128"), "Reserved"},
		{"v6 link-local", netip.MustParsePrefix("fe80::/10"), "Reserved"},
		{"v6 multicast", netip.MustParsePrefix("ff02::/16"), "Reserved"},

		// IPv4-mapped IPv6.
		{"mapped rfc1918", netip.MustParsePrefix("::ffff:10.0.0.0/104"), "Reserved"},
		{"mapped loopback", netip.MustParsePrefix("::ffff:127.0.0.1/128"), "Reserved"},
		{"mapped default", netip.MustParsePrefix("::ffff:0.0.0.0/96"), "DefaultRoute"},
		{"mapped doc v4", netip.MustParsePrefix("::ffff:198.51.100.0/120"), "WrongFamily"},
		{"contains mapped", netip.MustParsePrefix("::fffe:0:0/95"), "WrongFamily"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := List{IPv4: standV4, IPv6: standV6}
			if tt.in.IsValid() && tt.in.Addr().Is4() {
				l.IPv4 = append(pfx("198.51.100.0/24"), tt.in)
			} else {
				l.IPv6 = append(pfx("2001:db8:cf::/48"), tt.in)
			}
			err := Validate(l)
			if diff := cmp.Diff(tt.want, kindOf(err)); diff != "" {
				t.Errorf("Validate(%s) kind (-want +got):\n%s\nerr: %v", tt.in, diff, err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidList) {
					t.Errorf("error %v does not match ErrInvalidList", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				if tt.in.IsValid() && !strings.Contains(err.Error(), tt.in.String()) {
					t.Errorf("error %q does not name the prefix %s", err, tt.in)
				}
			}
		})
	}
}

func TestValidateLists(t *testing.T) {
	tests := []struct {
		name string
		in   List
		want string
	}{
		{"stand-in list", List{IPv4: standV4, IPv6: standV6}, ""},
		{"builtin", Builtin(), ""},
		{"with china", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("198.18.0.0/15", "2001:db8:cf2::/48")}, ""},
		{"no IPv4", List{IPv6: standV6}, "NoIPv4"},
		{"no IPv6", List{IPv4: standV4}, "NoIPv6"},
		{"empty", List{}, "NoIPv4"},
		{"empty slices", List{IPv4: []netip.Prefix{}, IPv6: []netip.Prefix{}}, "NoIPv4"},
		{"v6 in v4 list", List{IPv4: pfx("2001:db8:cf::/48"), IPv6: standV6}, "WrongFamily"},
		{"v4 in v6 list", List{IPv4: standV4, IPv6: pfx("198.51.100.0/24")}, "WrongFamily"},
		{"china private", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("192.168.0.0/16")}, "Reserved"},
		{"china ula", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("fd00::/8")}, "Reserved"},
		{"china mapped", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("::ffff:198.51.100.0/120")}, "WrongFamily"},
		{"china default", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("0.0.0.0/0")}, "DefaultRoute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.in)
			if diff := cmp.Diff(tt.want, kindOf(err)); diff != "" {
				t.Errorf("Validate kind (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name string
		in   List
		want string
	}{
		{"private", List{IPv4: pfx("10.0.0.0/8"), IPv6: standV6},
			"IPv4 range 10.0.0.0/8 refused: private address space (RFC 1918 10.0.0.0/8)"},
		{"contains private", List{IPv4: pfx("172.0.0.0/8"), IPv6: standV6},
			"IPv4 range 172.0.0.0/8 refused: contains private address space (RFC 1918 172.16.0.0/12)"},
		{"mapped", List{IPv4: standV4, IPv6: pfx("::ffff:10.0.0.0/104")},
			"IPv6 range ::ffff:10.0.0.0/104 refused: IPv4-mapped form of 10.0.0.0/8, which is private address space (RFC 1918 10.0.0.0/8)"},
		{"host bits", List{IPv4: pfx("198.51.100.1/24"), IPv6: standV6},
			"IPv4 range 198.51.100.1/24 refused: host bits set (the network is 198.51.100.0/24)"},
		{"too broad", List{IPv4: pfx("198.0.0.0/7"), IPv6: standV6},
			"IPv4 range 198.0.0.0/7 refused: broader than /8"},
		{"default v6", List{IPv4: standV4, IPv6: pfx("::/0")},
			"IPv6 range ::/0 refused: default route (matches every address)"},
		{"no v6", List{IPv4: standV4},
			"IPv6 ranges refused: the list has no IPv6 range"},
		{"zero", List{IPv4: []netip.Prefix{{}}, IPv6: standV6},
			"IPv4 range (empty or invalid) refused: not a valid CIDR"},
		{"china", List{IPv4: standV4, IPv6: standV6, JDCloud: pfx("fe80::/64")},
			"China Network range fe80::/64 refused: link-local (fe80::/10)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.in)
			if err == nil {
				t.Fatal("Validate accepted the list")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckShrink(t *testing.T) {
	real := Builtin()
	tests := []struct {
		name      string
		installed []netip.Prefix
		next      []netip.Prefix
		want      string
	}{
		{"nothing installed", nil, standV4, ""},
		{"same", real.All(), real.All(), ""},
		{"grows", standV4, append(pfx("192.0.2.0/24"), standV4...), ""},
		{"drops exactly half of v4", append(standV4, standV6...), append(pfx("198.51.100.0/24"), standV6...), ""},
		{"drops 3 of 4 v4", append(pfx("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"), standV6...),
			append(pfx("198.51.100.0/24"), standV6...), "Shrink"},
		{"drops all v6", append(standV4, standV6...), standV4, "Shrink"},
		{"truncated real list", real.All(), append(real.IPv4[:5:5], real.IPv6[:1]...), "Shrink"},
		{"v4 fine, v6 gone (6 of 7)", real.All(), append(real.IPv4, real.IPv6[:1]...), "Shrink"},
		{"replaced entirely", standV4, pfx("192.0.2.0/24"), "Shrink"},
		{"split is not a drop", pfx("104.16.0.0/12", "2001:db8:cf::/48"), pfx("104.16.0.0/13", "104.24.0.0/14", "2001:db8:cf::/48"), ""},
		{"merge is not a drop", pfx("198.51.100.0/25", "198.51.100.128/25"), pfx("198.51.100.0/24"), ""},
		{"next empty", standV4, nil, "Shrink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckShrink(tt.installed, tt.next)
			if diff := cmp.Diff(tt.want, kindOf(err)); diff != "" {
				t.Errorf("CheckShrink kind (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}
}

func TestCheckShrinkMessage(t *testing.T) {
	err := CheckShrink(append(standV4, standV6...), standV4)
	want := "the new list would drop 2 of the 2 installed IPv6 ranges (more than half; a truncated answer looks like this)"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var se *ShrinkError
	if !errors.As(err, &se) || se.Family != "IPv6" || se.Dropped != 2 || se.Installed != 2 {
		t.Errorf("errors.As ShrinkError = %+v", se)
	}
}

func TestBuiltin(t *testing.T) {
	l := Builtin()
	if err := Validate(l); err != nil {
		t.Fatalf("built-in list fails Validate: %v", err)
	}
	if len(l.IPv4) != 15 || len(l.IPv6) != 7 {
		t.Errorf("built-in list has %d IPv4 + %d IPv6 ranges, want 15 + 7", len(l.IPv4), len(l.IPv6))
	}
	if l.Source != SourceBuiltin || l.FetchedAt.IsZero() || l.FetchedAt.Year() < 2026 {
		t.Errorf("Source=%q FetchedAt=%v", l.Source, l.FetchedAt)
	}
	if got, want := l.IPv4[0].String(), "173.245.48.0/20"; got != want {
		t.Errorf("first IPv4 = %s, want %s", got, want)
	}
	// The caller owns the slices.
	l.IPv4[0] = netip.MustParsePrefix("10.0.0.0/8")
	if Builtin().IPv4[0].String() != "173.245.48.0/20" {
		t.Error("changing a returned list changed the built-in one")
	}
}

func BenchmarkValidate(b *testing.B) {
	l := Builtin()
	for b.Loop() {
		if err := Validate(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckShrink(b *testing.B) {
	all := Builtin().All()
	for b.Loop() {
		if err := CheckShrink(all, all); err != nil {
			b.Fatal(err)
		}
	}
}
