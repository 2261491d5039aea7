package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/internal/textsafe"
)

// Defaults of the settings shared by every command (flag, environment variable).
const (
	defaultAPIURL   = "https://api.cloudflare.com/client/v4"
	defaultStateDir = "/var/lib/cfguard"
	defaultPorts    = "80,443"
	defaultTable    = "cfguard"
	// credentialName is the file systemd's LoadCredential= puts in $CREDENTIALS_DIRECTORY.
	credentialName = "cloudflare-api-token"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globals are the settings every command shares, parsed from flags and
// environment variables. Packages get plain config structs built from it.
type globals struct {
	apiURL    string
	tokenFlag string
	tokenFile string
	stateDir  string
	ports     []uint16
	table     string
	debug     bool
	stdout    io.Writer
	stderr    io.Writer
	logger    *slog.Logger

	quiet      *quietOutput // --quiet: stdout held back, printed only on failure
	realStdout io.Writer
}

func newApp(stdout, stderr io.Writer) *cli.Command {
	app, _ := newAppGlobals(stdout, stderr)
	return app
}

// newAppGlobals is newApp that also returns the settings the commands share
// (main needs them to finish --quiet).
func newAppGlobals(stdout, stderr io.Writer) (*cli.Command, *globals) {
	g := &globals{stdout: stdout, stderr: stderr}
	app := &cli.Command{
		Name:  "cfguard",
		Usage: "keep this origin reachable from Cloudflare and nobody else, and explain every 52x",
		Description: "Every setting is a flag and an environment variable, so that a systemd\n" +
			"EnvironmentFile=/etc/default/cfguard configures any command.\n\n" +
			"Exit codes: 0 done: the kernel holds the list (changed or already up to date),\n" +
			"1 the operation failed and the firewall and the cache were left as they were,\n" +
			"unless the message says what changed (status: not protected, or the last sync\n" +
			"is older than --max-age; verify: a path would fail), 2 usage error, 3 could not\n" +
			"run (verify: token refused, API unreachable; any kernel command without root).",
		Version:                         version,
		Writer:                          stdout,
		ErrWriter:                       stderr,
		EnableShellCompletion:           true,
		ConfigureShellCompletionCommand: configureCompletion,
		ArgValidator:                    checkArgs,
		ExitErrHandler:                  func(context.Context, *cli.Command, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api-url", Value: defaultAPIURL, Sources: cli.EnvVars("CFGUARD_API_URL"), Usage: "Cloudflare API base URL", Destination: &g.apiURL},
			&cli.StringFlag{Name: "api-token", Sources: cli.EnvVars("CLOUDFLARE_API_TOKEN"), Usage: "Cloudflare API token (verify only; sync needs none)", Destination: &g.tokenFlag},
			&cli.StringFlag{Name: "api-token-file", Sources: cli.EnvVars("CFGUARD_API_TOKEN_FILE"), Usage: "file holding the API token (systemd: LoadCredential=" + credentialName + ":…)", Destination: &g.tokenFile},
			&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, Sources: cli.EnvVars("CFGUARD_STATE_DIR", "STATE_DIRECTORY"), Usage: "where the last good list and the lock live", Destination: &g.stateDir},
			&cli.StringFlag{Name: "ports", Value: defaultPorts, Sources: cli.EnvVars("CFGUARD_PORTS"), Usage: "web ports, comma-separated: TCP to them answers only Cloudflare, UDP to them nobody (never 22 or a port sshd uses, unless sync/restore --guard-ssh-port names it)"},
			&cli.StringFlag{Name: "table", Value: defaultTable, Sources: cli.EnvVars("CFGUARD_TABLE"), Usage: "name of cfguard's own table (family inet)", Destination: &g.table},
			&cli.BoolFlag{Name: "debug", Sources: envBools("CFGUARD_DEBUG"), Usage: "log what cfguard does to stderr", Destination: &g.debug},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Sources: envBools("CFGUARD_QUIET"), Usage: "print nothing when the command succeeds (for cron); on failure, everything"},
		},
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			return ctx, g.parse(cmd)
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return usageErr(fmt.Errorf("unknown command %q (see cfguard --help)", cmd.Args().First()))
			}
			cli.ShowRootCommandHelp(cmd)
			return silent(exitUsage)
		},
		Commands: []*cli.Command{
			syncCommand(g),
			restoreCommand(g),
			removeCommand(g),
			statusCommand(g),
			rangesCommand(g),
			versionCommand(g),
		},
	}
	for _, c := range extraCommands {
		app.Commands = append(app.Commands, c(g))
	}
	addMetricsFile(app, g)
	markUsageErrors(app)
	requireNetAdmin(app)
	return app, g
}

// extraCommands lets a command live in its own file and register itself
// (verify.go).
var extraCommands []func(*globals) *cli.Command

// markUsageErrors makes every flag-parsing error exit with code 2.
func markUsageErrors(c *cli.Command) {
	c.OnUsageError = func(_ context.Context, cmd *cli.Command, err error, _ bool) error {
		return usageErr(describeUsageError(cmd, err))
	}
	for _, sub := range c.Commands {
		markUsageErrors(sub)
	}
}

func (g *globals) parse(cmd *cli.Command) error {
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	if cmd.Bool("quiet") && g.quiet == nil {
		g.quiet, g.realStdout = &quietOutput{}, g.stdout
		g.stdout = g.quiet
	}
	if err := checkTable(g.table); err != nil {
		return usageErr(err)
	}
	if err := checkStateDir(g.stateDir); err != nil {
		return usageErr(err)
	}
	ports, err := parsePorts(cmd.String("ports"))
	if err != nil {
		return usageErr(err)
	}
	g.ports = ports
	if err := checkAPIURL(g.apiURL); err != nil {
		return usageErr(err)
	}
	if !filepath.IsAbs(g.stateDir) {
		abs, err := filepath.Abs(g.stateDir)
		if err != nil {
			return usageErr(fmt.Errorf("--state-dir: %w", err))
		}
		g.stateDir = abs
	}
	return nil
}

func parsePorts(s string) ([]uint16, error) {
	var out []uint16
	seen := map[uint16]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--ports %q: %q is not a port (1-65535)", s, f)
		}
		if !seen[uint16(n)] {
			seen[uint16(n)] = true
			out = append(out, uint16(n))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--ports %q: name at least one port", s)
	}
	return out, nil
}

// parseAllow reads --allow values: a CIDR or a single address.
func parseAllow(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					return nil, fmt.Errorf("--allow %q: not an address or CIDR", f)
				}
				if err := checkAllowAddr(f, a, a.BitLen()); err != nil {
					return nil, err
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if err := checkAllowAddr(f, p.Addr(), p.Bits()); err != nil {
				return nil, err
			}
			if p.Bits() == 0 {
				return nil, fmt.Errorf("--allow %q would let everyone in; to stop guarding, run `cfguard remove`", f)
			}
			if p.Masked() != p {
				return nil, fmt.Errorf("--allow %q has host bits set; did you mean %s?", f, p.Masked())
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// token returns the API token from --api-token, --api-token-file, or the
// systemd credential, never echoing it anywhere.
func (g *globals) token() (string, error) {
	if g.tokenFlag != "" {
		return strings.TrimSpace(g.tokenFlag), nil
	}
	path := g.tokenFile
	if path == "" {
		if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, credentialName)); err == nil {
				path = filepath.Join(dir, credentialName)
			}
		}
	}
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the API token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("the API token file %s is empty", path)
	}
	return tok, nil
}

func (g *globals) guard() guard.Config {
	return guard.Config{
		StateDir:  g.stateDir,
		Table:     g.table,
		Ports:     g.ports,
		APIURL:    g.apiURL,
		UserAgent: "cfguard/" + version,
		Logger:    g.logger,
	}
}

// jsonSchemaVersion is the version of the JSON every command prints
// (docs/json.md lists the fields). It changes only when a field is removed,
// renamed or changes meaning; new fields may appear without a change.
const jsonSchemaVersion = 1

// printJSON prints v, a struct, as an indented JSON object whose first field
// is "schema_version", with the control and format characters encoding/json
// leaves raw escaped (textsafe.JSON).
func (g *globals) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) < 2 || b[0] != '{' {
		return fmt.Errorf("internal error: JSON output is not an object")
	}
	head := fmt.Sprintf(`{"schema_version":%d`, jsonSchemaVersion)
	if len(b) > 2 {
		head += ","
	}
	var out bytes.Buffer
	if err := json.Indent(&out, append([]byte(head), b[1:]...), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = g.stdout.Write(textsafe.JSON(out.Bytes()))
	return err
}

func (g *globals) warn(msg string) {
	fmt.Fprintln(g.stderr, "cfguard: warning: "+textsafe.String(msg))
}
