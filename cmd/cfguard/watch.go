package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
	"github.com/cfguard/cfguard/systemd/recovery"
	"github.com/cfguard/cfguard/verify"
	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/metrics"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
	"github.com/cfguard/cfguard/verify/watch"
)

func init() { extraCommands = append(extraCommands, watchCommand) }

// Defaults of watch.
const (
	defaultMetricsListen = "127.0.0.1:9847"
	// metricsShutdown bounds the metrics server's shutdown.
	metricsShutdown = 2 * time.Second
)

// newRecoverer connects to systemd for --recover; nil in a build without
// the D-Bus implementation (then --recover refuses to start). With
// systemd/recovery.New it is:
//
//	newRecoverer = func(ctx context.Context) (recovery.Recoverer, func(), error) {
//		s, err := recovery.New(ctx)
//		if err != nil {
//			return nil, nil, err
//		}
//		return s, s.Close, nil
//	}
var newRecoverer func(ctx context.Context) (recovery.Recoverer, func(), error)

func watchCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "watch this origin continuously: backends, listeners, error and kernel logs, the guard; serve Prometheus metrics; bring a dead or hung backend back with --recover",
		Description: "Runs until stopped (systemd: cfguard-watch.service, Type=notify with a watchdog).\n" +
			"Without an API token it watches the backends the web server configuration names;\n" +
			"with one (or --hostname and --ssl-mode) it also walks every path from Cloudflare (the full\n" +
			"verify) every --paths-every, reading the API every --full-every and its cached answers between.\n" +
			"Recovery is off unless --recover or CFGUARD_RECOVER=yes: then a backend down twice in a\n" +
			"row, or hung (--hung-after probes in a row time out, or its pool is saturated), is\n" +
			"restarted through systemd after its configuration test passes, rate-limited per unit.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: watch.DefaultInterval, Sources: cli.EnvVars("CFGUARD_WATCH_INTERVAL"), Usage: "between rounds of fast checks"},
			&cli.DurationFlag{Name: "full-every", Value: watch.DefaultFullEvery, Sources: cli.EnvVars("CFGUARD_WATCH_FULL_EVERY"), Usage: "between reads of the Cloudflare API (zones, settings, records) and rediscoveries of the web servers"},
			&cli.DurationFlag{Name: "paths-every", Value: watch.DefaultPathsEvery, Sources: cli.EnvVars("CFGUARD_WATCH_PATHS_EVERY"), Usage: "between walks of every path from Cloudflare (the full verify, on the zone data read last)"},
			&cli.BoolFlag{Name: "recover", Usage: "restart a dead or hung backend's unit through systemd (also CFGUARD_RECOVER=yes)"},
			&cli.IntFlag{Name: "hung-after", Value: watch.DefaultHungAfter, Sources: cli.EnvVars("CFGUARD_WATCH_HUNG_AFTER"), Usage: "probes in a row that time out before a backend is hung"},
			&cli.DurationFlag{Name: "probe-timeout", Value: watch.DefaultProbeTimeout, Sources: cli.EnvVars("CFGUARD_WATCH_PROBE_TIMEOUT"), Usage: "how long a fast probe waits for an answer"},
			&cli.StringFlag{Name: "metrics-listen", Value: defaultMetricsListen, Sources: cli.EnvVars("CFGUARD_METRICS_LISTEN"), Usage: "address to serve /metrics on, or \"off\""},
			&cli.StringFlag{Name: "kernel-log", Value: "/dev/kmsg", Usage: "the kernel log to follow for OOM kills, or \"off\""},
			// The full verify's flags.
			&cli.StringSliceFlag{Name: "zone", Usage: "full verify: only this zone (repeatable)"},
			&cli.StringSliceFlag{Name: "hostname", Usage: "full verify: only this hostname; without a token, the hostnames (repeatable)"},
			&cli.StringFlag{Name: "ssl-mode", Usage: "full verify without a token: the zone's SSL mode"},
			&cli.StringSliceFlag{Name: "origin-ip", Usage: "full verify: an address of this origin that is on no interface (repeatable)"},
			&cli.DurationFlag{Name: "timeout", Value: verify.DefaultProbeTimeout, Usage: "full verify: how long each probe waits"},
			&cli.DurationFlag{Name: "since", Value: defaultSince, Usage: "full verify: how far back to read the logs"},
			&cli.IntFlag{Name: "concurrency", Value: verify.DefaultConcurrency, Usage: "full verify: probes at once"},
			&cli.StringFlag{Name: "nginx-config", Usage: "nginx's main configuration file (default: that of the running nginx)"},
			&cli.StringFlag{Name: "apache-config", Usage: "Apache's main configuration file (default: that of the running httpd)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return g.runWatch(ctx, cmd) },
	}
}

// recoverEnv reads CFGUARD_RECOVER: yes/no (true/false, 1/0).
func recoverEnv(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "no", "false", "0", "off":
		return false, nil
	case "yes", "true", "1", "on":
		return true, nil
	}
	return false, fmt.Errorf("CFGUARD_RECOVER=%q: want yes or no", v)
}

func (g *globals) runWatch(ctx context.Context, cmd *cli.Command) error {
	cfg := watch.Config{
		Interval:     cmd.Duration("interval"),
		FullEvery:    cmd.Duration("full-every"),
		PathsEvery:   cmd.Duration("paths-every"),
		HungAfter:    int(cmd.Int("hung-after")),
		ProbeTimeout: cmd.Duration("probe-timeout"),
	}
	if cfg.Interval < 100*time.Millisecond || cfg.FullEvery < cfg.Interval || cfg.HungAfter < 1 || cfg.ProbeTimeout <= 0 {
		return usageErr(fmt.Errorf("watch: --interval must be at least 100ms, --full-every at least --interval, --hung-after and --probe-timeout positive"))
	}
	if !cmd.IsSet("paths-every") {
		cfg.PathsEvery = min(cfg.PathsEvery, cfg.FullEvery)
	}
	if cfg.PathsEvery < cfg.Interval || cfg.PathsEvery > cfg.FullEvery {
		return usageErr(fmt.Errorf("watch: --paths-every must be between --interval and --full-every"))
	}
	rec, err := recoverEnv(os.Getenv("CFGUARD_RECOVER"))
	if err != nil {
		return usageErr(err)
	}
	cfg.Recover = rec || cmd.Bool("recover")
	listen := cmd.String("metrics-listen")
	if listen != "off" {
		if _, _, err := net.SplitHostPort(listen); err != nil {
			return usageErr(fmt.Errorf("--metrics-listen %q: want host:port or off", listen))
		}
	}

	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	m := metrics.New()
	m.AddRuntime()

	s := watch.Seams{
		Discover: func(ctx context.Context) (watch.Backends, error) {
			a, fs, err := backend.Discover(ctx, backend.Options{
				NginxConfig: cmd.String("nginx-config"), ApacheConfig: cmd.String("apache-config"),
				Since: cfg.Interval, Timeout: cfg.ProbeTimeout, Logger: logger,
			})
			for _, f := range fs {
				logger.Debug("discovery: "+f.Message, "severity", string(f.Severity))
			}
			if err != nil {
				return nil, err
			}
			return a, nil
		},
		Listener: listenerCheck,
		Guard:    guardSeam{g.guard()},
		Follow:   func(files []backend.LogFile) watch.Follower { return watch.FollowFiles(files) },
	}
	if k := cmd.String("kernel-log"); k != "off" {
		kf, err := watch.FollowKernel(k)
		if err != nil {
			logger.Info("not following the kernel log: OOM kills are seen only by the full verify", "path", k, "err", err)
		} else {
			s.Kernel = kf
		}
	}
	if cfg.Recover {
		if newRecoverer == nil {
			return failed(errors.New("watch --recover: this build has no systemd recovery"))
		}
		r, closeFn, err := newRecoverer(ctx)
		if err != nil {
			return failed(fmt.Errorf("watch --recover: %w", err))
		}
		defer closeFn()
		s.Recoverer = r
		if cf, ok := r.(recovery.ChangeFollower); ok {
			s.Changes = cf.Changes
		}
	}
	tok, err := g.token()
	if err != nil {
		return cannotRun(err)
	}
	if tok != "" || len(splitList(cmd.StringSlice("hostname"))) > 0 {
		vcfg, err := g.verifyConfig(ctx, cmd)
		if err != nil {
			return err
		}
		vcfg.ZoneCache = verify.NewZoneCache(cfg.FullEvery)
		s.Verify = func(ctx context.Context) (*report.Report, error) {
			// Cloudflare's ranges as the last sync cached them (the list the
			// firewall holds, without a fetch every walk); before any sync,
			// the list read at the start.
			c := vcfg
			if list, warn := guard.Cached(g.stateDir); warn == "" {
				c.Cloudflare = list.All()
			}
			return verify.Run(ctx, c, logger)
		}
	} else {
		logger.Info("no API token and no --hostname: watching the backends the web server configuration names, without the full verify")
	}
	s.Alive = func() { daemon.SdNotify(false, daemon.SdNotifyWatchdog) }
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 && cfg.Interval > wd/2 {
		logger.Warn("--interval is more than half of systemd's WatchdogSec: the watchdog may kill the watch", "interval", cfg.Interval, "watchdog", wd)
	}

	stopMetrics, err := serveMetrics(listen, m, logger)
	if err != nil {
		return failed(err)
	}
	defer stopMetrics()
	logger.Info("watching", "interval", cfg.Interval, "full_every", cfg.FullEvery, "recover", cfg.Recover, "metrics", listen)
	w := watch.New(cfg, s, m, logger)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				w.Rediscover()
			case <-ctx.Done():
				return
			}
		}
	}()
	return w.Run(ctx, func(state string) { daemon.SdNotify(false, state) })
}

// serveMetrics serves /metrics on addr ("off": not at all).
func serveMetrics(addr string, m *metrics.Metrics, logger *slog.Logger) (stop func(), err error) {
	if addr == "off" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving metrics: %w (set --metrics-listen or CFGUARD_METRICS_LISTEN, or off)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("the metrics server stopped", "err", err)
		}
	}()
	logger.Debug("serving metrics", "address", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdown)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// listenerCheck is verify's listener stage on one of a web server's
// addresses: "" when it accepts, else the cause.
func listenerCheck(ctx context.Context, web backend.Web, i int) string {
	a := web.Listens[i]
	o := probe.Listener(ctx, probe.Target{Hostname: web.Kind, Addr: a.Addr(), Port: int(a.Port()), Scheme: "http"})
	if o.Fail {
		return o.Cause
	}
	return ""
}

// guardSeam is internal/guard for the watch.
type guardSeam struct{ cfg guard.Config }

func (s guardSeam) Status(ctx context.Context, now time.Time) (guard.Status, error) {
	return guard.ReadStatus(ctx, s.cfg, now)
}
func (s guardSeam) Restore(ctx context.Context) (guard.Result, error) {
	return guard.Restore(ctx, s.cfg)
}
