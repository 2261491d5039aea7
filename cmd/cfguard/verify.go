package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify"
	"github.com/cfguard/cfguard/verify/report"
)

func init() { extraCommands = append(extraCommands, verifyCommand) }

// defaultSince is the log window the backend analysis reads.
const defaultSince = 15 * time.Minute

func verifyCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "predict every Cloudflare-to-origin path that would end in a 5xx, with its cause and fix (exit 1 when one would)",
		Description: "With an API token (--api-token-file, CLOUDFLARE_API_TOKEN; Zone:Read, Zone Settings:Read,\n" +
			"DNS:Read) every zone the token reads, or --zone; without one, --hostname and --ssl-mode with\n" +
			"this host's own addresses. With Config Rules:Read, Origin Rules:Read and Page Rules:Read too,\n" +
			"the paths follow the zone's per-hostname rules (SSL mode, port, origin, Host, SNI). Exit codes: 0 no path would fail, 1 at least one would,\n" +
			"2 usage error, 3 verify could not run (token refused, API unreachable or answering\n" +
			"garbage, a --hostname with no proxied record in the zones the token reads).",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "zone", Usage: "check only this zone (repeatable)"},
			&cli.StringSliceFlag{Name: "hostname", Usage: "check only this hostname; without a token, the hostnames to check (repeatable)"},
			&cli.StringFlag{Name: "ssl-mode", Usage: "without a token: the zone's SSL mode (off, flexible, full, strict, origin_pull)"},
			&cli.StringSliceFlag{Name: "origin-ip", Usage: "an address of this origin that is on no interface: 1:1 NAT, a cloud's public IP (repeatable)"},
			&cli.DurationFlag{Name: "timeout", Value: verify.DefaultProbeTimeout, Usage: "how long each probe waits for an answer"},
			&cli.DurationFlag{Name: "since", Value: defaultSince, Usage: "how far back to read the web server's and the kernel's logs"},
			&cli.StringFlag{Name: "nginx-config", Usage: "nginx's main configuration file (default: that of the running nginx)"},
			&cli.StringFlag{Name: "apache-config", Usage: "Apache's main configuration file (default: that of the running httpd)"},
			&cli.StringSliceFlag{Name: "fpm-config", Usage: "a php-fpm.conf to read besides the running pools' and /etc/php/*/fpm's (repeatable)"},
			&cli.IntFlag{Name: "concurrency", Value: verify.DefaultConcurrency, Usage: "probes at once"},
			jsonFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := g.verifyConfig(ctx, cmd)
			if err != nil {
				return err
			}
			var progress *progressLine
			if !cmd.Bool("json") && g.quiet == nil && colorOutput(g.stderr, os.Getenv) {
				progress = &progressLine{w: g.stderr, now: time.Now}
				cfg.Progress = progress.update
			}
			rep, err := verify.Run(ctx, cfg, g.logger)
			noteReport(ctx, rep)
			if progress != nil {
				progress.clear()
			}
			if err != nil {
				return redactErr(cannotRun(err), cfg.Token)
			}
			out := redactingWriter(g.stdout, cfg.Token)
			if cmd.Bool("json") {
				err = report.WriteJSON(out, rep)
			} else {
				err = report.WriteText(out, rep, colorOutput(g.stdout, os.Getenv))
			}
			if err != nil {
				return err
			}
			if rep.Summary.Failing > 0 {
				return silent(exitFailed)
			}
			return nil
		},
	}
}

// verifyConfig turns the flags into verify's Config.
func (g *globals) verifyConfig(ctx context.Context, cmd *cli.Command) (verify.Config, error) {
	tok, err := g.token()
	if err != nil {
		return verify.Config{}, cannotRun(err)
	}
	cfg := verify.Config{
		APIBaseURL:   g.apiURL,
		Token:        tok,
		UserAgent:    "cfguard/" + version,
		Zones:        splitList(cmd.StringSlice("zone")),
		Hostnames:    splitList(cmd.StringSlice("hostname")),
		SSLMode:      strings.ToLower(cmd.String("ssl-mode")),
		Timeout:      cmd.Duration("timeout"),
		Since:        cmd.Duration("since"),
		NginxConfig:  cmd.String("nginx-config"),
		ApacheConfig: cmd.String("apache-config"),
		FPMConfigs:   cmd.StringSlice("fpm-config"),
		Concurrency:  int(cmd.Int("concurrency")),
	}
	if cfg.SSLMode != "" && !verify.ValidSSLMode(cfg.SSLMode) {
		return cfg, usageErr(fmt.Errorf("--ssl-mode %q: want off, flexible, full, strict or origin_pull", cfg.SSLMode))
	}
	if tok == "" && len(cfg.Hostnames) == 0 {
		return cfg, usageErr(fmt.Errorf("no API token: give one (--api-token-file or CLOUDFLARE_API_TOKEN), or name the hostnames with --hostname and their zone's --ssl-mode"))
	}
	if tok == "" && cfg.SSLMode == "" {
		return cfg, usageErr(fmt.Errorf("without an API token, say the zone's SSL mode with --ssl-mode (off, flexible, full, strict or origin_pull)"))
	}
	if tok == "" && len(cfg.Zones) > 0 {
		return cfg, usageErr(fmt.Errorf("--zone needs an API token to read the zone"))
	}
	if cfg.Timeout <= 0 || cfg.Since < 0 || cfg.Concurrency < 1 {
		return cfg, usageErr(fmt.Errorf("--timeout and --concurrency must be positive, --since not negative"))
	}
	for _, s := range splitList(cmd.StringSlice("origin-ip")) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return cfg, usageErr(fmt.Errorf("--origin-ip %q: not an IP address (without a %%zone)", clip(s)))
		}
		cfg.OriginIPs = append(cfg.OriginIPs, a.Unmap())
	}
	list, note := currentRanges(ctx, g, false, false)
	g.logger.Debug("verify: Cloudflare ranges", "source", note)
	if !strings.HasPrefix(note, "fresh") {
		g.warn("Cloudflare's ranges: " + note)
	}
	cfg.Cloudflare = list.All()
	return cfg, nil
}

// splitList accepts repeated flags and comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// colorOutput: colour only when w is a terminal, and never with NO_COLOR
// set or TERM=dumb.
func colorOutput(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// A terminal answers TCGETS; a pipe, a file or /dev/null does not.
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
