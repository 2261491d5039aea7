package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/report"
)

// loopbackProbes are the real probes, except that the record and route
// stages let loopback addresses through (the benchmark's origin is
// 127.0.0.1, which Cloudflare could never reach).
type loopbackProbes struct{ probes }

func (loopbackProbes) Record(a netip.Addr, cf []netip.Prefix) report.Outcome {
	if a.IsLoopback() {
		return report.Outcome{Stage: report.StageRecord, Cause: "loopback (benchmark)"}
	}
	return probes{}.Record(a, cf)
}

func (loopbackProbes) Route(ctx context.Context, src netip.Addr, cf []netip.Prefix) report.Outcome {
	if src.IsLoopback() {
		return report.Outcome{Stage: report.StageRoute, Cause: "loopback (benchmark)"}
	}
	return probes{}.Route(ctx, src, cf)
}

// BenchmarkRun1000Hosts: 1,000 proxied hostnames on one origin (SSL full,
// so 443 https and 80 http: 2,000 paths) against the stand-in API and a
// local web server on 127.0.0.1; no packet leaves loopback. The firewall
// stage reads this host's ruleset (read-only) once.
func BenchmarkRun1000Hosts(b *testing.B) { benchRunHosts(b, 1000) }

// BenchmarkRun10000Hosts is BenchmarkRun1000Hosts with 10,000 hostnames
// (20,000 paths): a shared host with thousands of sites.
func BenchmarkRun10000Hosts(b *testing.B) { benchRunHosts(b, 10000) }

func benchRunHosts(b *testing.B, n int) {
	api := cfapitest.New(b)
	id := api.AddZone("bench.test", map[string]any{"ssl": "full"})
	for i := range n {
		api.AddRecord(id, "A", fmt.Sprintf("h%05d.bench.test", i), "127.0.0.1", true)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	// An ECDSA certificate, as a modern origin has (httptest's RSA-2048 one
	// would make the stand-in origin's signing most of the measurement).
	tlsSrv := httptest.NewUnstartedServer(handler)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{ecdsaCert(b)}}
	tlsSrv.StartTLS()
	b.Cleanup(tlsSrv.Close)
	plainSrv := httptest.NewServer(handler)
	b.Cleanup(plainSrv.Close)
	ports := map[int]int{443: portOf(b, tlsSrv.Listener), 80: portOf(b, plainSrv.Listener)}

	c, err := cloudflare.New(cloudflare.Config{BaseURL: api.URL, Token: cfapitest.DefaultToken})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Token: "t", Cloudflare: testCF, Timeout: 5 * time.Second}
	d := deps{api: c, probe: loopbackProbes{}, firewall: newSimFirewall(), host: thisHost{procRoot: "/proc"},
		resolver: netResolver{}, now: time.Now, originPort: func(p int) int { return ports[p] }}
	logger := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	for b.Loop() {
		rep, err := run(context.Background(), cfg, d, nil, logger)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Summary.Paths != 2*n || rep.Summary.Failing != 0 {
			b.Fatalf("summary %+v; first path %+v", rep.Summary, rep.Paths[0])
		}
		d.firewall = newSimFirewall() // read the ruleset again, as a new run would
	}
}

func ecdsaCert(b *testing.B) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "*.bench.test"}, DNSNames: []string{"*.bench.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func portOf(b *testing.B, ln net.Listener) int {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	n, err := strconv.Atoi(p)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
