// Package probemark marks the requests verify sends through the web server
// (the http stage's GET /) so that what the web server logs for them can be
// told apart from what visitors cause: verify reads back the line its own
// request caused, and leaves its probes out of the visitors' counts (verify
// and watch alike).
//
// The mark is a Referer header, https://cfguard-probe.invalid/<id>, with a
// 16-hex-digit id (random, and tagged with a key of this host: Ours):
// nginx's error log appends it to every line about a request
// (`referrer: "…"`), and Apache's default ErrorLogFormat does too
// (`, referer: …`), so it needs no configuration and leaves the URL — and
// with it the cache key and the application's routing — as Cloudflare sends
// it. The same id is in the User-Agent and the CF-Ray header, for access
// logs. Apache lines with no request (AH02454, AH00957) are attributed to
// the request line that follows on the same thread (logs.MarkThreads); when
// an ErrorLogFormat drops the referer, the probe's own source address
// (Apache's [client addr:port]) still finds its line.
package probemark

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
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

// An id is a random nonce and a tag, HMAC-SHA256 of the nonce under this
// host's key (hex, nonceLen and IDLen-nonceLen digits). Anyone can send a
// Referer that looks like a mark — a visitor hiding the errors their own
// requests cause from the visitors' counts, an attacker hiding an outage
// they cause from watch — so only an id with the right tag (Ours) is taken
// as verify's: a forged one is counted as the visitor's it is. 16 bits of
// tag leave a forger a 1 in 65,536 chance per line, with no way to tell
// which; 48 bits of nonce keep ids distinct over millions of probes.
const nonceLen = 12

// keyFiles are where the host's key comes from, the first that reads:
// the machine id (machine-id(5): readable on the host, never sent on the
// network; used, as it asks, only through a keyed hash), else the boot id
// (marks from before a reboot then count as visitors'). With neither, a
// key of this process: only its own marks are left out.
var keyFiles = []string{"/etc/machine-id", "/var/lib/dbus/machine-id", "/proc/sys/kernel/random/boot_id"}

var key = sync.OnceValue(func() []byte {
	for _, f := range keyFiles {
		if id := readSmall(f); id != "" {
			mac := hmac.New(sha256.New, []byte(id))
			mac.Write([]byte("cfguard probemark v1"))
			return mac.Sum(nil)
		}
	}
	b := make([]byte, 32)
	rand.Read(b)
	return b
})

// readSmall reads at most 256 bytes of a file, trimmed; "" on any error.
func readSmall(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 256))
	return strings.TrimSpace(string(b))
}

func tag(nonce string) string {
	mac := hmac.New(sha256.New, key())
	mac.Write([]byte(nonce))
	return hex.EncodeToString(mac.Sum(nil))[:IDLen-nonceLen]
}

// New returns a fresh id, tagged with this host's key.
func New() string {
	var b [nonceLen / 2]byte
	rand.Read(b[:])
	n := hex.EncodeToString(b[:])
	return n + tag(n)
}

// Ours reports whether id was made by New on this host (in this process,
// an earlier verify, or a watch): its tag is right.
func Ours(id string) bool {
	return len(id) == IDLen && isHex(id) && hmac.Equal([]byte(id[nonceLen:]), []byte(tag(id[:nonceLen])))
}

// Referer is the Referer header value that carries id.
func Referer(id string) string { return "https://" + prefix + id }

// Find returns the id of the mark a log line carries, "" when it carries
// none: the first "cfguard-probe.invalid/" followed by exactly IDLen hex
// digits. Whether verify made it is Ours.
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
