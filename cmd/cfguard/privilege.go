package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"
)

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/self/status's CapEff.
const capNetAdmin = 12

// kernelCommands read or write the ruleset through netlink, which the kernel
// allows only with CAP_NET_ADMIN; what each would have done is named in the
// refusal.
var kernelCommands = map[string]string{
	"sync":    "change the ruleset",
	"restore": "change the ruleset",
	"remove":  "change the ruleset",
	"status":  "read the ruleset",
	"watch":   "read the ruleset",
}

// hasNetAdmin says whether this process holds CAP_NET_ADMIN. A variable so
// that tests can pretend either way.
var hasNetAdmin = func() (bool, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false, err
	}
	return capEffHas(string(b), capNetAdmin)
}

// capEffHas reads the CapEff line of a /proc/PID/status text.
func capEffHas(status string, bit uint) (bool, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, fmt.Errorf("CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return n&(1<<bit) != 0, nil
		}
	}
	return false, fmt.Errorf("no CapEff line in /proc/self/status")
}

// requireNetAdmin makes the kernel commands refuse at once, with exit 3 ("could
// not run") and one line, when the process lacks CAP_NET_ADMIN: "not
// protected" (1) would be a guess, and a permission error from deep inside
// (mkdir of the state directory, a netlink EPERM) names the wrong fix.
func requireNetAdmin(app *cli.Command) {
	for _, c := range app.Commands {
		what, ok := kernelCommands[c.Name]
		if !ok {
			continue
		}
		name, before := c.Name, c.Before
		c.Before = func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			if ok, err := hasNetAdmin(); err == nil && !ok {
				return ctx, cannotRun(fmt.Errorf("%s needs root (CAP_NET_ADMIN) to %s; run it with sudo", name, what))
			}
			if before != nil {
				return before(ctx, cmd)
			}
			return ctx, nil
		}
	}
}
