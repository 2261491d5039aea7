package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/internal/textsafe"
)

func statusCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "say whether this origin is protected (exit 1 when it is not)",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			st, err := guard.ReadStatus(ctx, g.guard(), time.Now())
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
			if !st.Protected {
				return silent(exitFailed)
			}
			return nil
		},
	}
}

func (g *globals) printStatus(st guard.Status) {
	w := g.stdout
	if st.Protected {
		fmt.Fprintf(w, "cfguard: protected: ports %s of this host answer only Cloudflare over TCP, and nobody over UDP (table inet %s)\n", portList(st.Ports), st.Table)
	} else {
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
