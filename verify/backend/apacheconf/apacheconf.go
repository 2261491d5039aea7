// Package apacheconf reads Apache httpd's configuration (the main file and
// its Include / IncludeOptional files) and answers which virtual host serves
// an address, port and Host, and which backend (ProxyPass, SetHandler
// "proxy:…") serves "/".
package apacheconf

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults httpd uses when a directive is absent.
const (
	DefaultTimeout  = 60 * time.Second
	maxIncludeDepth = 16
)

// Directive is a directive or a section (<VirtualHost …>, with Block).
type Directive struct {
	Name    string // lower case; sections without "<"
	Args    []string
	Block   []*Directive
	Section bool
	File    string
	Line    int
}

// Config is a parsed configuration.
type Config struct {
	Main       string
	ServerRoot string
	Root       []*Directive
	Files      []string
}

// Load reads main and its includes. env provides ${VAR} values (Debian's
// envvars: APACHE_RUN_USER, APACHE_LOG_DIR…); Define adds to it.
func Load(ctx context.Context, main string, serverRoot string, env map[string]string) (*Config, error) {
	if serverRoot == "" {
		serverRoot = filepath.Dir(main)
	}
	c := &Config{Main: main, ServerRoot: serverRoot}
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	read := func(name string) (string, error) {
		b, err := readConfig(name)
		return string(b), err
	}
	root, err := c.parseFile(ctx, main, vars, read, 0)
	if err != nil {
		return nil, err
	}
	c.Root = root
	return c, nil
}

// Parse parses one file's text (includes are read from disk).
func Parse(name, text string, env map[string]string) (*Config, error) {
	c := &Config{Main: name, ServerRoot: filepath.Dir(name)}
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	read := func(n string) (string, error) {
		if n == name {
			return text, nil
		}
		b, err := readConfig(n)
		return string(b), err
	}
	root, err := c.parseFile(context.Background(), name, vars, read, 0)
	if err != nil {
		return nil, err
	}
	c.Root = root
	return c, nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

func (c *Config) parseFile(ctx context.Context, name string, vars map[string]string, read func(string) (string, error), depth int) ([]*Directive, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d", name, maxIncludeDepth)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	text, err := read(name)
	if err != nil {
		return nil, err
	}
	c.Files = append(c.Files, name)
	type frame struct {
		d   *Directive
		out *[]*Directive
	}
	var top []*Directive
	stack := []frame{{nil, &top}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n, pending := 0, ""
	startLine := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		if pending == "" {
			startLine = n
		}
		if strings.HasSuffix(raw, "\\") {
			pending += strings.TrimSuffix(raw, "\\") + " "
			continue
		}
		line := strings.TrimSpace(pending + raw)
		pending = ""
		if line == "" || line[0] == '#' {
			continue
		}
		line = varRef.ReplaceAllStringFunc(line, func(m string) string {
			if v, ok := vars[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
		cur := stack[len(stack)-1]
		if strings.HasPrefix(line, "</") {
			if len(stack) == 1 {
				return nil, fmt.Errorf("%s:%d: unexpected %s", name, startLine, line)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if strings.HasPrefix(line, "<") {
			body := strings.TrimSuffix(strings.TrimPrefix(line, "<"), ">")
			f := splitArgs(body)
			if len(f) == 0 {
				return nil, fmt.Errorf("%s:%d: empty section", name, startLine)
			}
			d := &Directive{Name: strings.ToLower(f[0]), Args: f[1:], Section: true, Block: []*Directive{}, File: name, Line: startLine}
			*cur.out = append(*cur.out, d)
			stack = append(stack, frame{d, &d.Block})
			continue
		}
		f := splitArgs(line)
		d := &Directive{Name: strings.ToLower(f[0]), Args: f[1:], File: name, Line: startLine}
		switch d.Name {
		case "define":
			if len(d.Args) >= 2 {
				vars[d.Args[0]] = d.Args[1]
			} else if len(d.Args) == 1 {
				vars[d.Args[0]] = ""
			}
		case "serverroot":
			if len(d.Args) > 0 {
				c.ServerRoot = d.Args[0]
			}
		case "include", "includeoptional":
			if len(d.Args) == 0 {
				continue
			}
			pat := d.Args[0]
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(c.ServerRoot, pat)
			}
			var files []string
			if strings.ContainsAny(pat, "*?[") {
				files, _ = filepath.Glob(pat)
				sort.Strings(files)
			} else if st, err := os.Stat(pat); err == nil && st.IsDir() {
				ents, _ := os.ReadDir(pat)
				for _, e := range ents {
					files = append(files, filepath.Join(pat, e.Name()))
				}
			} else {
				files = []string{pat}
			}
			for _, fn := range files {
				sub, err := c.parseFile(ctx, fn, vars, read, depth+1)
				if err != nil {
					if d.Name == "includeoptional" {
						continue
					}
					return nil, fmt.Errorf("%s:%d: Include %s: %w", name, startLine, d.Args[0], err)
				}
				*cur.out = append(*cur.out, sub...)
			}
			continue
		}
		*cur.out = append(*cur.out, d)
	}
	return top, sc.Err()
}

func splitArgs(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '"' || s[i] == '\'' {
			q := s[i]
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != q {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, b.String())
			i = j + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// flatten yields the directives of blk, descending into <IfModule>,
// <IfDefine>, <IfVersion>, <IfFile> and <IfDirective> (taken as true).
func flatten(blk []*Directive) []*Directive {
	var out []*Directive
	for _, d := range blk {
		if d.Section && strings.HasPrefix(d.Name, "if") {
			out = append(out, flatten(d.Block)...)
			continue
		}
		out = append(out, d)
	}
	return out
}
