package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v3"
)

// commit is set at build time with -ldflags "-X main.commit=…" (the
// Makefile passes `git rev-parse --short HEAD`). A plain `go build` leaves
// it empty and buildCommit falls back to the VCS stamp Go embeds.
var commit = ""

// urfave/cli's --version has the alias -v, which people read as "verbose":
// keep --version alone, printing what `cfguard version` prints, commit included.
func init() {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version (as cfguard version does)", HideDefault: true, Local: true}
	cli.VersionPrinter = func(cmd *cli.Command) { fmt.Fprintln(cmd.Root().Writer, versionLine()) }
}

func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return fmt.Sprintf("cfguard %s (commit %s, %s, %s/%s)", version, buildCommit(commit, bi), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildCommit is the commit the binary was built from: the -X stamp, else
// Go's vcs.revision (shortened as git does, "-dirty" when the tree had
// changes), else "unknown" (go build -buildvcs=false, or outside git).
func buildCommit(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev + dirty
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
