// Package probemark marks the requests verify sends through the web server
// (the http stage's GET /) so that what the web server logs for them can be
// told apart from what visitors cause: verify reads back the line its own
// request caused, and leaves its probes out of the visitors' counts (verify
// and watch alike).
//
// The mark is a Referer header, https://cfguard-probe.invalid/<id>, with a
// random 16-hex-digit id: nginx's error log appends it to every line about a
// request (`referrer: "…"`), and Apache's default ErrorLogFormat does too
// (`, referer: …`), so it needs no configuration and leaves the URL — and
// with it the cache key and the application's routing — as Cloudflare sends
// it. The same id is in the User-Agent and the CF-Ray header, for access
// logs. Apache lines with no request (AH02454, AH00957) are attributed to
// the request line that follows on the same thread (logs.MarkThreads); when
// an ErrorLogFormat drops the referer, the probe's own source address
// (Apache's [client addr:port]) still finds its line.
package probemark

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strings"
)

// Host is the host of the Referer the probe sends: under .invalid (RFC
// 6761) it resolves nowhere, and it says what sent it.
const Host = "cfguard-probe.invalid"

// IDLen is the length of an id: 16 lowercase hex digits (64 random bits).
const IDLen = 16

const prefix = Host + "/"

// Mark is one request verify sent.
type Mark struct {
	ID string
	// From is the local address and port the request was sent from (the
	// client address Apache logs); zero when unknown.
	From netip.AddrPort
}

// IsZero reports whether no request is named.
func (m Mark) IsZero() bool { return m.ID == "" && !m.From.IsValid() }

// New returns a fresh id.
func New() string {
	var b [IDLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Referer is the Referer header value that carries id.
func Referer(id string) string { return "https://" + prefix + id }

// Find returns the id of the mark a log line carries, "" when it carries
// none: the first "cfguard-probe.invalid/" followed by exactly IDLen hex
// digits.
func Find(line string) string {
	for {
		i := strings.Index(line, prefix)
		if i < 0 {
			return ""
		}
		line = line[i+len(prefix):]
		if len(line) >= IDLen && isHex(line[:IDLen]) && (len(line) == IDLen || !isHexByte(line[IDLen])) {
			return line[:IDLen]
		}
	}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Equal reports whether m and o name the same request (for go-cmp, which
// cannot look into netip's unexported fields).
func (m Mark) Equal(o Mark) bool { return m == o }
