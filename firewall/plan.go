package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// plan is the difference between the kernel and the wanted state: the
// Change a person reads and the steps of the one transaction that makes it.
type plan struct {
	change   Change
	problems []string // drift of the table's structure, one line each

	createTable bool
	delTable    bool               // an earlier cfguard's table, deleted and made again with the mark
	wakeTable   bool               // the table is dormant: clear its flags
	flushChains []*nftables.Chain  // kernel chains whose rules go first (they may reference what is deleted)
	delChains   []*nftables.Chain  // chains that are not cfguard's, or drifted beyond a rule refill
	delSets     []string           // sets that are not cfguard's or have the wrong type or flags
	addSets     []setSpec          // sets created (and filled)
	refillSets  []setSpec          // existing sets flushed and refilled
	addChains   []chainSpec        // chains created with their rules
	content     map[string]content // wanted content by set name
}

// content is what one set must hold.
type content struct {
	prefixes []netip.Prefix
	ports    []uint16
}

func (p *plan) empty() bool {
	return !p.createTable && !p.delTable && !p.wakeTable && len(p.flushChains)+len(p.delChains)+len(p.delSets)+
		len(p.addSets)+len(p.refillSets)+len(p.addChains) == 0
}

// wanted is the content of every set for w.
func wanted(cfg Config, w Want) (map[string]content, error) {
	cf4, cf6, err := Normalize(w.Cloudflare)
	if err != nil {
		return nil, fmt.Errorf("cloudflare ranges: %w", err)
	}
	if len(cf4) == 0 || len(cf6) == 0 {
		// Empty sets would drop Cloudflare itself on the web ports.
		return nil, fmt.Errorf("refusing to apply %d IPv4 and %d IPv6 Cloudflare ranges: both must be non-empty, or Cloudflare would be locked out", len(cf4), len(cf6))
	}
	if _, _, err := Normalize(w.Allow); err != nil {
		return nil, fmt.Errorf("allowed ranges: %w", err)
	}
	return renderContent(cfg, w.Cloudflare, w.Allow), nil
}

// drift lists what is wrong with the table's structure (not its content).
func (s *snapshot) drift() []string {
	var p plan
	s.structure(&p)
	return p.problems
}

// structure compares the table's objects with cfguard's and fills the
// structural steps and problems of p.
func (s *snapshot) structure(p *plan) {
	if s.table.flags&unix.NFT_TABLE_F_DORMANT != 0 {
		p.problems = append(p.problems, "table is dormant (its chains see no packets)")
		p.wakeTable = true
	}
	// The kernel lists objects in the order they were made. Once one of
	// cfguard's sets or chains has to be made again, the ones after it are
	// made again too, so that the table lists exactly as Render prints it.
	recreate := false
	for _, spec := range setSpecs {
		ss := s.setState(spec)
		switch {
		case !ss.ok:
			p.problems = append(p.problems, ss.problem)
		case ss.problem != "": // readable set, unreadable content: refilled
			p.problems = append(p.problems, ss.problem)
			if !recreate {
				continue
			}
		case !recreate:
			continue
		}
		recreate = true
		if s.sets[spec.name] != nil {
			p.delSets = append(p.delSets, spec.name)
		}
		p.addSets = append(p.addSets, spec)
	}
	// Chains referencing a set that is deleted go first.
	recreateChains := recreate
	for _, name := range s.setNames {
		if !slices.ContainsFunc(setSpecs, func(sp setSpec) bool { return sp.name == name }) {
			p.problems = append(p.problems, fmt.Sprintf("set %s: not cfguard's", name))
			p.delSets = append(p.delSets, name)
		}
	}
	for _, spec := range chainSpecs() {
		c := s.chain(spec.name)
		if c == nil {
			p.problems = append(p.problems, fmt.Sprintf("chain %s: missing", spec.name))
			p.addChains = append(p.addChains, spec)
			recreateChains = true
			continue
		}
		if why := chainDrift(c, spec, s.rules[spec.name]); why != "" {
			p.problems = append(p.problems, why)
			recreateChains = true
		}
		if !recreateChains {
			continue
		}
		// Deleting a chain deletes its rules; flushing them first also
		// releases what they reference before anything else is deleted.
		p.flushChains = append(p.flushChains, c)
		p.delChains = append(p.delChains, c)
		p.addChains = append(p.addChains, spec)
	}
	for _, c := range s.chains {
		if !slices.ContainsFunc(chainSpecs(), func(sp chainSpec) bool { return sp.name == c.Name }) {
			p.problems = append(p.problems, fmt.Sprintf("chain %s: not cfguard's", c.Name))
			p.flushChains = append(p.flushChains, c)
			p.delChains = append(p.delChains, c)
		}
	}
}

// chainDrift says, in one line, how chain c differs from spec ("" if not).
func chainDrift(c *nftables.Chain, spec chainSpec, rules []rule) string {
	pre := "chain " + spec.name + ": "
	switch {
	case c.Hooknum == nil || c.Priority == nil:
		return pre + "not a base chain (no hook)"
	case *c.Hooknum != spec.hook:
		return pre + fmt.Sprintf("hook %s, want %s", hookName(*c.Hooknum), hookName(spec.hook))
	case *c.Priority != Priority:
		return pre + fmt.Sprintf("priority changed from %d to %d", *c.Priority, Priority)
	case c.Type != nftables.ChainTypeFilter:
		return pre + fmt.Sprintf("type %s, want filter", c.Type)
	case c.Policy == nil || *c.Policy != spec.policy:
		return pre + "policy drop, want accept"
	case c.Device != "":
		return pre + "bound to device " + c.Device
	}
	for i := range max(len(rules), len(spec.rules)) {
		switch {
		case i >= len(rules):
			return pre + fmt.Sprintf("rule %d missing (`%s`)", i+1, spec.rules[i].text)
		case i >= len(spec.rules):
			return pre + fmt.Sprintf("extra rule %d (handle %d) not written by cfguard", i+1, rules[i].handle)
		case !sameRule(byte(familyINet), rules[i], spec.rules[i].exprs):
			if len(rules) < len(spec.rules) {
				return pre + fmt.Sprintf("rule %d missing (`%s`)", i+1, spec.rules[i].text)
			}
			if len(rules) > len(spec.rules) {
				return pre + fmt.Sprintf("extra rule %d (handle %d) not written by cfguard", i+1, rules[i].handle)
			}
			return pre + fmt.Sprintf("rule %d (handle %d) changed, want `%s`", i+1, rules[i].handle, spec.rules[i].text)
		}
	}
	return ""
}

// plan compares the snapshot with the wanted content.
func (s *snapshot) plan(cfg Config, want map[string]content) *plan {
	p := &plan{content: want}
	if s.table == nil {
		p.createTable = true
		p.change.TableCreated = true
		p.addSets = slices.Clone(setSpecs)
		p.addChains = chainSpecs()
		for _, spec := range setSpecs {
			p.change.Added = append(p.change.Added, want[spec.name].prefixes...)
		}
		return p
	}
	if s.owner == ownerLegacy {
		return s.adopt(cfg, p)
	}
	s.structure(p)
	for _, spec := range setSpecs {
		created := slices.ContainsFunc(p.addSets, func(sp setSpec) bool { return sp.name == spec.name })
		ss := s.setState(spec)
		if !ss.ok {
			ss = setState{} // its content could not be read: all of it is added
		}
		w := want[spec.name]
		if !spec.interval {
			if !slices.Equal(ss.ports, w.ports) {
				p.change.PortsChanged = true
				if !created {
					p.refillSets = append(p.refillSets, spec)
				}
			}
			continue
		}
		added, removed := diffPrefixes(ss.prefixes, w.prefixes)
		p.change.Added = append(p.change.Added, added...)
		p.change.Removed = append(p.change.Removed, removed...)
		if !created && (len(added) > 0 || len(removed) > 0 || ss.problem != "") {
			p.refillSets = append(p.refillSets, spec)
		}
	}
	if len(p.problems) > 0 {
		p.change.ChainsRebuilt = true
		p.change.RebuildReason = strings.Join(p.problems, "; ")
	}
	return p
}

// adopt plans the one transaction that deletes an earlier cfguard's table
// and makes it again, marked, with the current rules: kernels keep the
// userdata a table was created with, so the mark cannot be added in place.
func (s *snapshot) adopt(cfg Config, p *plan) *plan {
	p.delTable, p.createTable = true, true
	p.addSets = slices.Clone(setSpecs)
	p.addChains = chainSpecs()
	for _, spec := range setSpecs {
		ss, w := s.setState(spec), p.content[spec.name]
		if !spec.interval {
			p.change.PortsChanged = !slices.Equal(ss.ports, w.ports)
			continue
		}
		added, removed := diffPrefixes(ss.prefixes, w.prefixes)
		p.change.Added = append(p.change.Added, added...)
		p.change.Removed = append(p.change.Removed, removed...)
	}
	p.problems = []string{fmt.Sprintf("adopted table inet %s made by an earlier cfguard: re-created it with cfguard's mark and the UDP drop", cfg.Table)}
	p.change.ChainsRebuilt = true
	p.change.RebuildReason = p.problems[0]
	return p
}

// Plan reads the kernel and returns what Apply would change. It writes
// nothing (for --dry-run).
func (m *Manager) Plan(ctx context.Context, w Want) (Change, error) {
	want, err := wanted(m.cfg, w)
	if err != nil {
		return Change{}, err
	}
	var c Change
	err = m.do(ctx, "planning", func() error {
		s, err := m.read()
		if err != nil {
			return err
		}
		if s.owner == ownerForeign {
			return s.notOwned(m.cfg, "change")
		}
		c = s.plan(m.cfg, want).change
		return nil
	})
	return c, err
}

func joinComma(s []string) string { return strings.Join(s, ", ") }
