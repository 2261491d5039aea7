package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/zones"
)

// The phases of the zone rulesets verify reads (cloudflare.md §7).
const (
	PhaseConfig = "http_config_settings" // Configuration Rules
	PhaseOrigin = "http_request_origin"  // Origin Rules
)

// Permissions of the rules, as the token editor names them.
const (
	PermConfigRulesRead = "Config Rules:Read"
	PermOriginRulesRead = "Origin Rules:Read"
	PermPageRulesRead   = "Page Rules:Read"
)

// Rule is one rule of a zone's entrypoint ruleset, with the parameters
// verify uses.
type Rule struct {
	Phase       string
	RulesetID   string
	ID          string
	Description string
	Expression  string
	Enabled     bool
	Action      string // set_config, route, …
	// set_config
	SSL string // off, flexible, full, strict, origin_pull; "" when the rule sets none
	// route
	OriginHost string
	OriginPort int
	HostHeader string
	SNI        string
}

// PageRule is one legacy Page Rule with the actions verify uses.
type PageRule struct {
	ID       string
	Target   string // the URL pattern, e.g. "*example.com/*"
	Priority int    // higher wins; only the first match applies
	Status   string // active, disabled
	SSL      string
	// ResolveOverride is the hostname Cloudflare connects to instead.
	ResolveOverride    string
	HostHeaderOverride string
}

// Rules are a zone's per-hostname rules. Unread says what could not be
// read (a token without the permission, say): the paths then assume the
// zone settings for it.
type Rules struct {
	Config []Rule
	Origin []Rule
	Page   []PageRule // by priority, highest first
	Unread []Unread
}

// Unread is one kind of rule that could not be read.
type Unread struct {
	What string // "Configuration Rules", "Origin Rules", "Page Rules"
	Need string // the permission that would allow it
	Err  error  // an *Error
}

// Rules reads the zone's Configuration Rules, Origin Rules and Page Rules.
// A phase without an entrypoint ruleset (404) has no rules. A refusal or
// an unexpected answer for one kind goes to Unread, the others are still
// read; only a refused token, an API that does not answer, or a cancelled
// context is an error.
func (c *Client) Rules(ctx context.Context, zoneID string) (Rules, error) {
	var out Rules
	kinds := []struct {
		what, need string
		read       func() error
	}{
		{"Configuration Rules", PermConfigRulesRead, func() (err error) {
			out.Config, err = c.phase(ctx, zoneID, PhaseConfig, "read the Configuration Rules", PermConfigRulesRead)
			return err
		}},
		{"Origin Rules", PermOriginRulesRead, func() (err error) {
			out.Origin, err = c.phase(ctx, zoneID, PhaseOrigin, "read the Origin Rules", PermOriginRulesRead)
			return err
		}},
		{"Page Rules", PermPageRulesRead, func() (err error) {
			out.Page, err = c.pageRules(ctx, zoneID)
			return err
		}},
	}
	// The three reads at once: one zone's rules cost one round trip.
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k.read()
		}()
	}
	wg.Wait()
	for i, k := range kinds {
		err := errs[i]
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind == KindToken || e.Kind == KindUnreachable {
			return Rules{}, err
		}
		out.Unread = append(out.Unread, Unread{What: k.what, Need: k.need, Err: err})
	}
	return out, nil
}

// get sends GET path (below the base URL) through the SDK's request stack
// — authentication, retries, the error envelope, the body cap — and
// returns the answer's body. It borrows the zone settings service, which
// is linked already, and points its request at path: the SDK's rulesets
// and page_rules packages, for two GETs, would add 2.7 MB (16 %) to the
// binary.
func (c *Client) get(ctx context.Context, zoneID, path string) ([]byte, error) {
	target, err := url.JoinPath(c.baseURL, path)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	route := func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, ""
		return next(req)
	}
	rb := rawBody{empty: "{}"}
	var p zones.SettingGetParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	if _, err := c.settings.Get(ctx, "rules", p, option.WithMiddleware(route), option.WithMiddleware(rb.take)); err != nil {
		return nil, err
	}
	if rb.err != nil {
		return nil, &Error{Kind: KindAPI, What: "GET " + path, APIMessage: "something that is not JSON (" + rb.err.Error() + ")"}
	}
	return rb.body, nil
}

// phase reads the rules of one phase's entrypoint ruleset.
func (c *Client) phase(ctx context.Context, zoneID, phase, what, need string) ([]Rule, error) {
	body, err := c.get(ctx, zoneID, "zones/"+url.PathEscape(zoneID)+"/rulesets/phases/"+url.PathEscape(phase)+"/entrypoint")
	if err != nil {
		werr := c.wrap(err, what, need)
		if e, ok := werr.(*Error); ok && e.Status == http.StatusNotFound && (e.Code == 10003 || e.Code == 0) {
			return nil, nil // no entrypoint ruleset: no rules in this phase
		}
		return nil, werr
	}
	return parsePhase(body, phase, what)
}

// parsePhase reads an entrypoint ruleset's answer: its rules with the
// parameters verify uses, refusing what Cloudflare could not have sent.
func parsePhase(body []byte, phase, what string) ([]Rule, error) {
	var env struct {
		Result struct {
			ID    string `json:"id"`
			Rules []struct {
				ID               string          `json:"id"`
				Description      string          `json:"description"`
				Expression       string          `json:"expression"`
				Enabled          *bool           `json:"enabled"`
				Action           string          `json:"action"`
				ActionParameters json.RawMessage `json:"action_parameters"`
			} `json:"rules"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &Error{Kind: KindAPI, What: what, APIMessage: "a ruleset verify cannot read (" + err.Error() + ")"}
	}
	if n := len(env.Result.Rules); n > MaxRules {
		return nil, &Error{Kind: KindAPI, What: what, APIMessage: fmt.Sprintf("a ruleset of %d rules, more than the %d verify reads", n, MaxRules)}
	}
	var out []Rule
	for _, r := range env.Result.Rules {
		rule := Rule{Phase: phase, RulesetID: env.Result.ID, ID: r.ID, Description: r.Description,
			Expression: r.Expression, Enabled: r.Enabled == nil || *r.Enabled, Action: r.Action}
		var ap struct {
			SSL        string `json:"ssl"`
			HostHeader string `json:"host_header"`
			Origin     struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			} `json:"origin"`
			SNI struct {
				Value string `json:"value"`
			} `json:"sni"`
		}
		if len(r.ActionParameters) > 0 && string(r.ActionParameters) != "null" {
			if err := json.Unmarshal(r.ActionParameters, &ap); err != nil {
				return nil, &Error{Kind: KindAPI, What: what,
					APIMessage: fmt.Sprintf("rule %s with action_parameters verify cannot read (%v)", r.ID, err)}
			}
		}
		switch r.Action {
		case "set_config":
			rule.SSL = ap.SSL
		case "route":
			rule.OriginHost, rule.OriginPort, rule.HostHeader, rule.SNI = ap.Origin.Host, ap.Origin.Port, ap.HostHeader, ap.SNI.Value
			if bad := badRoute(rule); bad != "" {
				return nil, &Error{Kind: KindAPI, What: what, APIMessage: fmt.Sprintf("rule %s with %s", ClipName(r.ID), bad)}
			}
		}
		rule.ID, rule.Description = ClipName(rule.ID), ClipName(rule.Description)
		out = append(out, rule)
	}
	return out, nil
}

// pageRules reads the zone's Page Rules, highest priority first.
func (c *Client) pageRules(ctx context.Context, zoneID string) ([]PageRule, error) {
	const what = "read the Page Rules"
	body, err := c.get(ctx, zoneID, "zones/"+url.PathEscape(zoneID)+"/pagerules")
	if err != nil {
		return nil, c.wrap(err, what, PermPageRulesRead)
	}
	return parsePageRules(body)
}

// parsePageRules reads the Page Rules' answer, highest priority first.
func parsePageRules(body []byte) ([]PageRule, error) {
	const what = "read the Page Rules"
	var env struct {
		Result []struct {
			ID      string `json:"id"`
			Targets []struct {
				Target     string `json:"target"`
				Constraint struct {
					Operator string `json:"operator"`
					Value    string `json:"value"`
				} `json:"constraint"`
			} `json:"targets"`
			Actions []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"actions"`
			Priority int    `json:"priority"`
			Status   string `json:"status"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &Error{Kind: KindAPI, What: what, APIMessage: "Page Rules verify cannot read (" + err.Error() + ")"}
	}
	if n := len(env.Result); n > MaxRules {
		return nil, &Error{Kind: KindAPI, What: what, APIMessage: fmt.Sprintf("%d Page Rules, more than the %d verify reads", n, MaxRules)}
	}
	var out []PageRule
	for _, r := range env.Result {
		pr := PageRule{ID: r.ID, Priority: r.Priority, Status: r.Status}
		for _, t := range r.Targets {
			if t.Target == "url" {
				pr.Target = t.Constraint.Value
			}
		}
		for _, a := range r.Actions {
			var s string
			if json.Unmarshal(a.Value, &s) != nil {
				continue
			}
			switch a.ID {
			case "ssl":
				pr.SSL = s
			case "resolve_override":
				pr.ResolveOverride = s
			case "host_header_override":
				pr.HostHeaderOverride = s
			}
		}
		for _, f := range []struct{ what, v string }{{"resolve_override", pr.ResolveOverride}, {"host_header_override", pr.HostHeaderOverride}} {
			if f.v != "" && !validName(f.v) {
				return nil, &Error{Kind: KindAPI, What: what, APIMessage: fmt.Sprintf("Page Rule %s with %s %q, which is no hostname", ClipName(r.ID), f.what, ClipName(f.v))}
			}
		}
		pr.ID = ClipName(pr.ID)
		out = append(out, pr)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority > out[j].Priority })
	return out, nil
}

// MaxRules bounds the rules of one phase, and the Page Rules, verify
// reads (Cloudflare allows a few hundred at most); maxName the bytes of a
// rule's id or description it keeps: each is repeated on every path the
// rule changes.
const (
	MaxRules = 1000
	maxName  = 200
)

// ClipName bounds a name from the API to maxName bytes, cut at a rune,
// with … for what was left out.
func ClipName(s string) string {
	if len(s) <= maxName {
		return s
	}
	n := maxName
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// badRoute says what of a route rule's parameters Cloudflare could not
// have sent, "" when nothing: a port outside 1–65535 (0 is none), an
// origin host, Host header or SNI that is no hostname (a CR or LF in a
// Host header would add headers to verify's request).
func badRoute(r Rule) string {
	if r.OriginPort < 0 || r.OriginPort > 65535 {
		return fmt.Sprintf("origin port %d, which is no port (1–65535)", r.OriginPort)
	}
	for _, f := range []struct{ what, v string }{{"origin host", r.OriginHost}, {"host_header", r.HostHeader}, {"SNI", r.SNI}} {
		if f.v != "" && !validName(f.v) {
			return fmt.Sprintf("%s %q, which is no hostname", f.what, ClipName(f.v))
		}
	}
	return ""
}

// validName: a hostname of at most 253 bytes, letters, digits, - _ and
// dots (an IDN as Cloudflare sends it, in punycode).
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
