package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/manpage"
)

func init() { extraCommands = append(extraCommands, manCommand) }

// manCommand prints cfguard(1) from the command tree itself, so the manual
// lists exactly the commands and flags this binary parses. Hidden: the
// package build (make deb) runs it; people read `man cfguard`.
func manCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:   "man",
		Hidden: true,
		Usage:  "print the cfguard(1) manual page (roff)",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return usageErr(fmt.Errorf("man takes no arguments (got %q)", cmd.Args().First()))
			}
			return manpage.Write(g.stdout, cmd.Root(), manpage.Page{
				Section: 1,
				Date:    manDate(os.Getenv("SOURCE_DATE_EPOCH")),
				Source:  "cfguard " + version,
				Manual:  "User Commands",
				Extra:   manExtra,
			})
		},
	}
}

// manDate is the page's date: the reproducible-builds SOURCE_DATE_EPOCH
// when set (the package build sets it to the commit's time), else none, so
// the same binary always prints the same page.
func manDate(epoch string) string {
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || n <= 0 {
		return ""
	}
	return time.Unix(n, 0).UTC().Format("2006-01-02")
}

var manExtra = []manpage.Section{
	{Title: "Files", Body: "/etc/default/cfguard: settings for the systemd units, one environment variable a line (see ENVIRONMENT).\n\n" +
		"/etc/cfguard/api-token: the read-only Cloudflare API token for verify, mode 0600; the units receive it through LoadCredential=.\n\n" +
		defaultStateDir + ": the last good list of ranges and the lock (systemd's StateDirectory=).\n\n" +
		"cfguard-sync.service, cfguard-sync.timer, cfguard-restore.service: the systemd units: sync four times a day, restore at boot before the network comes up."},
	{Title: "See also", Body: "nft(8), systemctl(1), systemd.timer(5)"},
}
