package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/internal/textsafe"
)

func allowFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "allow", Sources: cli.EnvVars("CFGUARD_ALLOW"), Usage: "also allow this CIDR on the web ports (repeatable; env: comma-separated)"}
}

func chinaFlag() cli.Flag {
	return &cli.BoolFlag{Name: "china", Sources: envBools("CFGUARD_CHINA"), Usage: "also allow Cloudflare's China Network (JD Cloud) ranges"}
}

func guardSSHFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "guard-ssh-port", Sources: cli.EnvVars("CFGUARD_GUARD_SSH_PORTS"),
		Usage: "guard this port although SSH uses it (22, sshd listens on it, or this session came in on it): SSH on it then answers only Cloudflare (repeatable; env: comma-separated)"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}
}

func syncCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "fetch Cloudflare's ranges and apply them in one transaction (run by the timer)",
		Description: "The whole answer is validated before anything is touched; a bad, empty or\n" +
			"half answer changes nothing (exit 1). A list that drops more than half of the\n" +
			"installed ranges, or covers more than 4 times the addresses of the installed\n" +
			"(or built-in) list, is refused unless --force. The cache is written before the\n" +
			"firewall is touched (a full disk changes nothing); once the transaction is\n" +
			"sent, SIGTERM waits for it, and the exit code says what the kernel holds.\n\n" +
			"With --nginx-realip-file / --apache-realip-file the firewall goes first; then\n" +
			"each file is rewritten only when the ranges in it change, tested (nginx -t,\n" +
			"apachectl configtest) and the server reloaded. A rejected file is put back\n" +
			"(exit 1; the firewall stays updated). restore never touches these files.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change and change nothing"},
			chinaFlag(),
			allowFlag(),
			&cli.BoolFlag{Name: "force", Usage: "accept a list that drops more than half of the installed ranges, or grows more than 4 times"},
			guardSSHFlag(),
			jsonFlag(),
		}, realIPFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := applyConfig(g, cmd)
			if err != nil {
				return err
			}
			cfg.DryRun, cfg.Force = cmd.Bool("dry-run"), cmd.Bool("force")
			if cfg.RealIP, err = realIPConfig(cmd); err != nil {
				return err
			}
			res, err := guard.Sync(ctx, cfg)
			for _, w := range res.Warnings {
				g.warn(w)
			}
			if err != nil {
				return failed(err)
			}
			return g.printResult(cmd, res)
		},
	}
}

func restoreCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "apply the last good list with no network at all (run at boot)",
		Description: "Uses the cache written by the last successful sync; with no usable cache,\n" +
			"the copy of Cloudflare's ranges built into this binary (with a warning).",
		// No --china: the cache holds whatever the last sync fetched.
		Flags: []cli.Flag{allowFlag(), &cli.BoolFlag{Name: "dry-run", Usage: "print what would change and change nothing"}, guardSSHFlag(), jsonFlag()},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := applyConfig(g, cmd)
			if err != nil {
				return err
			}
			cfg.DryRun = cmd.Bool("dry-run")
			res, err := guard.Restore(ctx, cfg)
			for _, w := range res.Warnings {
				g.warn(w)
			}
			if err != nil {
				return failed(err)
			}
			return g.printResult(cmd, res)
		},
	}
}

func applyConfig(g *globals, cmd *cli.Command) (guard.Config, error) {
	cfg := g.guard()
	allow, err := parseAllow(cmd.StringSlice("allow"))
	if err != nil {
		return cfg, usageErr(err)
	}
	// Each --allow passed on its own; together they must not cover more
	// than a /8 (IPv4) or /16 (IPv6) either: 0.0.0.0/1 + 128.0.0.0/1 is
	// everyone.
	if err := cfranges.CheckMerged("the --allow sources", allow); err != nil {
		return cfg, usageErr(err)
	}
	cfg.Allow = allow
	for _, v := range cmd.StringSlice("guard-ssh-port") {
		ports, err := parsePorts(v)
		if err != nil {
			return cfg, usageErr(fmt.Errorf("--guard-ssh-port %q: want ports 1-65535, comma-separated", v))
		}
		cfg.GuardSSHPorts = append(cfg.GuardSSHPorts, ports...)
	}
	if cmd.IsSet("china") {
		cfg.China = cmd.Bool("china")
	}
	return cfg, nil
}

func (g *globals) printResult(cmd *cli.Command, res guard.Result) error {
	if cmd.Bool("json") {
		return g.printJSON(res)
	}
	fmt.Fprintln(g.stdout, "cfguard: "+textsafe.String(res.Summary()))
	g.printRealIP(res)
	if res.DryRun {
		for _, p := range res.Added {
			fmt.Fprintf(g.stdout, "  + %s\n", p)
		}
		for _, p := range res.Removed {
			fmt.Fprintf(g.stdout, "  - %s\n", p)
		}
		if res.Changed {
			fmt.Fprintln(g.stdout, "  (dry run: nothing was changed)")
		}
	}
	return nil
}

func removeCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "remove",
		Usage: "delete cfguard's own table (and nothing else); the web ports are open to all again",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			existed, warnings, err := guard.Remove(ctx, g.guard())
			for _, w := range warnings {
				g.warn(w)
			}
			if err != nil {
				return failed(err)
			}
			if existed {
				fmt.Fprintf(g.stdout, "cfguard: removed table inet %s; ports %s are no longer guarded\n", g.table, portList(g.ports))
			} else {
				fmt.Fprintf(g.stdout, "cfguard: table inet %s was already gone\n", g.table)
			}
			return nil
		},
	}
}

func portList(ports []uint16) string {
	s := ""
	for i, p := range ports {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(p)
	}
	return s
}
