package rules

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds of what Parse reads. Cloudflare caps an expression at 4,096
// characters; verify reads four times that and refuses the rest, and never
// nests deeper than MaxDepth, so no expression can exhaust the stack.
const (
	MaxExprLen = 16 << 10
	MaxDepth   = 64
)

// Expr is a parsed Rules language expression.
type Expr struct {
	root *node
}

type nodeKind int

const (
	nOr nodeKind = iota
	nXor
	nAnd
	nNot
	nCmp   // a op b, a in {…}
	nValue // a value used as a condition: a boolean field or function
)

type node struct {
	kind nodeKind
	l, r *node // nOr, nXor, nAnd (both), nNot (l)
	op   string
	a, b *value   // nCmp (a, b), nValue (a)
	set  []*value // nCmp with op "in" and a literal set
}

type valueKind int

const (
	vField   valueKind = iota // http.host, http.request.uri.path, …
	vString                   // "text"
	vLiteral                  // 443, true, 192.0.2.0/24, 1..10: a bare literal
	vList                     // $list_name
	vCall                     // lower(http.host)
	vCond                     // a condition as an argument: any(x[*] == "a")
)

type value struct {
	kind    valueKind
	s       string // field name, string value, literal text, list name, function name
	args    []*value
	indexed bool  // a field followed by [...]: a map or array element
	cond    *node // vCond
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tPunct // ( ) { } [ ] ,
	tOp    // == != < <= > >= ~ && || ^^ !
)

type token struct {
	kind tokKind
	s    string
	pos  int
}

// Parse reads one expression. It refuses input over MaxExprLen, nesting
// over MaxDepth, and anything it does not know as Rules language syntax.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxExprLen {
		return nil, fmt.Errorf("expression of %d bytes, more than %d", len(src), MaxExprLen)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("unexpected %q at %d", t.s, t.pos)
	}
	return &Expr{root: n}, nil
}

// isWordByte: bare words are fields (http.host), keywords (and, eq),
// numbers, addresses and CIDRs (2001:db8::/32), ranges (1..10), lists
// ($name) and the [*] of arrays.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '/' || c == '$' || c == '-' || c == '*'
}

func lex(src string) ([]token, error) {
	var out []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("(){}[],", c) >= 0:
			out = append(out, token{tPunct, string(c), i})
			i++
		case c == '"':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("%w at %d", err, i)
			}
			out = append(out, token{tString, s, i})
			i += n
		case c == 'r' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '#'):
			s, n, err := lexRaw(src[i+1:])
			if err != nil {
				return nil, fmt.Errorf("%w at %d", err, i)
			}
			out = append(out, token{tString, s, i})
			i += 1 + n
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			out = append(out, token{tWord, src[i:j], i})
			i = j
		default:
			op := ""
			for _, o := range []string{"==", "!=", "<=", ">=", "&&", "||", "^^", "<", ">", "~", "!"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected character %q at %d", c, i)
			}
			out = append(out, token{tOp, op, i})
			i += len(op)
		}
	}
	return append(out, token{tEOF, "end of expression", len(src)}), nil
}

// lexString reads a quoted string; the Rules language knows \" and \\.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", 0, errors.New(`unknown escape in a string (the Rules language knows \" and \\)`)
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, errors.New("unterminated string")
}

// lexRaw reads r"…" or r#"…"# (s starts after the r).
func lexRaw(s string) (string, int, error) {
	hashes := 0
	for hashes < len(s) && s[hashes] == '#' {
		hashes++
	}
	if hashes >= len(s) || s[hashes] != '"' || hashes > 255 {
		return "", 0, errors.New("malformed raw string")
	}
	end := `"` + strings.Repeat("#", hashes)
	body := s[hashes+1:]
	k := strings.Index(body, end)
	if k < 0 {
		return "", 0, errors.New("unterminated raw string")
	}
	return body[:k], hashes + 1 + k + len(end), nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) isWord(words ...string) bool {
	t := p.peek()
	if t.kind == tOp {
		for _, w := range words {
			if t.s == w {
				return true
			}
		}
		return false
	}
	if t.kind != tWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.s, w) {
			return true
		}
	}
	return false
}

// Precedence, loosest first: or, xor, and, not (Cloudflare's order).
func (p *parser) parseOr() (*node, error) {
	return p.binary(nOr, p.parseXor, "or", "||")
}

func (p *parser) parseXor() (*node, error) {
	return p.binary(nXor, p.parseAnd, "xor", "^^")
}

func (p *parser) parseAnd() (*node, error) {
	return p.binary(nAnd, p.parseNot, "and", "&&")
}

func (p *parser) binary(kind nodeKind, sub func() (*node, error), words ...string) (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := sub()
	if err != nil {
		return nil, err
	}
	for p.isWord(words...) {
		p.next()
		r, err := sub()
		if err != nil {
			return nil, err
		}
		l = &node{kind: kind, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseNot() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.isWord("not", "!") {
		p.next()
		n, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, l: n}, nil
	}
	if t := p.peek(); t.kind == tPunct && t.s == "(" {
		p.next()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tPunct || t.s != ")" {
			return nil, fmt.Errorf("want ) at %d, got %q", t.pos, t.s)
		}
		return n, nil
	}
	return p.parseComparison()
}

// comparison operators, by their word and symbol spellings.
var compareOps = map[string]string{
	"eq": "eq", "==": "eq", "ne": "ne", "!=": "ne",
	"lt": "lt", "<": "lt", "le": "le", "<=": "le", "gt": "gt", ">": "gt", "ge": "ge", ">=": "ge",
	"contains": "contains", "matches": "matches", "~": "matches", "wildcard": "wildcard", "in": "in",
}

func (p *parser) parseComparison() (*node, error) {
	a, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	op := ""
	if t.kind == tWord || t.kind == tOp {
		op = compareOps[strings.ToLower(t.s)]
		if strings.EqualFold(t.s, "strict") {
			p.next()
			if !p.isWord("wildcard") {
				return nil, fmt.Errorf("want wildcard after strict at %d", t.pos)
			}
			op = "strict wildcard"
		}
	}
	if op == "" {
		return &node{kind: nValue, a: a}, nil
	}
	p.next()
	n := &node{kind: nCmp, op: op, a: a}
	if op == "in" {
		if t := p.peek(); t.kind == tPunct && t.s == "{" {
			p.next()
			for {
				t := p.peek()
				if t.kind == tPunct && t.s == "}" {
					p.next()
					break
				}
				if t.kind == tPunct && t.s == "," {
					p.next()
					continue
				}
				v, err := p.parseValue()
				if err != nil {
					return nil, err
				}
				if v.kind == vField || v.kind == vCall {
					return nil, fmt.Errorf("a set holds literals, not %s (at %d)", v.s, t.pos)
				}
				n.set = append(n.set, v)
			}
			return n, nil
		}
	}
	b, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	n.b = b
	return n, nil
}

func (p *parser) parseValue() (*value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.next()
	switch t.kind {
	case tString:
		return &value{kind: vString, s: t.s}, nil
	case tWord:
	default:
		return nil, fmt.Errorf("want a field or a value at %d, got %q", t.pos, t.s)
	}
	w := t.s
	switch {
	case strings.HasPrefix(w, "$"):
		return &value{kind: vList, s: w}, nil
	case reserved[strings.ToLower(w)]:
		return nil, fmt.Errorf("want a field or a value at %d, got the operator %q", t.pos, w)
	case isFieldName(w):
		if nt := p.peek(); nt.kind == tPunct && nt.s == "(" {
			p.next()
			v := &value{kind: vCall, s: strings.ToLower(w)}
			for {
				at := p.peek()
				if at.kind == tPunct && at.s == ")" {
					p.next()
					return v, nil
				}
				if len(v.args) > 0 {
					if at.kind != tPunct || at.s != "," {
						return nil, fmt.Errorf("want , or ) at %d, got %q", at.pos, at.s)
					}
					p.next()
				}
				arg, err := p.parseArg()
				if err != nil {
					return nil, err
				}
				v.args = append(v.args, arg)
			}
		}
		if lw := strings.ToLower(w); lw == "true" || lw == "false" {
			return &value{kind: vLiteral, s: lw}, nil
		}
		v := &value{kind: vField, s: w}
		for {
			nt := p.peek()
			if nt.kind != tPunct || nt.s != "[" {
				return v, nil
			}
			p.next()
			it := p.next()
			if it.kind != tString && it.kind != tWord {
				return nil, fmt.Errorf("want an index at %d, got %q", it.pos, it.s)
			}
			if ct := p.next(); ct.kind != tPunct || ct.s != "]" {
				return nil, fmt.Errorf("want ] at %d, got %q", ct.pos, ct.s)
			}
			v.indexed = true
		}
	}
	return &value{kind: vLiteral, s: w}, nil
}

// parseArg reads a function argument: a value, or a condition (any() and
// all() take one).
func (p *parser) parseArg() (*value, error) {
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if n.kind == nValue {
		return n.a, nil
	}
	return &value{kind: vCond, s: "a condition", cond: n}, nil
}

// reserved words are operators, never fields.
var reserved = map[string]bool{"and": true, "or": true, "xor": true, "not": true, "eq": true, "ne": true,
	"lt": true, "le": true, "gt": true, "ge": true, "contains": true, "matches": true, "wildcard": true,
	"strict": true, "in": true}

// isFieldName: a letter first, then letters, digits, _ and dots.
func isFieldName(w string) bool {
	if w == "" || !(w[0] >= 'a' && w[0] <= 'z' || w[0] >= 'A' && w[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
