package main

import (
	"time"

	"fmt"
	"github.com/cfguard/cfguard/cfranges"
	"github.com/cfguard/cfguard/cfranges/realip"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/cfguard/cfguard/internal/guard"
)

// realIPFlags name the web servers' trusted-proxy files sync writes from
// Cloudflare's ranges (none by default).
func realIPFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nginx-realip-file", Sources: cli.EnvVars("CFGUARD_NGINX_REALIP_FILE"),
			Usage: "also write nginx's set_real_ip_from / real_ip_header CF-Connecting-IP here, test it (nginx -t) and reload nginx; a rejected file is put back"},
		&cli.StringFlag{Name: "apache-realip-file", Sources: cli.EnvVars("CFGUARD_APACHE_REALIP_FILE"),
			Usage: "also write Apache's RemoteIPHeader CF-Connecting-IP / RemoteIPTrustedProxy here, test it (apachectl configtest) and reload Apache; a rejected file is put back"},
	}
}

// realIPConfig reads the real-IP flags: absolute paths, or a usage error.
func realIPConfig(cmd *cli.Command) (guard.RealIP, error) {
	var r guard.RealIP
	for _, f := range []struct {
		flag string
		dst  *string
	}{{"nginx-realip-file", &r.Nginx}, {"apache-realip-file", &r.Apache}} {
		p := cmd.String(f.flag)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return r, usageErr(fmt.Errorf("--%s %q: want an absolute path (the web server includes it by that path)", f.flag, p))
		}
		*f.dst = filepath.Clean(p)
	}
	if r.Nginx != "" && r.Nginx == r.Apache {
		return r, usageErr(fmt.Errorf("--nginx-realip-file and --apache-realip-file name the same file %s", r.Nginx))
	}
	return r, nil
}

// printRealIP says what happened to each real-IP file.
func (g *globals) printRealIP(res guard.Result) {
	for _, f := range res.RealIP {
		fmt.Fprintln(g.stdout, "cfguard: "+f.Line(res.DryRun))
	}
}

func isRealIPFormat(f string) bool { return f == string(realip.Nginx) || f == string(realip.Apache) }

// printRealIPFile prints what sync would write to the real-IP file of the
// web server named by format.
func (g *globals) printRealIPFile(format string, list cfranges.List) error {
	data, err := realip.Render(realip.Kind(format), list.All(), time.Now())
	if err != nil {
		return failed(err)
	}
	_, err = g.stdout.Write(data)
	return err
}
