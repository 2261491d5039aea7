package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/internal/textsafe"
)

func statusCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "say whether this origin is protected (exit 1 when it is not, or when the last good sync is older than --max-age)",
		Flags: []cli.Flag{jsonFlag(), &cli.StringFlag{
			Name: "max-age", Value: defaultMaxAge, Sources: cli.EnvVars("CFGUARD_MAX_AGE"),
			Usage: "a last good sync older than this is a problem (exit 1): a Go duration such as 72h, or days such as 3d; 0 turns the check off",
		}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			maxAge, err := parseMaxAge(cmd.String("max-age"))
			if err != nil {
				return usageErr(err)
			}
			cfg := g.guard()
			cfg.MaxAge = maxAge
			st, err := guard.ReadStatus(ctx, cfg, time.Now())
			if err != nil {
				return failed(err)
			}
			if cmd.Bool("json") {
				if err := g.printJSON(st); err != nil {
					return err
				}
			} else {
				g.printStatus(st)
			}
			if !st.Protected || st.Stale {
				return silent(exitFailed)
			}
			return nil
		},
	}
}

func (g *globals) printStatus(st guard.Status) {
	w := g.stdout
	switch {
	case st.Protected && st.Stale:
		fmt.Fprintf(w, "cfguard: protected, but by a list that may be out of date: ports %s of this host answer only the Cloudflare ranges installed over TCP, and nobody over UDP (table inet %s)\n", portList(st.Ports), st.Table)
	case st.Protected:
		fmt.Fprintf(w, "cfguard: protected: ports %s of this host answer only Cloudflare over TCP, and nobody over UDP (table inet %s)\n", portList(st.Ports), st.Table)
	default:
		fmt.Fprintf(w, "cfguard: NOT protected (table inet %s)\n", st.Table)
	}
	if st.Present && st.Owned {
		fmt.Fprintf(w, "  ranges:    %d IPv4 + %d IPv6 Cloudflare", st.IPv4, st.IPv6)
		if st.Allow > 0 {
			fmt.Fprintf(w, ", %d allowed by --allow", st.Allow)
		}
		fmt.Fprintln(w)
	}
	if st.LastSync != nil {
		fmt.Fprintf(w, "  last sync: %s (%s ago), etag %s\n", st.LastSync.Format(time.RFC3339), (time.Duration(st.AgeSeconds) * time.Second).String(), orDash(textsafe.String(st.Etag)))
	} else if st.CacheError != "" {
		fmt.Fprintf(w, "  last sync: %s\n", textsafe.String(st.CacheError))
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  problem:   %s\n", textsafe.String(p))
	}
}

// defaultMaxAge is how old the last good sync may be before status says
// so and exits 1: the timer runs every few hours, so three days of failures
// is a broken timer or a host that cannot reach the API.
const defaultMaxAge = "72h"

// parseMaxAge reads --max-age: a Go duration ("72h", "90m") or whole days
// ("3d"); "0" turns the check off.
func parseMaxAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(t, "d"); ok && days != "" && strings.Trim(days, "0123456789") == "" {
		n, err := strconv.Atoi(days)
		if err != nil || n > 36500 {
			return 0, fmt.Errorf("--max-age %q: too many days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--max-age %q: want a duration such as 72h or 3d (0: no limit)", s)
	}
	return d, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
