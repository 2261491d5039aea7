package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
)

// Config says which table cfguard owns and which ports it guards.
type Config struct {
	Table   string   // "cfguard": family inet, owned entirely by cfguard
	Ports   []uint16 // web ports to guard, e.g. 80, 443
	NetNSFd int      // 0: the current namespace; tests pass nstest's ns.Fd()
}

// Want is the content cfguard wants in its sets.
type Want struct {
	Cloudflare []netip.Prefix // v4 and v6 mixed; normalised (merged) inside with netipx.IPSetBuilder
	Allow      []netip.Prefix // --allow extras, kept in their own sets
}

// Change is what Apply did (or Plan would do) to the kernel.
type Change struct {
	TableCreated  bool           // the table did not exist and was created
	ChainsRebuilt bool           // a chain, set or table flag had drifted and was rebuilt
	RebuildReason string         // e.g. "chain input: priority changed from 0 to -10"; "; "-joined
	Added         []netip.Prefix // Cloudflare+allow prefixes added vs the kernel
	Removed       []netip.Prefix // Cloudflare+allow prefixes removed vs the kernel
	PortsChanged  bool           // the web_ports set of an existing table changed
}

// Empty reports whether the change writes nothing.
func (c Change) Empty() bool {
	return !c.TableCreated && !c.ChainsRebuilt && len(c.Added) == 0 && len(c.Removed) == 0 && !c.PortsChanged
}

// State is cfguard's table as read back from the kernel.
type State struct {
	Present     bool     // table exists
	Owned       bool     // it carries cfguard's mark, or is an earlier cfguard's table (Legacy)
	Legacy      bool     // made by an earlier cfguard: no mark, exactly the old layout; Apply adopts it
	Foreign     bool     // exists but is not cfguard's: nothing else is read, Apply and Remove refuse
	Hooked      bool     // all cfguard chains exist with the right hook/priority/type and rules
	Problems    []string // why not hooked / drift, one line each
	Cloudflare4 []netip.Prefix
	Cloudflare6 []netip.Prefix
	Allow       []netip.Prefix // allow4 then allow6
	Ports       []uint16
}

var tableNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,31}$`)

// Validate checks the configuration: a table name nft accepts, and at least
// one port, each 1-65535, no duplicates.
func (c Config) Validate() error {
	if !tableNameRE.MatchString(c.Table) {
		return fmt.Errorf("invalid table name %q: use 1-32 letters, digits, '_', '-' or '.', starting with a letter", c.Table)
	}
	if len(c.Ports) == 0 {
		return errors.New("no ports to guard: give at least one port, e.g. 80,443")
	}
	seen := map[uint16]bool{}
	for _, p := range c.Ports {
		if p == 0 {
			return errors.New("invalid port 0: ports are 1-65535")
		}
		if seen[p] {
			return fmt.Errorf("port %d given twice", p)
		}
		seen[p] = true
	}
	if c.NetNSFd < 0 {
		return fmt.Errorf("invalid network namespace fd %d", c.NetNSFd)
	}
	return nil
}

func (c Config) sortedPorts() []uint16 {
	p := slices.Clone(c.Ports)
	slices.Sort(p)
	return p
}
