package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// maxValueLen bounds a string built while evaluating (Cloudflare's whole
// expression is at most 4,096 characters), so that a wildcard or a regular
// expression never runs over more.
const maxValueLen = 4096

// Truth is the value of an expression for one hostname.
type Truth int8

const (
	False   Truth = iota
	True          // the rule matches every request to the hostname
	Unknown       // it matches some requests and not others, or verify cannot tell
)

func (t Truth) String() string {
	return [...]string{"false", "true", "unknown"}[t]
}

// Result is an expression's value. When Truth is Unknown, Fields names the
// request fields it depends on (http.request.uri.path, ip.src.country, …)
// and Why says what else verify could not decide (a list it does not read,
// a regular expression it cannot compile).
type Result struct {
	Truth  Truth
	Fields []string
	Why    []string
}

// Env is what verify knows of every request to one hostname.
type Env struct {
	// Host is the hostname, lowercase: http.host. Empty means unknown (a
	// wildcard record covers many hostnames).
	Host string
}

// Eval evaluates e for every request to env.Host.
func (e *Expr) Eval(env Env) Result {
	if e == nil || e.root == nil {
		return Result{Truth: Unknown, Why: []string{"no expression"}}
	}
	return evalNode(e.root, env)
}

func unknown(fields, why []string) Result {
	return Result{Truth: Unknown, Fields: uniq(fields), Why: uniq(why)}
}

func uniq(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func evalNode(n *node, env Env) Result {
	switch n.kind {
	case nNot:
		r := evalNode(n.l, env)
		switch r.Truth {
		case True:
			r.Truth = False
		case False:
			r.Truth = True
		}
		return r
	case nAnd, nOr:
		l, r := evalNode(n.l, env), evalNode(n.r, env)
		// false and x = false; true or x = true, whatever x is.
		decisive := False
		if n.kind == nOr {
			decisive = True
		}
		if l.Truth == decisive || r.Truth == decisive {
			return Result{Truth: decisive}
		}
		if l.Truth == Unknown || r.Truth == Unknown {
			return unknown(append(l.Fields, r.Fields...), append(l.Why, r.Why...))
		}
		return Result{Truth: l.Truth}
	case nXor:
		l, r := evalNode(n.l, env), evalNode(n.r, env)
		if l.Truth == Unknown || r.Truth == Unknown {
			return unknown(append(l.Fields, r.Fields...), append(l.Why, r.Why...))
		}
		if l.Truth != r.Truth {
			return Result{Truth: True}
		}
		return Result{Truth: False}
	case nValue:
		v := evalValue(n.a, env)
		if !v.known {
			return unknown(v.fields, v.why)
		}
		if v.kind != kBool {
			return unknown(nil, []string{fmt.Sprintf("%s is not a condition", describe(n.a))})
		}
		return truth(v.b)
	case nCmp:
		return evalCompare(n, env)
	}
	return unknown(nil, []string{"unknown expression"})
}

func truth(b bool) Result {
	if b {
		return Result{Truth: True}
	}
	return Result{Truth: False}
}

type kind int

const (
	kString kind = iota
	kInt
	kBool
	kOpaque // an address, a CIDR, a range: nothing a hostname is compared with
)

// val is a value under evaluation: known, or unknown with the reason.
type val struct {
	known  bool
	kind   kind
	s      string
	n      int64
	b      bool
	fields []string
	why    []string
}

func describe(v *value) string {
	switch v.kind {
	case vCall:
		return v.s + "()"
	case vString:
		return strconv.Quote(v.s)
	}
	return v.s
}

func evalValue(v *value, env Env) val {
	switch v.kind {
	case vString:
		return val{known: true, kind: kString, s: v.s}
	case vLiteral:
		return literal(v.s)
	case vList:
		return val{why: []string{"the list " + v.s + ", which verify does not read"}}
	case vField:
		name := strings.ToLower(v.s)
		if name == "http.host" && !v.indexed {
			if env.Host == "" {
				return val{fields: []string{"http.host (a wildcard record covers many hostnames)"}}
			}
			return val{known: true, kind: kString, s: env.Host}
		}
		return val{fields: []string{v.s}}
	case vCall:
		return evalCall(v, env)
	case vCond:
		r := evalNode(v.cond, env)
		if r.Truth == Unknown {
			return val{fields: r.Fields, why: r.Why}
		}
		return val{known: true, kind: kBool, b: r.Truth == True}
	}
	return val{why: []string{"an unknown value"}}
}

func literal(s string) val {
	switch s {
	case "true":
		return val{known: true, kind: kBool, b: true}
	case "false":
		return val{known: true, kind: kBool}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return val{known: true, kind: kInt, n: n}
	}
	return val{known: true, kind: kOpaque, s: s}
}

func evalCall(v *value, env Env) val {
	args := make([]val, len(v.args))
	var fields, why []string
	for i, a := range v.args {
		args[i] = evalValue(a, env)
		fields = append(fields, args[i].fields...)
		why = append(why, args[i].why...)
	}
	if len(fields) > 0 || len(why) > 0 {
		return val{fields: fields, why: why}
	}
	str := func(i int) (string, bool) {
		if i < len(args) && args[i].kind == kString {
			return args[i].s, true
		}
		return "", false
	}
	bad := func() val {
		return val{why: []string{fmt.Sprintf("%s() with arguments verify does not understand", v.s)}}
	}
	switch v.s {
	case "lower", "upper":
		s, ok := str(0)
		if !ok || len(args) != 1 {
			return bad()
		}
		if v.s == "lower" {
			return val{known: true, kind: kString, s: strings.ToLower(s)}
		}
		return val{known: true, kind: kString, s: strings.ToUpper(s)}
	case "ends_with", "starts_with":
		s, ok1 := str(0)
		x, ok2 := str(1)
		if !ok1 || !ok2 || len(args) != 2 {
			return bad()
		}
		if v.s == "ends_with" {
			return val{known: true, kind: kBool, b: strings.HasSuffix(s, x)}
		}
		return val{known: true, kind: kBool, b: strings.HasPrefix(s, x)}
	case "len":
		s, ok := str(0)
		if !ok || len(args) != 1 {
			return bad()
		}
		return val{known: true, kind: kInt, n: int64(len(s))}
	case "concat":
		var b strings.Builder
		for i := range args {
			s, ok := str(i)
			if !ok {
				return bad()
			}
			if b.Len()+len(s) > maxValueLen {
				return val{why: []string{fmt.Sprintf("concat() of more than %d bytes", maxValueLen)}}
			}
			b.WriteString(s)
		}
		return val{known: true, kind: kString, s: b.String()}
	}
	return val{why: []string{v.s + "(), which verify does not evaluate"}}
}

func evalCompare(n *node, env Env) Result {
	a := evalValue(n.a, env)
	if n.op == "in" {
		if n.b != nil { // in $list
			b := evalValue(n.b, env)
			return unknown(append(a.fields, b.fields...), append(a.why, b.why...))
		}
		if !a.known {
			return unknown(a.fields, a.why)
		}
		undecided := false
		for _, e := range n.set {
			ev := evalValue(e, env)
			if eq, ok := equal(a, ev); ok && eq {
				return Result{Truth: True}
			} else if !ok {
				undecided = true
			}
		}
		if undecided {
			return unknown(nil, []string{fmt.Sprintf("%s in a set of values verify cannot compare with it", describe(n.a))})
		}
		return Result{Truth: False}
	}
	b := evalValue(n.b, env)
	if !a.known || !b.known {
		return unknown(append(a.fields, b.fields...), append(a.why, b.why...))
	}
	cannot := func() Result {
		return unknown(nil, []string{fmt.Sprintf("%s %s %s compares values verify cannot compare", describe(n.a), n.op, describe(n.b))})
	}
	switch n.op {
	case "eq", "ne":
		eq, ok := equal(a, b)
		if !ok {
			return cannot()
		}
		return truth(eq == (n.op == "eq"))
	case "lt", "le", "gt", "ge":
		var c int
		switch {
		case a.kind == kInt && b.kind == kInt:
			c = cmpInt(a.n, b.n)
		case a.kind == kString && b.kind == kString:
			c = strings.Compare(a.s, b.s)
		default:
			return cannot()
		}
		switch n.op {
		case "lt":
			return truth(c < 0)
		case "le":
			return truth(c <= 0)
		case "gt":
			return truth(c > 0)
		}
		return truth(c >= 0)
	}
	if a.kind != kString || b.kind != kString {
		return cannot()
	}
	switch n.op {
	case "contains":
		return truth(strings.Contains(a.s, b.s))
	case "wildcard":
		return truth(wildcard(strings.ToLower(a.s), strings.ToLower(b.s)))
	case "strict wildcard":
		return truth(wildcard(a.s, b.s))
	case "matches":
		// RE2 runs in time linear in the input: no pattern can hang it.
		// Cloudflare's regular expressions are Rust's, nearly the same
		// syntax; one Go cannot compile is left undecided.
		re, err := compileRegexp(b.s)
		if errors.Is(err, errRegexpSize) {
			return unknown(nil, []string{fmt.Sprintf("the regular expression %q, too large for verify to run (%v)", b.s, err)})
		}
		if err != nil {
			return unknown(nil, []string{fmt.Sprintf("the regular expression %q, which verify cannot read", b.s)})
		}
		return truth(re.MatchString(a.s))
	}
	return cannot()
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equal compares two known values; ok is false when their kinds differ or
// are opaque.
func equal(a, b val) (eq, ok bool) {
	if !a.known || !b.known || a.kind != b.kind || a.kind == kOpaque {
		return false, false
	}
	switch a.kind {
	case kString:
		return a.s == b.s, true
	case kInt:
		return a.n == b.n, true
	}
	return a.b == b.b, true
}

// wildcard matches s against a pattern where * is any run of characters
// (possibly empty) and \* and \\ are a literal * and \. It runs in
// O(len(s)·len(pattern)) at worst, with no recursion.
func wildcard(s, pattern string) bool {
	// Tokens: literal bytes, with star marking each unescaped *.
	var pat []byte
	var star []bool
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c == '\\' && i+1 < len(pattern) && (pattern[i+1] == '*' || pattern[i+1] == '\\') {
			i++
			pat, star = append(pat, pattern[i]), append(star, false)
			continue
		}
		pat, star = append(pat, c), append(star, c == '*')
	}
	si, pi := 0, 0
	lastStar, lastS := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && star[pi]:
			lastStar, lastS = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			si++
			pi++
		case lastStar >= 0:
			lastS++
			si, pi = lastS, lastStar+1
		default:
			return false
		}
	}
	for pi < len(pat) && star[pi] {
		pi++
	}
	return pi == len(pat)
}

// maxRegexpSize bounds a regular expression's size as RE2 would compile
// it (about one instruction per literal, class or operator, a repetition
// counting its body that many times). RE2 runs in linear time, but in
// time linear in its program too: [a-z]{1,1000} repeated 1,250 times fits
// in an expression, compiles to 2.5 million instructions in a second and
// takes milliseconds per hostname. A hostname's pattern needs a few
// hundred.
const maxRegexpSize = 10000

var errRegexpSize = errors.New("it would compile to more than 10,000 instructions")

// regexps caches compiled patterns across hostnames (a rule is evaluated
// once per hostname), at most maxCachedRegexps of them.
var regexps = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

const maxCachedRegexps = 1024

// compileRegexp compiles pattern unless it is larger than maxRegexpSize.
func compileRegexp(pattern string) (*regexp.Regexp, error) {
	regexps.Lock()
	re, ok := regexps.m[pattern]
	regexps.Unlock()
	if ok {
		return re, nil
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	if regexpSize(parsed) > maxRegexpSize {
		return nil, errRegexpSize
	}
	re, err = regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	regexps.Lock()
	if len(regexps.m) >= maxCachedRegexps {
		clear(regexps.m)
	}
	regexps.m[pattern] = re
	regexps.Unlock()
	return re, nil
}

// regexpSize estimates the instructions of re, saturating past
// maxRegexpSize. syntax.Parse bounds the nesting (1,000), so the
// recursion is bounded.
func regexpSize(re *syntax.Regexp) int {
	n := 1
	for _, sub := range re.Sub {
		n += regexpSize(sub)
		if n > maxRegexpSize {
			return maxRegexpSize + 1
		}
	}
	if re.Op == syntax.OpRepeat {
		times := max(re.Max, re.Min, 1)
		if n > (maxRegexpSize+1)/times {
			return maxRegexpSize + 1
		}
		n *= times
	}
	return n
}
