package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v3"
)

// urfave/cli's --version has the alias -v, which people read as "verbose":
// keep --version alone, printing what `cfguard version` prints.
func init() {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version (as cfguard version does)", HideDefault: true, Local: true}
	cli.VersionPrinter = func(cmd *cli.Command) { fmt.Fprintln(cmd.Root().Writer, versionLine()) }
}

func versionCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit and the Go it was built with",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			fmt.Fprintln(g.stdout, versionLine())
			return nil
		},
	}
}

func versionLine() string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return fmt.Sprintf("cfguard %s (commit %s, %s, %s/%s)", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
