package sim

import (
	"fmt"

	"github.com/google/nftables"
)

// rejectTarget is ipt_REJECT / ip6t_REJECT: every valid reject-with sends a
// TCP reset or an ICMP error and drops; an unknown value only drops.
func rejectTarget(fam nftables.TableFamily, with uint32) (xtAction, func(string) string, string) {
	var names []string
	switch fam {
	case nftables.TableFamilyIPv4:
		names = []string{"icmp-net-unreachable", "icmp-host-unreachable", "icmp-proto-unreachable", "icmp-port-unreachable",
			"", "icmp-net-prohibited", "icmp-host-prohibited", "tcp-reset", "icmp-admin-prohibited"}
	case nftables.TableFamilyIPv6:
		names = []string{"icmp6-no-route", "icmp6-adm-prohibited", "icmp6-not-neighbour", "icmp6-addr-unreachable",
			"icmp6-port-unreachable", "", "tcp-reset", "icmp6-policy-fail", "icmp6-reject-route"}
	default:
		return xtUnmodelled, func(string) string { return `xt target "REJECT"` }, `iptables-nft compat target "REJECT" outside an ip or ip6 table is not modelled`
	}
	if int(with) >= len(names) || names[with] == "" {
		return xtUnmodelled, func(string) string { return `xt target "REJECT"` },
			fmt.Sprintf("iptables-nft compat target \"REJECT\" with reject-with value %d is not modelled", with)
	}
	n := names[with]
	text := func(string) string {
		switch n {
		case "tcp-reset":
			return "reject with tcp reset"
		case "icmp-port-unreachable", "icmp6-port-unreachable":
			return "reject"
		}
		return "reject with " + n
	}
	return xtReject, text, ""
}
