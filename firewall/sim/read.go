package sim

import (
	"bytes"
	"context"
	"encoding/binary"

	"fmt"
	"math/bits"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// readTimeout bounds each receive of the raw netlink rule dump.
const readTimeout = 5 * time.Second

// Read takes a snapshot of every nftables table, chain, rule and set in the
// network namespace netnsFd (0: the caller's own), and looks for
// iptables-legacy tables there.
//
// Besides the decoded rules from github.com/google/nftables, Read dumps the
// rules once more over a raw netlink socket to learn the kernel's name of
// every expression: the library silently leaves out expressions it cannot
// decode (socket, byteorder, osf, tproxy, ...), which would turn
// `socket transparent 1 drop` into a plain `drop`. Such expressions are kept
// as unknownExpr so that evaluating them is CannotTell.
func Read(ctx context.Context, netnsFd int) (*Ruleset, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		names  map[ruleKey][]kexpr
		order  map[ruleKey][]uint64
		legacy []string
	)
	err := inNetns(netnsFd, func() error {
		var err error
		legacy = legacyTables()
		names, order, err = dumpExprNames(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading nftables rules: %w", err)
	}

	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netnsFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables netlink: %w", err)
	}
	defer c.CloseLasting()

	rs := &Ruleset{legacy: legacy}
	if len(legacy) > 0 {
		rs.warnings = append(rs.warnings, legacyWarning(legacy))
	}
	tabs, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables: %w", err)
	}
	byKey := map[tableKey]*table{}
	for _, t := range tabs {
		tb := &table{
			family:  t.Family,
			name:    t.Name,
			dormant: tableDormant(t.Flags),
			chains:  map[string]*chain{},
			sets:    map[string]*set{},
		}
		rs.tables = append(rs.tables, tb)
		byKey[tableKey{t.Family, t.Name}] = tb
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sets, err := c.GetSets(t)
		if err != nil {
			tb.setsErr = fmt.Sprintf("the sets of table %s %s could not be read (%v), so the rules that match them cannot be judged", familyName(t.Family), t.Name, err)
			rs.warnings = append(rs.warnings, tb.setsErr)
			continue
		}
		for _, s := range sets {
			elems, err := c.GetSetElements(s)
			st := newSet(s, elems)
			if err != nil {
				st.bad = fmt.Sprintf("the elements of set %s could not be read: %v", s.Name, err)
			}
			tb.sets[s.Name] = st
		}
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("listing nftables chains: %w", err)
	}
	for _, ch := range chains {
		tb := byKey[tableKey{ch.Table.Family, ch.Table.Name}]
		if tb == nil {
			continue // table created after ListTables; not part of the snapshot
		}
		cn := &chain{table: tb, name: ch.Name, typ: ch.Type, policy: nftables.ChainPolicyAccept}
		if ch.Hooknum != nil {
			cn.base = true
			cn.hook = *ch.Hooknum
			if ch.Priority != nil {
				cn.priority = int32(*ch.Priority)
			}
			if ch.Policy != nil {
				cn.policy = *ch.Policy
			}
			tb.base = append(tb.base, cn)
		}
		tb.chains[ch.Name] = cn
	}
	for _, tb := range rs.tables {
		for _, cn := range sortedChains(tb) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t := &nftables.Table{Name: tb.name, Family: tb.family}
			rules, err := c.GetRules(t, &nftables.Chain{Name: cn.name, Table: t})
			if err != nil {
				// The library refuses a whole chain over one attribute it
				// decodes wrongly (ct direction): decode the raw dump.
				if rules, err = rawRules(tb.family, tb.name, cn.name, names, order); err != nil {
					cn.bad = fmt.Sprintf("the rules of chain %s could not be read: %v", cn.name, err)
					continue
				}
			}
			for _, r := range rules {
				ru := &rule{handle: r.Handle}
				ru.exprs, ru.bad = mergeExprs(tb.family, r.Exprs, names[ruleKey{tb.family, tb.name, cn.name, r.Handle}])
				ru.text = renderRule(tb, ru.exprs)
				cn.rules = append(cn.rules, ru)
			}
		}
	}
	return rs, nil
}

// tableDormant reports whether NFTA_TABLE_FLAGS has NFT_TABLE_F_DORMANT.
// The kernel sends the attribute in network byte order; google/nftables
// v0.3.0 decodes it in host order, so on a little-endian host dormant reads
// as 0x01000000. Both readings are accepted: the other flags (owner 0x2,
// persist 0x4) never set bit 0 or bit 24 in either order.
func tableDormant(flags uint32) bool {
	return flags&unix.NFT_TABLE_F_DORMANT != 0 || bits.ReverseBytes32(flags)&unix.NFT_TABLE_F_DORMANT != 0
}

type tableKey struct {
	family nftables.TableFamily
	name   string
}

type ruleKey struct {
	family       nftables.TableFamily
	table, chain string
	handle       uint64
}

func sortedChains(tb *table) []*chain {
	out := make([]*chain, 0, len(tb.chains))
	for _, c := range tb.chains {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// decodedByLibrary are the expression names github.com/google/nftables
// v0.3.0 decodes (expr.exprFromName, plus notrack); it drops the others.
var decodedByLibrary = map[string]bool{
	"ct": true, "range": true, "meta": true, "cmp": true, "counter": true, "objref": true,
	"payload": true, "lookup": true, "immediate": true, "bitwise": true, "redir": true,
	"nat": true, "limit": true, "quota": true, "dynset": true, "log": true, "exthdr": true,
	"match": true, "target": true, "connlimit": true, "queue": true, "flow_offload": true,
	"reject": true, "masq": true, "hash": true, "cthelper": true, "synproxy": true,
	"ctexpect": true, "secmark": true, "cttimeout": true, "fib": true, "numgen": true,
	"notrack": true,
}

// kexpr is one expression of the raw dump: the kernel's name and, for a
// compat match or target, its name, revision and info bytes.
type kexpr struct {
	name string
	xt   *xtRaw
	data []byte // NFTA_EXPR_DATA, for rawRules
}

// mergeExprs puts an Unknown in every place where the kernel has an
// expression the library left out, and replaces each compat match / target
// with an xtExpr decoded from the raw info. names are the kernel's
// expressions, in order.
func mergeExprs(fam nftables.TableFamily, decoded []expr.Any, names []kexpr) ([]expr.Any, string) {
	if names == nil {
		return decoded, "the rule was not in the raw dump (changed while reading)"
	}
	var out []expr.Any
	i := 0
	for _, n := range names {
		if !decodedByLibrary[n.name] {
			out = append(out, &unknownExpr{name: n.name})
			continue
		}
		if i >= len(decoded) {
			return decoded, "the rule changed while reading"
		}
		e := decoded[i]
		switch d := e.(type) {
		case *expr.Match:
			if n.xt == nil || n.xt.name != d.Name || n.xt.rev != d.Rev {
				return decoded, "the rule changed while reading"
			}
			x := decodeXT(fam, false, d.Name, d.Rev, n.xt.info)
			x.Any = d
			e = x
		case *expr.Target:
			if n.xt == nil || n.xt.name != d.Name || n.xt.rev != d.Rev {
				return decoded, "the rule changed while reading"
			}
			x := decodeXT(fam, true, d.Name, d.Rev, n.xt.info)
			x.Any = d
			e = x
		}
		out = append(out, e)
		i++
	}
	if i != len(decoded) {
		return decoded, "the rule changed while reading"
	}
	return out, ""
}

// inNetns runs fn on an OS thread switched into the namespace fd (fd 0: on
// the calling goroutine, in the current namespace). Files under
// /proc/thread-self/net and sockets opened by fn belong to that namespace.
func inNetns(fd int, fn func() error) error {
	if fd == 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("opening own network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and the runtime discards it
		done <- err
	}()
	return <-done
}

// dumpExprNames dumps every rule of the namespace over a raw netlink
// socket and returns the kernel's name of each of its expressions.
func dumpExprNames(ctx context.Context) (map[ruleKey][]kexpr, map[ruleKey][]uint64, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, fmt.Errorf("netlink bind: %w", err)
	}
	wait := readTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = max(time.Until(d), time.Millisecond)
	}
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, nil, fmt.Errorf("netlink timeout: %w", err)
	}
	for attempt := 0; ; attempt++ {
		names, order, interrupted, err := dumpOnce(fd, uint32(attempt+1))
		if err != nil || !interrupted || attempt >= 3 {
			return names, order, err
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
}

// dumpOnce returns the expressions of every rule and, under the chain's key
// with handle 0, the chain's rule handles in order.
func dumpOnce(fd int, seq uint32) (map[ruleKey][]kexpr, map[ruleKey][]uint64, bool, error) {
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE))
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], seq)
	req[unix.NLMSG_HDRLEN] = unix.AF_UNSPEC
	req[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, false, fmt.Errorf("netlink send: %w", err)
	}
	names := map[ruleKey][]kexpr{}
	order := map[ruleKey][]uint64{}
	interrupted := false
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, nil, false, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, nil, false, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return names, order, interrupted, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return nil, nil, false, fmt.Errorf("netlink dump: %w", unix.Errno(-e))
					}
				}
				return names, order, interrupted, nil
			}
			if len(m.Data) < 4 {
				continue
			}
			k, exprs := parseRuleMsg(m.Data[4:])
			k.family = nftables.TableFamily(m.Data[0])
			names[k] = exprs
			ck := ruleKey{k.family, k.table, k.chain, 0}
			order[ck] = append(order[ck], k.handle)
		}
	}
}

// attrs splits netlink attributes; types have the nested/byte-order flags
// cleared.
func attrs(b []byte) [][2][]byte {
	var out [][2][]byte
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			break
		}
		t := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		out = append(out, [2][]byte{{byte(t), byte(t >> 8)}, b[4:l]})
		al := (l + 3) &^ 3
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return out
}

func attrType(a [2][]byte) uint16 { return uint16(a[0][0]) | uint16(a[0][1])<<8 }

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func parseRuleMsg(b []byte) (ruleKey, []kexpr) {
	var k ruleKey
	exprs := []kexpr{}
	for _, a := range attrs(b) {
		switch attrType(a) {
		case unix.NFTA_RULE_TABLE:
			k.table = cstring(a[1])
		case unix.NFTA_RULE_CHAIN:
			k.chain = cstring(a[1])
		case unix.NFTA_RULE_HANDLE:
			if len(a[1]) == 8 {
				k.handle = binary.BigEndian.Uint64(a[1])
			}
		case unix.NFTA_RULE_EXPRESSIONS:
			for _, el := range attrs(a[1]) {
				if attrType(el) != unix.NFTA_LIST_ELEM {
					continue
				}
				ke := kexpr{name: "?"}
				var data []byte
				for _, f := range attrs(el[1]) {
					switch attrType(f) {
					case unix.NFTA_EXPR_NAME:
						ke.name = cstring(f[1])
					case unix.NFTA_EXPR_DATA:
						data = f[1]
					}
				}
				if ke.name == "match" || ke.name == "target" {
					ke.xt = parseXT(data)
				}
				ke.data = append([]byte(nil), data...)
				exprs = append(exprs, ke)
			}
		}
	}
	return k, exprs
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyARP:
		return "arp"
	}
	return fmt.Sprintf("family(%d)", f)
}
