package main

// Validation of the command line and the environment: every mistake here is a
// usage error (exit 2) with one line that names the setting and says what
// would be accepted.

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v3"
)

// maxTableName is the longest table name the kernel takes: NFT_NAME_MAXLEN
// is 256 bytes including the terminating NUL (a 256-byte name is refused
// with ERANGE, "Numerical result out of range").
const maxTableName = 255

// tableName is what cfguard accepts as --table: a letter, then letters,
// digits, '_', '-' and '.'. The kernel takes any bytes; nft's own parser
// takes this much unquoted (it refuses a leading digit), so every name
// cfguard prints can be pasted into `nft list table inet NAME`.
var tableName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

func checkTable(name string) error {
	if !tableName.MatchString(name) || len(name) > maxTableName {
		return fmt.Errorf("--table %q: use a letter, then letters, digits, '_', '-' or '.' (at most %d)", clip(name), maxTableName)
	}
	return nil
}

func checkStateDir(dir string) error {
	if strings.TrimSpace(dir) == "" {
		return fmt.Errorf("--state-dir is empty: name the directory for the last good list and the lock (default %s)", defaultStateDir)
	}
	return nil
}

// checkAllowAddr refuses --allow addresses the firewall cannot match as
// written: a zone (fe80::1%eth0) and an IPv4-mapped IPv6 address
// (::ffff:192.0.2.1), which nftables' ip6 sets never see, since IPv4
// packets are matched as IPv4.
func checkAllowAddr(in string, a netip.Addr, bits int) error {
	if z := a.Zone(); z != "" {
		return fmt.Errorf("--allow %q: an address with a zone (%%%s) cannot be matched by the firewall; write it without %%%s", clip(in), z, z)
	}
	if a.Is4In6() {
		v4 := a.Unmap().String()
		if bits >= 96 && bits < 128 {
			v4 = netip.PrefixFrom(a.Unmap(), bits-96).String()
		}
		return fmt.Errorf("--allow %q is an IPv4-mapped IPv6 address: IPv4 clients are matched as IPv4, write %s", clip(in), v4)
	}
	return nil
}

// checkAPIURL wants an http(s) URL with a host.
func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--api-url %q: want an http(s) URL such as %s", clip(s), defaultAPIURL)
	}
	return nil
}

// describeUsageError words a flag-parsing error of urfave/cli as one line
// naming the command, with the nearest flag for an unknown one.
func describeUsageError(cmd *cli.Command, err error) error {
	prefix := cmd.Name + ": "
	if cmd.Root() == cmd {
		prefix = ""
	}
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		dashes := "--"
		if len(name) == 1 {
			dashes = "-"
		}
		hint := ""
		if name == "v" {
			hint = ": the version is --version"
		} else if s := nearestFlag(cmd, name); s != "" {
			hint = ": did you mean --" + s + "?"
		}
		return fmt.Errorf("%sunknown flag %s%s%s (see %s --help)", prefix, dashes, clip(name), hint, cmd.FullName())
	}
	return fmt.Errorf("%s%w (see %s --help)", prefix, err, cmd.FullName())
}

// nearestFlag returns the flag of cmd or its parents closest to name, as
// nearestCommand does for commands.
func nearestFlag(cmd *cli.Command, name string) string {
	best, bestD := "", 3
	for _, c := range cmd.Lineage() {
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				if len(n) < 2 {
					continue
				}
				if d := editDistance(name, n); d < bestD && d*2 < len(n) {
					best, bestD = n, d
				}
			}
		}
	}
	return best
}

// envBool is the environment source of a bool flag. It takes the words an
// EnvironmentFile holds (true/false, 1/0, yes/no, any case); anything else
// is kept in err for checkEnv to report as a usage error, instead of
// urfave/cli's own exit-1 parse error.
type envBool struct {
	name string
	bad  string // the refused value, "" when none
}

func envBools(names ...string) cli.ValueSourceChain {
	var c cli.ValueSourceChain
	for _, n := range names {
		c.Chain = append(c.Chain, &envBool{name: n})
	}
	return c
}

func (e *envBool) Lookup() (string, bool) {
	v, ok := os.LookupEnv(e.name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return "true", true
	case "false", "0", "no":
		return "false", true
	}
	e.bad = v
	return "", false
}

func (e *envBool) String() string   { return fmt.Sprintf("environment variable %q", e.name) }
func (e *envBool) GoString() string { return fmt.Sprintf("&envBool{name:%q}", e.name) }
func (e *envBool) IsFromEnv() bool  { return true }
func (e *envBool) Key() string      { return e.name }

// checkEnv reports the first refused environment value of any flag of cmd
// and its parents.
func checkEnv(cmd *cli.Command) error {
	for _, c := range cmd.Lineage() {
		for _, f := range c.Flags {
			bf, ok := f.(*cli.BoolFlag)
			if !ok {
				continue
			}
			for _, s := range bf.Sources.Chain {
				if e, ok := s.(*envBool); ok && e.bad != "" {
					return fmt.Errorf("%s=%q: want true or false (or 1/0, yes/no)", e.name, clip(e.bad))
				}
			}
		}
	}
	return nil
}

// checkArgs is the ArgValidator of every command (urfave/cli runs the
// nearest ancestor's for the command that runs). It reports a refused
// environment value first, then positional arguments: no command takes
// positional arguments, except help (a command name) and completion (a
// shell, handled by its subcommands). An unknown command gets the nearest
// name as a suggestion.
func checkArgs(_ context.Context, cmd *cli.Command) error {
	if err := checkEnv(cmd); err != nil {
		return usageErr(err)
	}
	args := cmd.Args().Slice()
	switch {
	case cmd.Name == "help":
		// cfguard help NAME: NAME must be a command of the parent.
		parent := cmd.Lineage()[1:]
		if len(args) == 0 || len(parent) == 0 {
			return nil
		}
		p := parent[0]
		if p.Command(args[0]) == nil {
			return usageErr(unknownCommand(p, args[0]))
		}
		if len(args) > 1 {
			return usageErr(fmt.Errorf("help: name one command (got %q)", strings.Join(args, " ")))
		}
		return nil
	case len(args) == 0:
		return nil
	case cmd.Name == "completion" && cmd.Root() != cmd:
		return usageErr(fmt.Errorf("completion: unknown shell %q: want bash, zsh, fish or pwsh", clip(args[0])))
	case hasSubcommands(cmd):
		return usageErr(unknownCommand(cmd, args[0]))
	}
	name := strings.TrimPrefix(cmd.FullName(), cmd.Root().Name+" ")
	return usageErr(fmt.Errorf("%s takes no arguments (got %q); see %s --help", name, clip(strings.Join(args, " ")), cmd.FullName()))
}

// hasSubcommands: urfave/cli gives every command a "help" subcommand; a
// command with others is a group (the root, completion).
func hasSubcommands(cmd *cli.Command) bool {
	for _, c := range cmd.Commands {
		if c.Name != "help" {
			return true
		}
	}
	return false
}

func unknownCommand(parent *cli.Command, name string) error {
	what := "command"
	if parent.Root() != parent {
		what = parent.Name + " subcommand"
	}
	if s := nearestCommand(parent, name); s != "" {
		return fmt.Errorf("unknown %s %q: did you mean %s? (see %s --help)", what, clip(name), s, parent.FullName())
	}
	return fmt.Errorf("unknown %s %q (see %s --help)", what, clip(name), parent.FullName())
}

// nearestCommand returns the visible command whose name is closest to name
// (at most two edits away, and fewer than half its letters), or "".
func nearestCommand(parent *cli.Command, name string) string {
	best, bestD := "", 3
	for _, c := range parent.Commands {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			d := editDistance(strings.ToLower(name), n)
			if d < bestD && d*2 < max(len(n), 2) {
				best, bestD = c.Name, d
			}
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (optimal string
// alignment) between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// clip keeps a quoted user value short in a one-line message.
func clip(s string) string {
	n := 80
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// configureCompletion makes `cfguard completion` a listed command whose
// mistakes are usage errors: no shell, an unknown shell, extra arguments.
func configureCompletion(c *cli.Command) {
	c.Hidden = false
	c.Usage = "print a shell completion script: bash, zsh, fish or pwsh"
	c.Action = func(_ context.Context, cmd *cli.Command) error {
		return usageErr(fmt.Errorf("completion: name a shell: bash, zsh, fish or pwsh (e.g. source <(cfguard completion bash))"))
	}
	markUsageErrors(c)
}
