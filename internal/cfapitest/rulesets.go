package cfapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Permissions of the rules endpoints.
const (
	PermConfigRulesRead = "Config Rules:Read"  // GET /zones/{id}/rulesets/phases/http_config_settings/entrypoint
	PermOriginRulesRead = "Origin Rules:Read"  // GET /zones/{id}/rulesets/phases/http_request_origin/entrypoint
	PermPageRulesRead   = "Page Rules:Read"    // GET /zones/{id}/pagerules
	permRulesetsRead    = "Zone Rulesets:Read" // any other phase
)

// Rule is one rule of an entrypoint ruleset as the API holds it. Enabled
// nil means true; ActionParameters is sent as is.
type Rule struct {
	ID               string
	Description      string
	Expression       string
	Action           string
	ActionParameters map[string]any
	Enabled          *bool
}

// PageRule is one legacy Page Rule: a URL pattern and its actions
// ("ssl": "strict", "resolve_override": "…", "host_header_override": "…").
type PageRule struct {
	ID       string
	Target   string
	Actions  map[string]any
	Priority int
	Status   string // "active" when empty
}

// rulesetState: per zone, the entrypoint ruleset of each phase, and the
// page rules. A phase with no entry has no entrypoint (404).
type rulesetState struct {
	entrypoints map[string]map[string][]Rule // zone id → phase → rules
	pageRules   map[string][]PageRule        // zone id → rules
	raw         map[string]string            // zone id + " " + phase: a body to send instead
}

// SetPhaseRules makes rules the zone's entrypoint ruleset of phase (nil
// removes it: 404, as for a phase never used).
func (s *Server) SetPhaseRules(zoneID, phase string, rules []Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rs.entrypoints == nil {
		s.rs.entrypoints = map[string]map[string][]Rule{}
	}
	if s.rs.entrypoints[zoneID] == nil {
		s.rs.entrypoints[zoneID] = map[string][]Rule{}
	}
	if rules == nil {
		delete(s.rs.entrypoints[zoneID], phase)
		return
	}
	s.rs.entrypoints[zoneID][phase] = rules
}

// SetPageRules sets the zone's Page Rules.
func (s *Server) SetPageRules(zoneID string, rules []PageRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rs.pageRules == nil {
		s.rs.pageRules = map[string][]PageRule{}
	}
	s.rs.pageRules[zoneID] = rules
}

// SetRawPhase makes the entrypoint of phase answer 200 with body as is
// (for tests of malformed answers).
func (s *Server) SetRawPhase(zoneID, phase, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rs.raw == nil {
		s.rs.raw = map[string]string{}
	}
	s.rs.raw[zoneID+" "+phase] = body
}

func (s *Server) routeRulesets(mux *http.ServeMux) {
	mux.HandleFunc("GET /zones/{zone}/rulesets/phases/{phase}/entrypoint", s.entrypoint)
	mux.HandleFunc("GET /zones/{zone}/pagerules", s.listPageRules)
}

func phasePerm(phase string) string {
	switch phase {
	case "http_config_settings":
		return PermConfigRulesRead
	case "http_request_origin":
		return PermOriginRulesRead
	}
	return permRulesetsRead
}

func (s *Server) entrypoint(w http.ResponseWriter, r *http.Request) {
	phase := r.PathValue("phase")
	if _, ok := s.authenticate(w, r, phasePerm(phase)); !ok {
		return
	}
	zid := r.PathValue("zone")
	s.mu.Lock()
	z := s.zoneByID(zid)
	rules, found := s.rs.entrypoints[zid][phase]
	raw, isRaw := s.rs.raw[zid+" "+phase]
	rules = append([]Rule(nil), rules...)
	s.mu.Unlock()
	switch {
	case z == nil:
		writeErrors(w, http.StatusNotFound, authError{Code: 7003, Message: "Could not route to /zones/" + zid + "/rulesets/phases/" + phase + "/entrypoint, perhaps your object identifier is invalid?"})
		return
	case isRaw:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, raw)
		return
	case !found:
		writeErrors(w, http.StatusNotFound, authError{Code: 10003, Message: "could not find entrypoint ruleset in the " + phase + " phase"})
		return
	}
	out := []map[string]any{}
	for i, rule := range rules {
		enabled := rule.Enabled == nil || *rule.Enabled
		id := rule.ID
		if id == "" {
			id = fmt.Sprintf("%032x", i+1)
		}
		out = append(out, map[string]any{
			"id": id, "version": "1", "action": rule.Action, "action_parameters": rule.ActionParameters,
			"expression": rule.Expression, "description": rule.Description, "enabled": enabled,
			"last_updated": stamp, "ref": id,
		})
	}
	envelope(w, http.StatusOK, map[string]any{
		"id": rulesetID(zid, phase), "name": "default", "description": "", "kind": "zone", "version": "1",
		"rules": out, "last_updated": stamp, "phase": phase,
	}, nil)
}

// rulesetID is a stable id per zone and phase.
func rulesetID(zoneID, phase string) string {
	h := 0
	for _, c := range zoneID + phase {
		h = h*31 + int(c)
	}
	return fmt.Sprintf("%032x", uint32(h))
}

func (s *Server) listPageRules(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, PermPageRulesRead); !ok {
		return
	}
	zid := r.PathValue("zone")
	s.mu.Lock()
	z := s.zoneByID(zid)
	rules := append([]PageRule(nil), s.rs.pageRules[zid]...)
	s.mu.Unlock()
	if z == nil {
		writeErrors(w, http.StatusNotFound, authError{Code: 7003, Message: "Could not route to /zones/" + zid + "/pagerules, perhaps your object identifier is invalid?"})
		return
	}
	out := []map[string]any{}
	for i, pr := range rules {
		st := pr.Status
		if st == "" {
			st = "active"
		}
		id := pr.ID
		if id == "" {
			id = fmt.Sprintf("%032x", 0x1000+i)
		}
		actions := []map[string]any{}
		for k, v := range pr.Actions {
			actions = append(actions, map[string]any{"id": k, "value": v})
		}
		out = append(out, map[string]any{
			"id": id, "priority": pr.Priority, "status": st, "created_on": stamp, "modified_on": stamp,
			"targets": []map[string]any{{"target": "url", "constraint": map[string]any{"operator": "matches", "value": pr.Target}}},
			"actions": actions,
		})
	}
	envelope(w, http.StatusOK, out, nil)
}

// ParseRules reads rules as the API lists them (a JSON array of objects
// with id, description, expression, action, action_parameters, enabled),
// for the stand-in command's flags.
func ParseRules(b []byte) ([]Rule, error) {
	var in []struct {
		ID               string         `json:"id"`
		Description      string         `json:"description"`
		Expression       string         `json:"expression"`
		Action           string         `json:"action"`
		ActionParameters map[string]any `json:"action_parameters"`
		Enabled          *bool          `json:"enabled"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := []Rule{}
	for _, r := range in {
		out = append(out, Rule{ID: r.ID, Description: r.Description, Expression: r.Expression, Action: r.Action, ActionParameters: r.ActionParameters, Enabled: r.Enabled})
	}
	return out, nil
}

// ZoneID returns the id of the zone named name ("" when there is none),
// for tests that did not keep AddZone's answer.
func (s *Server) ZoneID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zs.zones {
		if z.name == name {
			return z.id
		}
	}
	return ""
}
