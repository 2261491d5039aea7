// Package rules decides which of a zone's Configuration Rules, Origin Rules
// and legacy Page Rules apply to a hostname, and what they change on the way
// to the origin (SSL mode, destination port, resolved origin, Host header,
// SNI). expr.go parses the Rules language; eval.go evaluates an expression
// over a hostname alone, in three values: true, false, or "depends on the
// request" (a field verify cannot know, such as the URI path); apply.go
// merges the matching rules as Cloudflare does; pagerule.go matches a Page
// Rule's URL pattern.
package rules
