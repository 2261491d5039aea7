package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/report"
)

// Stand-in Cloudflare ranges (brief: documentation prefixes only).
var standIn = []netip.Prefix{
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("2001:db8:cf::/48"),
	netip.MustParsePrefix("2001:db8:cf1::/48"),
}

// verdict is the part of an Outcome the tables compare exactly.
type verdict struct {
	Stage      report.Stage
	Fail       bool
	CannotTell bool
	Status     int
}

func verdictOf(o report.Outcome) verdict {
	return verdict{o.Stage, o.Fail, o.CannotTell, o.Status}
}

// has checks that the cause, some evidence and some warning contain the
// given fragments ("" checks nothing; warn "-" wants no warning at all).
func has(t *testing.T, o report.Outcome, cause, evidence, warn string) {
	t.Helper()
	if !strings.Contains(o.Cause, cause) {
		t.Errorf("cause %q lacks %q", o.Cause, cause)
	}
	if evidence != "" && !strings.Contains(strings.Join(o.Evidence, "\n"), evidence) {
		t.Errorf("evidence %q lacks %q", o.Evidence, evidence)
	}
	switch warn {
	case "":
	case "-":
		if len(o.Warnings) > 0 {
			t.Errorf("unexpected warnings %q", o.Warnings)
		}
	default:
		if !strings.Contains(strings.Join(o.Warnings, "\n"), warn) {
			t.Errorf("warnings %q lack %q", o.Warnings, warn)
		}
	}
	if o.Fail && (o.Cause == "" || o.Fix == "") {
		t.Errorf("a failing outcome needs a cause and a fix: %+v", o)
	}
}

func TestRecord(t *testing.T) {
	const ok, prohibited = 0, StatusProhibitedIP
	tests := []struct {
		in     string
		status int
		cause  string
	}{
		{"192.0.2.1", ok, "public"},
		{"2001:db8:1::1", ok, "public"},
		{"10.0.0.5", prohibited, "10.0.0.5, a private (10.0.0.0/8) address Cloudflare cannot reach (Cloudflare error 1002)"},
		{"172.20.1.1", prohibited, "private (172.16.0.0/12)"},
		{"192.168.1.10", prohibited, "private (192.168.0.0/16)"},
		{"100.64.3.4", prohibited, "carrier-grade NAT"},
		{"127.0.0.1", prohibited, "loopback"},
		{"169.254.169.254", prohibited, "link-local"},
		{"0.1.2.3", prohibited, "0.0.0.0/8"},
		{"0.0.0.0", prohibited, "0.0.0.0/8"},
		{"224.0.0.251", prohibited, "multicast"},
		{"250.1.1.1", prohibited, "reserved (240.0.0.0/4)"},
		{"::", prohibited, "unspecified"},
		{"::1", prohibited, "loopback (::1)"},
		{"fd12:3456::1", prohibited, "unique local"},
		{"fe80::1", prohibited, "link-local (fe80::/10)"},
		{"ff02::1", prohibited, "multicast"},
		{"::ffff:10.1.2.3", prohibited, "10.1.2.3, a private"},
		{"198.51.100.7", prohibited, "198.51.100.7, inside Cloudflare's own range 198.51.100.0/24 (Cloudflare error 1000)"},
		{"2001:db8:cf1::9", prohibited, "2001:db8:cf1::/48 (Cloudflare error 1000)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			o := Record(netip.MustParseAddr(tt.in), standIn)
			want := verdict{Stage: report.StageRecord, Fail: tt.status != ok, Status: tt.status}
			if diff := cmp.Diff(want, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			has(t, o, tt.cause, "", "-")
		})
	}
	if o := Record(netip.Addr{}, standIn); !o.Fail {
		t.Errorf("an invalid address passes: %+v", o)
	}
}

func TestCertificate(t *testing.T) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	ca, other := newTestCA(t), newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	day := 24 * time.Hour
	valid := func(names ...string) leaf {
		return ca.issue(t, names[0], names, now.Add(-30*day), now.Add(60*day))
	}
	expired := ca.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-90*day), time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC))
	future := ca.issue(t, "www.example.com", []string{"www.example.com"}, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), now.Add(90*day))
	soon := ca.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-80*day), now.Add(5*day))
	self := (*testCA)(nil).issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-day), now.Add(90*day))
	foreign := other.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-day), now.Add(90*day))
	cnOnly := ca.issue(t, "www.example.com", nil, now.Add(-day), now.Add(90*day))
	expiredWrong := ca.issue(t, "x", []string{"a.example", "b.example"}, now.Add(-90*day), time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC))

	strict := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheme: "https", SSLMode: ModeStrict}
	full := strict
	full.SSLMode = ModeFull
	pull := strict
	pull.SSLMode = ModeOriginPull

	pass := verdict{Stage: report.StageCertificate}
	fail := verdict{Stage: report.StageCertificate, Fail: true, Status: 526}
	tests := []struct {
		name        string
		target      Target
		leaf        leaf
		want        verdict
		cause, warn string
	}{
		{"valid", strict, valid("www.example.com"), pass, "valid until 2026-10-31", "-"},
		{"wildcard", strict, valid("*.example.com"), pass, "valid until", "-"},
		{"origin_pull checks too", pull, valid("a.example"), fail, "is issued for a.example, not www.example.com", ""},
		{"expired", strict, expired, fail, "the certificate 192.0.2.1:443 serves for www.example.com expired on 2026-08-01", ""},
		{"expired under full passes", full, expired, pass, "does not check", "-"},
		{"not yet valid", strict, future, fail, "is not valid before 2026-10-01", ""},
		{"wrong name", strict, valid("a.example", "b.example"), fail, "is issued for a.example, b.example, not www.example.com", ""},
		{"wrong name under full passes", full, valid("a.example", "b.example"), pass, "", "-"},
		{"self-signed", strict, self, fail, "is self-signed (CN=www.example.com)", ""},
		{"unknown issuer", strict, foreign, fail, "has an unknown issuer CN=cfguard test CA,O=cfguard tests (the origin sent no intermediate certificate)", ""},
		{"expiring soon", strict, soon, pass, "valid until 2026-09-06", "expires on 2026-09-06 (in 5 days)"},
		{"CN only", strict, cnOnly, pass, "", "only in its Common Name"},
		{"two reasons", strict, expiredWrong, fail, "expired on 2026-08-01 and is issued for a.example, b.example, not www.example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := CertificateWith(tt.target, tt.leaf.state(), now, CertOptions{Roots: roots})
			if diff := cmp.Diff(tt.want, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s\ncause: %s", diff, o.Cause)
			}
			has(t, o, tt.cause, "", tt.warn)
		})
	}
	if o := CertificateWith(strict, nil, now, CertOptions{Roots: roots}); o.Status != 526 {
		t.Errorf("no certificate: %+v", o)
	}
	// Count the embedded roots from the PEM itself (CertPool.Subjects is
	// deprecated), and check the pool holds exactly those.
	want := x509.NewCertPool()
	n := 0
	for rest := originCARoots; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("embedded Origin CA root %d: %v", n, err)
		}
		want.AddCert(c)
		n++
	}
	if n != 2 || !originCAPool().Equal(want) {
		t.Errorf("embedded Origin CA roots: %d parsed (want 2), pool equal to them: %v", n, originCAPool().Equal(want))
	}
}

// TestCertificateNamesTheCulprit: the cause names exactly what is wrong
// with which certificate of the chain, and nothing that is not wrong — an
// expired leaf under a CA made after it expired (the CA is valid now) must
// not be reported as "chains through the CA, which expired on 2036-…".
func TestCertificateNamesTheCulprit(t *testing.T) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// A root made an hour ago, valid for ten years, as tests (and a CA
	// re-issued after an incident) make it.
	root := newCA(t, nil, "young root", now.Add(-time.Hour), now.Add(3650*day))
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	stranger := newCA(t, nil, "stranger", now.Add(-time.Hour), now.Add(3650*day))
	oldInter := newCA(t, root, "old intermediate", now.Add(-time.Hour), now.Add(-time.Minute)) // expired a minute ago
	futureInter := newCA(t, root, "future intermediate", now.Add(30*day), now.Add(400*day))
	goodInter := newCA(t, root, "good intermediate", now.Add(-time.Hour), now.Add(400*day))

	expiredLeaf := root.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-90*day), now.Add(-day))
	strangerExpired := stranger.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-90*day), now.Add(-day))
	underOld := oldInter.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-day), now.Add(60*day))
	underFuture := futureInter.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-day), now.Add(60*day))
	expiredUnderGood := goodInter.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-90*day), now.Add(-day))
	expiredUnderOld := oldInter.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-90*day), now.Add(-2*day))

	strict := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheme: "https", SSLMode: ModeStrict}
	chain := func(l leaf, inter ...*testCA) *tls.ConnectionState {
		cs := l.state()
		for _, c := range inter {
			cs.PeerCertificates = append(cs.PeerCertificates, c.cert)
		}
		return cs
	}
	const at = "the certificate 192.0.2.1:443 serves for www.example.com "
	tests := []struct {
		name  string
		cs    *tls.ConnectionState
		cause string // exactly
		fix   string // a fragment
	}{
		{"expired leaf under a root made after it expired", chain(expiredLeaf),
			at + "expired on 2026-08-31", "renew the certificate"},
		{"expired leaf under a valid intermediate", chain(expiredUnderGood, goodInter),
			at + "expired on 2026-08-31", "renew the certificate"},
		{"expired leaf and unknown issuer", chain(strangerExpired),
			at + "expired on 2026-08-31 and has an unknown issuer CN=stranger,O=cfguard tests (the origin sent no intermediate certificate)", "serve the full chain"},
		{"valid leaf under an expired intermediate", chain(underOld, oldInter),
			at + "chains through the intermediate CN=old intermediate,O=cfguard tests, which expired on 2026-09-01", "serve the current intermediate"},
		{"valid leaf under an intermediate not yet valid", chain(underFuture, futureInter),
			at + "chains through the intermediate CN=future intermediate,O=cfguard tests, which is not valid before 2026-10-01", "check the server's clock"},
		{"expired leaf under an expired intermediate", chain(expiredUnderOld, oldInter),
			at + "expired on 2026-08-30 and chains through the intermediate CN=old intermediate,O=cfguard tests, which expired on 2026-09-01", "serve the current intermediate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := CertificateWith(strict, tt.cs, now, CertOptions{Roots: roots})
			if diff := cmp.Diff(verdict{Stage: report.StageCertificate, Fail: true, Status: 526}, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.cause, o.Cause); diff != "" {
				t.Errorf("cause (-want +got)\n%s", diff)
			}
			if !strings.Contains(strings.ToLower(o.Fix), strings.ToLower(tt.fix)) {
				t.Errorf("fix %q lacks %q", o.Fix, tt.fix)
			}
			// The valid root's dates appear nowhere.
			all := o.Cause + "\n" + o.Fix + "\n" + strings.Join(o.Evidence, "\n")
			if rootEnd := root.cert.NotAfter.UTC().Format(time.DateOnly); strings.Contains(all, rootEnd) {
				t.Errorf("the outcome mentions the valid root's notAfter %s:\n%s", rootEnd, all)
			}
		})
	}
}

func TestJudgeRoutes(t *testing.T) {
	a := netip.MustParseAddr
	pfx := netip.MustParsePrefix
	def := route{Dst: pfx("0.0.0.0/0"), Type: unix.RTN_UNICAST, Gateway: a("192.0.2.254"), Dev: "eth0", Table: unix.RT_TABLE_MAIN}
	swallow := route{Dst: pfx("198.0.0.0/8"), Type: unix.RTN_UNICAST, Gateway: a("10.0.0.1"), Dev: "tun0", Table: unix.RT_TABLE_MAIN}
	public := route{Dst: pfx("198.0.0.0/8"), Type: unix.RTN_UNICAST, Gateway: a("192.0.2.253"), Dev: "eth0", Table: unix.RT_TABLE_MAIN}
	onlink := route{Dst: pfx("203.0.113.0/24"), Type: unix.RTN_UNICAST, Dev: "br0", Table: unix.RT_TABLE_MAIN}
	black := route{Dst: pfx("203.0.113.0/25"), Type: unix.RTN_BLACKHOLE, Table: unix.RT_TABLE_MAIN}
	table := []route{def, swallow, black}
	ok := func(p string, r route) routeLookup {
		return routeLookup{Prefix: pfx(p), Addr: pfx(p).Addr(), Route: &r}
	}
	bad := func(p string, err error) routeLookup {
		return routeLookup{Prefix: pfx(p), Addr: pfx(p).Addr(), Err: err}
	}
	pass := verdict{Stage: report.StageRoute}
	fail := verdict{Stage: report.StageRoute, Fail: true, Status: 523}
	tests := []struct {
		name            string
		looks           []routeLookup
		want            verdict
		cause, evidence string
	}{
		{"default", []routeLookup{ok("198.51.100.0/24", def), ok("203.0.113.0/24", def)}, pass,
			"replies to Cloudflare's ranges leave by default via 192.0.2.254 dev eth0", "route to 198.51.100.0/24, 203.0.113.0/24: default via 192.0.2.254 dev eth0"},
		{"private next hop swallows", []routeLookup{ok("198.51.100.0/24", swallow), ok("203.0.113.0/24", def)}, fail,
			`the route "198.0.0.0/8 via 10.0.0.1 dev tun0" swallows Cloudflare's 198.51.100.0/24: replies go there instead of by the default route — 1 of 2 Cloudflare ranges are affected, so failures will look intermittent`, ""},
		{"public next hop is policy", []routeLookup{ok("198.51.100.0/24", public)}, pass, "198.0.0.0/8 via 192.0.2.253", ""},
		{"on-link route swallows", []routeLookup{ok("203.0.113.0/24", onlink)}, fail, `the route "203.0.113.0/24 dev br0" swallows`, ""},
		{"no route", []routeLookup{bad("198.51.100.0/24", syscall.ENETUNREACH), bad("203.0.113.0/24", syscall.ENETUNREACH)}, fail,
			"this server has no route from 192.0.2.1 toward Cloudflare's 198.51.100.0/24, 203.0.113.0/24", ""},
		{"blackhole named from the table", []routeLookup{ok("198.51.100.0/24", def), bad("203.0.113.0/24", syscall.EINVAL)}, fail,
			`the route "blackhole 203.0.113.0/25" discards replies to Cloudflare's 203.0.113.0/24 — 1 of 2`, "route to 203.0.113.0/24: blackhole 203.0.113.0/25"},
		{"prohibit by a rule", []routeLookup{bad("198.51.100.0/24", syscall.EACCES)}, fail, `"prohibit (a policy rule`, ""},
		{"lookup error", []routeLookup{bad("198.51.100.0/24", errors.New("netlink receive: timeout"))},
			verdict{Stage: report.StageRoute, CannotTell: true}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := judgeRoutes(report.Outcome{Stage: report.StageRoute}, a("192.0.2.1"), tt.looks, map[bool][]route{true: table})
			if diff := cmp.Diff(tt.want, verdictOf(o)); diff != "" {
				t.Errorf("(-want +got)\n%s\ncause: %s", diff, o.Cause)
			}
			has(t, o, tt.cause, tt.evidence, "")
		})
	}
}

func TestParseHexAddrPort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0100007F:0050", "127.0.0.1:80"},
		{"010200C0:01BB", "192.0.2.1:443"},
		{"00000000:0016", "0.0.0.0:22"},
		{"00000000000000000000000000000000:0050", "[::]:80"},
		{"B80D0120000001000000000001000000:01BB", "[2001:db8:1::1]:443"},
		{"0000000000000000FFFF00000100007F:0050", "[::ffff:127.0.0.1]:80"},
	}
	for _, tt := range tests {
		got, err := parseHexAddrPort(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("parseHexAddrPort(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseHexAddrPort("zz:0050"); err == nil {
		t.Error("bad hex accepted")
	}
}

func TestProbeAddrs(t *testing.T) {
	got := probeAddrs(netip.MustParsePrefix("172.64.0.0/13"))
	want := []netip.Addr{netip.MustParseAddr("172.64.0.0"), netip.MustParseAddr("172.71.255.255")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Error(diff)
	}
}

func TestUnusable(t *testing.T) {
	good := Target{Hostname: "www.example.com", Addr: netip.MustParseAddr("127.0.0.1"), Port: 1, Scheme: "http", SSLMode: ModeFull}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bad := func(f func(*Target)) Target { x := good; f(&x); return x }
	tests := []struct {
		name string
		run  func() report.Outcome
		warn string
	}{
		{"no address", func() report.Outcome {
			return Listener(context.Background(), bad(func(x *Target) { x.Addr = netip.Addr{} }))
		}, "no address"},
		{"port", func() report.Outcome {
			return TLS(context.Background(), bad(func(x *Target) { x.Port = 70000 })).Outcome
		}, "port 70000 is out of range"},
		{"scheme", func() report.Outcome { return HTTP(context.Background(), bad(func(x *Target) { x.Scheme = "ftp" }), 0) }, `scheme "ftp"`},
		{"cancelled", func() report.Outcome { return Elsewhere(cancelled, good, 0) }, "did not run"},
		{"cancelled http", func() report.Outcome { return HTTP(cancelled, good, 0) }, "did not run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.run()
			if !o.CannotTell || o.Fail {
				t.Errorf("want CannotTell and no failure: %+v", o)
			}
			has(t, o, "", "", tt.warn)
		})
	}
}

// TestHTTPReusesTheTLSConnection: TLSKeep's connection carries the http
// stage's GET /, so an https path costs one connection and one handshake.
func TestHTTPReusesTheTLSConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the last, closed handshake
	srv.StartTLS()
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	tg := Target{Hostname: "www.example.com", Addr: ap.Addr(), Port: int(ap.Port()), Scheme: "https", SSLMode: ModeFull}

	r := TLSKeep(context.Background(), tg)
	if r.Outcome.Fail || r.Conn == nil {
		t.Fatalf("TLSKeep: %+v", r)
	}
	o := HTTPOn(context.Background(), tg, r.Conn, time.Second)
	if diff := cmp.Diff(verdict{Stage: report.StageHTTP, Status: 200}, verdictOf(o)); diff != "" {
		t.Errorf("(-want +got)\n%s\ncause: %s", diff, o.Cause)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the origin saw %d connections for one path, want 1", n)
	}
	if TLS(context.Background(), tg).Conn != nil {
		t.Errorf("TLS (not TLSKeep) handed over a connection")
	}
}
