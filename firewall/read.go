package firewall

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
)

const familyINet = nftables.TableFamilyINet

// snapshot is cfguard's table as the kernel holds it.
type snapshot struct {
	table    *tableInfo // nil: absent
	owner    owner
	readErr  error // an unmarked table whose objects could not be read
	chains   []*nftables.Chain
	rules    map[string][]rule
	sets     map[string]*nftables.Set
	setNames []string // in kernel order
	elems    map[string][]nftables.SetElement
}

// read takes a snapshot of the table. The caller holds m.mu.
func (m *Manager) read() (*snapshot, error) {
	s := &snapshot{rules: map[string][]rule{}, sets: map[string]*nftables.Set{}, elems: map[string][]nftables.SetElement{}}
	t, err := getTable(m.nl, byte(familyINet), m.cfg.Table)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	if t == nil {
		return s, nil
	}
	s.table = t
	if err := m.readObjects(s); err != nil {
		if t.marked() {
			return nil, err
		}
		// Not cfguard's, whatever it holds: refused, not an error.
		s.readErr = err
	}
	s.owner = s.classify()
	return s, nil
}

// readObjects reads the chains, rules, sets and elements of s.table.
func (m *Manager) readObjects(s *snapshot) error {
	chains, err := m.conn.ListChainsOfTableFamily(familyINet)
	if err != nil {
		return fmt.Errorf("listing chains: %w", err)
	}
	for _, c := range chains {
		if c.Table == nil || c.Table.Name != m.cfg.Table {
			continue
		}
		s.chains = append(s.chains, c)
		r, err := dumpRules(m.nl, byte(familyINet), m.cfg.Table, c.Name)
		if err != nil {
			return fmt.Errorf("listing rules of chain %s: %w", c.Name, err)
		}
		s.rules[c.Name] = r
	}
	sets, err := m.conn.GetSets(&nftables.Table{Name: s.table.name, Family: familyINet})
	if err != nil {
		return fmt.Errorf("listing sets: %w", err)
	}
	for _, set := range sets {
		if set.Anonymous {
			continue // belongs to a rule; compared with the rule
		}
		s.sets[set.Name] = set
		s.setNames = append(s.setNames, set.Name)
		el, err := m.conn.GetSetElements(set)
		if err != nil {
			return fmt.Errorf("listing elements of set %s: %w", set.Name, err)
		}
		s.elems[set.Name] = el
	}
	return nil
}

func (s *snapshot) chain(name string) *nftables.Chain {
	for _, c := range s.chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setState is what a set of the snapshot holds, when it is usable.
type setState struct {
	ok       bool // present with the right type and flags
	problem  string
	prefixes []netip.Prefix
	ports    []uint16
}

func (s *snapshot) setState(spec setSpec) setState {
	set := s.sets[spec.name]
	if set == nil {
		return setState{problem: fmt.Sprintf("set %s: missing", spec.name)}
	}
	if set.KeyType.Name != spec.keyType.Name || set.KeyType.Bytes != spec.keyType.Bytes {
		return setState{problem: fmt.Sprintf("set %s: type %s, want %s", spec.name, set.KeyType.Name, spec.keyType.Name)}
	}
	if set.Interval != spec.interval || set.IsMap || set.Constant || set.HasTimeout || set.Dynamic || set.Concatenation {
		return setState{problem: fmt.Sprintf("set %s: flags %s, want %s", spec.name, setFlags(set), setFlags(&nftables.Set{Interval: spec.interval}))}
	}
	if !spec.interval {
		ports, err := portsFromElements(s.elems[spec.name])
		if err != nil {
			return setState{problem: fmt.Sprintf("set %s: %v", spec.name, err)}
		}
		return setState{ok: true, ports: ports}
	}
	ranges, err := RangesFromElements(s.elems[spec.name], int(spec.keyType.Bytes))
	if err != nil {
		// The set itself is fine; its content is rewritten.
		return setState{ok: true, prefixes: []netip.Prefix{}, problem: fmt.Sprintf("set %s: %v", spec.name, err)}
	}
	return setState{ok: true, prefixes: PrefixesOf(ranges)}
}

func setFlags(s *nftables.Set) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{s.Constant, "constant"}, {s.Interval, "interval"}, {s.HasTimeout, "timeout"}, {s.Dynamic, "dynamic"}, {s.IsMap, "map"}, {s.Concatenation, "concat"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "none"
	}
	return joinComma(f)
}

// State returns the snapshot as a State.
func (s *snapshot) state(cfg Config) State {
	st := State{Present: s.table != nil}
	if !st.Present {
		st.Problems = []string{fmt.Sprintf("table inet %s is missing", cfg.Table)}
		return st
	}
	if s.owner == ownerForeign {
		// Someone else's table: its content is not cfguard's to report.
		st.Foreign = true
		st.Problems = []string{s.notOwned(cfg, "").Problem()}
		return st
	}
	st.Owned = true
	for _, spec := range setSpecs {
		ss := s.setState(spec)
		switch spec.name {
		case SetCF4:
			st.Cloudflare4 = ss.prefixes
		case SetCF6:
			st.Cloudflare6 = ss.prefixes
		case SetAllow4, SetAllow6:
			st.Allow = append(st.Allow, ss.prefixes...)
		case SetPorts:
			st.Ports = ss.ports
		}
	}
	st.Problems = s.drift()
	if s.owner == ownerLegacy {
		st.Legacy = true
		st.Problems = append(st.Problems, fmt.Sprintf("table inet %s was made by an earlier cfguard (exactly its old layout, no cfguard mark): `cfguard sync` or `cfguard restore` re-creates it with the mark and the UDP drop", cfg.Table))
	}
	st.Hooked = len(st.Problems) == 0
	return st
}

// Read returns cfguard's table as the kernel holds it. A missing table is
// not an error: State.Present is false.
func (m *Manager) Read(ctx context.Context) (State, error) {
	var st State
	err := m.do(ctx, "reading", func() error {
		s, err := m.read()
		if err != nil {
			return err
		}
		st = s.state(m.cfg)
		return nil
	})
	return st, err
}
