package backend

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/verify/backend/apacheconf"
	"github.com/cfguard/cfguard/verify/backend/nginxconf"
	"github.com/cfguard/cfguard/verify/report"
)

// The real-IP check: a web server behind Cloudflare that does not take the
// visitor's address from CF-Connecting-IP (trusting Cloudflare's ranges)
// logs, rate-limits and bans Cloudflare's addresses instead of the
// visitors'; fail2ban banning them turns into 521/522 for everyone behind
// that edge.

// realIPEffect is what the administrator loses, said once per finding.
const realIPEffect = "its access log, rate limits and fail2ban see Cloudflare's addresses instead of the visitors' (banning one turns into 521/522 for everyone behind it)"

// nginxDefaultRealIPHeader is real_ip_header's default.
const nginxDefaultRealIPHeader = "X-Real-IP"

// maxNamed bounds the server blocks / ranges a message names.
const maxNamed = 3

// realIPFindings warns about each web server that serves without a real-IP
// configuration covering Cloudflare's ranges.
func (a *Analyzer) realIPFindings() []report.Finding {
	cf := a.opts.Cloudflare
	if len(cf) == 0 {
		cf = cfranges.Builtin().All()
	}
	var out []report.Finding
	for _, w := range a.webs {
		var f *report.Finding
		switch {
		case w.nginx != nil:
			f = nginxRealIP(w.conf, w.nginx, cf)
		case w.apache != nil:
			f = apacheRealIP(w.conf, w.apache, cf)
		}
		if f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// goodRealIPHeader: the headers that carry the visitor's address from
// Cloudflare (X-Forwarded-For ends with it).
func goodRealIPHeader(h string) bool {
	return strings.EqualFold(h, "CF-Connecting-IP") || strings.EqualFold(h, "X-Forwarded-For")
}

// nginxRealIP checks every server block with the directives it inherits:
// real_ip_header (innermost wins, default X-Real-IP) and set_real_ip_from
// (the innermost level that has any). Locations are not looked at.
func nginxRealIP(conf string, c *nginxconf.Config, cf []netip.Prefix) *report.Finding {
	var lacking, why []string
	servers := c.Servers()
	for _, s := range servers {
		scope := [][]*nginxconf.Directive{s.Dir.Block}
		if h := httpOf(c, s); h != nil {
			scope = append(scope, h.Block)
		}
		header, trusted := nginxDefaultRealIPHeader, []netip.Prefix(nil)
		headerSet, trustSet := false, false
		for _, blk := range scope {
			var here []netip.Prefix
			has := false
			for _, d := range blk {
				switch {
				case d.Name == "real_ip_header" && len(d.Args) > 0 && !headerSet:
					header, headerSet = d.Args[0], true
				case d.Name == "set_real_ip_from" && len(d.Args) > 0 && !trustSet:
					has = true
					if p, ok := parsePrefixOrAddr(d.Args[0]); ok {
						here = append(here, p)
					}
				}
			}
			if has && !trustSet {
				trusted, trustSet = here, true
			}
		}
		var problem string
		missing := uncovered(cf, trusted)
		switch {
		case !trustSet && !headerSet:
			problem = "no set_real_ip_from / real_ip_header"
		case !goodRealIPHeader(header):
			problem = fmt.Sprintf("real_ip_header is %s, which Cloudflare does not send", header)
		case len(missing) > 0:
			problem = fmt.Sprintf("set_real_ip_from does not cover %d of Cloudflare's %d ranges (%s)", len(missing), len(cf), names(prefixStrings(missing)))
		default:
			continue
		}
		lacking = append(lacking, s.Where())
		why = append(why, problem)
	}
	if len(lacking) == 0 {
		return nil
	}
	which := fmt.Sprintf("%d of its %d server blocks (%s)", len(lacking), len(servers), names(lacking))
	if len(lacking) == len(servers) {
		which = "every server block"
	}
	return &report.Finding{Severity: report.SeverityWarning,
		Message: fmt.Sprintf("nginx (%s) does not take the visitor's address from CF-Connecting-IP in %s: %s; %s", conf, which, why[0], realIPEffect),
		Fix:     "cfguard sync --nginx-realip-file /etc/nginx/conf.d/cloudflare-realip.conf (writes set_real_ip_from for each Cloudflare range and real_ip_header CF-Connecting-IP, tests and reloads nginx; set CFGUARD_NGINX_REALIP_FILE for the timer)"}
}

// httpOf finds the http{} block holding s.
func httpOf(c *nginxconf.Config, s *nginxconf.Server) *nginxconf.Directive {
	for _, h := range c.Root {
		if h.Name != "http" {
			continue
		}
		for _, d := range h.Block {
			if d == s.Dir {
				return h
			}
		}
	}
	return nil
}

// apacheRealIP checks that mod_remoteip is loaded and that RemoteIPHeader
// (server level or in every virtual host) names a header Cloudflare sends,
// trusting its ranges when RemoteIPTrustedProxy / RemoteIPInternalProxy
// narrow the trust (a *List file is taken on faith).
func apacheRealIP(conf string, c *apacheconf.Config, cf []netip.Prefix) *report.Finding {
	const fix = "cfguard sync --apache-realip-file /etc/apache2/conf-available/cloudflare-realip.conf, then a2enconf cloudflare-realip (writes RemoteIPHeader CF-Connecting-IP and RemoteIPTrustedProxy for each Cloudflare range, tests and reloads Apache; set CFGUARD_APACHE_REALIP_FILE for the timer)"
	top := apacheFlat(c.Root)
	loaded := false
	for _, d := range top {
		if d.Name == "loadmodule" && len(d.Args) > 0 && d.Args[0] == "remoteip_module" {
			loaded = true
		}
	}
	if !loaded {
		return &report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("Apache (%s) does not load mod_remoteip, so it cannot take the visitor's address from CF-Connecting-IP; %s", conf, realIPEffect),
			Fix:     "a2enmod remoteip; " + fix}
	}
	check := func(blk []*apacheconf.Directive, header string, trusted []netip.Prefix, listed bool) (string, []netip.Prefix, bool, string) {
		for _, d := range blk {
			switch d.Name {
			case "remoteipheader":
				if len(d.Args) > 0 {
					header = d.Args[0]
				}
			case "remoteiptrustedproxy", "remoteipinternalproxy":
				for _, a := range d.Args {
					if p, ok := parsePrefixOrAddr(a); ok {
						trusted = append(trusted, p)
					}
				}
			case "remoteiptrustedproxylist", "remoteipinternalproxylist":
				listed = true
			}
		}
		switch {
		case header == "":
			return header, trusted, listed, "no RemoteIPHeader"
		case !goodRealIPHeader(header):
			return header, trusted, listed, fmt.Sprintf("RemoteIPHeader is %s, which Cloudflare does not send", header)
		}
		if len(trusted) > 0 && !listed {
			if m := uncovered(cf, trusted); len(m) > 0 {
				return header, trusted, listed, fmt.Sprintf("RemoteIPTrustedProxy does not cover %d of Cloudflare's %d ranges (%s)", len(m), len(cf), names(prefixStrings(m)))
			}
		}
		return header, trusted, listed, ""
	}
	header, trusted, listed, problem := check(top, "", nil, false)
	vhosts := c.VHosts()
	if len(vhosts) == 0 {
		if problem == "" {
			return nil
		}
		return &report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("Apache (%s) does not take the visitor's address from CF-Connecting-IP: %s; %s", conf, problem, realIPEffect), Fix: fix}
	}
	var lacking, why []string
	for _, v := range vhosts {
		if _, _, _, p := check(apacheFlat(v.Dir.Block), header, append([]netip.Prefix(nil), trusted...), listed); p != "" {
			lacking, why = append(lacking, v.Where()), append(why, p)
		}
	}
	if len(lacking) == 0 {
		return nil
	}
	which := fmt.Sprintf("%d of its %d virtual hosts (%s)", len(lacking), len(vhosts), names(lacking))
	if len(lacking) == len(vhosts) {
		which = "every virtual host"
	}
	return &report.Finding{Severity: report.SeverityWarning,
		Message: fmt.Sprintf("Apache (%s) does not take the visitor's address from CF-Connecting-IP in %s: %s; %s", conf, which, why[0], realIPEffect), Fix: fix}
}

// apacheFlat is blk without the conditional sections (taken as true) and
// without the sections that are not server-wide (<VirtualHost>, <Directory>…).
func apacheFlat(blk []*apacheconf.Directive) []*apacheconf.Directive {
	var out []*apacheconf.Directive
	for _, d := range blk {
		switch {
		case d.Section && strings.HasPrefix(d.Name, "if"):
			out = append(out, apacheFlat(d.Block)...)
		case d.Section:
		default:
			out = append(out, d)
		}
	}
	return out
}

// uncovered lists the prefixes of cf that no prefix of trusted contains.
func uncovered(cf, trusted []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range cf {
		ok := false
		for _, t := range trusted {
			if t.Bits() <= p.Bits() && t.Contains(p.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefixOrAddr reads "192.0.2.0/24" or "192.0.2.1"; "unix:", host
// names and the like are not addresses.
func parsePrefixOrAddr(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// names joins the first maxNamed of s, saying how many more there are.
func names(s []string) string {
	if len(s) <= maxNamed {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(s)-maxNamed)
}
