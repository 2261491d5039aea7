// Command cfguard keeps an origin server behind Cloudflare reachable from
// Cloudflare and nobody else, and explains every path that would end in a
// 52x. See the README for the commands, and `cfguard --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, g := newAppGlobals(os.Stdout, os.Stderr)
	err := app.Run(ctx, os.Args)
	finishQuiet(g, err)
	if err != nil && err.Error() != "" {
		fmt.Fprintln(os.Stderr, "cfguard: "+oneLine(err.Error()))
	}
	os.Exit(exitCode(err))
}
