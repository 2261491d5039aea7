// Package guard runs cfguard's firewall operations end to end: sync (fetch,
// validate, apply in one transaction, cache), restore (cache or built-in
// list, no network), remove and status. It holds the rules that keep
// Cloudflare from being locked out and the host from being opened: nothing
// is applied before the whole answer is validated; a list that drops more
// than half of what is installed, or covers more than four times the
// addresses of the installed (or built-in) list, needs --force; no merged
// allowed range may be broader than a /8 or /16; the cache is written
// before the kernel is touched and a begun transaction is never cancelled,
// so the exit code says what the kernel holds; runs are serialised by a
// lock in the state directory, which remove, restore and dry runs do
// without (with a warning) when the directory cannot be written.
package guard
