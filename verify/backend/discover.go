package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/backend/apacheconf"
	"github.com/cfguard/cfguard/verify/backend/fpm"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

// Timeouts of discovery.
const (
	NginxDumpTimeout = 10 * time.Second // nginx -T
)

// Where Debian keeps things.
const (
	debianNginxConf  = "/etc/nginx/nginx.conf"
	debianApacheConf = "/etc/apache2/apache2.conf"
	debianApacheRoot = "/etc/apache2"
	debianEnvvars    = "/etc/apache2/envvars"
	debianFPMConfs   = "/etc/php/*/fpm/php-fpm.conf"
	fpmLogPrefix     = "/var" // FPM resolves a relative error_log against its prefix
)

// webServer is one running (or configured) nginx or Apache.
type webServer struct {
	kind    string // "nginx" or "Apache"
	conf    string
	master  *proc
	nginx   *nginxconf.Config
	apache  *apacheconf.Config
	workers cred
	hasCred bool
	unit    string
}

// fpmInstance is one php-fpm.conf, running or not.
type fpmInstance struct {
	cfg    *fpm.Config
	master *proc // nil when not running
	unit   string
	// unitFrom says where a unit name not read from the master's cgroup
	// came from ("the path of /etc/php/8.2/fpm/php-fpm.conf"), "" when read.
	unitFrom string
}

// Analyzer holds what Discover found; Analyze is safe for concurrent use.
type Analyzer struct {
	opts   Options
	now    time.Time
	webs   []*webServer
	fpms   []*fpmInstance
	counts []logs.Count // the visitors' lines of the window (verify's own left out)
	// ownEarlier tallies the lines of the window about verify's own
	// earlier requests (left out of counts); tails read on from where
	// discovery stopped, to find what this run's requests caused
	// (readback.go).
	ownEarlier []logs.Count
	tails      map[string]*logTail
	systemd    bool // the service manager is systemd (sd_booted)
	sys        system
	ps         []*proc
	log        *slog.Logger

	listenOnce sync.Once
	listeners  map[string]string // "tcp 127.0.0.1:3000" → unit, read on first need

	mu     sync.Mutex
	probes map[string]*probeOnce

	umu   sync.Mutex            // held while systemctl runs; probes do not wait for it
	units map[string]*unitState // "php8.2-fpm.service" → its state; nil: asked, not known
}

// debug logs a Debug line when there is a logger.
func (a *Analyzer) debug(msg string, args ...any) {
	if a.log != nil {
		a.log.Debug(msg, args...)
	}
}

type probeOnce struct {
	once sync.Once
	res  probeResult
}

func (o *Options) defaults() {
	if o.Since <= 0 {
		o.Since = DefaultSince
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CloudflareReadTimeout <= 0 {
		o.CloudflareReadTimeout = DefaultCloudflareReadTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Discover finds the web servers, their configurations and backends, the
// PHP-FPM pools, reads the logs of the window and the host's state. Lack of
// permission or of a web server is reported once as an info finding; the
// error is only for a broken override (a config file that cannot be read).
func Discover(ctx context.Context, opts Options) (*Analyzer, []report.Finding, error) {
	return discover(ctx, opts, realSystem)
}

// system is what discovery reads besides procfs (Options.ProcRoot) and the
// configuration and log files it finds: the kernel log, Debian's FPM
// configurations, `nginx -T`, the file systems and the service manager.
// Tests replace it.
type system struct {
	readKernel  func(ctx context.Context, since time.Time) ([]logs.Entry, string, error)
	fpmConfGlob string
	nginxDump   func(ctx context.Context, bin string, args ...string) ([]byte, error)
	statfs      statfsFunc
	// booted reports whether systemd is the service manager (sd_booted);
	// nil = it is not.
	booted func() bool
	// showUnits is `systemctl show -p <unitProps> -- UNIT.service…`: its
	// KEY=VALUE output, one block per unit in the order asked.
	showUnits func(ctx context.Context, units []string) ([]byte, error)
}

var realSystem = system{
	readKernel:  logs.ReadKernel,
	fpmConfGlob: debianFPMConfs,
	nginxDump: func(ctx context.Context, bin string, args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, bin, args...).Output()
	},
	statfs:    unix.Statfs,
	booted:    func() bool { return sdBooted(sdBootedDir) },
	showUnits: systemctlShow,
}

func discover(ctx context.Context, opts Options, sys system) (*Analyzer, []report.Finding, error) {
	opts.defaults()
	a := &Analyzer{opts: opts, now: time.Now(), probes: map[string]*probeOnce{}, tails: map[string]*logTail{}, sys: sys, log: opts.Logger, units: map[string]*unitState{}}
	var findings []report.Finding
	var unreadable []string

	ps, denied := scanProcs(opts.ProcRoot)
	a.ps = ps
	if denied > 0 {
		unreadable = append(unreadable, fmt.Sprintf("%d processes in %s", denied, opts.ProcRoot))
	}
	a.systemd = sys.booted != nil && sys.booted()
	if !a.systemd {
		a.debug("systemd is not the service manager (no " + sdBootedDir + "): unit states not read")
	}

	// nginx
	if opts.NginxConfig != "" {
		var master *proc
		for _, p := range nginxMasters(ps) {
			if same, known := sameRoot(opts.ProcRoot, p.pid); nginxConfOf(p) == opts.NginxConfig && same && known {
				master = p
			}
		}
		w, err := loadNginx(ctx, sys, opts.ProcRoot, opts.NginxConfig, master, ps)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the nginx configuration %s: %w", opts.NginxConfig, err)
		}
		a.webs = append(a.webs, w)
	} else {
		seen := map[string]bool{}
		for _, p := range nginxMasters(ps) {
			conf := nginxConfOf(p)
			if seen[conf] {
				continue
			}
			seen[conf] = true
			w, err := loadNginx(ctx, sys, opts.ProcRoot, conf, p, ps)
			if errors.Is(err, errOtherRoot) {
				findings = append(findings, otherRootFinding("nginx", p))
				continue
			}
			if err != nil {
				findings = append(findings, report.Finding{Severity: report.SeverityWarning,
					Message: fmt.Sprintf("nginx (pid %d) runs with %s, which cannot be read: %v", p.pid, conf, err)})
				continue
			}
			a.webs = append(a.webs, w)
		}
	}

	// Apache
	if opts.ApacheConfig != "" {
		var master *proc
		for _, p := range apacheMasters(ps) {
			if c, _ := apacheConfOf(p); c == opts.ApacheConfig {
				if same, known := sameRoot(opts.ProcRoot, p.pid); same && known {
					master = p
				}
			}
		}
		w, err := loadApache(ctx, opts.ApacheConfig, master, ps, opts.ProcRoot)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the Apache configuration %s: %w", opts.ApacheConfig, err)
		}
		a.webs = append(a.webs, w)
	} else {
		seen := map[string]bool{}
		for _, p := range apacheMasters(ps) {
			conf, _ := apacheConfOf(p)
			if seen[conf] {
				continue
			}
			seen[conf] = true
			w, err := loadApache(ctx, conf, p, ps, opts.ProcRoot)
			if errors.Is(err, errOtherRoot) {
				findings = append(findings, otherRootFinding("Apache", p))
				continue
			}
			if err != nil {
				findings = append(findings, report.Finding{Severity: report.SeverityWarning,
					Message: fmt.Sprintf("Apache (pid %d) runs with %s, which cannot be read: %v", p.pid, conf, err)})
				continue
			}
			a.webs = append(a.webs, w)
		}
	}
	if len(a.webs) == 0 {
		findings = append(findings, report.Finding{Severity: report.SeverityInfo,
			Message: "no running nginx or Apache found: the backends behind the web server were not examined",
			Fix:     "name the configuration with --nginx-config or --apache-config"})
	}

	// PHP-FPM: the running masters, then Debian's configured versions.
	seenFPM := map[string]bool{}
	for _, p := range ps {
		conf, ok := fpmConfOf(p)
		if !ok || seenFPM[conf] {
			continue
		}
		if same, known := sameRoot(opts.ProcRoot, p.pid); known && !same {
			// Its php-fpm.conf is a path in its own file system.
			findings = append(findings, otherRootFinding("PHP-FPM", p))
			continue
		}
		seenFPM[conf] = true
		cfg, err := fpm.Load(conf)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				unreadable = append(unreadable, conf)
			}
			continue
		}
		inst := &fpmInstance{cfg: cfg, master: p, unit: strings.TrimSuffix(p.unit, ".service")}
		if inst.unit == "" {
			inst.unit, inst.unitFrom = cfg.Unit(), "the path of "+conf
		}
		a.fpms = append(a.fpms, inst)
	}
	confs, _ := filepath.Glob(sys.fpmConfGlob)
	sort.Strings(confs)
	for _, conf := range append(confs, opts.FPMConfigs...) {
		if seenFPM[conf] {
			continue
		}
		seenFPM[conf] = true
		if cfg, err := fpm.Load(conf); err == nil {
			a.fpms = append(a.fpms, &fpmInstance{cfg: cfg, unit: cfg.Unit(), unitFrom: "the path of " + conf})
		}
	}

	// The service manager: the web servers' and PHP-FPM's units.
	if a.systemd {
		fs, err := a.unitFindings(ctx)
		if err != nil {
			a.debug("reading unit states", "err", err)
			findings = append(findings, report.Finding{Severity: report.SeverityInfo,
				Message: fmt.Sprintf("could not ask systemd for the state of the web server's and backends' units (%v): fixes name units without knowing whether they failed", err),
				Fix:     "check that systemd answers: systemctl status"})
		}
		findings = append(findings, fs...)
	}

	// Logs of the window.
	since := a.now.Add(-opts.Since)
	var entries []logs.Entry
	readLog := func(src logs.Source, path string) {
		es, err := logs.ReadFile(ctx, src, path, since)
		switch {
		case err == nil:
			entries = append(entries, es...)
		case errors.Is(err, os.ErrPermission):
			unreadable = append(unreadable, path)
		}
	}
	seenLog := map[string]bool{}
	for _, w := range a.webs {
		var files []string
		src := logs.Nginx
		if w.nginx != nil {
			files = w.nginx.ErrorLogs()
		} else {
			files, src = w.apache.ErrorLogs(), logs.Apache
		}
		for _, f := range files {
			if !seenLog[f] {
				seenLog[f] = true
				readLog(src, f)
				a.tails[f] = newTail(src, f)
			}
		}
	}
	for _, f := range a.fpms {
		p := f.cfg.ErrorLog
		if p == "" || p == "syslog" || strings.HasPrefix(p, "syslog") {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(fpmLogPrefix, p)
		}
		if !seenLog[p] {
			seenLog[p] = true
			readLog(logs.FPM, p)
		}
	}
	kern, _, err := sys.readKernel(ctx, since)
	if err != nil {
		unreadable = append(unreadable, "the kernel log")
	}
	entries = append(entries, kern...)
	visitors, _ := logs.Visitors(entries)
	a.counts = logs.Tally(visitors)
	a.ownEarlier = logs.Tally(slices.DeleteFunc(slices.Clone(entries), func(e logs.Entry) bool { return !logs.Own(e) }))

	// The host.
	findings = append(findings, readHost(opts.ProcRoot).findings()...)
	findings = append(findings, a.oomFindings()...)
	findings = append(findings, a.realIPFindings()...)
	for _, w := range a.webs {
		if w.nginx != nil {
			findings = append(findings, diskFindings("nginx", w.nginx.TempPaths(), sys.statfs)...)
		}
	}
	if len(unreadable) > 0 {
		findings = append(findings, report.Finding{Severity: report.SeverityInfo,
			Message: "could not read " + strings.Join(unreadable, ", ") + ": the backend analysis may miss evidence",
			Fix:     "run cfguard verify as root"})
	}
	return a, findings, nil
}

func nginxMasters(ps []*proc) []*proc {
	var out []*proc
	for _, p := range ps {
		if strings.HasPrefix(p.title(), "nginx: master process") {
			out = append(out, p)
		}
	}
	return out
}

func nginxConfOf(p *proc) string {
	f := strings.Fields(strings.TrimPrefix(p.title(), "nginx: master process"))
	conf := argValue(f, "-c")
	if conf == "" {
		return debianNginxConf
	}
	if !filepath.IsAbs(conf) {
		prefix := argValue(f, "-p")
		if prefix == "" {
			prefix = "/usr/share/nginx"
		}
		conf = filepath.Join(prefix, conf)
	}
	return conf
}

func loadNginx(ctx context.Context, sys system, procRoot, conf string, master *proc, ps []*proc) (*webServer, error) {
	// `nginx -T` runs only for a master in this host's file system: it
	// opens (and creates) the log files its configuration names. For one
	// whose root cannot be read the files are parsed instead.
	dump := true
	if master != nil {
		same, known := sameRoot(procRoot, master.pid)
		if known && !same {
			return nil, errOtherRoot
		}
		dump = known
	}
	if _, err := os.Stat(conf); err != nil {
		return nil, err
	}
	w := &webServer{kind: "nginx", conf: conf, master: master}
	bin := "nginx"
	var extra []string
	if master != nil {
		if exe, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(master.pid), "exe")); err == nil {
			bin = exe
		}
		if p := argValue(strings.Fields(master.title()), "-p"); p != "" {
			extra = []string{"-p", p}
		}
		w.unit = strings.TrimSuffix(master.unit, ".service")
	}
	dctx, cancel := context.WithTimeout(ctx, NginxDumpTimeout)
	defer cancel()
	var out []byte
	err := errOtherRoot
	if dump && testWritesNothing(ctx, conf) {
		out, err = sys.nginxDump(dctx, bin, append([]string{"-T", "-q", "-c", conf}, extra...)...)
	}
	var cfg *nginxconf.Config
	if err == nil {
		cfg, err = nginxconf.ParseDump(string(out))
	}
	if err != nil {
		cfg, err = nginxconf.Load(ctx, conf)
		if err != nil {
			return nil, err
		}
	}
	w.nginx = cfg
	if master != nil {
		for _, c := range children(ps, master.pid) {
			if strings.Contains(c.title(), "worker process") {
				w.workers, w.hasCred = credOfProc(c), true
				break
			}
		}
	}
	if !w.hasCred {
		u, g := cfg.User()
		w.workers, w.hasCred = credOfUser(u, g)
	}
	if w.unit == "" {
		w.unit = "nginx"
	}
	return w, nil
}

func apacheMasters(ps []*proc) []*proc {
	byPID := map[int]*proc{}
	for _, p := range ps {
		byPID[p.pid] = p
	}
	var out []*proc
	for _, p := range ps {
		if p.comm != "apache2" && p.comm != "httpd" {
			continue
		}
		if parent, ok := byPID[p.ppid]; ok && parent.comm == p.comm {
			continue // a worker
		}
		out = append(out, p)
	}
	return out
}

// apacheConfOf returns the main configuration and ServerRoot of a master.
func apacheConfOf(p *proc) (conf, root string) {
	conf = argValue(p.argv, "-f")
	root = argValue(p.argv, "-d")
	if root == "" {
		root = debianApacheRoot
		if d := p.env["APACHE_CONFDIR"]; d != "" {
			root = d
		}
	}
	if conf == "" {
		conf = filepath.Join(root, "apache2.conf")
		if _, err := os.Stat(conf); err != nil {
			conf = filepath.Join(root, "conf/httpd.conf")
		}
	} else if !filepath.IsAbs(conf) {
		conf = filepath.Join(root, conf)
	}
	return conf, root
}

func loadApache(ctx context.Context, conf string, master *proc, ps []*proc, procRoot string) (*webServer, error) {
	if master != nil {
		if same, known := sameRoot(procRoot, master.pid); known && !same {
			return nil, errOtherRoot // its configuration is in its own file system
		}
	}
	env := apacheconf.ReadEnvvars(debianEnvvars)
	root := ""
	if master != nil {
		for k, v := range master.environ(procRoot) {
			if strings.HasPrefix(k, "APACHE_") {
				env[k] = v
			}
		}
		_, root = apacheConfOf(master)
		if argValue(master.argv, "-d") == "" && argValue(master.argv, "-f") != "" {
			root = ""
		}
	}
	if root == "" && conf == debianApacheConf {
		root = debianApacheRoot
	}
	cfg, err := apacheconf.Load(ctx, conf, root, env)
	if err != nil {
		return nil, err
	}
	w := &webServer{kind: "Apache", conf: conf, master: master, apache: cfg}
	if master != nil {
		w.unit = strings.TrimSuffix(master.unit, ".service")
		for _, c := range children(ps, master.pid) {
			if c.comm == master.comm && c.uid != 0 {
				w.workers, w.hasCred = credOfProc(c), true
				break
			}
		}
	}
	if !w.hasCred {
		u, g := cfg.User()
		w.workers, w.hasCred = credOfUser(u, g)
	}
	if w.unit == "" {
		w.unit = "apache2"
	}
	return w, nil
}

// fpmConfOf recognises "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)".
func fpmConfOf(p *proc) (string, bool) {
	t := p.title()
	if !strings.HasPrefix(t, "php-fpm: master process (") {
		return "", false
	}
	t = strings.TrimPrefix(t, "php-fpm: master process (")
	i := strings.LastIndexByte(t, ')')
	if i < 0 {
		return "", false
	}
	return t[:i], true
}

// oomFindings reports the OOM kills of the window, one finding per victim.
func (a *Analyzer) oomFindings() []report.Finding {
	var out []report.Finding
	for _, c := range a.counts {
		if c.Kind != logs.OOMKill {
			continue
		}
		effect := "its requests fail"
		switch {
		case strings.Contains(c.Victim, "php"):
			effect = "nginx / Apache answer 502 while its children are gone"
		case strings.Contains(c.Victim, "nginx"), strings.Contains(c.Victim, "apache"), strings.Contains(c.Victim, "httpd"):
			effect = "Cloudflare gets refused connections (521) while it is gone"
		}
		out = append(out, report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("the kernel's OOM killer killed %s %s in the last %s (%s); latest: %q", c.Victim, times(c.N), window(a.opts.Since), effect, c.Latest.Message),
			Fix:     "lower pm.max_children or memory_limit, or add memory"})
	}
	return out
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func window(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		if d == time.Hour {
			return "hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		if d == time.Minute {
			return "minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
