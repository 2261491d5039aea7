package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Mark is the comment cfguard gives every table it creates, stored in the
// table's userdata (NFTA_TABLE_USERDATA) the way `nft` stores a table
// comment, so that `nft list table` shows `comment "managed by cfguard"`.
// cfguard writes, repairs or deletes only a table that carries it.
//
// The kernel sets a table's userdata when the table is created and ignores
// it on every later update (seen on Linux 6.18 and nft 1.0.6: `add table
// inet filter { comment "x"; }` on an existing table leaves it without a
// comment), so an existing table — the administrator's `inet filter` —
// can never come to carry the mark by accident: only a table created with
// it does.
const Mark = "managed by cfguard"

// NFTA_TABLE_HANDLE and NFTA_TABLE_USERDATA (linux/netfilter/nf_tables.h),
// which golang.org/x/sys/unix does not define.
const (
	nftaTableHandle   = 4
	nftaTableUserdata = 6
)

// udataTableComment is NFTNL_UDATA_TABLE_COMMENT, the TLV type libnftnl
// and nft use for a table's comment.
const udataTableComment = 0

// markUserdata is Mark encoded as nft encodes a table comment: a TLV of
// type NFTNL_UDATA_TABLE_COMMENT holding the NUL-terminated string.
func markUserdata() []byte {
	return append([]byte{udataTableComment, byte(len(Mark) + 1)}, Mark+"\x00"...)
}

// tableComment decodes the comment TLV of a table's userdata. ok is false
// when there is none; malformed userdata has no comment.
func tableComment(udata []byte) (comment string, ok bool) {
	for len(udata) >= 2 {
		typ, n := udata[0], int(udata[1])
		if len(udata) < 2+n {
			return "", false
		}
		if typ == udataTableComment {
			return strings.TrimSuffix(string(udata[2:2+n]), "\x00"), true
		}
		udata = udata[2+n:]
	}
	return "", false
}

// tableInfo is a table as the kernel dumps it, with what nftables v0.3.0
// does not decode: its userdata, and its flags in the right byte order.
type tableInfo struct {
	name   string
	flags  uint32
	use    uint32 // chains, sets (anonymous ones too), objects and flowtables in it
	handle uint64 // unique in the namespace: a table deleted and made again has a new one
	udata  []byte
}

// marked reports whether cfguard created the table.
func (t *tableInfo) marked() bool {
	c, ok := tableComment(t.udata)
	return ok && c == Mark
}

// getTable reads one table of family; nil, nil when there is none.
func getTable(nl *netlink.Conn, family byte, name string) (*tableInfo, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: []byte(name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := nl.Execute(netlink.Message{
		Header: netlink.Header{Type: nftMsgType(unix.NFT_MSG_GETTABLE), Flags: netlink.Request},
		Data:   append(nfgenHeader(family), attrs...),
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Type != nftMsgType(unix.NFT_MSG_NEWTABLE) || len(m.Data) < 4 || m.Data[0] != family {
			continue
		}
		t, err := decodeTable(m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("decoding table %s: %w", name, err)
		}
		if t.name == name {
			return t, nil
		}
	}
	return nil, nil
}

func decodeTable(b []byte) (*tableInfo, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	t := &tableInfo{}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TABLE_NAME:
			t.name = ad.String()
		case unix.NFTA_TABLE_FLAGS:
			t.flags = ad.Uint32()
		case unix.NFTA_TABLE_USE:
			t.use = ad.Uint32()
		case nftaTableHandle:
			t.handle = ad.Uint64()
		case nftaTableUserdata:
			t.udata = ad.Bytes()
		}
	}
	return t, ad.Err()
}

// NotOwnedError is the refusal to write to, or delete, a table cfguard did
// not create. Its message is the one line the command prints.
type NotOwnedError struct {
	Table   string
	Comment string // the table's own comment, if it has one
	HasComm bool
	Op      string // "change", "delete"
	Layout  bool   // it holds cfguard's set and chain names: made by an earlier cfguard, then changed
}

func (e *NotOwnedError) Error() string {
	why := "no cfguard mark"
	if e.HasComm {
		c := e.Comment
		if len(c) > 64 {
			c = c[:64] + "…"
		}
		why = "its comment is " + strconv.QuoteToASCII(c) + ", not cfguard's mark"
	}
	op := e.Op
	if op == "" {
		op = "change"
	}
	fix := "choose another --table"
	if e.Layout {
		fix = fmt.Sprintf("if an earlier cfguard made it and it was edited since, run `nft delete table inet %s` then `cfguard sync`; otherwise choose another --table", e.Table)
	}
	return fmt.Sprintf("table inet %s exists and was not created by cfguard (%s); refusing to %s it — %s", e.Table, why, op, fix)
}

// Problem is the refusal worded for `cfguard status`.
func (e *NotOwnedError) Problem() string {
	msg := e.Error()
	i := strings.Index(msg, "; refusing")
	j := strings.Index(msg, " — ")
	if i < 0 || j < 0 {
		return msg
	}
	return msg[:i] + ": cfguard does not guard it —" + msg[j+len(" —"):]
}

// owner is who made the table a snapshot holds.
type owner int

const (
	ownerNone    owner = iota // there is no table
	ownerCfguard              // it carries the mark
	ownerLegacy               // an earlier cfguard's, exactly its old layout
	ownerForeign              // anyone else's
)

func (s *snapshot) classify() owner {
	switch {
	case s.table == nil:
		return ownerNone
	case s.table.marked():
		return ownerCfguard
	case s.readErr == nil && s.legacyLayout():
		return ownerLegacy
	}
	return ownerForeign
}

// legacyLayout reports whether the unmarked table is exactly what cfguard
// made before it marked its tables: no comment, not dormant, the five sets
// with their types and flags, the two chains with their hooks, priority,
// policy and rules, and nothing else (the kernel's use count of the table
// counts chains, sets, anonymous sets, objects and flowtables).
func (s *snapshot) legacyLayout() bool {
	t := s.table
	if t.udata != nil || t.flags != 0 || int(t.use) != len(setSpecs)+2 || len(s.setNames) != len(setSpecs) || len(s.chains) != 2 {
		return false
	}
	for _, spec := range setSpecs {
		if !s.setState(spec).ok {
			return false
		}
	}
	in, fwd := legacyChainSpecs()
	for _, spec := range []chainSpec{in, fwd} {
		c := s.chain(spec.name)
		if c == nil || chainDrift(c, spec, s.rules[spec.name]) != "" {
			return false
		}
	}
	return true
}

// notOwned is the refusal to op ("change", "delete") the snapshot's table.
func (s *snapshot) notOwned(cfg Config, op string) *NotOwnedError {
	c, ok := tableComment(s.table.udata)
	return &NotOwnedError{
		Table: cfg.Table, Comment: c, HasComm: ok, Op: op,
		Layout: s.sets[SetCF4] != nil && s.sets[SetPorts] != nil,
	}
}
