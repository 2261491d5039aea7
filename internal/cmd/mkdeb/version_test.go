package main

import (
	"os/exec"
	"testing"
)

func TestDebVersion(t *testing.T) {
	for _, c := range []struct {
		in    string
		count int
		want  string
	}{
		{"v1.2.3", 0, "1.2.3"},
		{"1.2.3", 0, "1.2.3"},
		{"v1.2.3-4-gabc1234", 0, "1.2.3+git4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", 0, "1.2.3+git4.gabc1234.dirty"},
		{"v1.2.3-dirty", 0, "1.2.3+dirty"},
		{"v1.3.0-rc1", 0, "1.3.0~rc1"},
		{"v1.3.0-rc1-2-gdeadbee", 0, "1.3.0~rc1+git2.gdeadbee"},
		{"b15f91c", 42, "0.0.0+git42.gb15f91c"},
		{"b15f91c-dirty", 42, "0.0.0+git42.gb15f91c.dirty"},
	} {
		got, err := debVersion(c.in, c.count)
		if err != nil || got != c.want {
			t.Errorf("debVersion(%q, %d) = %q, %v; want %q", c.in, c.count, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "dev", "vX", "b15f91c junk", "release-1", "v1.2.3-4-gXYZ"} {
		if got, err := debVersion(bad, 1); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := debVersion("b15f91c", 0); err == nil {
		t.Error("an untagged build without a commit count must be refused")
	}
}

// TestDebVersionOrder: dpkg itself must agree that the versions sort the way
// the commits do, or an upgrade would be refused as a downgrade.
func TestDebVersionOrder(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("skipped: dpkg is not installed")
	}
	order := [][2]any{
		{"b15f91c", 41}, {"b15f91c", 42}, {"v0.1.0-rc1", 0}, {"v0.1.0-rc1-3-gabc1234", 0},
		{"v0.1.0", 0}, {"v0.1.0-dirty", 0}, {"v0.1.0-1-gabc1234", 0}, {"v0.1.0-2-gabc1234", 0}, {"v0.1.1", 0},
	}
	var prev string
	for _, o := range order {
		v, err := debVersion(o[0].(string), o[1].(int))
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if err := exec.Command("dpkg", "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("dpkg: %s is not lower than %s", prev, v)
			}
		}
		prev = v
	}
}

// FuzzDebVersion: whatever git prints, debVersion either refuses it or
// returns a valid native Debian version; it never panics.
func FuzzDebVersion(f *testing.F) {
	for _, s := range []string{"v1.2.3", "v1.2.3-4-gabc1234-dirty", "b15f91c", "v1.3.0-rc1", "", "v", "1234567", "v1.2.3\n"} {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		v, err := debVersion(s, n)
		if err == nil && !debianVersion.MatchString(v) {
			t.Fatalf("debVersion(%q, %d) = %q: not a Debian version", s, n, v)
		}
	})
}
