package cfranges

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var cmpPrefix = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func sampleList() List {
	return List{
		IPv4:      standV4,
		IPv6:      standV6,
		JDCloud:   pfx("198.18.0.0/15", "2001:db8:cf2::/48"),
		Etag:      "5f1c0a7e9d2b4c6a8e0f1a3b5c7d9e1f",
		FetchedAt: time.Date(2026, 11, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600)),
		Source:    SourceAPI,
	}
}

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := sampleList()
	if err := Save(dir, in); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := in
	want.Source = SourceCache
	if diff := cmp.Diff(want, got, cmpPrefix); diff != "" {
		t.Errorf("Load after Save (-want +got):\n%s", diff)
	}

	// Only the cache file is left: no temp file.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{CacheFile}, names); diff != "" {
		t.Errorf("files in the state dir (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(filepath.Join(dir, CacheFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
}

func TestCacheOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, sampleList()); err != nil {
		t.Fatal(err)
	}
	next := Builtin()
	if err := Save(dir, next); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	next.Source = SourceCache
	if diff := cmp.Diff(next, got, cmpPrefix); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The file says where the list first came from.
	raw, err := os.ReadFile(filepath.Join(dir, CacheFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"source": "builtin"`) {
		t.Errorf("cache file does not record source builtin:\n%s", raw)
	}
}

func TestCacheSaveCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "cfguard")
	if err := Save(dir, sampleList()); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestCacheSaveRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, sampleList()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, CacheFile))
	bad := sampleList()
	bad.IPv4 = pfx("10.0.0.0/8")
	err := Save(dir, bad)
	if !errors.Is(err, ErrReserved) {
		t.Errorf("Save(invalid) = %v, want ErrReserved", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CacheFile))
	if diff := cmp.Diff(string(before), string(after)); diff != "" {
		t.Errorf("a refused Save changed the cache:\n%s", diff)
	}
}

func TestCacheMissing(t *testing.T) {
	got, err := Load(t.TempDir())
	if !errors.Is(err, ErrNoCache) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(empty dir) error = %v, want ErrNoCache and os.ErrNotExist", err)
	}
	if errors.Is(err, ErrCorruptCache) {
		t.Errorf("a missing cache reported as corrupt: %v", err)
	}
	if diff := cmp.Diff(List{}, got, cmpPrefix); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCacheUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, CacheFile), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || errors.Is(err, ErrNoCache) {
		t.Fatalf("Load(ranges.json is a directory) = %v, want a read error", err)
	}
	if !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestCacheCorrupt(t *testing.T) {
	valid := func() string {
		dir := t.TempDir()
		if err := Save(dir, sampleList()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, CacheFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()
	tests := []struct {
		name string
		in   string
		want string // the reason after "cache …/ranges.json is corrupt: "
	}{
		{"empty file", "", "empty file"},
		{"garbage", "\x00\x01garbage\xff", "invalid character '\\x00' looking for beginning of value"},
		{"truncated", valid[:len(valid)/2], "unexpected end of JSON input"},
		{"trailing data", valid + "}", "invalid character '}' after top-level value"},
		{"not an object", `[1,2,3]`, "json: cannot unmarshal array into Go value of type cfranges.cacheJSON"},
		{"wrong format", strings.Replace(valid, `"format": 1`, `"format": 2`, 1), "format 2, this cfguard reads format 1"},
		{"no format", `{"ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"]}`, "format 0, this cfguard reads format 1"},
		{"bad prefix", strings.Replace(valid, `"198.51.100.0/24"`, `"198.51.100.0/33"`, 1),
			`netip.ParsePrefix("198.51.100.0/33"): prefix length out of range`},
		{"not a prefix", strings.Replace(valid, `"198.51.100.0/24"`, `"cloudflare"`, 1),
			`netip.ParsePrefix("cloudflare"): no '/'`},
		{"empty prefix", strings.Replace(valid, `"198.51.100.0/24"`, `""`, 1),
			"IPv4 range (empty or invalid) refused: not a valid CIDR"},
		{"private prefix", strings.Replace(valid, `"198.51.100.0/24"`, `"10.0.0.0/8"`, 1),
			"IPv4 range 10.0.0.0/8 refused: private address space (RFC 1918 10.0.0.0/8)"},
		{"empty lists", `{"format":1,"ipv4_cidrs":[],"ipv6_cidrs":[],"etag":"","fetched_at":"2026-11-01T00:00:00Z","source":"api"}`,
			"IPv4 ranges refused: the list has no IPv4 range"},
		{"null lists", `{"format":1,"ipv4_cidrs":null,"ipv6_cidrs":null}`,
			"IPv4 ranges refused: the list has no IPv4 range"},
		{"no IPv6", `{"format":1,"ipv4_cidrs":["198.51.100.0/24"]}`,
			"IPv6 ranges refused: the list has no IPv6 range"},
		{"bad time", strings.Replace(valid, `"fetched_at": "`, `"fetched_at": "yesterday`, 1),
			"parsing time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CacheFile)
			if err := os.WriteFile(path, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir)
			if !errors.Is(err, ErrCorruptCache) {
				t.Fatalf("Load = %v, want ErrCorruptCache", err)
			}
			prefix := "cache " + path + " is corrupt: "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant %q followed by something containing %q", err, prefix, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			if diff := cmp.Diff(List{}, got, cmpPrefix); diff != "" {
				t.Errorf("a corrupt cache gave a partly filled List:\n%s", diff)
			}
		})
	}
}

func TestCacheTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := `{"format":1,"etag":"` + strings.Repeat("a", maxCacheBytes) + `"}`
	if err := os.WriteFile(filepath.Join(dir, CacheFile), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrCorruptCache) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(2 MiB) = %v, want corrupt: larger than", err)
	}
}

func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	if err := Save(dir, sampleList()); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(dir, CacheFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(`{"format":1,"ipv4_cidrs":["::ffff:10.0.0.0/104"],"ipv6_cidrs":["2001:db8::/32"]}`))
	f.Add([]byte(`{"format":1,"ipv4_cidrs":[""],"ipv6_cidrs":[null]}`))
	f.Add([]byte("null"))
	f.Add([]byte{})
	f.Add([]byte(`{"format":1,"ipv4_cidrs":["11.0.0.0/8","12.0.0.0/8"],"ipv6_cidrs":["2001:db8::/32"]}`))
	f.Add([]byte(`{"format":1,"ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8::/32"],"fetched_at":"9999-12-31T23:59:59Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CacheFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Load(dir)
		if err != nil {
			if !errors.Is(err, ErrCorruptCache) {
				t.Fatalf("Load error %v does not match ErrCorruptCache", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			if l.IPv4 != nil || l.IPv6 != nil || l.JDCloud != nil || l.Source != "" {
				t.Fatalf("partly filled List with error %v: %+v", err, l)
			}
			return
		}
		if verr := Validate(l); verr != nil || l.Source != SourceCache {
			t.Fatalf("Load accepted %q: Validate=%v Source=%q", data, verr, l.Source)
		}
		if merr := CheckMerged("x", l.All()); merr != nil {
			t.Fatalf("Load accepted %q: %v", data, merr)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	if err := Save(dir, Builtin()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
