// Package probe runs the origin-side stages of one verify path: what this
// host can see of the way from Cloudflare's edge to an origin address and
// port — the record's address, the route back, the listener, the TLS
// handshake, the certificate and the answer to GET /. Every stage returns a
// report.Outcome whose Status is what a visitor would get.
//
// The firewall stage lives in firewall/sim; the orchestrator (package verify)
// calls the stages in order and stops at the first that fails.
//
// Probes act in the network namespace of the calling process: run them from
// the host's namespace in production, or from a child started inside a test
// namespace (nstest.Reexec) in tests.
package probe
