package cfranges

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// builtinJSON is Cloudflare's list as of the date inside it, for the first
// boot with neither network nor cache. Update it by hand (and its as_of)
// when Cloudflare's /ips answer changes.
//
//go:embed builtin.json
var builtinJSON []byte

type builtinFile struct {
	AsOf string         `json:"as_of"` // YYYY-MM-DD the copy was taken
	Etag string         `json:"etag"`  // empty: the copy was not taken with its etag
	IPv4 []netip.Prefix `json:"ipv4_cidrs"`
	IPv6 []netip.Prefix `json:"ipv6_cidrs"`
}

var builtinList = sync.OnceValues(func() (List, error) {
	var b builtinFile
	if err := json.Unmarshal(builtinJSON, &b); err != nil {
		return List{}, err
	}
	asOf, err := time.Parse(time.DateOnly, b.AsOf)
	if err != nil {
		return List{}, fmt.Errorf("as_of: %w", err)
	}
	l := List{IPv4: b.IPv4, IPv6: b.IPv6, Etag: b.Etag, FetchedAt: asOf, Source: SourceBuiltin}
	return l, Validate(l)
})

// Builtin returns the copy of Cloudflare's ranges compiled into the binary,
// with Source=SourceBuiltin and FetchedAt set to the date the copy was taken
// ("as of"; the CLI warns with it). The slices are the caller's to keep.
// It panics only if the embedded file is broken, which its test rules out.
func Builtin() List {
	l, err := builtinList()
	if err != nil {
		panic("cfranges: embedded builtin.json is broken: " + err.Error())
	}
	l.IPv4 = slices.Clone(l.IPv4)
	l.IPv6 = slices.Clone(l.IPv6)
	return l
}
