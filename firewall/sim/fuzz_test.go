package sim

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// nlattr encodes one netlink attribute (host byte order header, padded).
func nlattr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// xtAttr is one compat expression as the kernel dumps it.
func xtAttr(target bool, name string, rev uint32, info []byte) []byte {
	kind := "match"
	if target {
		kind = "target"
	}
	data := cat(nlattr(1, append([]byte(name), 0)), nlattr(2, binary.BigEndian.AppendUint32(nil, rev)), nlattr(3, info))
	return nlattr(unix.NFTA_LIST_ELEM, cat(nlattr(unix.NFTA_EXPR_NAME, append([]byte(kind), 0)), nlattr(unix.NFTA_EXPR_DATA|unix.NLA_F_NESTED, data)))
}

// ruleMsg is an NFT_MSG_NEWRULE body (after the nfgenmsg) with exprs.
func ruleMsg(exprs ...[]byte) []byte {
	return cat(nlattr(unix.NFTA_RULE_TABLE, []byte("filter\x00")), nlattr(unix.NFTA_RULE_CHAIN, []byte("INPUT\x00")),
		nlattr(unix.NFTA_RULE_HANDLE, binary.BigEndian.AppendUint64(nil, 7)),
		nlattr(unix.NFTA_RULE_EXPRESSIONS|unix.NLA_F_NESTED, cat(exprs...)))
}

func fuzzSeeds() [][]byte {
	named := func(n string) []byte {
		return nlattr(unix.NFTA_LIST_ELEM, nlattr(unix.NFTA_EXPR_NAME, append([]byte(n), 0)))
	}
	return [][]byte{
		ruleMsg(named("meta"), named("cmp"), named("counter")),
		ruleMsg(xtAttr(false, "conntrack", 3, xtConntrackInfo(3, xtConntrackState, 0, xtCtStateNew)), named("immediate")),
		ruleMsg(xtAttr(false, "multiport", 1, xtMultiportInfo(1, false, [2]uint16{80, 80}, [2]uint16{8000, 8100})), xtAttr(true, "REJECT", 0, make([]byte, 8))),
		ruleMsg(xtAttr(false, "tcp", 0, make([]byte, 16)), xtAttr(false, "icmp6", 0, []byte{135, 0, 255, 0, 0, 0, 0, 0}), xtAttr(false, "hl", 0, make([]byte, 8))),
		ruleMsg(xtAttr(false, "addrtype", 1, xtAddrtypeInfo(0, xtAddrtypeLocal, 0)), xtAttr(true, "LOG", 0, make([]byte, 32)), named("socket")),
		ruleMsg(ctAttr(unix.NFT_CT_PROTO_DST, 0), xtAttr(true, "DNAT", 2, dnatInfo([]byte{192, 0, 2, 130}, 8080))),
	}
}

// ctAttr is a ct expression as the kernel dumps it (the direction in one
// byte, which google/nftables v0.3.0 cannot decode).
func ctAttr(key uint32, dir byte) []byte {
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	data := append(append(nlattr(unix.NFTA_CT_DREG, be(1)), nlattr(unix.NFTA_CT_KEY, be(key))...), nlattr(unix.NFTA_CT_DIRECTION, []byte{dir})...)
	return nlattr(unix.NFTA_LIST_ELEM, append(nlattr(unix.NFTA_EXPR_NAME, []byte("ct\x00")), nlattr(unix.NFTA_EXPR_DATA, data)...))
}

// dnatInfo is struct nf_nat_range2 for one address and one port.
func dnatInfo(addr []byte, port uint16) []byte {
	b := make([]byte, 48)
	binary.NativeEndian.PutUint32(b, nfNATRangeMapIPs|nfNATRangeProtoSpecfied)
	copy(b[4:], addr)
	copy(b[20:], addr)
	binary.BigEndian.PutUint16(b[36:], port)
	binary.BigEndian.PutUint16(b[38:], port)
	return b
}

// FuzzParseRuleMsg feeds raw rule messages to the simulator's own decoder:
// the attribute walk, the compat (xtables) info decoders of every family,
// their evaluation over each simulated packet, and their rendering. None may
// panic.
func FuzzParseRuleMsg(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	src4, dst4 := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("192.0.2.1")
	src6, dst6 := netip.MustParseAddr("2001:db8:cf::10"), netip.MustParseAddr("2001:db8:1::1")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, exprs := parseRuleMsg(b)
		for _, ke := range exprs {
			for _, fam := range []byte{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
				rawExpr(fam, ke) // errors are fine; no panic
			}
			if ke.xt == nil {
				continue
			}
			for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyINet} {
				for _, target := range []bool{false, true} {
					x := decodeXT(fam, target, ke.xt.name, ke.xt.rev, ke.xt.info)
					_ = x.text("tcp")
					_ = hasEffect(x)
					for kind := kindSYN; kind <= kindNAOut; kind++ {
						src, dst := src4, dst4
						if fam == nftables.TableFamilyIPv6 || kind >= kindNSMulticast {
							src, dst = src6, dst6
						}
						p := newPacketKind(kind, src, dst, 443)
						p.base = &chain{base: true, typ: nftables.ChainTypeNAT, hook: unix.NF_INET_PRE_ROUTING, table: &table{family: fam}}
						for _, tr := range []ctTrack{ctTracked, ctNotYet, ctUnsure, ctUntracked} {
							p.track = tr
							evalXT(p, x)
						}
					}
				}
			}
		}
	})
}

var updateFuzzSeeds = flag.Bool("sim.fuzz.update", false, "rewrite testdata/fuzz/FuzzParseRuleMsg from fuzzSeeds")

// TestFuzzSeedCorpus keeps the committed seed corpus in step with
// fuzzSeeds (rewrite it with -sim.fuzz.update).
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseRuleMsg")
	for i, s := range fuzzSeeds() {
		path := filepath.Join(dir, fmt.Sprintf("seed%d", i))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if *updateFuzzSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzSeedCorpus -sim.fuzz.update)", err)
		}
		if string(got) != want {
			t.Errorf("%s is not fuzzSeeds()[%d] (run go test -run TestFuzzSeedCorpus -sim.fuzz.update)", path, i)
		}
	}
}
