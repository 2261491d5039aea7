package main

import (
	"strings"
	"testing"
	"time"
)

// FuzzParsePorts: --ports never panics, and what it accepts is a non-empty
// list of distinct ports 1-65535.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"80,443", "443", " 80 , 80 ", "0", "65536", "80,http", ",", "", "-1", "+80", "0x50", "８０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := parsePorts(s)
		if err != nil {
			if ports != nil || strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(s, "\n\r") {
				t.Fatalf("parsePorts(%q) = %v, %v", s, ports, err)
			}
			return
		}
		if len(ports) == 0 {
			t.Fatalf("parsePorts(%q) accepted no port", s)
		}
		seen := map[uint16]bool{}
		for _, p := range ports {
			if p == 0 || seen[p] {
				t.Fatalf("parsePorts(%q) = %v: zero or duplicate", s, ports)
			}
			seen[p] = true
		}
	})
}

// FuzzParseAllow: --allow never panics, and what it accepts is masked,
// never a default route, and passes the merged check when applyConfig
// passes it on.
func FuzzParseAllow(f *testing.F) {
	for _, s := range []string{"192.0.2.2", "198.51.100.0/24,2001:db8::/32", "0.0.0.0/0", "::/0", "0.0.0.0/1", "192.0.2.1/24", "fe80::1%eth0", "::ffff:192.0.2.1", "", ",,", "1.2.3.4/33", "2001:db8::/129"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAllow([]string{s})
		if err != nil {
			if got != nil {
				t.Fatalf("parseAllow(%q) = %v with error %v", s, got, err)
			}
			return
		}
		for _, p := range got {
			if !p.IsValid() || p.Bits() == 0 || p.Masked() != p {
				t.Fatalf("parseAllow(%q) accepted %v", s, p)
			}
		}
	})
}

// FuzzParseMaxAge: --max-age never panics and never gives a negative age.
func FuzzParseMaxAge(f *testing.F) {
	for _, s := range []string{"72h", "3d", "0", "90m", "-1h", "d", "1.5d", "99999999999d", "1h30m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseMaxAge(s)
		if err == nil && d < 0 {
			t.Fatalf("parseMaxAge(%q) = %v", s, d)
		}
		if err != nil && d != 0 {
			t.Fatalf("parseMaxAge(%q) = %v with error %v", s, d, err)
		}
	})
}

func TestParseMaxAge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"72h", 72 * time.Hour, false},
		{"3d", 72 * time.Hour, false},
		{" 1d ", 24 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0", 0, false},
		{"-1h", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"three days", 0, true},
		{"99999999999d", 0, true},
	} {
		got, err := parseMaxAge(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("parseMaxAge(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}
