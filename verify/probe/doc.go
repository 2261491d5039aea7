// Package probe runs the origin-side stages of one verify path: what this
// host can see of the way from Cloudflare's edge to an origin address and
// port — the record's address (Record), an address that is not this server
// (Elsewhere), the route back (Route), the listener (Listener), the TLS
// handshake (TLS), the certificate (Certificate) and the answer to GET /
// (HTTP). Every stage returns a report.Outcome: Fail with the Status a
// visitor would get, a one-sentence Cause, a Fix, Evidence and Warnings.
// A stage that cannot run (bad target, cancelled context, no netlink) sets
// CannotTell instead of guessing.
//
// The firewall stage lives in firewall/sim; the orchestrator (package
// verify) calls the stages in order and stops at the first that fails.
//
// Decisions worth knowing:
//   - Record predicts StatusProhibitedIP (403) for Cloudflare's error 1000
//     (a Cloudflare address) and 1002 (private / reserved); the 1xxx code is
//     in the Cause. Documentation prefixes count as public.
//   - Elsewhere: a refused connect is an answer (not a failure, a warning).
//   - Certificate trusts x509.SystemCertPool (SSL_CERT_FILE, SSL_CERT_DIR)
//     plus Cloudflare's Origin CA RSA and ECC roots, embedded from
//     origin_ca_roots.pem; CertificateWith(…, CertOptions{Roots}) replaces
//     the system roots in tests.
//   - TLSKeep hands the handshaken connection to HTTPOn, which sends GET /
//     over it as Cloudflare does over the connection it has just made: one
//     handshake per https path (TLS and HTTP alone still dial their own).
//   - HTTP speaks HTTP/1.1 only, never uses a proxy from the environment,
//     and claims the visitor ProbeVisitorIP (a documentation address).
//
// Probes act in the network namespace of the calling process (Route and
// ListeningSockets: of the calling thread). Tests run them in a child of
// the test binary started inside a namespace (nstest.Reexec), so that
// net/http's dialing goroutines are inside it too.
package probe
