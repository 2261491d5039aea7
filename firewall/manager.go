package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
)

// Manager reads and writes cfguard's table in one network namespace. Its
// methods are safe for concurrent use; they run one at a time.
type Manager struct {
	cfg Config

	mu   sync.Mutex
	conn *nftables.Conn // lasting: one netlink socket for every operation
	nl   *netlink.Conn  // the same socket, for deadlines and our rule dump

	flushes     int                         // transactions sent (tests check that a no-op sends none)
	beforeFlush func(*nftables.Conn, *plan) // test seam: add to the batch just before it is sent
	loseAnswer  bool                        // test seam: send the next batch, leave its answer unread
}

// New validates cfg and opens a lasting netlink connection into the
// configured namespace. It does not talk to nftables yet.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg}
	if err := m.dial(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) dial() error {
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(c *netlink.Conn) error { m.nl = c; return nil }),
	}
	if m.cfg.NetNSFd > 0 {
		opts = append(opts, nftables.WithNetNSFd(m.cfg.NetNSFd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("opening netlink for nftables: %w", err)
	}
	m.conn = conn
	return nil
}

// Close releases the netlink connection.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil
	}
	err := m.conn.CloseLasting()
	m.conn, m.nl = nil, nil
	return err
}

// do runs fn holding the lock, with the context's deadline and
// cancellation applied to the netlink socket, and words its error as
// "<op> table inet <name>: …".
func (m *Manager) do(ctx context.Context, op string, fn func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s table inet %s: %w", op, m.cfg.Table, err)
	}
	if m.conn == nil {
		if err := m.dial(); err != nil {
			return err
		}
	}
	deadline, _ := ctx.Deadline()
	if err := m.nl.SetDeadline(deadline); err != nil {
		return fmt.Errorf("%s table inet %s: %w", op, m.cfg.Table, err)
	}
	nl := m.nl
	stop := context.AfterFunc(ctx, func() { nl.SetDeadline(time.Now()) })
	err := fn()
	if !stop() || err != nil {
		// A cancelled or failed exchange may leave replies unread on the
		// socket: start the next operation on a fresh one.
		m.conn.CloseLasting()
		m.conn, m.nl = nil, nil
	} else {
		nl.SetDeadline(time.Time{})
	}
	if err == nil {
		return nil
	}
	var refused *NotOwnedError
	if errors.As(err, &refused) {
		return err // the one line says it all
	}
	var unconfirmed *unconfirmedError
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if errors.As(err, &unconfirmed) {
			err = &unconfirmedError{err: cerr} // the caller still reads back
		} else {
			err = cerr
		}
	}
	return fmt.Errorf("%s table inet %s: %w", op, m.cfg.Table, netlinkError(err))
}

// nlError is a netlink failure worded in one line ("netlink: file exists"),
// still unwrapping to the errno.
type nlError struct{ err error }

func (e nlError) Error() string {
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		msg := "netlink: " + errno.Error()
		if errno == syscall.EPERM {
			msg += " (changing nftables needs CAP_NET_ADMIN: run as root)"
		}
		return msg
	}
	return strings.ReplaceAll(e.err.Error(), "\n", "; ")
}

func (e nlError) Unwrap() error { return e.err }

func netlinkError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nlError{err}
	}
	if strings.Contains(err.Error(), "\n") {
		return nlError{err}
	}
	return err
}

// Apply makes the kernel hold exactly w, in ONE netlink transaction: the
// table, chains and rules are created or repaired and the sets flushed and
// refilled together, so no packet ever sees a half-made state, and a
// refused transaction leaves the kernel as it was. When the kernel already
// holds w, Apply writes nothing and returns an empty Change.
func (m *Manager) Apply(ctx context.Context, w Want) (Change, error) {
	want, err := wanted(m.cfg, w)
	if err != nil {
		return Change{}, err
	}
	var c Change
	err = m.do(ctx, "applying", func() error {
		s, err := m.read()
		if err != nil {
			return err
		}
		if s.owner == ownerForeign {
			return s.notOwned(m.cfg, "change")
		}
		p := s.plan(m.cfg, want)
		if p.empty() {
			c = Change{}
			return nil
		}
		b, err := newBatch()
		if err != nil {
			return err
		}
		if err := queue(b.Conn, m.cfg, p); err != nil {
			return err
		}
		if m.beforeFlush != nil {
			m.beforeFlush(b.Conn, p)
		}
		msgs, err := b.messages()
		if err != nil {
			return err
		}
		if p.delTable {
			if err := delByHandle(msgs, m.cfg.Table, s.table.handle); err != nil {
				return err
			}
		}
		if p.createTable {
			if err := markNewTable(msgs, m.cfg.Table); err != nil {
				return err
			}
		}
		m.flushes++
		c = p.change
		lose := m.loseAnswer
		m.loseAnswer = false
		return sendBatch(m.nl, msgs, lose)
	})
	var unconfirmed *unconfirmedError
	if errors.As(err, &unconfirmed) {
		err = m.confirm(ctx, want, err)
	}
	if err != nil {
		return Change{}, err
	}
	return c, nil
}

// ConfirmTimeout bounds the read-back after a transaction whose answer was
// lost.
const ConfirmTimeout = 5 * time.Second

// confirm reads the kernel back, on a fresh socket with a deadline of its
// own, after a transaction was sent but its answer was not read (sent is
// that error): nil when the kernel holds want (the transaction was
// committed), else an error that says which list the kernel holds, or that
// it could not be told.
func (m *Manager) confirm(ctx context.Context, want map[string]content, sent error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ConfirmTimeout)
	defer cancel()
	var held bool
	err := m.do(rctx, "reading back", func() error {
		s, err := m.read()
		if err != nil {
			return err
		}
		held = s.owner != ownerForeign && s.plan(m.cfg, want).empty()
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w; reading the kernel back failed too (%v): it may hold the old or the new list, run `cfguard status`", sent, err)
	case !held:
		return fmt.Errorf("%w; read back, the kernel does not hold the new list (nothing changed)", sent)
	}
	return nil
}

// maxElemsPerMsg bounds the elements in one netlink message of the batch.
const maxElemsPerMsg = 1024

// queue adds the steps of p to the batch on conn, in an order the kernel
// accepts within one transaction.
func queue(conn *nftables.Conn, cfg Config, p *plan) error {
	t := &nftables.Table{Name: cfg.Table, Family: familyINet}
	if p.delTable {
		conn.DelTable(t)
	}
	switch {
	case p.createTable:
		// Exclusive: a table of that name that appeared since it was read
		// fails the transaction rather than being written to.
		conn.CreateTable(t)
	case p.wakeTable:
		conn.AddTable(t) // flags 0: wakes a dormant table
	}
	for _, c := range p.flushChains {
		conn.FlushChain(&nftables.Chain{Name: c.Name, Table: t})
	}
	for _, c := range p.delChains {
		conn.DelChain(&nftables.Chain{Name: c.Name, Table: t})
	}
	for _, name := range p.delSets {
		conn.DelSet(&nftables.Set{Name: name, Table: t})
	}
	fill := func(spec setSpec, set *nftables.Set) error {
		c := p.content[spec.name]
		elems := portElements(c.ports)
		if spec.interval {
			elems = Intervals(c.prefixes)
		}
		for len(elems) > 0 {
			n := min(len(elems), maxElemsPerMsg)
			if err := conn.SetAddElements(set, elems[:n]); err != nil {
				return fmt.Errorf("set %s: %w", spec.name, err)
			}
			elems = elems[n:]
		}
		return nil
	}
	for _, spec := range p.addSets {
		set := &nftables.Set{Table: t, Name: spec.name, ID: spec.id, KeyType: spec.keyType, Interval: spec.interval}
		if err := conn.AddSet(set, nil); err != nil {
			return fmt.Errorf("set %s: %w", spec.name, err)
		}
		if err := fill(spec, set); err != nil {
			return err
		}
	}
	for _, spec := range p.refillSets {
		set := &nftables.Set{Table: t, Name: spec.name, KeyType: spec.keyType, Interval: spec.interval}
		conn.FlushSet(set)
		if err := fill(spec, set); err != nil {
			return err
		}
	}
	for _, spec := range p.addChains {
		policy, prio, hook := spec.policy, nftables.ChainPriority(Priority), spec.hook
		c := conn.AddChain(&nftables.Chain{
			Name: spec.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: &hook, Priority: &prio, Policy: &policy,
		})
		for _, r := range spec.rules {
			conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: r.exprs})
		}
	}
	return nil
}

// Remove deletes cfguard's table, and nothing else: a table of that name
// that cfguard did not create is refused (*NotOwnedError) and left as it
// is. existed is false, with no error, when it was already gone.
func (m *Manager) Remove(ctx context.Context) (existed bool, err error) {
	err = m.do(ctx, "removing", func() error {
		s, err := m.read()
		if err != nil {
			return err
		}
		if s.owner == ownerForeign {
			return s.notOwned(m.cfg, "delete")
		}
		existed = s.table != nil
		if !existed {
			return nil
		}
		b, err := newBatch()
		if err != nil {
			return err
		}
		b.DelTable(&nftables.Table{Name: m.cfg.Table, Family: familyINet})
		msgs, err := b.messages()
		if err != nil {
			return err
		}
		if err := delByHandle(msgs, m.cfg.Table, s.table.handle); err != nil {
			return err
		}
		m.flushes++
		if err := sendBatch(m.nl, msgs, false); err != nil {
			if errors.Is(err, syscall.ENOENT) { // removed meanwhile (or made again: then it is left)
				existed = false
				return nil
			}
			return err
		}
		return nil
	})
	return existed, err
}
