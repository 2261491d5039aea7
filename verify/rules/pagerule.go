package rules

import (
	"fmt"
	"strings"
)

// MatchPageTarget matches a Page Rule URL pattern ("*example.com/*",
// "http://www.example.com/shop/*") against every request to host. Only a
// pattern whose path part is /* (and names no scheme or port) is decided by
// the hostname alone; others depend on the request.
func MatchPageTarget(pattern, host string) Result {
	if len(pattern) > MaxExprLen {
		// Matching is O(len(host)·len(pattern)): bounded like an expression.
		return Result{Truth: Unknown, Why: []string{fmt.Sprintf("a URL pattern of %d bytes, more than the %d verify reads", len(pattern), MaxExprLen)}}
	}
	p := strings.TrimSpace(pattern)
	var fields []string
	p, scheme := cutScheme(p)
	if scheme {
		fields = append(fields, "the visitor's scheme")
	}
	hostPart, path, hasPath := strings.Cut(p, "/")
	if !hasPath || path != "*" {
		fields = append(fields, "the URL path")
	}
	if strings.Contains(hostPart, ":") {
		fields = append(fields, "the visitor's port")
		hostPart, _, _ = strings.Cut(hostPart, ":")
	}
	if host == "" {
		return Result{Truth: Unknown, Fields: append(fields, "http.host (a wildcard record covers many hostnames)")}
	}
	if !wildcard(host, strings.ToLower(hostPart)) {
		return Result{Truth: False} // whatever the rest says, not this hostname
	}
	if len(fields) > 0 {
		return Result{Truth: Unknown, Fields: fields}
	}
	return Result{Truth: True}
}

func cutScheme(p string) (string, bool) {
	l := strings.ToLower(p)
	for _, s := range []string{"http://", "https://", "*://"} {
		if strings.HasPrefix(l, s) {
			if s == "*://" {
				return p[len(s):], false
			}
			return p[len(s):], true
		}
	}
	return p, false
}
