package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []uint16
		wantErr bool
	}{
		{"80,443", []uint16{80, 443}, false},
		{" 443 , 80,443,", []uint16{443, 80}, false},
		{"8443", []uint16{8443}, false},
		{"", nil, true},
		{"0", nil, true},
		{"65536", nil, true},
		{"80,https", nil, true},
		{"-1", nil, true},
	} {
		got, err := parsePorts(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("parsePorts(%q) error = %v, wantErr %v", c.in, err, c.wantErr)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("parsePorts(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestParseAllow(t *testing.T) {
	for _, c := range []struct {
		in      []string
		want    []netip.Prefix
		wantErr string
	}{
		{[]string{"192.0.2.10"}, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}, ""},
		{[]string{"192.0.2.0/24,2001:db8::/32"}, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}, ""},
		{[]string{"2001:db8::1"}, []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}, ""},
		{[]string{"0.0.0.0/0"}, nil, "everyone"},
		{[]string{"::/0"}, nil, "everyone"},
		{[]string{"192.0.2.1/24"}, nil, "host bits"},
		{[]string{"example.com"}, nil, "not an address"},
	} {
		got, err := parseAllow(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseAllow(%q) error = %v, want one mentioning %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseAllow(%q): %v", c.in, err)
		}
		if diff := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("parseAllow(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	cred := filepath.Join(dir, "creds")
	os.Mkdir(cred, 0o700)
	os.WriteFile(filepath.Join(cred, credentialName), []byte("from-credential"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)

	t.Setenv("CREDENTIALS_DIRECTORY", cred)
	for _, c := range []struct {
		name      string
		g         globals
		want, err string
	}{
		{"flag wins", globals{tokenFlag: "from-flag", tokenFile: file}, "from-flag", ""},
		{"file", globals{tokenFile: file}, "from-file", ""},
		{"systemd credential", globals{}, "from-credential", ""},
		{"empty file", globals{tokenFile: empty}, "", "is empty"},
		{"missing file", globals{tokenFile: filepath.Join(dir, "nope")}, "", "no such file"},
	} {
		got, err := c.g.token()
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: token() = %q, %v; want %q, error containing %q", c.name, got, err, c.want, c.err)
		}
	}
}

// The token must never appear in help, errors or any output.
func TestTokenNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-token-value"
	t.Setenv("CLOUDFLARE_API_TOKEN", secret)
	for _, args := range [][]string{
		{"cfguard", "--help"},
		{"cfguard", "sync", "--help"},
		{"cfguard", "--api-url", "ftp://x", "sync"},
		{"cfguard", "sync", "--bogus"},
	} {
		var out, errOut bytes.Buffer
		newApp(&out, &errOut).Run(context.Background(), args)
		if strings.Contains(out.String()+errOut.String(), secret) {
			t.Errorf("%v printed the token", args)
		}
	}
}
