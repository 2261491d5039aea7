// Command cfguard keeps an origin server behind Cloudflare reachable from
// Cloudflare and nobody else, and explains every path that would end in a
// 52x. See the README for the commands, and `cfguard --help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cfguard/cfguard/internal/textsafe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line and returns the exit code. The error, if any,
// is one line on stderr with every control character escaped (it may quote
// the API, a hostname or a file). Under --quiet, what the command held back
// is printed only when it failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app, g := newAppGlobals(stdout, stderr)
	err := app.Run(ctx, args)
	finishQuiet(g, err)
	if err != nil && err.Error() != "" {
		fmt.Fprintln(stderr, "cfguard: "+textsafe.String(oneLine(err.Error())))
	}
	return exitCode(err)
}
