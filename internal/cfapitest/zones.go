package cfapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultToken is accepted by a new stand-in as a user token with every
// permission verify needs. SetToken replaces it; AddToken adds others.
const DefaultToken = "cfapitest-token-0123456789abcdef"

// Permissions a token may hold, as the stand-in checks them per endpoint.
const (
	PermZoneRead         = "Zone:Read"          // GET /zones
	PermZoneSettingsRead = "Zone Settings:Read" // GET /zones/{id}/settings/{name}
	PermDNSRead          = "DNS:Read"           // GET /zones/{id}/dns_records
)

// Paging limits of the real API: /zones takes 5–50 per page (20 by
// default), /dns_records 100 by default and up to 5,000,000.
const (
	zonesPerPageDefault = 20
	zonesPerPageMin     = 5
	zonesPerPageMax     = 50
	dnsPerPageDefault   = 100
	dnsPerPageMax       = 5000000
)

// Token is one API token the stand-in knows.
type Token struct {
	Value string
	// Status is what /tokens/verify answers: "active" (the default when
	// empty), "disabled" or "expired". Only active tokens are let through
	// elsewhere.
	Status string
	// Account is the owning account's id for an account-owned token; such a
	// token is refused by /user/tokens/verify (401, code 1000) and verified
	// by /accounts/{id}/tokens/verify, as on the real API.
	Account string
	// Permissions held; nil means all of them.
	Permissions []string
}

// zonesState holds tokens, zones, settings and DNS records.
type zonesState struct {
	tokens    map[string]Token
	zones     []*zone
	nextID    int
	pageDelay time.Duration
}

type zone struct {
	id, name, status, account string
	paused                    bool
	settings                  map[string]any
	records                   []record
}

type record struct {
	id, typ, name, content string
	proxied                bool
}

// tokensLocked returns the token table, starting it with DefaultToken on
// first use (the caller holds s.mu).
func (s *Server) tokensLocked() map[string]Token {
	if s.zs.tokens == nil {
		s.zs.tokens = map[string]Token{DefaultToken: {Value: DefaultToken}}
	}
	return s.zs.tokens
}

// SetToken makes tok the only token the stand-in accepts: an active user
// token with every permission.
func (s *Server) SetToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zs.tokens = map[string]Token{tok: {Value: tok}}
}

// AddToken adds (or replaces) a token.
func (s *Server) AddToken(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokensLocked()[t.Value] = t
}

// SetPageDelay makes every list request (zones, DNS records) wait d before
// answering, or until the client gives up: for tests of deadlines.
func (s *Server) SetPageDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zs.pageDelay = d
}

// AccountID is the account every zone of the stand-in belongs to.
const AccountID = "acc0000000000000000000000000000a"

// AddZone adds an active zone and returns its id. settings override the
// defaults (ssl "full", always_use_https "off", min_tls_version "1.0",
// tls_client_auth "off"); proxy_read_timeout is unreadable (as below the
// Enterprise plan) unless given. A nil value makes that setting unreadable.
func (s *Server) AddZone(name string, settings map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zs.nextID++
	z := &zone{
		id: fmt.Sprintf("%032x", s.zs.nextID), name: name, status: "active", account: AccountID,
		settings: map[string]any{"ssl": "full", "always_use_https": "off", "min_tls_version": "1.0", "tls_client_auth": "off"},
	}
	for k, v := range settings {
		z.settings[k] = v
	}
	s.zs.zones = append(s.zs.zones, z)
	return z.id
}

// SetZoneStatus sets a zone's status ("active", "pending", …) and paused flag.
func (s *Server) SetZoneStatus(zoneID, status string, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneByID(zoneID); z != nil {
		z.status, z.paused = status, paused
	}
}

// SetSetting sets (or, with nil, makes unreadable) one zone setting.
func (s *Server) SetSetting(zoneID, name string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneByID(zoneID); z != nil {
		z.settings[name] = value
	}
}

// AddRecord adds a DNS record to a zone and returns its id. name is the
// full name ("www.example.com").
func (s *Server) AddRecord(zoneID, typ, name, content string, proxied bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByID(zoneID)
	if z == nil {
		panic("cfapitest: AddRecord: no zone " + zoneID)
	}
	s.zs.nextID++
	r := record{id: fmt.Sprintf("%032x", s.zs.nextID), typ: typ, name: name, content: content, proxied: proxied}
	z.records = append(z.records, r)
	return r.id
}

func (s *Server) zoneByID(id string) *zone {
	for _, z := range s.zs.zones {
		if z.id == id {
			return z
		}
	}
	return nil
}

func (s *Server) routeZones(mux *http.ServeMux) {
	mux.HandleFunc("GET /user/tokens/verify", s.userTokenVerify)
	mux.HandleFunc("GET /accounts/{account}/tokens/verify", s.accountTokenVerify)
	mux.HandleFunc("GET /zones", s.listZones)
	mux.HandleFunc("GET /zones/{zone}/settings/{name}", s.zoneSetting)
	mux.HandleFunc("GET /zones/{zone}/dns_records", s.listRecords)
}

// authError is one entry of the errors array, optionally with a chain.
type authError struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Chain   []authError `json:"error_chain,omitempty"`
}

func writeErrors(w http.ResponseWriter, status int, errs ...authError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"success": false, "messages": []any{}, "result": nil, "errors": errs})
}

// authenticate checks the Authorization header the way the real API does
// and answers the request itself when it is refused. perm is the
// permission the endpoint needs ("" for token verification).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, perm string) (Token, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" || strings.ContainsAny(tok, " \t") {
		writeErrors(w, http.StatusBadRequest, authError{Code: 6003, Message: "Invalid request headers",
			Chain: []authError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
		return Token{}, false
	}
	s.mu.Lock()
	t, known := s.tokensLocked()[tok]
	s.mu.Unlock()
	if !known {
		writeErrors(w, http.StatusBadRequest, authError{Code: 9109, Message: "Invalid access token"})
		return Token{}, false
	}
	if perm == "" {
		return t, true
	}
	if t.Status != "" && t.Status != "active" {
		writeErrors(w, http.StatusForbidden, authError{Code: 9109, Message: "Invalid access token"})
		return Token{}, false
	}
	if t.Permissions != nil && !slices.Contains(t.Permissions, perm) {
		writeErrors(w, http.StatusForbidden, authError{Code: 10000, Message: "Authentication error"})
		return Token{}, false
	}
	return t, true
}

func tokenResult(t Token) map[string]any {
	st := t.Status
	if st == "" {
		st = "active"
	}
	return map[string]any{"id": "tok" + strconv.Itoa(len(t.Value)), "status": st, "not_before": nil, "expires_on": nil}
}

func (s *Server) userTokenVerify(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authenticate(w, r, "")
	if !ok {
		return
	}
	if t.Account != "" {
		writeErrors(w, http.StatusUnauthorized, authError{Code: 1000, Message: "Invalid API Token"})
		return
	}
	envelope(w, http.StatusOK, tokenResult(t), nil)
}

func (s *Server) accountTokenVerify(w http.ResponseWriter, r *http.Request) {
	t, ok := s.authenticate(w, r, "")
	if !ok {
		return
	}
	if t.Account == "" || t.Account != r.PathValue("account") {
		writeErrors(w, http.StatusUnauthorized, authError{Code: 1000, Message: "Invalid API Token"})
		return
	}
	envelope(w, http.StatusOK, tokenResult(t), nil)
}

// wait applies the page delay, returning false when the client went away.
func (s *Server) wait(r *http.Request) bool {
	s.mu.Lock()
	d := s.zs.pageDelay
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// paging reads page and per_page and clamps them as the real API does.
func paging(r *http.Request, def, lo, hi int) (page, perPage int, ok bool) {
	page, perPage = 1, def
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 1 {
			return 0, 0, false
		}
		page = int(n)
	}
	if v := r.URL.Query().Get("per_page"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, false
		}
		perPage = max(lo, min(hi, int(n)))
	}
	return page, perPage, true
}

func pageOf[T any](all []T, page, perPage int) ([]T, map[string]any) {
	start := (page - 1) * perPage
	out := []T{}
	if start < len(all) {
		out = all[start:min(len(all), start+perPage)]
	}
	pages := (len(all) + perPage - 1) / perPage
	return out, map[string]any{"page": page, "per_page": perPage, "count": len(out), "total_count": len(all), "total_pages": pages}
}

const stamp = "2024-01-02T03:04:05.000000Z"

func zoneJSON(z *zone) map[string]any {
	return map[string]any{
		"id": z.id, "name": z.name, "status": z.status, "paused": z.paused, "type": "full",
		"development_mode": 0, "name_servers": []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"},
		"original_name_servers": nil, "original_registrar": nil, "original_dnshost": nil,
		"created_on": stamp, "modified_on": stamp, "activated_on": stamp,
		"meta":        map[string]any{"step": 2, "phishing_detected": false},
		"owner":       map[string]any{"id": nil, "type": "user", "email": nil},
		"account":     map[string]any{"id": z.account, "name": "Test account"},
		"permissions": []string{}, "plan": map[string]any{"id": "free", "name": "Free Website"},
	}
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, PermZoneRead); !ok {
		return
	}
	page, perPage, ok := paging(r, zonesPerPageDefault, zonesPerPageMin, zonesPerPageMax)
	if !ok {
		writeErrors(w, http.StatusBadRequest, authError{Code: 1001, Message: "Invalid request: page or per_page"})
		return
	}
	if !s.wait(r) {
		return
	}
	name := strings.ToLower(r.URL.Query().Get("name"))
	s.mu.Lock()
	var all []map[string]any
	for _, z := range s.zs.zones {
		if name == "" || z.name == name {
			all = append(all, zoneJSON(z))
		}
	}
	s.mu.Unlock()
	res, info := pageOf(all, page, perPage)
	envelope(w, http.StatusOK, res, info)
}

func (s *Server) zoneSetting(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, PermZoneSettingsRead); !ok {
		return
	}
	name := r.PathValue("name")
	s.mu.Lock()
	z := s.zoneByID(r.PathValue("zone"))
	var (
		v     any
		found bool
	)
	if z != nil {
		v, found = z.settings[name]
	}
	s.mu.Unlock()
	if z == nil {
		writeErrors(w, http.StatusNotFound, authError{Code: 1001, Message: "Invalid zone identifier"})
		return
	}
	if !found || v == nil {
		// What a zone below the Enterprise plan gets for proxy_read_timeout.
		writeErrors(w, http.StatusForbidden, authError{Code: 1015, Message: "This setting is not available on your plan"})
		return
	}
	envelope(w, http.StatusOK, map[string]any{"id": name, "value": v, "editable": true, "modified_on": stamp}, nil)
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, PermDNSRead); !ok {
		return
	}
	page, perPage, ok := paging(r, dnsPerPageDefault, 1, dnsPerPageMax)
	if !ok {
		writeErrors(w, http.StatusBadRequest, authError{Code: 1001, Message: "Invalid request: page or per_page"})
		return
	}
	if !s.wait(r) {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	z := s.zoneByID(r.PathValue("zone"))
	var all []map[string]any
	if z != nil {
		for _, rec := range z.records {
			if t := q.Get("type"); t != "" && !strings.EqualFold(t, rec.typ) {
				continue
			}
			if n := q.Get("name"); n != "" && !strings.EqualFold(n, rec.name) {
				continue
			}
			if p := q.Get("proxied"); p != "" && p != strconv.FormatBool(rec.proxied) {
				continue
			}
			proxiable := rec.typ == "A" || rec.typ == "AAAA" || rec.typ == "CNAME"
			all = append(all, map[string]any{
				"id": rec.id, "zone_id": z.id, "zone_name": z.name, "name": rec.name, "type": rec.typ,
				"content": rec.content, "proxiable": proxiable, "proxied": rec.proxied && proxiable, "ttl": 1,
				"settings": map[string]any{}, "meta": map[string]any{}, "comment": nil, "tags": []string{},
				"created_on": stamp, "modified_on": stamp,
			})
		}
	}
	s.mu.Unlock()
	if z == nil {
		writeErrors(w, http.StatusNotFound, authError{Code: 7003, Message: "Could not route to /zones/" + r.PathValue("zone") + "/dns_records, perhaps your object identifier is invalid?"})
		return
	}
	res, info := pageOf(all, page, perPage)
	envelope(w, http.StatusOK, res, info)
}
