package guard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/cfguard/cfguard/cfranges/realip"
)

// Bounds of the web server's commands.
const (
	WebTestTimeout   = 30 * time.Second // nginx -t, apachectl configtest
	WebReloadTimeout = 30 * time.Second // systemctl reload, nginx -s reload, apachectl graceful
)

// sdBootedDir exists when systemd is the service manager (sd_booted(3)).
const sdBootedDir = "/run/systemd/system"

// ExecWeb runs the web server's own commands, found through PATH. Each is
// a program and its arguments, run without a shell.
type ExecWeb struct {
	TestCmd, ReloadCmd map[realip.Kind][]string
}

var _ WebServer = ExecWeb{}

// DefaultWeb is ExecWeb with Debian's commands: `nginx -t`, `apachectl
// configtest`, and `systemctl reload nginx|apache2` when systemd is the
// service manager, else `nginx -s reload` / `apachectl graceful`.
func DefaultWeb() ExecWeb {
	return defaultWeb(isDir(sdBootedDir))
}

func defaultWeb(systemd bool) ExecWeb {
	w := ExecWeb{
		TestCmd: map[realip.Kind][]string{
			realip.Nginx:  {"nginx", "-t", "-q"},
			realip.Apache: {"apachectl", "configtest"},
		},
		ReloadCmd: map[realip.Kind][]string{
			realip.Nginx:  {"nginx", "-s", "reload"},
			realip.Apache: {"apachectl", "graceful"},
		},
	}
	if systemd {
		w.ReloadCmd[realip.Nginx] = []string{"systemctl", "reload", "nginx"}
		w.ReloadCmd[realip.Apache] = []string{"systemctl", "reload", "apache2"}
	}
	return w
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Test runs the configuration test of kind.
func (w ExecWeb) Test(ctx context.Context, kind realip.Kind) error {
	return run(ctx, WebTestTimeout, w.TestCmd[kind])
}

// Reload reloads kind gracefully.
func (w ExecWeb) Reload(ctx context.Context, kind realip.Kind) error {
	return run(ctx, WebReloadTimeout, w.ReloadCmd[kind])
}

func run(ctx context.Context, timeout time.Duration, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command configured")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	name := strings.Join(argv, " ")
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within %s", name, timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: interrupted", name)
	}
	if said := webSaid(out.String()); said != "" {
		return fmt.Errorf("%s: %s", name, said)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// nginxLogPrefix is the time and pid nginx puts before a message:
// "2026/12/02 02:49:10 [emerg] 6583#6583: ".
var nginxLogPrefix = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (?:\*\d+ )?`)

// webSaid picks what the web server said about the failure, on one line:
// nginx's [emerg] line, Apache's "Syntax error …" with the line after it.
func webSaid(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "",
			strings.HasPrefix(l, "Action '"),             // apachectl: Action 'configtest' failed.
			strings.HasPrefix(l, "The Apache error log"), // … may have more information.
			strings.Contains(l, "test failed"),           // nginx: configuration file … test failed
			strings.Contains(l, "syntax is ok"),          // nginx -t without -q
			strings.Contains(l, "test is successful"),
			strings.Contains(l, "[notice] "): // nginx: signal process started
			continue
		}
		keep = append(keep, nginxLogPrefix.ReplaceAllString(strings.TrimPrefix(l, "nginx: "), "[$1] "))
		if len(keep) == 3 {
			break
		}
	}
	return realIPLine(strings.Join(keep, " "))
}
