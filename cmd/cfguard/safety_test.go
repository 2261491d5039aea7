package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secretToken = "s3cr3t-token-value-0123456789"

// hostileAPI answers like a broken or hostile API: /ips is refused with a
// message carrying terminal controls, and every token check is refused
// with a message that echoes the Authorization header back.
func hostileAPI(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		msg := "bad\x1b]0;pwned\x07\r\u009b2J\u202e " + r.Header.Get("Authorization")
		status, code := http.StatusForbidden, 9109
		if r.URL.Path == "/ips" {
			status, code = http.StatusBadRequest, 1000
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"success": false, "result": nil, "messages": []any{},
			"errors": []any{map[string]any{"code": code, "message": msg}}})
	}))
	t.Cleanup(s.Close)
	return s
}

// rawControls reports the first terminal control left raw in s.
func rawControls(s string) string {
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
		if strings.Contains(s, bad) {
			return bad
		}
	}
	return ""
}

// Control characters from the API reach no output raw, and no path, error
// or not, prints the token.
func TestHostileAPIOutput(t *testing.T) {
	api := hostileAPI(t)
	tokFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokFile, []byte(secretToken+"\n"), 0o600)
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"verify, token refused with an echo", map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, []string{"--api-url", api.URL, "verify"}, exitCannotGo},
		{"verify, token from a file", nil, []string{"--api-url", api.URL, "--api-token-file", tokFile, "verify", "--json"}, exitCannotGo},
		{"verify, token in a flag", nil, []string{"--api-url", api.URL, "--api-token", secretToken, "verify", "--hostname", "x.example"}, exitCannotGo},
		{"verify, API unreachable", map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, []string{"--api-url", "http://127.0.0.1:1", "verify"}, exitCannotGo},
		{"verify, token file missing", map[string]string{"CLOUDFLARE_API_TOKEN": ""}, []string{"--api-token-file", "/nonexistent/api-token", "verify"}, exitCannotGo},
		{"ranges, /ips refused", map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, []string{"--api-url", api.URL, "ranges"}, exitOK},
		{"sync, bad flag with a token set", map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, []string{"sync", "--bogus"}, exitUsage},
		{"help with a token set", map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, []string{"verify", "--help"}, exitOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runArgs(t, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %q\nstderr: %q", code, tt.code, out, errOut)
			}
			if strings.Contains(out+errOut, secretToken) {
				t.Errorf("printed the API token:\nstdout: %q\nstderr: %q", out, errOut)
			}
			if c := rawControls(out + errOut); c != "" {
				t.Errorf("printed %q raw:\nstdout: %q\nstderr: %q", c, out, errOut)
			}
		})
	}
	// The escaped message is still there to read.
	_, errOut, _ := runArgs(t, map[string]string{"CLOUDFLARE_API_TOKEN": secretToken}, "--api-url", api.URL, "verify")
	if want := `bad\x1b]0;pwned\x07\r\u009b2J\u202e Bearer ` + redacted; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q, want it to hold %q", errOut, want)
	}
	// A warning about the ranges, then the error: each one line.
	if lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "cfguard: warning: ") {
		t.Errorf("stderr %q, want a warning line and an error line", errOut)
	}
}
