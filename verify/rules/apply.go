package rules

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cfguard/cfguard/verify/cloudflare"
)

// Ref names one rule for an administrator.
type Ref struct {
	Kind    string // "Configuration Rule", "Origin Rule", "Page Rule"
	Name    string // the rule's description, or the Page Rule's URL pattern
	Ruleset string // the ruleset's id (none for Page Rules)
	ID      string
}

func (r Ref) String() string {
	name := cloudflare.ClipName(r.Name) // a Page Rule's pattern is as long as the API made it
	if name == "" {
		name = "(no description)"
	}
	if r.Ruleset != "" {
		return fmt.Sprintf("%s %q (ruleset %s, rule id %s)", r.Kind, name, r.Ruleset, r.ID)
	}
	return fmt.Sprintf("%s %q (id %s)", r.Kind, name, r.ID)
}

// Applied is one rule that matches every request to the hostname and what
// it sets: "SSL mode strict", "port 8443".
type Applied struct {
	Ref  Ref
	Sets []string
}

func (a Applied) String() string {
	return a.Ref.String() + " sets " + strings.Join(a.Sets, ", ")
}

// Override is what the rules change for one hostname. Empty fields are
// left as the zone settings and the DNS record say.
type Override struct {
	SSL        string // the SSL mode
	Port       int    // the destination port, for every scheme
	OriginHost string // the hostname whose address Cloudflare connects to
	HostHeader string // the Host header sent
	SNI        string // the SNI sent (a Host header override sets it too)
	Applied    []Applied
	// Depends are the rules that match some requests to the hostname and
	// not others (or that verify cannot decide), one sentence each. The
	// path is walked as if they did not match; Alternatives walks the
	// requests they match.
	Depends   []string
	undecided []undecided
}

// For returns what the rules change for every request to hostname (a
// wildcard record's name, *.example.com, leaves http.host unknown). Rules
// apply in Cloudflare's order: the first matching Page Rule, then
// Configuration and Origin Rules in their order, later ones winning per
// field, and a rule beating a Page Rule on the same field.
func For(rs cloudflare.Rules, hostname string) Override {
	return forAssuming(rs, hostname, "", nil)
}

// MaxAlternatives bounds the alternatives of one hostname, and
// maxAlternativeTries the rules tried for them: a rule whose requests get
// what every request gets is no alternative, and a zone of a thousand such
// rules must not cost a thousand walks of its rules per hostname.
const (
	MaxAlternatives     = 8
	maxAlternativeTries = 4 * MaxAlternatives
)

// Alternative is the way some requests to a hostname take: those that a
// rule depending on the request matches.
type Alternative struct {
	Rule Ref
	// On says what the rule matches on: request fields, or what verify
	// could not decide.
	On       []string
	Override Override
}

// Only is the sentence for a path that only some requests take.
func (a Alternative) Only() string {
	return fmt.Sprintf("only for the requests that %s matches (on %s); the others take the path without it", a.Rule, strings.Join(a.On, "; "))
}

// Alternatives returns, for each rule that depends on the request (up to
// MaxAlternatives), what the requests it matches get, when that differs
// from what every request gets (For).
func Alternatives(rs cloudflare.Rules, hostname string) []Alternative {
	_, alts := Plan(rs, hostname)
	return alts
}

// Plan is For and Alternatives at once.
func Plan(rs cloudflare.Rules, hostname string) (Override, []Alternative) {
	// Each rule's value for the hostname is the same whatever is assumed
	// of another: evaluated once.
	memo := make(memo, len(rs.Page)+len(rs.Config)+len(rs.Origin))
	base := forAssuming(rs, hostname, "", memo)
	var out []Alternative
	for i, u := range base.undecided {
		if len(out) == MaxAlternatives || i == maxAlternativeTries {
			break
		}
		alt := forAssuming(rs, hostname, u.key, memo)
		if alt.SSL == base.SSL && alt.Port == base.Port && alt.OriginHost == base.OriginHost && alt.HostHeader == base.HostHeader && alt.SNI == base.SNI {
			continue
		}
		alt.undecided = nil
		out = append(out, Alternative{Rule: u.ref, On: u.on, Override: alt})
	}
	return base, out
}

// undecided is a rule For could not decide.
type undecided struct {
	key string
	ref Ref
	on  []string
}

func (r Ref) key() string { return r.Kind + "\x00" + r.Ruleset + "\x00" + r.ID }

func onOf(res Result) []string {
	var on []string
	if len(res.Fields) > 0 {
		on = append(on, strings.Join(res.Fields, ", "))
	}
	return append(on, res.Why...)
}

// forAssuming is For with the rule of key assume taken as matching; memo
// holds each rule's value for the hostname, by its key.
func forAssuming(rs cloudflare.Rules, hostname, assume string, memo memo) Override {
	env := Env{Host: strings.ToLower(strings.TrimSuffix(hostname, "."))}
	if strings.HasPrefix(env.Host, "*.") {
		env.Host = ""
	}
	var o Override
	explicitSNI := ""
	for i, pr := range rs.Page {
		if pr.Status != "" && pr.Status != "active" {
			continue
		}
		sets := pageSets(pr)
		ref := Ref{Kind: "Page Rule", Name: pr.Target, ID: pr.ID}
		res, ok := memo.lookup(i)
		if !ok {
			res = MatchPageTarget(pr.Target, env.Host)
			memo.store(i, res)
		}
		if res.Truth == Unknown && ref.key() == assume {
			res.Truth = True
		}
		if res.Truth == Unknown && len(sets) > 0 {
			o.Depends = append(o.Depends, dependsSentence(ref, res, sets))
			o.undecided = append(o.undecided, undecided{ref.key(), ref, onOf(res)})
			continue
		}
		if res.Truth != True {
			continue
		}
		// Only the first Page Rule that matches applies.
		if len(sets) > 0 {
			o.SSL = pick(pr.SSL, o.SSL)
			o.OriginHost = pick(strings.ToLower(pr.ResolveOverride), o.OriginHost)
			o.HostHeader = pick(pr.HostHeaderOverride, o.HostHeader)
			o.Applied = append(o.Applied, Applied{Ref: ref, Sets: sets})
		}
		break
	}
	for i, r := range rs.Config {
		if !r.Enabled || r.Action != "set_config" || r.SSL == "" {
			continue
		}
		ref := Ref{Kind: "Configuration Rule", Name: r.Description, Ruleset: r.RulesetID, ID: r.ID}
		sets := []string{"SSL mode " + r.SSL}
		res, ok := memo.lookup(len(rs.Page) + i)
		if !ok {
			res = evalRule(r.Expression, env)
			memo.store(len(rs.Page)+i, res)
		}
		if res.Truth == Unknown && ref.key() == assume {
			res.Truth = True
		}
		switch res.Truth {
		case True:
			o.SSL = r.SSL
			o.Applied = append(o.Applied, Applied{Ref: ref, Sets: sets})
		case Unknown:
			o.Depends = append(o.Depends, dependsSentence(ref, res, sets))
			o.undecided = append(o.undecided, undecided{ref.key(), ref, onOf(res)})
		}
	}
	for i, r := range rs.Origin {
		if !r.Enabled || r.Action != "route" {
			continue
		}
		sets := routeSets(r)
		if len(sets) == 0 {
			continue
		}
		ref := Ref{Kind: "Origin Rule", Name: r.Description, Ruleset: r.RulesetID, ID: r.ID}
		res, ok := memo.lookup(len(rs.Page) + len(rs.Config) + i)
		if !ok {
			res = evalRule(r.Expression, env)
			memo.store(len(rs.Page)+len(rs.Config)+i, res)
		}
		if res.Truth == Unknown && ref.key() == assume {
			res.Truth = True
		}
		switch res.Truth {
		case True:
			if r.OriginPort > 0 {
				o.Port = r.OriginPort
			}
			o.OriginHost = pick(strings.ToLower(r.OriginHost), o.OriginHost)
			o.HostHeader = pick(r.HostHeader, o.HostHeader)
			explicitSNI = pick(r.SNI, explicitSNI)
			o.Applied = append(o.Applied, Applied{Ref: ref, Sets: sets})
		case Unknown:
			o.Depends = append(o.Depends, dependsSentence(ref, res, sets))
			o.undecided = append(o.undecided, undecided{ref.key(), ref, onOf(res)})
		}
	}
	o.SNI = pick(explicitSNI, o.HostHeader)
	if n := len(o.Depends) - MaxDepends; n > 0 {
		o.Depends = append(o.Depends[:MaxDepends:MaxDepends], fmt.Sprintf("and %d more rules that depend on the request or that verify cannot decide; the paths assume they do not match", n))
	}
	return o
}

// MaxDepends bounds the rules named as depending on the request in one
// Override: each is a warning on every path of the hostname (a zone of a
// hundred rules on the URI path, over ten thousand paths, was hundreds of
// megabytes of JSON).
const MaxDepends = 16

func pick(v, old string) string {
	if v != "" {
		return v
	}
	return old
}

func pageSets(pr cloudflare.PageRule) []string {
	var s []string
	if pr.SSL != "" {
		s = append(s, "SSL mode "+pr.SSL)
	}
	if pr.ResolveOverride != "" {
		s = append(s, "origin "+pr.ResolveOverride)
	}
	if pr.HostHeaderOverride != "" {
		s = append(s, "Host header "+pr.HostHeaderOverride)
	}
	return s
}

func routeSets(r cloudflare.Rule) []string {
	var s []string
	if r.OriginPort > 0 {
		s = append(s, "port "+strconv.Itoa(r.OriginPort))
	}
	if r.OriginHost != "" {
		s = append(s, "origin "+r.OriginHost)
	}
	if r.HostHeader != "" {
		s = append(s, "Host header "+r.HostHeader)
	}
	if r.SNI != "" {
		s = append(s, "SNI "+r.SNI)
	}
	return s
}

// memo holds each rule's value for one hostname: the Page Rules, then
// the Configuration Rules, then the Origin Rules, by index. A nil memo
// keeps nothing. Its Results share their slices: only read them.
type memo []memoEntry

type memoEntry struct {
	done bool
	res  Result
}

func (m memo) lookup(i int) (Result, bool) {
	if m == nil || !m[i].done {
		return Result{}, false
	}
	return m[i].res, true
}

func (m memo) store(i int, r Result) {
	if m != nil {
		m[i] = memoEntry{true, r}
	}
}

// parsed keeps the expressions parsed, so that a run applying a zone's
// rules to every hostname parses each once (BenchmarkFor1000Hosts: 3.8 s
// without it). It is emptied when it holds maxParsed.
var parsed = struct {
	sync.Mutex
	m map[string]parseResult
}{m: map[string]parseResult{}}

const maxParsed = 4096

type parseResult struct {
	e   *Expr
	err error
}

func parseCached(src string) (*Expr, error) {
	parsed.Lock()
	defer parsed.Unlock()
	if r, ok := parsed.m[src]; ok {
		return r.e, r.err
	}
	if len(parsed.m) >= maxParsed {
		clear(parsed.m)
	}
	e, err := Parse(src)
	parsed.m[src] = parseResult{e, err}
	return e, err
}

// evalRule evaluates one rule's expression. What it says of it is kept to
// cloudflare.ClipName's bound: a 16 KiB string or regular expression
// quoted in a reason would be repeated on every path of the hostname.
func evalRule(src string, env Env) Result {
	e, err := parseCached(src)
	if err != nil {
		return Result{Truth: Unknown, Why: []string{"verify cannot read its expression (" + cloudflare.ClipName(err.Error()) + ")"}}
	}
	res := e.Eval(env)
	for i := range res.Fields {
		res.Fields[i] = cloudflare.ClipName(res.Fields[i])
	}
	for i := range res.Why {
		res.Why[i] = cloudflare.ClipName(res.Why[i])
	}
	return res
}

func dependsSentence(ref Ref, res Result, sets []string) string {
	var on []string
	if len(res.Fields) > 0 {
		on = append(on, "matches on "+strings.Join(res.Fields, ", "))
	}
	on = append(on, res.Why...)
	lead := "depends on the request"
	if len(res.Fields) == 0 {
		lead = "cannot tell whether a rule applies"
	}
	return fmt.Sprintf("%s: %s %s; the requests it matches get %s, the others this path",
		lead, ref, strings.Join(on, "; "), strings.Join(sets, ", "))
}
