package guard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/internal/sshport"
)

type failingFinder struct{ found []sshport.Port }

func (f failingFinder) Find() ([]sshport.Port, error) {
	return f.found, errors.New("reading /proc: permission denied")
}

// Sync and Restore refuse a port SSH depends on before anything else:
// no lock, no fetch, no kernel (the state dir and API URL here would fail).
func TestSSHPortsRefusedFirst(t *testing.T) {
	std := sshport.Port{Port: 22, Why: "it is SSH's standard port"}
	for _, tc := range []struct {
		name     string
		ports    []uint16
		finder   sshport.Finder
		override []uint16
		want     string // "" : the check passes (and the run fails later, elsewhere)
	}{
		{"web ports", []uint16{80, 443}, sshport.Fake{std}, nil, ""},
		{"22", []uint16{22, 443}, sshport.Fake{std}, nil, "refusing to guard port 22: it is SSH's standard port"},
		{"sshd on 2222", []uint16{443, 2222}, sshport.Fake{std, {Port: 2222, Why: "sshd (pid 9) listens on it (0.0.0.0:2222)"}}, nil, "refusing to guard port 2222: sshd (pid 9) listens on it"},
		{"sshd on 2222, overridden", []uint16{443, 2222}, sshport.Fake{std, {Port: 2222, Why: "x"}}, []uint16{2222}, ""},
		{"detection failed", []uint16{443}, failingFinder{[]sshport.Port{std}}, nil, "cannot tell whether sshd listens on a port of --ports: reading /proc: permission denied; nothing changed"},
		{"detection failed, every port overridden", []uint16{443}, failingFinder{[]sshport.Port{std}}, []uint16{443}, ""},
		{"detection failed, 22 still refused", []uint16{22}, failingFinder{[]sshport.Port{std}}, nil, "refusing to guard port 22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{StateDir: "/nonexistent/cfguard-test", Table: "cfguard", Ports: tc.ports, APIURL: "http://192.0.2.1:1",
				SSH: tc.finder, GuardSSHPorts: tc.override}
			if err := cfg.checkSSH(); (err == nil) != (tc.want == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.want)) {
				t.Errorf("checkSSH: %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				return
			}
			for name, run := range map[string]func(context.Context, Config) (Result, error){"sync": Sync, "restore": Restore} {
				_, err := run(context.Background(), cfg)
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("%s: %v, want %q", name, err, tc.want)
				}
			}
		})
	}
}
