package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudflare/cloudflare-go/v7/zones"
)

// Permissions per endpoint, as Cloudflare names them in the token editor.
const (
	PermZoneRead         = "Zone:Read"
	PermZoneSettingsRead = "Zone Settings:Read"
	PermDNSRead          = "DNS:Read"
)

// Kind classifies an API failure by what the user must do about it.
type Kind int

const (
	KindAPI         Kind = iota // any other answer of the API
	KindToken                   // the token is refused: not valid, disabled, expired, malformed
	KindPermission              // the token is valid but may not read this
	KindNotFound                // a zone named on the command line is not readable
	KindUnreachable             // no answer: network, DNS, TLS, timeout
)

// Error is a failure of the API, with one line that names what to fix. It
// never contains the token.
type Error struct {
	Kind       Kind
	What       string // what verify tried: "list DNS records"
	Status     int    // HTTP status, 0 when there was no answer
	Code       int    // Cloudflare's error code, e.g. 9109
	APIMessage string // Cloudflare's message, e.g. "Invalid access token"
	Reason     string // overrides the first part of the message
	Need       string // the permission that would allow it
	Fix        string // overrides the fix
	Err        error  // the underlying error (transport errors)
}

func (e *Error) said() string {
	switch {
	case e.Code != 0 && e.APIMessage != "":
		return fmt.Sprintf("%d %s", e.Code, e.APIMessage)
	case e.APIMessage != "":
		return e.APIMessage
	case e.Status != 0:
		return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	return "nothing"
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindToken:
		reason := e.Reason
		if reason == "" {
			reason = "the API token is not valid"
		}
		if e.Status != 0 || e.Code != 0 {
			reason += " (Cloudflare said " + e.said() + ")"
		}
		return reason + ": create a token with " + Permissions + " and pass it with --api-token-file or CLOUDFLARE_API_TOKEN"
	case KindPermission:
		return fmt.Sprintf("the API token may not %s (Cloudflare said %s): give the token %s", e.What, e.said(), e.Need)
	case KindNotFound:
		return e.Reason + ": " + e.Fix
	case KindUnreachable:
		return fmt.Sprintf("cannot %s: the Cloudflare API did not answer (%v); check the network or --api-url", e.What, e.Err)
	}
	return fmt.Sprintf("cannot %s: Cloudflare answered %s", e.What, e.said())
}

func (e *Error) Unwrap() error { return e.Err }

// IsToken reports whether err means the token itself was refused.
func IsToken(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindToken
}

// wrap turns an SDK error into an *Error. need is the permission the call
// needs.
func (c *Client) wrap(err error, what, need string) error {
	if e, ok := err.(*Error); ok {
		if e.What == "" || e.Kind == KindAPI {
			e.What = what
		}
		return e
	}
	if errors.Is(err, errBodyTooLarge) {
		return tooLarge(what)
	}
	var ae *zones.Error // an alias of the SDK's one API error type
	if !errors.As(err, &ae) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return &Error{Kind: KindUnreachable, What: what, Err: err}
	}
	e := &Error{What: what, Status: ae.StatusCode, Need: need}
	// Read the body ourselves: the first error, and the end of its chain
	// (6003 "Invalid request headers" says more in its 6111).
	var body struct {
		Errors []struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Chain   []struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error_chain"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(ae.JSON.RawJSON()), &body) == nil && len(body.Errors) > 0 {
		first := body.Errors[0]
		e.Code, e.APIMessage = first.Code, first.Message
		if n := len(first.Chain); n > 0 {
			e.APIMessage += ": " + first.Chain[n-1].Message
		}
	} else if len(ae.Errors) > 0 {
		e.Code, e.APIMessage = int(ae.Errors[0].Code), ae.Errors[0].Message
	}
	e.Kind = kindOf(e.Code, e.Status, e.APIMessage, need)
	return e
}

// kindOf classifies an error answer by Cloudflare's code, the HTTP status
// and the permission the call needs.
func kindOf(code, status int, message, need string) Kind {
	switch {
	case code == 9109 && strings.Contains(message, "Unauthorized to access"):
		return KindPermission
	case code == 9109 || code == 6003 || code == 6111 || code == 1000 || code == 9106 || code == 9103 || status == http.StatusUnauthorized:
		return KindToken
	case code == 10000 || (status == http.StatusForbidden && need != "" && code != 1015):
		if need == "" {
			return KindToken
		}
		return KindPermission
	}
	return KindAPI
}
