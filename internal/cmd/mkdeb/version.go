package main

import (
	"fmt"
	"regexp"
	"strings"
)

// describe matches `git describe --tags --always --dirty`: a tag with an
// optional v, the commits since it and the abbreviated hash, or the hash
// alone when there is no tag.
var (
	describeTagged = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.]*)(?:-((?:rc|beta|alpha)[0-9A-Za-z.]*))?(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	describeBare   = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
	debianVersion  = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// debVersion turns git describe's output into a native Debian version that
// sorts the way the commits do:
//
//	v1.2.3            → 1.2.3
//	v1.2.3-4-gabc1234 → 1.2.3+git4.gabc1234   (after 1.2.3, before 1.2.4)
//	v1.3.0-rc1        → 1.3.0~rc1             (before 1.3.0)
//	abc1234 (no tag)  → 0.0.0+git<count>.gabc1234, count = commits in HEAD
//	…-dirty           → ….dirty
func debVersion(describe string, count int) (string, error) {
	d := strings.TrimSpace(describe)
	var v string
	if m := describeBare.FindStringSubmatch(d); m != nil && !strings.Contains(d, ".") {
		if count <= 0 {
			return "", fmt.Errorf("version from %q: no tag, and no commit count to order untagged builds by", d)
		}
		v = fmt.Sprintf("0.0.0+git%d.g%s", count, m[1])
		if m[2] != "" {
			v += ".dirty"
		}
	} else if m := describeTagged.FindStringSubmatch(d); m != nil {
		v = m[1]
		if m[2] != "" {
			v += "~" + m[2]
		}
		if m[3] != "" {
			v += "+git" + m[3] + ".g" + m[4]
		}
		if m[5] != "" {
			if m[3] == "" {
				v += "+dirty"
			} else {
				v += ".dirty"
			}
		}
	} else {
		return "", fmt.Errorf("version from %q: not what git describe --tags --always --dirty prints; pass -version", d)
	}
	if !debianVersion.MatchString(v) {
		return "", fmt.Errorf("version %q is not a native Debian version", v)
	}
	return v, nil
}
