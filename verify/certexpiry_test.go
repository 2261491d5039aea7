package verify

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// TestCertificateNotAfter: a path whose certificate Cloudflare checks
// carries its expiry; plain HTTP paths and zones that do not check it do not.
func TestCertificateNotAfter(t *testing.T) {
	exp := time.Date(2027, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		mode string
		want map[string]bool // "port/scheme" → has an expiry
	}{
		{ModeStrict, map[string]bool{"80/http": false, "443/https": true}},
		{ModeFull, map[string]bool{"80/http": false, "443/https": false}},
	} {
		f := newFixture(zoneWith("example.com", cloudflare.Settings{SSL: c.mode}, a("www.example.com", "192.0.2.1")))
		f.probe.notAfter = exp
		got := map[string]bool{}
		for _, p := range f.run(t).Paths {
			k := strconv.Itoa(p.Port) + "/" + p.Scheme
			got[k] = p.CertificateNotAfter != nil
			if p.CertificateNotAfter != nil && !p.CertificateNotAfter.Equal(exp) {
				t.Errorf("%s %s: not after %v, want %v", c.mode, k, p.CertificateNotAfter, exp)
			}
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got)\n%s", c.mode, diff)
		}
	}
}
