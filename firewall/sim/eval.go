package sim

import "net/netip"

// Check predicts what the ruleset does to a TCP SYN of a new connection
// from src to dst:dstPort that arrives on a non-loopback interface and is
// delivered locally: every base chain of the packet's family on prerouting,
// then on input, in priority order.
func (r *Ruleset) Check(src, dst netip.Addr, dstPort uint16) Result {
	return Result{Verdict: CannotTell, Reason: "not implemented"}
}
