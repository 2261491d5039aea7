package apacheconf

import (
	"os"
	"path/filepath"
	"strings"
)

// ErrorLogs lists the ErrorLog files (main and virtual hosts).
func (c *Config) ErrorLogs() []string {
	seen := map[string]bool{}
	var out []string
	var walk func([]*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			if d.Name == "errorlog" && len(d.Args) > 0 {
				f := d.Args[0]
				if strings.HasPrefix(f, "|") || strings.HasPrefix(f, "syslog") || f == "/dev/null" {
					continue
				}
				if !filepath.IsAbs(f) {
					f = filepath.Join(c.ServerRoot, f)
				}
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
			if d.Section {
				walk(d.Block)
			}
		}
	}
	walk(c.Root)
	if len(out) == 0 {
		out = []string{filepath.Join(c.ServerRoot, "logs/error_log")}
	}
	return out
}

// User returns the User and Group directives (httpd's default: daemon).
func (c *Config) User() (user, group string) {
	user, group = "daemon", "daemon"
	for _, d := range flatten(c.Root) {
		if len(d.Args) == 0 {
			continue
		}
		switch d.Name {
		case "user":
			user = d.Args[0]
		case "group":
			group = d.Args[0]
		}
	}
	return user, group
}

// ReadEnvvars reads Debian's /etc/apache2/envvars (export NAME=value lines).
func ReadEnvvars(file string) map[string]string {
	env := map[string]string{}
	b, err := os.ReadFile(file)
	if err != nil {
		return env
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		v = strings.ReplaceAll(v, "$SUFFIX", "")
		env[k] = v
	}
	return env
}
