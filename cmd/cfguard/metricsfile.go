package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/verify/metrics"
	"github.com/cfguard/cfguard/verify/report"
)

// --metrics-file: status, verify and sync also write what they found as
// Prometheus metrics, for node_exporter's textfile collector. The file is
// replaced atomically; the command's own output and exit code are unchanged.

// metricsCommands are the commands that take --metrics-file.
var metricsCommands = map[string]bool{"status": true, "verify": true, "sync": true}

// addMetricsFile gives those commands --metrics-file.
func addMetricsFile(app *cli.Command, g *globals) {
	for _, c := range app.Commands {
		if !metricsCommands[c.Name] || c.Action == nil {
			continue
		}
		c.Flags = append(c.Flags, &cli.StringFlag{Name: "metrics-file",
			Usage: "also write the result as Prometheus metrics to this file (node_exporter's textfile collector), replaced atomically"})
		c.Action = withMetricsFile(g, c.Name, c.Action)
	}
}

type reportKey struct{}

// noteReport hands verify's report to --metrics-file (a no-op without it).
func noteReport(ctx context.Context, rep *report.Report) {
	if p, ok := ctx.Value(reportKey{}).(**report.Report); ok {
		*p = rep
	}
}

func withMetricsFile(g *globals, name string, action cli.ActionFunc) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		path := cmd.String("metrics-file")
		if path == "" {
			return action(ctx, cmd)
		}
		if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
			return usageErr(fmt.Errorf("--metrics-file %s: the directory %s does not exist", path, filepath.Dir(path)))
		}
		if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
			return usageErr(fmt.Errorf("--metrics-file %s is not a regular file", path))
		}
		var rep *report.Report
		ctx = context.WithValue(ctx, reportKey{}, &rep)
		start := time.Now()
		err := action(ctx, cmd)
		if exitCode(err) == exitUsage {
			return err // nothing ran: nothing to say
		}
		m := metrics.New()
		switch name {
		case "verify":
			m.SetReport(rep, start)
		case "sync":
			if !cmd.Bool("dry-run") {
				m.SetSync(start, err)
			}
			fallthrough
		case "status":
			if st, serr := guard.ReadStatus(ctx, g.guard(), time.Now()); serr == nil {
				m.SetGuard(st)
			}
		}
		if werr := m.WriteFile(path); werr != nil {
			if err == nil {
				return failed(werr)
			}
			g.warn(werr.Error())
		}
		return err
	}
}
