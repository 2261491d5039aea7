// Package guard runs cfguard's firewall operations end to end: sync (fetch,
// validate, apply in one transaction, cache), restore (cache or built-in
// list, no network), remove and status. It holds the rules that keep
// Cloudflare from being locked out: nothing is applied before the whole
// answer is validated, a list that drops more than half of what is installed
// needs --force, and runs are serialised by a lock in the state directory.
package guard
