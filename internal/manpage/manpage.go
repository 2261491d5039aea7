package manpage

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"
)

// Page is what the command tree does not say about itself.
type Page struct {
	Section int    // 1 for a command
	Date    string // .TH date, e.g. "2026-12-02"; empty leaves it out
	Source  string // .TH source, e.g. "cfguard 1.2.0"
	Manual  string // .TH manual, e.g. "User Commands"
	// Extra sections after ENVIRONMENT (FILES, SEE ALSO…), in order.
	Extra []Section
}

// Section is a titled block of plain text; blank lines separate paragraphs,
// lines starting with two spaces are kept as they are (an example).
type Section struct {
	Title string
	Body  string
}

// Write renders root and its visible subcommands and flags. It skips the
// help command and every subcommand's own --help, which say nothing new.
func Write(w io.Writer, root *cli.Command, p Page) error {
	r := &renderer{}
	name := root.Name
	r.line(".TH %s %d %s %s %s", quote(esc(strings.ToUpper(name))), p.Section, quote(p.Date), quote(esc(p.Source)), quote(esc(p.Manual)))
	r.line(".SH NAME")
	r.line("%s \\- %s", esc(name), esc(root.Usage))
	r.line(".SH SYNOPSIS")
	r.line(".B %s", esc(name))
	synopsis := "[\\fIglobal options\\fR]"
	if len(visibleCommands(root)) > 0 {
		synopsis += " \\fIcommand\\fR [\\fIcommand options\\fR]"
	}
	if root.ArgsUsage != "" {
		synopsis += " " + esc(root.ArgsUsage)
	}
	r.line("%s", synopsis)
	if root.Description != "" {
		r.line(".SH DESCRIPTION")
		r.text(root.Description)
	}
	if flags := visibleFlags(root, true); len(flags) > 0 {
		r.line(".SH GLOBAL OPTIONS")
		r.flags(flags)
	}
	if cmds := visibleCommands(root); len(cmds) > 0 {
		r.line(".SH COMMANDS")
		for _, c := range cmds {
			r.command(c, name)
		}
	}
	if env := environment(root); len(env) > 0 {
		r.line(".SH ENVIRONMENT")
		for _, e := range env {
			r.line(".TP")
			r.line(".B %s", esc(e.name))
			r.line("Same as %s.", e.flags)
		}
	}
	for _, s := range p.Extra {
		r.line(".SH %s", esc(strings.ToUpper(s.Title)))
		r.text(s.Body)
	}
	_, err := io.WriteString(w, r.b.String())
	return err
}

type renderer struct{ b strings.Builder }

func (r *renderer) line(format string, a ...any) {
	fmt.Fprintf(&r.b, format, a...)
	r.b.WriteByte('\n')
}

// text writes paragraphs: blank lines become .PP, indented lines are kept
// verbatim between .nf and .fi, other lines are filled by the formatter.
func (r *renderer) text(s string) {
	paras := strings.Split(strings.TrimSpace(s), "\n\n")
	for i, para := range paras {
		if i > 0 {
			r.line(".PP")
		}
		verbatim := false
		for _, l := range strings.Split(para, "\n") {
			isEx := strings.HasPrefix(l, "  ")
			if isEx != verbatim {
				if isEx {
					r.line(".nf")
					r.line(".RS 4")
				} else {
					r.line(".RE")
					r.line(".fi")
				}
				verbatim = isEx
			}
			if isEx {
				l = strings.TrimPrefix(l, "  ")
			} else {
				l = strings.TrimSpace(l)
			}
			r.line("%s", esc(l))
		}
		if verbatim {
			r.line(".RE")
			r.line(".fi")
		}
	}
}

func (r *renderer) command(c *cli.Command, parent string) {
	full := parent + " " + c.Name
	head := "\\fB" + esc(full) + "\\fR"
	if len(visibleFlags(c, false)) > 0 {
		head += " [\\fIoptions\\fR]"
	}
	if c.ArgsUsage != "" {
		head += " " + esc(c.ArgsUsage)
	}
	r.line(".SS %s", quote(head))
	if len(c.Aliases) > 0 {
		r.line("Also: %s.", esc(strings.Join(c.Aliases, ", ")))
		r.line(".br")
	}
	r.text(sentence(c.Usage))
	if c.Description != "" {
		r.line(".PP")
		r.text(c.Description)
	}
	if flags := visibleFlags(c, false); len(flags) > 0 {
		r.line(".PP")
		r.line("Options:")
		r.flags(flags)
	}
	for _, sub := range visibleCommands(c) {
		r.command(sub, full)
	}
}

func (r *renderer) flags(flags []cli.Flag) {
	for _, f := range flags {
		r.line(".TP")
		r.line("%s", flagHead(f))
		doc, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		usage := sentence(doc.GetUsage())
		if def := defaultOf(doc); def != "" {
			usage += " Default: " + def + "."
		}
		if env := doc.GetEnvVars(); len(env) > 0 {
			usage += " Environment: " + strings.Join(env, ", ") + "."
		}
		r.line("%s", esc(strings.TrimSpace(usage)))
	}
}

// flagHead is "\fB\-\-name\fR, \fB\-n\fR \fIvalue\fR".
func flagHead(f cli.Flag) string {
	var names []string
	for _, n := range f.Names() {
		dash := "\\-\\-"
		if len(n) == 1 {
			dash = "\\-"
		}
		names = append(names, "\\fB"+dash+esc(n)+"\\fR")
	}
	head := strings.Join(names, ", ")
	if doc, ok := f.(cli.DocGenerationFlag); ok && doc.TakesValue() {
		kind := doc.TypeName()
		if kind == "" {
			kind = "value"
		}
		head += " \\fI" + esc(kind) + "\\fR"
		if m, ok := f.(cli.DocGenerationMultiValueFlag); ok && m.IsMultiValueFlag() {
			head += " (repeatable)"
		}
	}
	return head
}

func defaultOf(f cli.DocGenerationFlag) string {
	if !f.IsDefaultVisible() {
		return ""
	}
	if t := f.GetDefaultText(); t != "" {
		return t
	}
	if !f.TakesValue() {
		return ""
	}
	v := f.GetValue()
	if v == "" || v == `""` || v == "[]" {
		return ""
	}
	return v
}

// sentence ends s with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, ":") {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	return s + "."
}

func visibleCommands(c *cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, sub := range c.Commands {
		if sub.Hidden || sub.Name == "help" {
			continue
		}
		out = append(out, sub)
	}
	return out
}

func visibleFlags(c *cli.Command, root bool) []cli.Flag {
	var out []cli.Flag
	for _, f := range c.Flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		if !root && f.Names()[0] == "help" {
			continue
		}
		out = append(out, f)
	}
	return out
}

type envVar struct{ name, flags string }

// environment lists every variable a flag reads, with the flags it sets.
func environment(root *cli.Command) []envVar {
	seen := map[string][]string{}
	var walk func(c *cli.Command, path string)
	walk = func(c *cli.Command, path string) {
		for _, f := range visibleFlags(c, true) {
			doc, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, e := range doc.GetEnvVars() {
				where := "\\fB\\-\\-" + esc(f.Names()[0]) + "\\fR"
				if path != "" {
					where = esc(path) + " " + where
				}
				seen[e] = append(seen[e], where)
			}
		}
		for _, sub := range visibleCommands(c) {
			p := sub.Name
			if path != "" {
				p = path + " " + sub.Name
			}
			walk(sub, p)
		}
	}
	walk(root, "")
	out := make([]envVar, 0, len(seen))
	for name, where := range seen {
		out = append(out, envVar{name, strings.Join(where, ", ")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// esc makes s safe as roff text: backslashes doubled, hyphens made minus
// signs (so options copy and paste), a leading control character defused,
// control characters other than tab dropped, any other non-ASCII
// character written as groff's \[uXXXX].
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r < 0x20 && r != '\t', r == 0x7f:
		case r > 0x7f:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "'") {
		out = `\&` + out
	}
	return out
}

// quote is a macro argument: double quotes inside become roff's \(dq.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
}
