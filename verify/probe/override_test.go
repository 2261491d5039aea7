package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOverriddenSNIAndHost: a target whose rules set the SNI and the Host
// header sends those (the origin sees them), and the certificate is
// checked against the SNI, as Cloudflare sends and checks them.
func TestOverriddenSNIAndHost(t *testing.T) {
	var mu sync.Mutex
	var snis, hosts []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		io.WriteString(w, "ok\n")
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		snis = append(snis, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	tg := Target{Hostname: "www.example.com", Addr: ap.Addr(), Port: int(ap.Port()), Scheme: "https", SSLMode: ModeFull,
		SNI: "tls.example.net", Host: "backend.example.net"}

	r := TLSKeep(context.Background(), tg)
	if r.Outcome.Fail || r.Conn == nil {
		t.Fatalf("TLSKeep: %+v", r)
	}
	if o := HTTPOn(context.Background(), tg, r.Conn, time.Second); o.Fail || o.Status != 200 {
		t.Fatalf("HTTPOn: %+v", o)
	}
	// And over a connection of its own.
	if o := HTTPOn(context.Background(), tg, nil, time.Second); o.Fail || o.Status != 200 {
		t.Fatalf("HTTPOn without a connection: %+v", o)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(snis) != 2 || snis[0] != "tls.example.net" || snis[1] != "tls.example.net" {
		t.Errorf("the origin saw SNI %q, want tls.example.net twice", snis)
	}
	if len(hosts) != 2 || hosts[0] != "backend.example.net" || hosts[1] != "backend.example.net" {
		t.Errorf("the origin saw Host %q, want backend.example.net twice", hosts)
	}

	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	ca := newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	forSNI := ca.issue(t, "tls.example.net", []string{"tls.example.net"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	forHost := ca.issue(t, "www.example.com", []string{"www.example.com"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	strict := tg
	strict.SSLMode = ModeStrict
	if o := CertificateWith(strict, forSNI.state(), now, CertOptions{Roots: roots}); o.Fail {
		t.Errorf("a certificate for the SNI: %+v", o)
	}
	if o := CertificateWith(strict, forHost.state(), now, CertOptions{Roots: roots}); !o.Fail || o.Status != 526 || !strings.Contains(o.Cause, "not tls.example.net") {
		t.Errorf("a certificate for the visitor's hostname, not the SNI: %+v", o)
	}
}
