// Package cloudflare reads what verify needs from Cloudflare's API: the
// token's validity, zones, zone settings and DNS records. It uses only the
// sub-packages of cloudflare-go v7 and pages by hand, passing the context to
// every page.
package cloudflare

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/accounts"
	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/user"
	"github.com/cloudflare/cloudflare-go/v7/zones"
)

// Timeouts and sizes of the API calls.
const (
	// RequestTimeout bounds one attempt of one API request.
	RequestTimeout = 20 * time.Second
	// MaxRetries is how often a 429 / 5xx answer is retried (the SDK honours
	// Retry-After).
	MaxRetries = 2
	// zonesPerPage is the largest page /zones gives.
	zonesPerPage = 50
	// recordsPerPage for /dns_records (the API allows far more; 1000 keeps
	// one answer to a few hundred kilobytes).
	recordsPerPage = 1000
	// DefaultProxyReadTimeout is Cloudflare's wait for response headers when
	// the zone's proxy_read_timeout cannot be read.
	DefaultProxyReadTimeout = 125 * time.Second
)

// Permissions names the permissions a read-only token for verify needs.
const Permissions = "Zone:Read, Zone Settings:Read, DNS:Read"

// Config says where the API is and how to authenticate.
type Config struct {
	BaseURL    string // e.g. https://api.cloudflare.com/client/v4
	Token      string
	HTTPClient *http.Client // nil: http.DefaultClient's transport with no overall timeout
	UserAgent  string
}

// Client reads zones, settings and DNS records.
type Client struct {
	baseURL  string
	opts     []option.RequestOption
	user     *user.TokenService
	accounts *accounts.TokenService
	zones    *zones.ZoneService
	settings *zones.SettingService
	records  *dns.RecordService

	// hc, token and userAgent serve the GraphQL query (analytics.go),
	// which the SDK does not cover.
	hc               *http.Client
	token, userAgent string
}

// Zone is one zone the token can read.
type Zone struct {
	ID        string
	Name      string
	Status    string // active, pending, initializing, moved, …
	Paused    bool
	AccountID string
}

// Settings are the zone settings that decide the paths to the origin.
type Settings struct {
	SSL              string // off, flexible, full, strict, origin_pull
	AlwaysUseHTTPS   bool
	MinTLSVersion    string // "1.0" … "1.3"
	TLSClientAuth    bool   // Authenticated Origin Pulls (zone-wide)
	ProxyReadTimeout time.Duration
	// Notes say which settings could not be read and what was assumed.
	Notes []string
}

// Record is one DNS record.
type Record struct {
	Type    string
	Name    string
	Content string
	Proxied bool
}

// New builds a client. It reads nothing from the environment.
func New(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, &Error{Kind: KindToken, What: "use the API", Reason: "no API token was given"}
	}
	if !strings.HasPrefix(cfg.BaseURL, "https://") && !strings.HasPrefix(cfg.BaseURL, "http://") {
		return nil, fmt.Errorf("API base URL %q: want an http(s) URL", cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(hc),
		option.WithAPIToken(cfg.Token),
		option.WithMaxRetries(MaxRetries),
		option.WithRequestTimeout(RequestTimeout),
		option.WithMiddleware(limitBody),
	}
	if cfg.UserAgent != "" {
		opts = append(opts, option.WithHeader("User-Agent", cfg.UserAgent))
	}
	c := &Client{
		baseURL:  cfg.BaseURL,
		opts:     opts,
		user:     user.NewTokenService(opts...),
		accounts: accounts.NewTokenService(opts...),
		zones:    zones.NewZoneService(opts...),
		settings: zones.NewSettingService(opts...),
		records:  dns.NewRecordService(opts...),
	}
	c.hc, c.token, c.userAgent = hc, cfg.Token, cfg.UserAgent
	return c, nil
}

// VerifyToken checks that the token is active. A user token is checked with
// /user/tokens/verify; when that refuses it as not a user token, the token
// may be account-owned: verify then lists one zone to learn the account and
// checks /accounts/{id}/tokens/verify.
func (c *Client) VerifyToken(ctx context.Context) error {
	res, err := c.user.Verify(ctx)
	if err == nil {
		return tokenStatus(string(res.Status))
	}
	uerr := c.wrap(err, "verify the API token", "")
	e, ok := uerr.(*Error)
	if !ok || e.Kind != KindToken || e.Code != 1000 {
		return uerr
	}
	// Perhaps an account token: find its account through a zone it reads.
	var p zones.ZoneListParams
	p.PerPage.Value, p.PerPage.Present = 5, true
	page, zerr := c.zones.List(ctx, p)
	if zerr != nil || len(page.Result) == 0 || page.Result[0].Account.ID == "" {
		return uerr
	}
	var ap accounts.TokenVerifyParams
	ap.AccountID.Value, ap.AccountID.Present = page.Result[0].Account.ID, true
	ares, aerr := c.accounts.Verify(ctx, ap)
	if aerr != nil {
		return uerr
	}
	return tokenStatus(string(ares.Status))
}

func tokenStatus(st string) error {
	if st == "active" {
		return nil
	}
	return &Error{Kind: KindToken, What: "use the API", Reason: "the API token is " + st}
}

// Zones returns the zones named (each must exist and be readable), or every
// zone the token can read when names is empty, sorted as the API lists them.
func (c *Client) Zones(ctx context.Context, names []string) ([]Zone, error) {
	if len(names) == 0 {
		return c.listZones(ctx, "")
	}
	var out []Zone
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		zs, err := c.listZones(ctx, n)
		if err != nil {
			return nil, err
		}
		if len(zs) == 0 {
			return nil, &Error{Kind: KindNotFound, What: "read zone " + n,
				Reason: "zone " + n + " is not in any account the API token can read",
				Fix:    "check the name, or give the token Zone:Read for that zone"}
		}
		out = append(out, zs...)
	}
	return out, nil
}

func (c *Client) listZones(ctx context.Context, name string) ([]Zone, error) {
	var out []Zone
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return nil, c.wrap(err, "list zones", PermZoneRead)
		}
		var p zones.ZoneListParams
		p.Page.Value, p.Page.Present = float64(page), true
		p.PerPage.Value, p.PerPage.Present = zonesPerPage, true
		if name != "" {
			p.Name.Value, p.Name.Present = name, true
		}
		res, err := c.zones.List(ctx, p)
		if err != nil {
			return nil, c.wrap(err, "list zones", PermZoneRead)
		}
		for _, z := range res.Result {
			out = append(out, Zone{ID: z.ID, Name: z.Name, Status: string(z.Status), Paused: z.Paused, AccountID: z.Account.ID})
		}
		if lastPage(res.ResultInfo.JSON.RawJSON(), page, len(res.Result), zonesPerPage) {
			return out, nil
		}
	}
}

// lastPage decides from result_info (total_pages when given, else a short
// page) whether page was the last.
func lastPage(rawInfo string, page, got, perPage int) bool {
	var info struct {
		TotalPages *int `json:"total_pages"`
	}
	if json.Unmarshal([]byte(rawInfo), &info) == nil && info.TotalPages != nil {
		return page >= *info.TotalPages || got == 0
	}
	return got < perPage
}

// Names of the settings read.
const (
	settingSSL              = "ssl"
	settingAlwaysUseHTTPS   = "always_use_https"
	settingMinTLSVersion    = "min_tls_version"
	settingTLSClientAuth    = "tls_client_auth"
	settingProxyReadTimeout = "proxy_read_timeout"
)

// Settings reads the zone settings verify uses. The ssl setting must be
// readable; the others fall back to Cloudflare's defaults with a note.
func (c *Client) Settings(ctx context.Context, zoneID string) (Settings, error) {
	names := []string{settingSSL, settingAlwaysUseHTTPS, settingMinTLSVersion, settingTLSClientAuth, settingProxyReadTimeout}
	raws := make([]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raws[i], errs[i] = c.setting(ctx, zoneID, n)
		}()
	}
	wg.Wait()
	s := Settings{SSL: "full", MinTLSVersion: "1.0", ProxyReadTimeout: DefaultProxyReadTimeout}
	for i, n := range names {
		if err := errs[i]; err != nil {
			e, ok := err.(*Error)
			if n == settingSSL || !ok || e.Kind == KindToken || e.Kind == KindPermission || e.Kind == KindUnreachable {
				return Settings{}, err
			}
			s.Notes = append(s.Notes, unreadableNote(n, e))
			continue
		}
		var str string
		var num float64
		raw := []byte(raws[i])
		switch n {
		case settingSSL:
			if json.Unmarshal(raw, &str) != nil || str == "" {
				return Settings{}, fmt.Errorf("zone setting ssl: unexpected value %s", raws[i])
			}
			s.SSL = str
		case settingAlwaysUseHTTPS:
			json.Unmarshal(raw, &str)
			s.AlwaysUseHTTPS = str == "on"
		case settingMinTLSVersion:
			if json.Unmarshal(raw, &str) == nil && str != "" {
				s.MinTLSVersion = str
			}
		case settingTLSClientAuth:
			json.Unmarshal(raw, &str)
			s.TLSClientAuth = str == "on"
		case settingProxyReadTimeout:
			if json.Unmarshal(raw, &num) != nil {
				if json.Unmarshal(raw, &str) == nil {
					num, _ = strconv.ParseFloat(str, 64)
				}
			}
			if num > 0 {
				s.ProxyReadTimeout = time.Duration(num * float64(time.Second))
			} else {
				s.Notes = append(s.Notes, "proxy_read_timeout reads "+raws[i]+"; assuming Cloudflare's default of 125 s")
			}
		}
	}
	return s, nil
}

func unreadableNote(name string, e *Error) string {
	assumed := map[string]string{
		settingAlwaysUseHTTPS:   "off",
		settingMinTLSVersion:    "1.0",
		settingTLSClientAuth:    "off",
		settingProxyReadTimeout: "Cloudflare's default of 125 s",
	}[name]
	return fmt.Sprintf("%s could not be read (Cloudflare said %s); assuming %s", name, e.said(), assumed)
}

func (c *Client) setting(ctx context.Context, zoneID, name string) (string, error) {
	var p zones.SettingGetParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	res, err := c.settings.Get(ctx, name, p)
	if err != nil {
		return "", c.wrap(err, "read the zone setting "+name, PermZoneSettingsRead)
	}
	return res.JSON.Value.Raw(), nil
}

// DNSRecords returns every DNS record of the zone, paging by hand.
func (c *Client) DNSRecords(ctx context.Context, zoneID string) ([]Record, error) {
	var out []Record
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return nil, c.wrap(err, "list DNS records", PermDNSRead)
		}
		var p dns.RecordListParams
		p.ZoneID.Value, p.ZoneID.Present = zoneID, true
		p.Page.Value, p.Page.Present = float64(page), true
		p.PerPage.Value, p.PerPage.Present = recordsPerPage, true
		// The SDK's generated decoder spends ~0.7 ms per record on its
		// union types (a zone of 10,000 records: 7 s): rawBody hands it the
		// page with an empty result, and the four fields needed are
		// decoded here.
		got := rawBody{empty: "[]"}
		res, err := c.records.List(ctx, p, option.WithMiddleware(got.take))
		if err != nil {
			return nil, c.wrap(err, "list DNS records", PermDNSRead)
		}
		records, err := decodeRecords(got)
		if err != nil {
			return nil, err
		}
		out = append(out, records...)
		if lastPage(res.ResultInfo.JSON.RawJSON(), page, len(records), recordsPerPage) {
			return out, nil
		}
	}
}

// decodeRecords reads the records of one page that rawBody kept.
func decodeRecords(got rawBody) ([]Record, error) {
	if got.err != nil {
		return nil, &Error{Kind: KindAPI, What: "list DNS records", APIMessage: "something that is not JSON (" + got.err.Error() + ")"}
	}
	var page struct {
		Result []struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Content string `json:"content"`
			Proxied bool   `json:"proxied"`
		} `json:"result"`
	}
	if err := json.Unmarshal(got.body, &page); err != nil {
		return nil, &Error{Kind: KindAPI, What: "list DNS records", APIMessage: "in a form verify does not know (the result is not a list of records)"}
	}
	out := make([]Record, 0, len(page.Result))
	for _, r := range page.Result {
		out = append(out, Record{Type: r.Type, Name: r.Name, Content: r.Content, Proxied: r.Proxied})
	}
	return out, nil
}
