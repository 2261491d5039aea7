package cfranges

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/ips"
	"github.com/cloudflare/cloudflare-go/v7/option"
)

// DefaultBaseURL is Cloudflare's v4 API.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

const (
	// FetchTimeout bounds the whole fetch, retries included.
	FetchTimeout = 30 * time.Second
	// FetchRetries is how often a 408/409/429/5xx or a connection error is
	// retried (by the SDK, 0.5 s then 1 s apart, or as Retry-After says).
	FetchRetries = 2
	// MaxAnswerBytes caps the body read; the real answer is about 1 KiB.
	MaxAnswerBytes = 1 << 20
)

// Sentinels for why a fetch failed (refusals of the ranges themselves match
// ErrInvalidList, see Validate). Each is wrapped in a one-line error that
// names the URL (without credentials) and the reason.
var (
	ErrHTTPStatus = errors.New("HTTP status not 200")
	ErrNotAPIJSON = errors.New("not the API's JSON")
	ErrAPIFailure = errors.New("the API reported failure")
	ErrTimeout    = errors.New("gave up waiting for the API")
	ErrNoChina    = errors.New("no China Network ranges")
	ErrRedirect   = errors.New("redirect refused")
)

// fetchError carries a sentence of its own and matches its kind (and,
// for a timeout, context.DeadlineExceeded).
type fetchError struct {
	msg  string
	kind []error
}

func (e *fetchError) Error() string   { return e.msg }
func (e *fetchError) Unwrap() []error { return e.kind }

func fetchErr(kind error, format string, args ...any) error {
	return &fetchError{msg: fmt.Sprintf(format, args...), kind: []error{kind}}
}

// Fetcher asks Cloudflare's API for its published ranges. The zero value
// asks the real API with a fresh http.Client (proxy from HTTPS_PROXY as
// usual). It reads nothing else from the environment and sends no
// credentials: GET /ips needs none.
type Fetcher struct {
	BaseURL    string        // "" → DefaultBaseURL; the stand-in API's URL in tests
	HTTPClient *http.Client  // nil → a new http.Client{}
	Timeout    time.Duration // whole fetch incl. retries; 0 → FetchTimeout
	UserAgent  string        // e.g. "cfguard/1.2.3"; "" → "cfguard"
}

// errFetchTimeout is the cause of our own deadline, to tell it from the
// caller cancelling.
var errFetchTimeout = errors.New("fetch timeout")

// Fetch asks GET {BaseURL}/ips (with networks=jdcloud when china), checks
// the answer and returns it validated, with Source=SourceAPI, the etag and
// FetchedAt=now. It refuses, with one line naming the reason: an HTTP
// status other than 200 (ErrHTTPStatus, with the API's error code and
// message when it sent them); a body that is not the API's JSON envelope
// (ErrNotAPIJSON: HTML page, truncated, wrong shape); success=false
// (ErrAPIFailure, with code and message); an entry that is not a CIDR
// (ErrInvalidPrefix); no China Network ranges when china (ErrNoChina); and
// anything Validate refuses. When the whole fetch runs out of time it
// returns ErrTimeout (also matching context.DeadlineExceeded).
func (f *Fetcher) Fetch(ctx context.Context, china bool) (List, error) {
	if f == nil {
		f = &Fetcher{}
	}
	base := f.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	where := redactURL(strings.TrimRight(base, "/") + "/ips")
	fail := func(format string, args ...any) (List, error) {
		return List{}, fmt.Errorf("fetching Cloudflare ranges from %s: "+format, append([]any{where}, args...)...)
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("the API URL must be an absolute http:// or https:// URL")
	}

	timeout := f.Timeout
	if timeout <= 0 {
		timeout = FetchTimeout
	}
	attempts := 0 // requests made, retries included (counted by a middleware)
	fctx, cancel := context.WithTimeoutCause(ctx, timeout, errFetchTimeout)
	defer cancel()

	client := &http.Client{}
	if f.HTTPClient != nil {
		c := *f.HTTPClient // a copy: the caller's client keeps its own redirect policy
		client = &c
	}
	client.CheckRedirect = checkRedirect
	ua := f.UserAgent
	if ua == "" {
		ua = "cfguard"
	}
	// Options built by hand: NewIPService reads no environment (unlike the
	// root package's NewClient), and no token option means no
	// Authorization header.
	svc := ips.NewIPService(
		option.WithBaseURL(base),
		option.WithHTTPClient(client),
		option.WithMaxRetries(FetchRetries),
		option.WithHeader("User-Agent", ua),
		option.WithMiddleware(limitBody, func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			attempts++
			return next(req)
		}),
	)
	var params ips.IPListParams
	if china {
		params.Networks.Value = "jdcloud"
		params.Networks.Present = true
	}
	var (
		raw  []byte
		resp *http.Response
	)
	// The SDK does the request and the retries; the body comes back raw
	// (WithResponseBodyInto a []byte) and the final response through
	// WithResponseInto, so that status, content type and envelope are
	// checked here, strictly, instead of by the SDK's lenient decoder.
	_, err := svc.List(fctx, params, option.WithResponseBodyInto(&raw), option.WithResponseInto(&resp))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return fail("interrupted: %w", ctx.Err())
		case context.Cause(fctx) == errFetchTimeout:
			return fail("%w", &fetchError{
				msg:  fmt.Sprintf("gave up after %s without a complete answer (%s made; the limit covers all retries)", timeout, attemptsText(attempts)),
				kind: []error{ErrTimeout, context.DeadlineExceeded},
			})
		}
	}
	var redir *redirectError
	if errors.As(err, &redir) {
		return fail("%w", fetchErr(ErrRedirect, "%s", redir.Error()))
	}
	if err != nil && resp != nil && resp.StatusCode != http.StatusOK {
		// The SDK turns >= 400 into an error and puts the body back.
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return fail("%w", statusError(resp, body, attempts))
	}
	if err != nil {
		// Transport error, or the body could not be read in full.
		var tooBig *tooBigError
		if errors.As(err, &tooBig) {
			return fail("%w", fetchErr(ErrNotAPIJSON, "the answer is larger than %d bytes, not the API's JSON", MaxAnswerBytes))
		}
		if resp != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			return fail("%w", fetchErr(ErrNotAPIJSON, "the answer is truncated: the connection closed before all of it arrived"))
		}
		return fail("%w (%s)", unwrapURLError(err), attemptsText(attempts))
	}
	if resp == nil {
		return fail("%w", fetchErr(ErrNotAPIJSON, "no answer"))
	}
	if resp.StatusCode != http.StatusOK {
		return fail("%w", statusError(resp, raw, attempts))
	}

	l, err := ParseAnswer(raw, china)
	var nj *notJSONError
	if errors.As(err, &nj) {
		return fail("%w", describeNotJSON(resp, raw, nj.err))
	}
	if err != nil {
		return fail("%w", err)
	}
	l.FetchedAt = time.Now()
	return l, nil
}

// notJSONError is ParseAnswer's "not the API's envelope"; Fetch describes
// it with the response's content type.
type notJSONError struct{ err error }

func (e *notJSONError) Error() string {
	return "the answer is not the API's JSON: " + oneLine(e.err.Error(), 200)
}
func (e *notJSONError) Unwrap() []error { return []error{ErrNotAPIJSON, e.err} }

// ParseAnswer reads the body of a 200 answer of GET /ips: the API's JSON
// envelope, strictly, then every field as CIDRs, then Validate. It returns
// the list with Source=SourceAPI and the etag (FetchedAt is the caller's),
// or one error naming the first problem; never a partly filled List.
func ParseAnswer(raw []byte, china bool) (List, error) {
	env, err := parseEnvelope(raw)
	if err != nil {
		return List{}, &notJSONError{err}
	}
	if !*env.Success {
		return List{}, fetchErr(ErrAPIFailure, "the API answered success=false: %s", apiMessages(env.Errors))
	}
	if env.Result == nil {
		return List{}, fetchErr(ErrNotAPIJSON, "the answer is not the API's JSON: success without a result")
	}
	l := List{Etag: env.Result.Etag, Source: SourceAPI}
	if l.IPv4, err = parsePrefixes(fieldIPv4, env.Result.IPv4); err != nil {
		return List{}, err
	}
	if l.IPv6, err = parsePrefixes(fieldIPv6, env.Result.IPv6); err != nil {
		return List{}, err
	}
	if china { // jdcloud_cidrs that were not asked for are ignored, never installed
		if l.JDCloud, err = parsePrefixes(fieldJDCloud, env.Result.JDCloud); err != nil {
			return List{}, err
		}
	}
	if err := Validate(l); err != nil {
		return List{}, err
	}
	if err := CheckMerged("the ranges of the answer", l.All()); err != nil {
		return List{}, err
	}
	if china && len(l.JDCloud) == 0 {
		return List{}, fetchErr(ErrNoChina, "asked for China Network ranges (networks=jdcloud) but the answer's jdcloud_cidrs is missing or empty")
	}
	return l, nil
}

// maxRedirects bounds how many same-host redirects Fetch follows.
const maxRedirects = 3

// redirectError is a redirect Fetch refused to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// checkRedirect follows a redirect only to the same host and never from
// https down to plain http: the ranges decide who reaches this origin, and
// a redirect elsewhere is the answer of somebody else.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	to := redactURL(req.URL.String())
	switch {
	case first.Scheme == "https" && req.URL.Scheme != "https":
		return &redirectError{fmt.Sprintf("the API redirected to %s, from https to plain http; not followed", to)}
	case !strings.EqualFold(req.URL.Host, first.Host):
		return &redirectError{fmt.Sprintf("the API redirected to %s, another host; not followed", to)}
	case len(via) > maxRedirects:
		return &redirectError{fmt.Sprintf("the API redirected more than %d times; not followed", maxRedirects)}
	}
	return nil
}

// apiEnvelope is the API's standard answer, decoded strictly: success must
// be present and result must have the /ips shape.
type apiEnvelope struct {
	Success  *bool        `json:"success"`
	Errors   []apiMessage `json:"errors"`
	Messages []apiMessage `json:"messages"`
	Result   *ipsResult   `json:"result"`
}

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type ipsResult struct {
	Etag    string   `json:"etag"`
	IPv4    []string `json:"ipv4_cidrs"`
	IPv6    []string `json:"ipv6_cidrs"`
	JDCloud []string `json:"jdcloud_cidrs"`
}

func parseEnvelope(raw []byte) (*apiEnvelope, error) {
	var env apiEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	if env.Success == nil {
		return nil, errors.New(`no "success" field`)
	}
	return &env, nil
}

func apiMessages(msgs []apiMessage) string {
	if len(msgs) == 0 {
		return "no error given"
	}
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		parts = append(parts, fmt.Sprintf("error %d: %s", m.Code, oneLine(m.Message, 200)))
	}
	return strings.Join(parts, "; ")
}

// statusError describes a non-200 answer, with the API's own errors when
// the body is its JSON envelope.
func statusError(resp *http.Response, body []byte, attempts int) error {
	status := fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if attempts > 1 {
		status += fmt.Sprintf(" (%s)", attemptsText(attempts))
	}
	if env, err := parseEnvelope(body); err == nil && len(env.Errors) > 0 {
		return fetchErr(ErrHTTPStatus, "the API answered %s: %s", status, apiMessages(env.Errors))
	}
	if ct := mediaType(resp); ct != "" {
		return fetchErr(ErrHTTPStatus, "the API answered %s with a %s body", status, ct)
	}
	return fetchErr(ErrHTTPStatus, "the API answered %s", status)
}

var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

func describeNotJSON(resp *http.Response, raw []byte, err error) error {
	ct := mediaType(resp)
	if ct == "" {
		ct = "no Content-Type"
	}
	var syn *json.SyntaxError
	switch {
	case len(raw) == 0:
		return fetchErr(ErrNotAPIJSON, "the answer is empty (%s), not the API's JSON", ct)
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && syn.Offset >= int64(len(raw))):
		return fetchErr(ErrNotAPIJSON, "the answer is truncated after %d bytes (%s), not the API's JSON", len(raw), ct)
	case ct == "text/html" && htmlTitle.Match(raw):
		title := oneLine(string(htmlTitle.FindSubmatch(raw)[1]), 60)
		return fetchErr(ErrNotAPIJSON, "the answer is an HTML page titled %q, not the API's JSON (a captive portal or proxy?)", title)
	case ct != "application/json":
		return fetchErr(ErrNotAPIJSON, "the answer is %s beginning %q, not the API's JSON", ct, oneLine(string(raw), 40))
	default:
		return fetchErr(ErrNotAPIJSON, "the answer is not the API's JSON: %s", oneLine(err.Error(), 200))
	}
}

// attemptsText says how many requests were made, e.g. "3 attempts".
func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func mediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

// parsePrefixes parses one field of the answer; the first bad entry is
// refused with ErrInvalidPrefix.
func parsePrefixes(field string, in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, &PrefixError{Field: field, Entry: oneLine(s, 60), Reason: "not a valid CIDR", Kind: ErrInvalidPrefix}
		}
		out = append(out, p)
	}
	return out, nil
}

// limitBody is a middleware that makes reading more than MaxAnswerBytes
// an error, so a broken or hostile server cannot fill memory.
func limitBody(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &limitedBody{rc: resp.Body, left: MaxAnswerBytes}
	}
	return resp, err
}

type tooBigError struct{}

func (*tooBigError) Error() string { return fmt.Sprintf("answer larger than %d bytes", MaxAnswerBytes) }

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte means it is too big; EOF means it fit exactly.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, &tooBigError{}
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// unwrapURLError drops *url.Error's "Get "URL":" prefix: the URL is
// already named once (redacted) in the message.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL hides a password in the URL, should one ever be put there.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the configured API URL"
	}
	return u.Redacted()
}

// oneLine shortens s to at most n runes on one line, for quoting untrusted
// text in an error.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
