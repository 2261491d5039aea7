package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// usageRow is one command line that must be refused as a usage error: exit
// 2, exactly one line on stderr, nothing on stdout.
type usageRow struct {
	name string
	env  map[string]string
	args []string
	want string // the line on stderr
}

var usageRows = []usageRow{
	{"table starts with a digit", nil, []string{"--table", "9x", "status"},
		`cfguard: --table "9x": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"table with a space", nil, []string{"--table", "a b", "status"},
		`cfguard: --table "a b": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"table with a slash", nil, []string{"--table", "a/b", "status"},
		`cfguard: --table "a/b": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"empty table", nil, []string{"--table", "", "status"},
		`cfguard: --table "": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"table longer than the kernel takes", nil, []string{"--table", strings.Repeat("a", 256), "status"},
		`cfguard: --table "` + strings.Repeat("a", 80) + `…": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"table with an escape", nil, []string{"--table", "a\x1b]0;x\x07", "status"},
		`cfguard: --table "a\x1b]0;x\a": use a letter, then letters, digits, '_', '-' or '.' (at most 255)`},
	{"4-in-6 mapped --allow", nil, []string{"sync", "--allow", "::ffff:192.0.2.1"},
		`cfguard: --allow "::ffff:192.0.2.1" is an IPv4-mapped IPv6 address: IPv4 clients are matched as IPv4, write 192.0.2.1`},
	{"4-in-6 mapped --allow prefix", nil, []string{"restore", "--allow", "::ffff:192.0.2.0/120"},
		`cfguard: --allow "::ffff:192.0.2.0/120" is an IPv4-mapped IPv6 address: IPv4 clients are matched as IPv4, write 192.0.2.0/24`},
	{"4-in-6 mapped in CFGUARD_ALLOW", map[string]string{"CFGUARD_ALLOW": "192.0.2.7,::ffff:192.0.2.1"}, []string{"sync"},
		`cfguard: --allow "::ffff:192.0.2.1" is an IPv4-mapped IPv6 address: IPv4 clients are matched as IPv4, write 192.0.2.1`},
	{"--allow with a zone", nil, []string{"sync", "--allow", "fe80::1%eth0"},
		`cfguard: --allow "fe80::1%eth0": an address with a zone (%eth0) cannot be matched by the firewall; write it without %eth0`},
	{"empty --state-dir", nil, []string{"--state-dir", "", "status"},
		`cfguard: --state-dir is empty: name the directory for the last good list and the lock (default /var/lib/cfguard)`},
	{"empty CFGUARD_STATE_DIR", map[string]string{"CFGUARD_STATE_DIR": " "}, []string{"status"},
		`cfguard: --state-dir is empty: name the directory for the last good list and the lock (default /var/lib/cfguard)`},
	{"CFGUARD_CHINA=maybe", map[string]string{"CFGUARD_CHINA": "maybe"}, []string{"sync"},
		`cfguard: CFGUARD_CHINA="maybe": want true or false (or 1/0, yes/no)`},
	{"CFGUARD_CHINA=maybe on ranges", map[string]string{"CFGUARD_CHINA": "maybe"}, []string{"ranges", "--offline"},
		`cfguard: CFGUARD_CHINA="maybe": want true or false (or 1/0, yes/no)`},
	{"CFGUARD_DEBUG=2", map[string]string{"CFGUARD_DEBUG": "2"}, []string{"status"},
		`cfguard: CFGUARD_DEBUG="2": want true or false (or 1/0, yes/no)`},
	{"completion of an unknown shell", nil, []string{"completion", "foo"},
		`cfguard: completion: unknown shell "foo": want bash, zsh, fish or pwsh`},
	{"completion without a shell", nil, []string{"completion"},
		`cfguard: completion: name a shell: bash, zsh, fish or pwsh (e.g. source <(cfguard completion bash))`},
	{"completion bash extra", nil, []string{"completion", "bash", "extra"},
		`cfguard: completion bash takes no arguments (got "extra"); see cfguard completion bash --help`},
	{"remove extra", nil, []string{"remove", "extra"},
		`cfguard: remove takes no arguments (got "extra"); see cfguard remove --help`},
	{"sync extra", nil, []string{"sync", "extra"},
		`cfguard: sync takes no arguments (got "extra"); see cfguard sync --help`},
	{"sync extra after flags", nil, []string{"sync", "--dry-run", "a", "b"},
		`cfguard: sync takes no arguments (got "a b"); see cfguard sync --help`},
	{"restore extra", nil, []string{"restore", "extra"},
		`cfguard: restore takes no arguments (got "extra"); see cfguard restore --help`},
	{"status extra", nil, []string{"status", "extra"},
		`cfguard: status takes no arguments (got "extra"); see cfguard status --help`},
	{"ranges extra", nil, []string{"ranges", "--offline", "extra"},
		`cfguard: ranges takes no arguments (got "extra"); see cfguard ranges --help`},
	{"verify extra", nil, []string{"verify", "extra"},
		`cfguard: verify takes no arguments (got "extra"); see cfguard verify --help`},
	{"version extra", nil, []string{"version", "extra"},
		`cfguard: version takes no arguments (got "extra"); see cfguard version --help`},
	{"-v is not --version", nil, []string{"-v"},
		`cfguard: unknown flag -v: the version is --version (see cfguard --help)`},
	{"-v after a command", nil, []string{"status", "-v"},
		`cfguard: status: unknown flag -v: the version is --version (see cfguard status --help)`},
	{"unknown flag with a near one", nil, []string{"sync", "--dryrun"},
		`cfguard: sync: unknown flag --dryrun: did you mean --dry-run? (see cfguard sync --help)`},
	{"unknown global flag with a near one", nil, []string{"--tabel", "x", "status"},
		`cfguard: unknown flag --tabel: did you mean --table? (see cfguard --help)`},
	{"API URL without a host", nil, []string{"--api-url", "https://", "ranges"},
		`cfguard: --api-url "https://": want an http(s) URL such as https://api.cloudflare.com/client/v4`},
	{"API URL of another scheme", nil, []string{"--api-url", "ftp://x", "ranges"},
		`cfguard: --api-url "ftp://x": want an http(s) URL such as https://api.cloudflare.com/client/v4`},
	{"unknown command with a near one", nil, []string{"synk"},
		`cfguard: unknown command "synk": did you mean sync? (see cfguard --help)`},
	{"unknown command, transposed letters", nil, []string{"stauts"},
		`cfguard: unknown command "stauts": did you mean status? (see cfguard --help)`},
	{"unknown command with no near one", nil, []string{"xyzzy"},
		`cfguard: unknown command "xyzzy" (see cfguard --help)`},
	{"help for an unknown command", nil, []string{"help", "synk"},
		`cfguard: unknown command "synk": did you mean sync? (see cfguard --help)`},
	{"help for two commands", nil, []string{"help", "sync", "status"},
		`cfguard: help: name one command (got "sync status")`},
	{"unknown flag", nil, []string{"sync", "--bogus"},
		`cfguard: sync: unknown flag --bogus (see cfguard sync --help)`},
	{"bad bool flag value", nil, []string{"sync", "--json=maybe"},
		`cfguard: sync: invalid value "maybe" for flag -json: parse error (see cfguard sync --help)`},
	{"--origin-ip with a zone", nil, []string{"verify", "--hostname", "www.example.com", "--ssl-mode", "full", "--origin-ip", "fe80::1%eth0"},
		`cfguard: --origin-ip "fe80::1%eth0": not an IP address (without a %zone)`},
	{"bad port", nil, []string{"--ports", "80,https", "status"},
		`cfguard: --ports "80,https": "https" is not a port (1-65535)`},
}

// runArgs runs the real app in-process, as main does, with only env set
// among cfguard's variables, and a state directory that is empty.
func runArgs(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, k := range []string{"CFGUARD_API_URL", "CLOUDFLARE_API_TOKEN", "CFGUARD_API_TOKEN_FILE", "CFGUARD_STATE_DIR", "STATE_DIRECTORY",
		"CFGUARD_PORTS", "CFGUARD_TABLE", "CFGUARD_DEBUG", "CFGUARD_CHINA", "CFGUARD_ALLOW", "CREDENTIALS_DIRECTORY"} {
		t.Setenv(k, "") // restored when the test ends
		os.Unsetenv(k)
	}
	t.Setenv("CFGUARD_STATE_DIR", t.TempDir())
	// Nothing may reach the network: an address that refuses at once.
	t.Setenv("CFGUARD_API_URL", "http://127.0.0.1:1")
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"cfguard"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrorTable(t *testing.T) {
	for _, tt := range usageRows {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runArgs(t, tt.env, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if diff := cmp.Diff(tt.want+"\n", errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out != "" {
				t.Errorf("stdout: %q, want nothing", out)
			}
		})
	}
}

// Accepted spellings: the rows above are refused for what they are, not
// because nothing is accepted.
func TestAcceptedArgs(t *testing.T) {
	for _, tt := range []usageRow{
		{"CFGUARD_CHINA=yes", map[string]string{"CFGUARD_CHINA": "yes"}, []string{"ranges", "--offline"}, ""},
		{"CFGUARD_CHINA=NO", map[string]string{"CFGUARD_CHINA": "NO"}, []string{"ranges", "--offline"}, ""},
		{"CFGUARD_CHINA=1", map[string]string{"CFGUARD_CHINA": "1"}, []string{"ranges", "--offline"}, ""},
		{"CFGUARD_CHINA=false", map[string]string{"CFGUARD_CHINA": "false"}, []string{"ranges", "--offline"}, ""},
		{"CFGUARD_CHINA empty", map[string]string{"CFGUARD_CHINA": ""}, []string{"ranges", "--offline"}, ""},
		{"table with dots and dashes", nil, []string{"--table", "cf.guard-2_x", "ranges", "--offline"}, ""},
		{"table of 255 bytes", nil, []string{"--table", "a" + strings.Repeat("b", 254), "ranges", "--offline"}, ""},
		{"completion bash", nil, []string{"completion", "bash"}, ""},
		{"help sync", nil, []string{"help", "sync"}, ""},
		{"version", nil, []string{"version"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runArgs(t, tt.env, tt.args...)
			if code != exitOK {
				t.Errorf("exit %d, want 0; stderr: %s", code, errOut)
			}
		})
	}
}

func TestVersionFlagPrintsTheVersionCommand(t *testing.T) {
	a, _, c1 := runArgs(t, nil, "--version")
	b, _, c2 := runArgs(t, nil, "version")
	if c1 != 0 || c2 != 0 || a != b || !strings.HasPrefix(a, "cfguard ") {
		t.Errorf("--version printed %q (exit %d), version printed %q (exit %d); want the same line", a, c1, b, c2)
	}
}

func TestSuggest(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for in, want := range map[string]string{"synk": "sync", "sycn": "sync", "statsu": "status", "verfy": "verify", "remvoe": "remove",
		"restor": "restore", "range": "ranges", "SYNC": "sync", "x": "", "": "", "zzzzzz": "", strings.Repeat("s", 200): ""} {
		if got := nearestCommand(app, in); got != want {
			t.Errorf("nearestCommand(%q) = %q, want %q", in, got, want)
		}
	}
}

// A few rows through the built binary (the e2e tests' build): the exit
// code and the one line are what a shell sees.
func TestUsageErrorTableBinary(t *testing.T) {
	some := map[string]bool{"table starts with a digit": true, "4-in-6 mapped --allow": true, "CFGUARD_CHINA=maybe": true,
		"remove extra": true, "-v is not --version": true, "unknown command with a near one": true, "completion of an unknown shell": true}
	for _, tt := range usageRows {
		if !some[tt.name] {
			continue
		}
		delete(some, tt.name)
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(cfguardBin, tt.args...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "CFGUARD_API_URL=http://127.0.0.1:1", "CFGUARD_STATE_DIR=" + t.TempDir()}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("%v: %v, want exit %d; stderr: %s", tt.args, err, exitUsage, errb.String())
			}
			if diff := cmp.Diff(tt.want+"\n", errb.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
	for name := range some {
		t.Errorf("no usage row named %q", name)
	}
}

// The bool flags read through envBool still show their variable in --help,
// and --version has no -v.
func TestHelpNamesEnvVars(t *testing.T) {
	root, _, _ := runArgs(t, nil, "--help")
	sync, _, _ := runArgs(t, nil, "sync", "--help")
	for _, want := range []string{"[$CFGUARD_DEBUG]", "--version "} {
		if !strings.Contains(root, want) {
			t.Errorf("cfguard --help lacks %q:\n%s", want, root)
		}
	}
	if strings.Contains(root, "-v,") || strings.Contains(root, ", -v") {
		t.Errorf("cfguard --help still offers -v:\n%s", root)
	}
	if !strings.Contains(sync, "[$CFGUARD_CHINA]") {
		t.Errorf("cfguard sync --help lacks [$CFGUARD_CHINA]:\n%s", sync)
	}
}
