// Package cfranges fetches Cloudflare's published IP ranges, validates them
// before anything is touched, caches the last good list, and carries a
// built-in copy for the first boot without network.
package cfranges

import (
	"net/netip"
	"time"
)

// Source says where a List came from.
type Source string

const (
	SourceAPI     Source = "api"     // fetched just now
	SourceCache   Source = "cache"   // the last good list saved by sync
	SourceBuiltin Source = "builtin" // compiled into the binary
)

// List is one answer of Cloudflare's /ips endpoint, validated.
type List struct {
	IPv4      []netip.Prefix `json:"ipv4_cidrs"`
	IPv6      []netip.Prefix `json:"ipv6_cidrs"`
	JDCloud   []netip.Prefix `json:"jdcloud_cidrs,omitempty"` // only with networks=jdcloud (--china); v4 and v6 mixed
	Etag      string         `json:"etag"`
	FetchedAt time.Time      `json:"fetched_at"`
	Source    Source         `json:"source"`
}

// All returns every prefix of the list: IPv4, IPv6 and China Network ones.
func (l List) All() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(l.IPv4)+len(l.IPv6)+len(l.JDCloud))
	out = append(out, l.IPv4...)
	out = append(out, l.IPv6...)
	return append(out, l.JDCloud...)
}
