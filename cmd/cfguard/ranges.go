package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/internal/textsafe"
)

// interactiveFetchTimeout bounds the fetch of Cloudflare's ranges when a
// person waits for the answer (ranges, verify).
const interactiveFetchTimeout = 5 * time.Second

func rangesCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "ranges",
		Usage: "print Cloudflare's ranges: fresh, else cached, else built-in (saying which on stderr)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "plain", Usage: "plain, json, nft, nginx (set_real_ip_from) or apache (RemoteIPTrustedProxy)"},
			&cli.BoolFlag{Name: "offline", Usage: "do not fetch: cached, else built-in"},
			chinaFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			format := cmd.String("format")
			if format != "plain" && format != "json" && format != "nft" && !isRealIPFormat(format) {
				return usageErr(fmt.Errorf("--format %q: want plain, json, nft, nginx or apache", format))
			}
			list, note := currentRanges(ctx, g, cmd.Bool("offline"), cmd.Bool("china"))
			fmt.Fprintln(g.stderr, "cfguard: "+textsafe.String(note))
			switch format {
			case "json":
				return g.printJSON(list)
			case "nginx", "apache":
				return g.printRealIPFile(format, list)
			case "nft":
				v4, v6 := split(list.All())
				fmt.Fprintf(g.stdout, "define CLOUDFLARE_IPV4 = { %s }\n", join(v4))
				fmt.Fprintf(g.stdout, "define CLOUDFLARE_IPV6 = { %s }\n", join(v6))
			default:
				for _, p := range list.All() {
					fmt.Fprintln(g.stdout, p)
				}
			}
			return nil
		},
	}
}

// currentRanges returns the freshest list it can get, and a line saying
// where it came from and why.
// A person is waiting: unlike sync, which may take the whole
// cfranges.FetchTimeout, these commands fall back to the cache quickly.
func currentRanges(ctx context.Context, g *globals, offline, china bool) (cfranges.List, string) {
	var fetchErr error
	if !offline {
		f := cfranges.Fetcher{BaseURL: g.apiURL, UserAgent: "cfguard/" + version, Timeout: interactiveFetchTimeout}
		list, err := f.Fetch(ctx, china)
		if err == nil {
			return list, fmt.Sprintf("fresh from %s (etag %s)", g.apiURL, orDash(list.Etag))
		}
		fetchErr = err
	}
	list, warn := guard.Cached(g.stateDir)
	note := fmt.Sprintf("cached by the sync of %s (etag %s)", list.FetchedAt.Format("2006-01-02 15:04 MST"), orDash(list.Etag))
	if warn != "" {
		note = warn
	}
	if fetchErr != nil {
		note = "could not fetch (" + oneLine(fetchErr.Error()) + "); " + note
	}
	return list, note
}

func split(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return
}

func join(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
