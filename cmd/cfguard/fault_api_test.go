package main

// Fault injection, the API side: answers built to widen, stall, flood or
// redirect. See fault_test.go for the harness.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/internal/cfapitest"
)

// hostile serves handler inside the origin namespace and returns its URL.
func (s *site) hostile(t *testing.T, h http.Handler, useTLS bool) (url string, certFile string) {
	t.Helper()
	var ln net.Listener
	if err := s.origin.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	if useTLS {
		certPEM, cert := selfSignedCert(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		certFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), certFile
}

// TestFaultHostileAPI: answers built to widen, stall or redirect are
// refused with one line, and the kernel and the cache stay as they were.
func TestFaultHostileAPI(t *testing.T) {
	s := newSite(t)
	s.mustRun(t, "sync")
	before := s.ruleset()
	cache, _ := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile))
	unchanged := func(what string) {
		t.Helper()
		if s.ruleset() != before {
			t.Errorf("%s changed the ruleset", what)
		}
		if got, _ := os.ReadFile(filepath.Join(s.state, cfranges.CacheFile)); string(got) != string(cache) {
			t.Errorf("%s changed the cache", what)
		}
	}
	sixteen := slices.Clone(cfapitest.DefaultIPv4)
	scattered := slices.Clone(cfapitest.DefaultIPv4)
	for i := range 16 {
		sixteen = append(sixteen, fmt.Sprintf("%d.0.0.0/8", 11+i))
		scattered = append(scattered, fmt.Sprintf("%d.0.0.0/8", 130+2*i))
	}

	t.Run("sixteen contiguous /8s", func(t *testing.T) {
		s.api.SetIPs(sixteen, cfapitest.DefaultIPv6, nil, "")
		for _, args := range [][]string{{"sync"}, {"sync", "--force"}} {
			r := s.runWith(runOpts{}, args...)
			if r.code != 1 {
				t.Errorf("%v: exit %d", args, r.code)
			}
			wantOneLine(t, fmt.Sprint(args), r.stderr, "the ranges of the answer together cover 11.0.0.0-26.255.255.255 (268435456 addresses), more than one /8")
		}
		unchanged("sixteen /8s")
	})
	t.Run("sixteen scattered /8s", func(t *testing.T) {
		s.api.SetIPs(scattered, cfapitest.DefaultIPv6, nil, "")
		r := s.runWith(runOpts{}, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "scattered", r.stderr, "the new list covers 268435968 IPv4 addresses, more than 4 times the 1524736 of the built-in list (larger than what is installed)")
		if !strings.Contains(r.stderr, "run `cfguard sync --force`") {
			t.Errorf("no hint at --force: %s", r.stderr)
		}
		unchanged("scattered /8s")
		if r := s.runWith(runOpts{}, "sync", "--dry-run", "--force"); r.code != 0 || !strings.Contains(r.stdout, "+ 130.0.0.0/8") {
			t.Errorf("--dry-run --force: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		unchanged("a dry run")
	})
	t.Run("allow halves of the Internet", func(t *testing.T) {
		s.api.SetIPs(cfapitest.DefaultIPv4, cfapitest.DefaultIPv6, nil, "")
		r := s.runWith(runOpts{}, "sync", "--allow", "0.0.0.0/1", "--allow", "128.0.0.0/1")
		if r.code != 2 {
			t.Errorf("exit %d, want 2", r.code)
		}
		wantOneLine(t, "allow halves", r.stderr, "the --allow sources together cover every address (0.0.0.0-255.255.255.255)")
		r = s.runWith(runOpts{}, "restore", "--allow", "::/1,8000::/1")
		if r.code != 2 {
			t.Errorf("restore: exit %d, want 2", r.code)
		}
		// 197.128.0.0-198.128.255.255 without Cloudflare's 198.51.100.0/24:
		// two ranges of less than a /8 each, one of more than a /8 with
		// Cloudflare's. Refused by the merged check of the whole set.
		var b netipx.IPSetBuilder
		b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr("197.128.0.0"), netip.MustParseAddr("198.128.255.255")))
		b.RemovePrefix(netip.MustParsePrefix("198.51.100.0/24"))
		set, _ := b.IPSet()
		var allow []string
		for _, p := range set.Prefixes() {
			allow = append(allow, p.String())
		}
		r = s.runWith(runOpts{}, "sync", "--allow", strings.Join(allow, ","))
		if r.code != 1 {
			t.Errorf("allow next to Cloudflare: exit %d, want 1", r.code)
		}
		wantOneLine(t, "allow next to Cloudflare", r.stderr, "Cloudflare's ranges and --allow together cover")
		unchanged("--allow halves")
	})
	t.Run("slow drip", func(t *testing.T) {
		var served atomic.Int64
		url, _ := s.hostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for { // JSON allows any amount of leading white space
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				served.Add(1)
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "drip", r.stderr, "gave up after 30s without a complete answer")
		unchanged("the drip")
		r = s.runWith(runOpts{}, "--api-url", url, "ranges")
		if r.code != 0 || !strings.Contains(r.stderr, "gave up after 5s") || !strings.Contains(r.stderr, "cached by the sync") {
			t.Errorf("ranges against the drip: exit %d, %s", r.code, r.stderr)
		}
	})
	t.Run("endless body", func(t *testing.T) {
		var sent atomic.Int64
		url, _ := s.hostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"success":true,"result":{"ipv4_cidrs":["`))
			chunk := []byte(strings.Repeat("1", 64<<10))
			for sent.Load() < 1<<30 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				sent.Add(int64(len(chunk)))
			}
		}), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 || sent.Load() >= 1<<30 {
			t.Errorf("exit %d after %d bytes sent", r.code, sent.Load())
		}
		wantOneLine(t, "endless body", r.stderr, "the answer is larger than 1048576 bytes")
		unchanged("the endless body")
	})
	t.Run("redirect to another host", func(t *testing.T) {
		before := s.api.Requests["/ips"]
		url, _ := s.hostile(t, http.RedirectHandler(s.api.URL+"/ips", http.StatusFound), false)
		r := s.runWith(runOpts{}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "redirect", r.stderr, "the API redirected to "+s.api.URL+"/ips, another host; not followed")
		if n := s.api.Requests["/ips"]; n != before {
			t.Errorf("the redirect was followed")
		}
		unchanged("the redirect")
	})
	t.Run("redirect from https to http", func(t *testing.T) {
		mux := http.NewServeMux()
		url, ca := s.hostile(t, mux, true)
		plain := strings.Replace(url, "https://", "http://", 1)
		mux.Handle("/", http.RedirectHandler(plain+"/ips", http.StatusFound))
		r := s.runWith(runOpts{env: []string{"SSL_CERT_FILE=" + ca}}, "--api-url", url, "sync")
		if r.code != 1 {
			t.Errorf("exit %d", r.code)
		}
		wantOneLine(t, "downgrade", r.stderr, "from https to plain http; not followed")
		unchanged("the downgrade")
	})
}

// selfSignedCert makes a CA certificate for 127.0.0.1 that the binary is
// told to trust with SSL_CERT_FILE.
func selfSignedCert(t *testing.T) (certPEM []byte, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cfguard fault test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
