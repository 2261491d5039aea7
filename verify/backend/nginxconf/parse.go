// Package nginxconf reads nginx's effective configuration (the output of
// `nginx -T`, or the files themselves with their includes) and answers the
// questions verify asks of it: which server block and location nginx picks
// for an address, port and Host, and which backend that location passes to.
package nginxconf

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Directive is one directive of the configuration, with its block (nil for
// a simple directive). Includes are resolved: an included file's directives
// take the include's place, each naming its own File.
type Directive struct {
	Name  string
	Args  []string
	Block []*Directive
	File  string
	Line  int
}

// IsBlock tells a block directive (`server { … }`) from a simple one.
func (d *Directive) IsBlock() bool { return d.Block != nil }

// Config is a parsed configuration.
type Config struct {
	Main  string       // the main file
	Root  []*Directive // the top level, includes resolved
	Files []string     // every file read, main first
}

const maxIncludeDepth = 16

// dumpHeader introduces each file in the output of `nginx -T`.
const dumpHeader = "# configuration file "

// ParseDump parses the output of `nginx -T`: every file nginx read, each
// introduced by "# configuration file PATH:". The first file is the main
// one; include directives are resolved against the files of the dump.
func ParseDump(dump string) (*Config, error) {
	files := map[string]string{}
	var order []string
	var cur string
	var b strings.Builder
	flush := func() {
		if cur != "" {
			files[cur] = b.String()
		}
		b.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(dump))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, dumpHeader) && strings.HasSuffix(line, ":") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(line, dumpHeader), ":")
			if _, seen := files[cur]; !seen {
				order = append(order, cur)
			}
			continue
		}
		if cur != "" {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading nginx -T output: %w", err)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("not nginx -T output: no %q line", strings.TrimSpace(dumpHeader))
	}
	names := append([]string(nil), order...)
	sort.Strings(names)
	load := func(pattern string) ([]string, error) {
		if !hasMeta(pattern) {
			if _, ok := files[pattern]; ok {
				return []string{pattern}, nil
			}
			return nil, nil // nginx -T lists every file it read; a trimmed dump may not
		}
		var out []string
		for _, n := range names {
			if ok, _ := filepath.Match(pattern, n); ok {
				out = append(out, n)
			}
		}
		return out, nil
	}
	read := func(name string) (string, error) { return files[name], nil }
	return build(order[0], load, read)
}

// Load reads the main file and its includes from disk (the fallback when
// `nginx -T` cannot run).
func Load(ctx context.Context, main string) (*Config, error) {
	load := func(pattern string) ([]string, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !hasMeta(pattern) {
			return []string{pattern}, nil
		}
		m, err := filepath.Glob(pattern)
		sort.Strings(m)
		return m, err
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(name)
		return string(b), err
	}
	return build(main, load, read)
}

// Parse parses one file's text, without includes (for tests and snippets).
func Parse(name, text string) (*Config, error) {
	ds, err := parseText(name, text)
	if err != nil {
		return nil, err
	}
	return &Config{Main: name, Root: ds, Files: []string{name}}, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

func build(main string, glob func(string) ([]string, error), read func(string) (string, error)) (*Config, error) {
	c := &Config{Main: main}
	prefix := filepath.Dir(main)
	var parseFile func(name string, depth int) ([]*Directive, error)
	parseFile = func(name string, depth int) ([]*Directive, error) {
		if depth > maxIncludeDepth {
			return nil, fmt.Errorf("%s: includes nested deeper than %d", name, maxIncludeDepth)
		}
		text, err := read(name)
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, name)
		ds, err := parseText(name, text)
		if err != nil {
			return nil, err
		}
		var expand func([]*Directive) ([]*Directive, error)
		expand = func(in []*Directive) ([]*Directive, error) {
			out := make([]*Directive, 0, len(in))
			for _, d := range in {
				if d.Name == "include" && !d.IsBlock() && len(d.Args) == 1 {
					pat := d.Args[0]
					if !filepath.IsAbs(pat) {
						pat = filepath.Join(prefix, pat)
					}
					matches, err := glob(pat)
					if err != nil {
						return nil, fmt.Errorf("%s:%d: include %s: %w", d.File, d.Line, d.Args[0], err)
					}
					for _, m := range matches {
						sub, err := parseFile(m, depth+1)
						if err != nil {
							return nil, fmt.Errorf("%s:%d: include %s: %w", d.File, d.Line, d.Args[0], err)
						}
						out = append(out, sub...)
					}
					continue
				}
				if d.IsBlock() {
					b, err := expand(d.Block)
					if err != nil {
						return nil, err
					}
					d.Block = b
				}
				out = append(out, d)
			}
			return out, nil
		}
		return expand(ds)
	}
	root, err := parseFile(main, 0)
	if err != nil {
		return nil, err
	}
	c.Root = root
	return c, nil
}

// parseText tokenizes and parses one file.
func parseText(file, text string) ([]*Directive, error) {
	p := &parser{file: file, s: text, line: 1}
	ds, err := p.block(0)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

type parser struct {
	file string
	s    string
	i    int
	line int
}

type token struct {
	text   string
	quoted bool
	line   int
}

// next returns the next token; special tokens ";", "{", "}" come unquoted.
// ok is false at the end of the text.
func (p *parser) next() (token, bool, error) {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\n':
			p.line++
			p.i++
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case c == ';' || c == '{' || c == '}':
			p.i++
			return token{text: string(c), line: p.line}, true, nil
		case c == '"' || c == '\'':
			start := p.line
			p.i++
			var b strings.Builder
			for {
				if p.i >= len(p.s) {
					return token{}, false, fmt.Errorf("%s:%d: unterminated quoted string", p.file, start)
				}
				ch := p.s[p.i]
				if ch == '\\' && p.i+1 < len(p.s) {
					nx := p.s[p.i+1]
					if nx == c || nx == '\\' {
						b.WriteByte(nx)
					} else {
						b.WriteByte(ch)
						b.WriteByte(nx)
					}
					if nx == '\n' {
						p.line++
					}
					p.i += 2
					continue
				}
				if ch == c {
					p.i++
					break
				}
				if ch == '\n' {
					p.line++
				}
				b.WriteByte(ch)
				p.i++
			}
			return token{text: b.String(), quoted: true, line: start}, true, nil
		default:
			start := p.i
			for p.i < len(p.s) {
				ch := p.s[p.i]
				if ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '}' {
					break
				}
				if ch == '{' {
					// "${name}" is a variable, not a block.
					if p.i > start && p.s[p.i-1] == '$' {
						if j := strings.IndexByte(p.s[p.i:], '}'); j > 0 {
							p.i += j + 1
							continue
						}
					}
					break
				}
				if ch == '\\' && p.i+1 < len(p.s) {
					p.i += 2
					continue
				}
				p.i++
			}
			return token{text: p.s[start:p.i], line: p.line}, true, nil
		}
	}
	return token{}, false, nil
}

func (p *parser) block(depth int) ([]*Directive, error) {
	out := []*Directive{}
	var cur *Directive
	for {
		t, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			if depth > 0 {
				return nil, fmt.Errorf("%s:%d: unexpected end of file, expecting \"}\"", p.file, p.line)
			}
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: unexpected end of file, expecting \";\" or \"}\"", p.file, p.line)
			}
			return out, nil
		}
		if !t.quoted {
			switch t.text {
			case ";":
				if cur == nil {
					return nil, fmt.Errorf("%s:%d: unexpected \";\"", p.file, t.line)
				}
				out = append(out, cur)
				cur = nil
				continue
			case "{":
				if cur == nil {
					return nil, fmt.Errorf("%s:%d: unexpected \"{\"", p.file, t.line)
				}
				sub, err := p.block(depth + 1)
				if err != nil {
					return nil, err
				}
				cur.Block = sub
				out = append(out, cur)
				cur = nil
				continue
			case "}":
				if cur != nil {
					return nil, fmt.Errorf("%s:%d: unexpected \"}\"", p.file, t.line)
				}
				if depth == 0 {
					return nil, fmt.Errorf("%s:%d: unexpected \"}\"", p.file, t.line)
				}
				return out, nil
			}
		}
		if cur == nil {
			cur = &Directive{Name: t.text, File: p.file, Line: t.line}
			// *_by_lua_block bodies are code, not configuration: skip them.
			if strings.HasSuffix(t.text, "_by_lua_block") {
				if err := p.skipBraces(); err != nil {
					return nil, err
				}
				cur.Block = []*Directive{}
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur.Args = append(cur.Args, t.text)
	}
}

func (p *parser) skipBraces() error {
	depth := 0
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\n':
			p.line++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				p.i++
				return nil
			}
		}
		p.i++
	}
	return fmt.Errorf("%s:%d: unexpected end of file in a lua block", p.file, p.line)
}

// LoadWith reads the main file and its includes through glob and read
// (a container's files, read inside its root directory).
func LoadWith(main string, glob func(pattern string) ([]string, error), read func(name string) (string, error)) (*Config, error) {
	return build(main, func(pattern string) ([]string, error) {
		if !hasMeta(pattern) {
			return []string{pattern}, nil
		}
		m, err := glob(pattern)
		sort.Strings(m)
		return m, err
	}, read)
}
