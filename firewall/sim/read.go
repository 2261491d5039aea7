package sim

import (
	"context"
	"errors"
)

// Read takes a snapshot of every nftables table, chain, rule and set in the
// network namespace netnsFd (0: the caller's own), and looks for
// iptables-legacy tables there.
func Read(ctx context.Context, netnsFd int) (*Ruleset, error) {
	return nil, errors.New("not implemented")
}
