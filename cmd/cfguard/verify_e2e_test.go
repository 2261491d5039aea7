package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
	"github.com/cfguard/cfguard/internal/nstest"
	"github.com/cfguard/cfguard/verify/report"
)

// verifySite is an origin namespace with an HTTP origin on port 80 (IPv4 and IPv6), a
// default route through a peer namespace, and the stand-in API holding the
// zone example.com (SSL flexible) with two proxied records on the origin.
type verifySite struct {
	t      *testing.T
	origin *nstest.NS
	api    *cfapitest.Server
	state  string
}

func newVerifySite(t *testing.T) *verifySite {
	nstest.RequireRoot(t, "nft")
	v := &verifySite{t: t, origin: nstest.New(t), state: t.TempDir()}
	peer := nstest.New(t)
	nstest.Link(t, v.origin, peer, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, []string{"192.0.2.2/24", "2001:db8:1::2/64"})
	v.origin.Run("ip", "route", "add", "default", "via", "192.0.2.2")
	v.origin.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::2")

	var web, apiLn net.Listener
	if err := v.origin.Do(func() (err error) {
		if web, err = net.Listen("tcp", ":80"); err != nil { // IPv4 and IPv6
			return err
		}
		apiLn, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello\n")) })}
	go srv.Serve(web)
	t.Cleanup(func() { srv.Close() })

	v.api = cfapitest.NewOn(t, apiLn)
	zone := v.api.AddZone("example.com", map[string]any{"ssl": "flexible"})
	v.api.AddRecord(zone, "A", "www.example.com", "192.0.2.1", true)
	v.api.AddRecord(zone, "A", "api.example.com", "192.0.2.1", true)
	v.api.AddRecord(zone, "A", "direct.example.com", "192.0.2.1", false) // DNS only: not a Cloudflare path
	return v
}

func (v *verifySite) verify(token string, args ...string) (stdout, stderr string, code int) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--state-dir", v.state, "--api-url", v.api.URL, "verify"}, args...)
	cmd := v.origin.Command(ctx, cfguardBin, full...)
	cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN="+token, "NO_COLOR=1")
	stdout, stderr, code = runCmd(v.t, cmd)
	if token != "" && strings.Contains(stdout+stderr, token) {
		v.t.Errorf("verify printed the API token")
	}
	return stdout, stderr, code
}

func TestVerifyCommand(t *testing.T) {
	v := newVerifySite(t)

	// A healthy zone: every proxied path passes, exit 0, no false alarm.
	out, errOut, code := v.verify(cfapitest.DefaultToken, "--json", "--timeout", "3s")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s\nstderr: %s", err, out, errOut)
	}
	if code != 0 || rep.Summary.Paths != 2 || rep.Summary.Failing != 0 {
		t.Fatalf("healthy zone: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	for _, p := range rep.Paths {
		if !p.OK || p.Status != 200 || p.Port != 80 || p.Scheme != "http" || p.OriginIP != "192.0.2.1" {
			t.Errorf("healthy path: %+v", p)
		}
	}

	// The text rendering says the same in words.
	out, _, code = v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	if code != 0 || !strings.Contains(out, "all 2 paths pass") || !strings.Contains(out, "www.example.com") {
		t.Errorf("text output, exit %d:\n%s", code, out)
	}

	// A firewall that drops one stand-in Cloudflare range: both paths fail
	// with 522 at the firewall stage, naming the rule; exit 1.
	rules := filepath.Join(t.TempDir(), "drop.nft")
	os.WriteFile(rules, []byte("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 203.0.113.0/24 tcp dport 80 drop\n\t}\n}\n"), 0o644)
	v.origin.Run("nft", "-f", rules)
	out, _, code = v.verify(cfapitest.DefaultToken, "--json", "--timeout", "3s")
	rep = report.Report{}
	json.Unmarshal([]byte(out), &rep)
	if code != 1 || rep.Summary.Failing != 2 {
		t.Fatalf("firewall drop: exit %d, summary %+v\n%s", code, rep.Summary, out)
	}
	for _, p := range rep.Paths {
		if p.OK || p.Status != 522 || p.Stage != report.StageFirewall || !strings.Contains(p.Cause+strings.Join(p.Evidence, " "), "203.0.113.0/24") {
			t.Errorf("firewall drop path: %+v", p)
		}
	}
	// In text, the one cause is said once, with its fix, then the two
	// paths it fails (JSON above keeps one entry per path).
	out, _, _ = v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	t.Logf("text output:\n%s", out)
	if strings.Count(out, "the firewall drops") != 1 || strings.Count(out, "fix: Allow Cloudflare") != 1 || !strings.Contains(out, "on 2 paths:") ||
		!strings.Contains(out, "api.example.com http 192.0.2.1:80") || !strings.Contains(out, "www.example.com http 192.0.2.1:80") ||
		!strings.Contains(out, "2 of 2 paths would fail: 2 × 522") {
		t.Errorf("firewall drop, text: one cause, its fix and both paths expected:\n%s", out)
	}
	v.origin.Run("nft", "delete", "table", "inet", "filter")

	// A refused token: verify cannot run, one line naming the fix, exit 3.
	_, errOut, code = v.verify("not-a-valid-token-0000")
	if code != 3 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "token") {
		t.Errorf("refused token: exit %d, stderr %q", code, errOut)
	}

	// Without a token: --hostname and --ssl-mode against this host's addresses.
	out, errOut, code = v.verify("", "--hostname", "www.example.com", "--ssl-mode", "flexible", "--timeout", "3s")
	if code != 0 || !strings.Contains(out, "192.0.2.1:80") || !strings.Contains(out, "[2001:db8:1::1]:80") {
		t.Errorf("no token, --hostname: exit %d\n%s\nstderr %s", code, out, errOut)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		{"--hostname", "www.example.com"},                        // no --ssl-mode without a token
		{"--hostname", "www.example.com", "--ssl-mode", "tight"}, // no such mode
		{"--zone", "example.com"},                                // --zone needs a token
	} {
		if _, errOut, code := v.verify("", args...); code != 2 {
			t.Errorf("verify %v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

// A --hostname that leads to no path is "could not check" (exit 3) with
// the reason, never "no path to check" with exit 0.
func TestVerifyHostnameNotFound(t *testing.T) {
	v := newVerifySite(t)
	for _, tt := range []struct{ name, want string }{
		{"www.example.org", "cfguard: cannot check www.example.org: not in any zone the API token reads (zones: example.com); check the name"},
		{"direct.example.com", "cfguard: cannot check direct.example.com: no proxied A, AAAA or CNAME record in zone example.com; check the name"},
	} {
		out, errOut, code := v.verify(cfapitest.DefaultToken, "--hostname", tt.name, "--timeout", "3s")
		if code != 3 || !strings.HasPrefix(errOut, tt.want) || out != "" {
			t.Errorf("--hostname %s: exit %d, stdout %q, stderr %q; want exit 3 and %q", tt.name, code, out, errOut, tt.want)
		}
	}
}

// Names from the API with terminal controls in them are printed escaped in
// text and stay exact in JSON.
func TestVerifyEscapesAPIText(t *testing.T) {
	v := newVerifySite(t)
	const evil = "evil\x1b]0;pwned\x07\u202e.example.com"
	v.api.AddRecord(v.api.AddZone("evil.example", map[string]any{"ssl": "flexible"}), "A", evil, "192.0.2.1", true)
	out, _, _ := v.verify(cfapitest.DefaultToken, "--timeout", "3s")
	if c := rawControls(out); c != "" || !strings.Contains(out, `evil\x1b]0;pwned\x07\u202e.example.com`) {
		t.Errorf("text report: %q raw, or the escaped name missing:\n%s", c, out)
	}
	out, _, _ = v.verify(cfapitest.DefaultToken, "--json", "--timeout", "3s")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rawControls(out) != "" {
		t.Fatalf("JSON report: %v, raw %q\n%s", err, rawControls(out), out)
	}
	found := false
	for _, p := range rep.Paths {
		found = found || p.Hostname == evil
	}
	if !found {
		t.Errorf("JSON report lost the exact hostname %q:\n%s", evil, out)
	}
}

// A 300 MB answer from the API: one error, exit 3, and the process stays
// small (it once took 1.4 GB). Peak RSS is a measure of memory, not time.
func TestVerifyHugeAnswer(t *testing.T) {
	v := newVerifySite(t)
	seen := v.api.SetOversize("/zones", 300<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := v.origin.Command(ctx, cfguardBin, "--state-dir", v.state, "--api-url", v.api.URL, "verify")
	cmd.Env = append(os.Environ(), "CLOUDFLARE_API_TOKEN="+cfapitest.DefaultToken)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want 3; stderr %q", err, errb.String())
	}
	if want := "cfguard: cannot list zones: Cloudflare answered more than 16 MiB in one answer"; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want %q…", errb.String(), want)
	}
	if o := <-seen; o.Complete {
		t.Errorf("the stand-in sent all %d bytes: the read did not stop", o.Sent)
	}
	// ip netns exec runs cfguard as its child; Maxrss covers the children waited for.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		t.Logf("peak RSS %d MiB", ru.Maxrss>>10)
		if ru.Maxrss>>10 > 200 {
			t.Errorf("peak RSS %d MiB reading a 300 MiB answer, want far less than the answer", ru.Maxrss>>10)
		}
	}
}
