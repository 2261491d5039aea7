package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"
)

// serveOrigin answers 200 on addr:80 (HTTP) and addr:443 (HTTPS with a
// throwaway self-signed certificate: fine under SSL mode full): the origin
// that `cfguard verify` probes in the whole-command benchmark.
func serveOrigin(addr string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cfapi-standin origin"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"*.example.com"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	plain, err := net.Listen("tcp", net.JoinHostPort(addr, "80"))
	if err != nil {
		return err
	}
	secure, err := net.Listen("tcp", net.JoinHostPort(addr, "443"))
	if err != nil {
		return err
	}
	quiet := log.New(io.Discard, "", 0) // the listener stage connects and closes: not an error
	go (&http.Server{Handler: h, ErrorLog: quiet}).Serve(plain)
	srv := &http.Server{Handler: h, ErrorLog: quiet, TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go srv.ServeTLS(secure, "", "")
	return nil
}
