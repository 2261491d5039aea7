package backend

import (
	"fmt"
	"strings"

	"github.com/cfguard/cfguard/verify/backend/apacheconf"
)

// Apache's words for a route, so that a fix for an Apache virtual host
// quotes Apache's directives (ProxyPass, SetHandler, ProxyTimeout, Timeout)
// with the file and line they are at, never nginx's.

// apachePass is the directive that sends "/" to the backend, as it would
// be written: `SetHandler "proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost"
// (/etc/apache2/conf-enabled/php8.2-fpm.conf:8)`.
func apachePass(r *apacheconf.Route) string {
	args := make([]string, len(r.Directive.Args))
	for i, a := range r.Directive.Args {
		args[i] = a
		if strings.ContainsAny(a, "| \t\"") {
			args[i] = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
	}
	return fmt.Sprintf("%s %s (%s:%d)", r.Via, strings.Join(args, " "), r.Directive.File, r.Directive.Line)
}

// apacheTimeout names how long httpd waits for the route's backend and how
// to raise it. name goes in causes ("Apache's ProxyTimeout (45s)"); raise
// follows "raise" in a fix and says where: the timeout= of the ProxyPass,
// the ProxyTimeout line, or — when only Timeout or httpd's default applies
// — a ProxyTimeout to add to the virtual host.
func apacheTimeout(c *apacheconf.Config, r *apacheconf.Route) (name, raise string) {
	at := func(d *apacheconf.Directive) string { return fmt.Sprintf("%s:%d", d.File, d.Line) }
	switch {
	case r.TimeoutFrom == "timeout=" && r.TimeoutAt != nil:
		return "ProxyPass timeout=", fmt.Sprintf("the timeout= of ProxyPass %s (%s)", strings.Join(r.TimeoutAt.Args, " "), at(r.TimeoutAt))
	case r.TimeoutFrom == "ProxyTimeout" && r.TimeoutAt != nil:
		return "ProxyTimeout", fmt.Sprintf("ProxyTimeout (%s)", at(r.TimeoutAt))
	case r.TimeoutFrom == "Timeout" && r.TimeoutAt != nil:
		return "Timeout", fmt.Sprintf("ProxyTimeout (add it to %s; now Timeout %s at %s applies)", r.Scope(c), secs(r.Timeout), at(r.TimeoutAt))
	}
	return "Timeout", fmt.Sprintf("ProxyTimeout (add it to %s; now httpd's default Timeout %s applies)", r.Scope(c), secs(r.Timeout))
}

// raise is what a fix raises for a backend that is slow: the web server's
// read timeout in its own words.
func (rt *route) raise() string {
	switch {
	case rt.raiseTimeout != "":
		return rt.raiseTimeout
	case rt.readTimeoutName != "":
		return rt.readTimeoutName
	}
	return "the web server's read timeout"
}
