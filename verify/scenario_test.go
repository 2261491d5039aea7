package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/internal/nstest"
)

// The scenario table: a stand-in API, an origin namespace with real nginx,
// certificates from a test CA, a peer namespace on the other end of the
// link (the way to "Cloudflare" and to a host that is not this origin),
// and one verify run whose every path is asserted.

// scenarioTimeout is --timeout of the run: the slow origin and the silent
// address are judged after it.
const scenarioTimeout = 2 * time.Second

// slowBackendDelay is how long the slow backend takes to answer.
const slowBackendDelay = 8 * time.Second

// Origin addresses, one (or a pair) per scenario.
var scenarioAddrs = []string{
	"192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24", "192.0.2.5/24", "192.0.2.6/24",
	"192.0.2.7/24", "192.0.2.8/24", "192.0.2.9/24", "192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/24",
	"2001:db8:1::1/64", "2001:db8:1::6/64", "2001:db8:1::7/64",
}

// scenarioZone is one zone of the stand-in API.
type scenarioZone struct {
	name     string
	settings map[string]any
	records  [][3]string // type, name, content (all proxied)
}

var (
	strictOff = map[string]any{"ssl": "strict"}
	fullOff   = map[string]any{"ssl": "full"}
	strictOn  = map[string]any{"ssl": "strict", "always_use_https": "on"}
	fullOn    = map[string]any{"ssl": "full", "always_use_https": "on"}
)

var scenarioZones = []scenarioZone{
	{"healthy.test", strictOff, [][3]string{{"A", "www.healthy.test", "192.0.2.1"}, {"AAAA", "www.healthy.test", "2001:db8:1::1"}, {"MX", "healthy.test", "mail.healthy.test"}}},
	{"stopped.test", fullOff, [][3]string{{"A", "stopped.test", "192.0.2.2"}}},
	{"notls.test", fullOff, [][3]string{{"A", "notls.test", "192.0.2.3"}}},
	{"plain443.test", fullOn, [][3]string{{"A", "plain443.test", "192.0.2.4"}}},
	{"expired.test", strictOn, [][3]string{{"A", "expired.test", "192.0.2.5"}}},
	{"wrongname.test", strictOn, [][3]string{{"A", "wrongname.test", "192.0.2.5"}}},
	{"selfsigned.test", strictOn, [][3]string{{"A", "selfsigned.test", "192.0.2.5"}}},
	{"fullexpired.test", fullOn, [][3]string{{"A", "fullexpired.test", "192.0.2.5"}}},
	{"fwdrop4.test", fullOn, [][3]string{{"A", "fwdrop4.test", "192.0.2.6"}, {"AAAA", "fwdrop4.test", "2001:db8:1::6"}}},
	{"fwrej6.test", fullOn, [][3]string{{"A", "fwrej6.test", "192.0.2.7"}, {"AAAA", "fwrej6.test", "2001:db8:1::7"}}},
	{"fwpart.test", fullOn, [][3]string{{"A", "fwpart.test", "192.0.2.8"}}},
	{"fwforeign.test", fullOn, [][3]string{{"A", "fwforeign.test", "192.0.2.9"}}},
	{"elsewhere.test", fullOn, [][3]string{{"A", "gone.elsewhere.test", "192.0.2.99"}, {"A", "other.elsewhere.test", "192.0.2.98"}}},
	{"private.test", fullOn, [][3]string{{"A", "private.test", "10.0.0.5"}}},
	{"cname.test", fullOn, [][3]string{{"CNAME", "www.cname.test", "nothing.invalid"}}},
	{"flex.test", map[string]any{"ssl": "flexible"}, [][3]string{{"A", "flex.test", "192.0.2.10"}}},
	{"bad.test", fullOn, [][3]string{{"A", "bad.test", "192.0.2.11"}}},
	{"slow.test", fullOn, [][3]string{{"A", "slow.test", "192.0.2.12"}}},
}

// scenarioWant: every path of the run, as brief() prints it.
var scenarioWant = []string{
	"bad.test A 192.0.2.11 443/https FAIL 502 upstream",
	"expired.test A 192.0.2.5 443/https FAIL 526 certificate",
	"flex.test A 192.0.2.10 80/http ok 301 http",
	"fullexpired.test A 192.0.2.5 443/https ok 200 http",
	"fwdrop4.test A 192.0.2.6 443/https FAIL 522 firewall",
	"fwdrop4.test AAAA 2001:db8:1::6 443/https ok 200 http",
	"fwforeign.test A 192.0.2.9 443/https FAIL 522 firewall",
	"fwpart.test A 192.0.2.8 443/https FAIL 522 firewall",
	"fwrej6.test A 192.0.2.7 443/https ok 200 http",
	"fwrej6.test AAAA 2001:db8:1::7 443/https FAIL 521 firewall",
	"gone.elsewhere.test A 192.0.2.99 443/https FAIL 522 elsewhere",
	"notls.test A 192.0.2.3 80/http ok 200 http",
	"notls.test A 192.0.2.3 443/https FAIL 521 listener",
	"other.elsewhere.test A 192.0.2.98 443/https ok 0 elsewhere",
	"plain443.test A 192.0.2.4 443/https FAIL 525 tls",
	"private.test A 10.0.0.5 443/https FAIL 403 record",
	"selfsigned.test A 192.0.2.5 443/https FAIL 526 certificate",
	"slow.test A 192.0.2.12 443/https FAIL 524 upstream",
	"stopped.test A 192.0.2.2 80/http FAIL 521 listener",
	"stopped.test A 192.0.2.2 443/https FAIL 521 listener",
	"wrongname.test A 192.0.2.5 443/https FAIL 526 certificate",
	"www.cname.test CNAME  0/ FAIL 530 record",
	"www.healthy.test A 192.0.2.1 80/http ok 200 http",
	"www.healthy.test A 192.0.2.1 443/https ok 200 http",
	"www.healthy.test AAAA 2001:db8:1::1 80/http ok 200 http",
	"www.healthy.test AAAA 2001:db8:1::1 443/https ok 200 http",
}

const scenarioRuleset = `
table inet filter {
	chain input {
		type filter hook input priority 0; policy accept;
		ip daddr 192.0.2.6 tcp dport 443 drop
		ip6 daddr 2001:db8:1::7 tcp dport 443 reject with tcp reset
		ip saddr 198.51.100.0/24 ip daddr 192.0.2.8 tcp dport 443 drop
	}
}
table ip foreign {
	chain input {
		type filter hook input priority 10; policy drop;
		ip daddr != 192.0.2.9 accept
	}
}
`

func TestScenarios(t *testing.T) {
	if nstest.IsChild(t) {
		scenarioChild(t)
		return
	}
	nstest.RequireRoot(t, "nginx", "nft")
	dir := t.TempDir()
	certs := makeScenarioCerts(t, dir)

	origin, peer := nstest.New(t), nstest.New(t)
	nstest.Link(t, origin, peer, scenarioAddrs, []string{"192.0.2.254/24", "192.0.2.98/24", "2001:db8:1::fe/64"})
	origin.Run("ip", "route", "add", "default", "via", "192.0.2.254")
	origin.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::fe")
	// The peer is the way to Cloudflare (the default route) and holds
	// 192.0.2.98, a host that is not this origin but answers.
	var other net.Listener
	if err := peer.Do(func() (err error) { other, err = net.Listen("tcp", "192.0.2.98:443"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	go acceptAndClose(other)

	// The slow backend behind nginx, inside the origin namespace.
	var slow net.Listener
	if err := origin.Do(func() (err error) { slow, err = net.Listen("tcp", "127.0.0.1:8081"); return }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slowBackendDelay):
		case <-r.Context().Done():
		}
		fmt.Fprintln(w, "slow")
	})}
	go srv.Serve(slow)
	t.Cleanup(func() { srv.Close() })

	rules := filepath.Join(dir, "rules.nft")
	os.WriteFile(rules, []byte(scenarioRuleset), 0o644)
	origin.Run("nft", "-f", rules)

	conf := writeNginxConf(t, dir, certs)
	origin.Start("nginx", "-c", conf, "-g", "daemon off;")
	waitListening(t, origin, "192.0.2.1:443")

	nstest.Reexec(t, origin, "SSL_CERT_FILE="+certs["ca"], "SSL_CERT_DIR="+dir+"/none", "CFGUARD_SCENARIO_NGINX="+conf)
}

// scenarioChild runs inside the origin namespace.
func scenarioChild(t *testing.T) {
	api := cfapitest.New(t) // on 127.0.0.1 of the origin namespace
	for _, z := range scenarioZones {
		id := api.AddZone(z.name, z.settings)
		for _, r := range z.records {
			api.AddRecord(id, r[0], r[1], r[2], true)
		}
	}
	cfg := Config{
		APIBaseURL: api.URL, Token: cfapitest.DefaultToken, Timeout: scenarioTimeout, Cloudflare: testCF,
		NginxConfig: os.Getenv("CFGUARD_SCENARIO_NGINX"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := cmp.Diff(scenarioWant, briefs(rep)); d != "" {
		t.Errorf("paths (-want +got):\n%s", d)
	}
	for _, p := range rep.Paths {
		if !p.OK && (p.Cause == "" || p.Fix == "") {
			t.Errorf("%s: a failing path without cause or fix: %+v", brief(p), p)
		}
		// Only some Cloudflare ranges blocked: the cause says so; all blocked: it does not.
		if p.Stage == "firewall" && strings.Contains(p.Cause, "intermittent") != strings.HasPrefix(p.Hostname, "fwpart") {
			t.Errorf("%s: %s", p.Hostname, p.Cause)
		}
		if testing.Verbose() {
			t.Logf("%s\n\tcause: %s\n\tfix: %s\n\tevidence: %q\n\twarnings: %q", brief(p), p.Cause, p.Fix, p.Evidence, p.Warnings)
		}
	}
	var loop bool
	for _, f := range rep.Findings {
		if f.Hostname == "flex.test" && strings.Contains(f.Message, "redirect loop") {
			loop = true
		}
	}
	if !loop {
		t.Errorf("no redirect-loop finding for flex.test; findings: %+v", rep.Findings)
	}
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func waitListening(t *testing.T, ns *nstest.NS, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nginx does not listen on %s", addr)
}

// makeScenarioCerts makes a test CA and the certificates the servers use;
// it returns file paths by name ("ca", "<name>.crt", "<name>.key").
func makeScenarioCerts(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cfguard test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	out["ca"] = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	leaf := func(name string, dns []string, notBefore, notAfter time.Time, selfSigned bool) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: dns[0]}, DNSNames: dns,
			NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		parent, signer := caCert, caKey
		if selfSigned {
			parent, signer = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		out[name+".crt"] = writePEM(t, dir, name+".crt", "CERTIFICATE", der)
		out[name+".key"] = writePEM(t, dir, name+".key", "EC PRIVATE KEY", kder)
	}
	leaf("healthy", []string{"www.healthy.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
	leaf("expired", []string{"expired.test", "fullexpired.test"}, now.Add(-60*24*time.Hour), now.Add(-24*time.Hour), false)
	leaf("wrongname", []string{"other.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
	leaf("selfsigned", []string{"selfsigned.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour), true)
	leaf("origin", []string{"origin.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
	return out
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeNginxConf writes the origin's nginx configuration.
func writeNginxConf(t *testing.T, dir string, certs map[string]string) string {
	t.Helper()
	ssl := func(name string) string {
		return fmt.Sprintf("ssl_certificate %s; ssl_certificate_key %s;", certs[name+".crt"], certs[name+".key"])
	}
	ok := `location / { return 200 "ok\n"; }`
	servers := []string{
		`listen 192.0.2.1:80; listen [2001:db8:1::1]:80; server_name www.healthy.test; ` + ok,
		`listen 192.0.2.1:443 ssl; listen [2001:db8:1::1]:443 ssl; server_name www.healthy.test; ` + ssl("healthy") + ok,
		`listen 192.0.2.3:80; ` + ok,
		`listen 192.0.2.4:443; ` + ok,
		`listen 192.0.2.5:443 ssl default_server; server_name expired.test fullexpired.test; ` + ssl("expired") + ok,
		`listen 192.0.2.5:443 ssl; server_name wrongname.test; ` + ssl("wrongname") + ok,
		`listen 192.0.2.5:443 ssl; server_name selfsigned.test; ` + ssl("selfsigned") + ok,
		`listen 192.0.2.6:443 ssl; listen [2001:db8:1::6]:443 ssl; listen 192.0.2.7:443 ssl; listen [2001:db8:1::7]:443 ssl; ` +
			`listen 192.0.2.8:443 ssl; listen 192.0.2.9:443 ssl; ` + ssl("origin") + ok,
		`listen 192.0.2.10:80; location / { return 301 https://$host$request_uri; }`,
		`listen 192.0.2.11:443 ssl; ` + ssl("origin") + ` location / { proxy_pass http://127.0.0.1:9; }`,
		`listen 192.0.2.12:443 ssl; ` + ssl("origin") + ` location / { proxy_pass http://127.0.0.1:8081; proxy_read_timeout 60s; }`,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "user root; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;\n", dir, dir)
	b.WriteString("events { worker_connections 256; }\nhttp {\n")
	fmt.Fprintf(&b, "access_log off; client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;\n", dir)
	for _, s := range servers {
		b.WriteString("server { " + s + " }\n")
	}
	b.WriteString("}\n")
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
