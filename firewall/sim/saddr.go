package sim

import (
	"net/netip"

	"github.com/google/nftables/expr"
)

// Source-address provenance: which bytes of the register file hold which
// bits of the packet's source address. Both the boundary collector
// (prefix.go) and the evaluator track it with the same code, so that they
// agree on which comparisons cut the address space into blocks (a prefix of
// the address, compared whole) and which read bits that do not form a prefix
// (`ip saddr & 0.0.0.1`, `@nh,120,8`): those are judged per piece of the
// range, split as deep as the bits they read (CheckPrefix).

// saddrProv is, for each byte of the register file, the index+1 of the
// source-address byte it holds (0: none), the bits of it that survive the
// masks applied since, and whether an xor changed it.
type saddrProv struct {
	idx  [64]byte
	mask [64]byte
	xor  [64]bool
}

// clear forgets the provenance of n bytes at register offset off, and of
// the padding up to the next 4-byte word (a load pads with zeros).
func (sp *saddrProv) clear(off, n int) {
	for i := off; i < len(sp.idx) && (i < off+n || i%4 != 0); i++ {
		sp.idx[i] = 0
	}
}

// load notes a network-header load of n bytes at header offset nhOff into
// register offset off, for a packet of family v6 whose tracked address
// starts at header offset start.
func (sp *saddrProv) load(off int, nhOff, n int, v6 bool, start int) {
	size := 4
	if v6 {
		size = 16
	}
	sp.clear(off, n)
	for i := 0; i < n && off+i < len(sp.idx); i++ {
		if j := nhOff + i - start; j >= 0 && j < size {
			sp.idx[off+i], sp.mask[off+i], sp.xor[off+i] = byte(j+1), 0xff, false
		}
	}
}

// bitwise carries provenance through dst = (src & mask) ^ xor.
func (sp *saddrProv) bitwise(dst, src, n int, mask, xor []byte) {
	if dst < 0 || src < 0 || dst+n > len(sp.idx) || src+n > len(sp.idx) || len(mask) < n || len(xor) < n {
		return
	}
	var idx, m [64]byte
	var x [64]bool
	for i := 0; i < n; i++ {
		idx[i], m[i], x[i] = sp.idx[src+i], sp.mask[src+i]&mask[i], sp.xor[src+i] || xor[i]&mask[i] != 0
		if m[i] == 0 {
			idx[i] = 0
		}
	}
	sp.clear(dst, n)
	copy(sp.idx[dst:], idx[:n])
	copy(sp.mask[dst:], m[:n])
	copy(sp.xor[dst:], x[:n])
}

// saddrRead is what a comparison of n register bytes at off reads of the
// source address.
type saddrRead struct {
	any bool // it reads some source-address bit
	// prefix: it reads the first k bytes of the address in order, masked by
	// a prefix mask of bits ones, at register bytes pos..pos+k-1, and no other
	// address byte: its outcome changes only at block boundaries.
	prefix    bool
	pos, k    int // relative to the start of the read
	bits      int
	deepest   int // the deepest address bit read (0: the first bit)
	addrBytes int // 4 or 16
}

func (sp *saddrProv) read(off, n int, v6 bool) saddrRead {
	r := saddrRead{deepest: -1, addrBytes: 4}
	if v6 {
		r.addrBytes = 16
	}
	if off < 0 || off+n > len(sp.idx) {
		return r
	}
	var buf [64]int
	seen := buf[:0] // register positions holding address bytes
	for i := off; i < off+n; i++ {
		if sp.idx[i] == 0 {
			continue
		}
		r.any = true
		seen = append(seen, i)
		m := sp.mask[i]
		low := 7
		for m&1 == 0 {
			m >>= 1
			low--
		}
		if d := int(sp.idx[i]-1)*8 + low; d > r.deepest {
			r.deepest = d
		}
	}
	if !r.any {
		return r
	}
	r.prefix, r.pos, r.k = true, seen[0]-off, len(seen)
	ended := false // a partial mask byte was seen: no address byte may follow
	for j, i := range seen {
		if i != seen[0]+j || int(sp.idx[i]) != j+1 || sp.xor[i] || ended {
			r.prefix = false
			break
		}
		l, ok := prefixLen([]byte{sp.mask[i]})
		if !ok {
			r.prefix = false
			break
		}
		r.bits += l
		if l < 8 {
			ended = true
		}
	}
	return r
}

// noteRead records, in p.dep, a comparison of n register bytes at r whose
// source-address bits can differ within the packet's piece. A prefix read is
// cut at the piece boundaries already (collectBounds), so only the other
// reads count: they vary when they reach below the bits all addresses of the
// piece share.
func (p *packet) noteRead(rg *regs, r uint32, n int) {
	if p.piece == nil {
		return
	}
	off, ok := regOffset(r)
	if !ok {
		return
	}
	rd := rg.prov.read(off, n, p.v6)
	// The boundaries cut the pieces for prefixes of the source address; a
	// reply has the Cloudflare address as its destination, where every read
	// that varies within the piece splits it.
	if !rd.any || (rd.prefix && !p.reply) || rd.deepest < commonBits(p.piece.from, p.piece.to) {
		return
	}
	if rd.deepest > p.dep {
		p.dep = rd.deepest
		p.depAt = Result{Family: familyName(p.curChain.table.family), Table: p.curChain.table.name,
			Chain: p.curChain.name, Handle: p.curRule.handle, Rule: p.curRule.text}
	}
}

// commonBits is the number of leading bits a and b share.
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			d <<= 1
			n++
		}
		break
	}
	if a.Is4() {
		n -= 96
	}
	return n
}

// readBlocks calls emit with every address at which the outcome of a prefix
// read rd can change: for each value x the comparison holds its prefix
// against (data of a cmp, ends of a range or of set elements), the first
// address of x's block and the first after it.
func readBlocks(rd saddrRead, values [][]byte, emit func(netip.Addr)) {
	if !rd.prefix {
		return
	}
	for _, v := range values {
		if len(v) < rd.pos+rd.k {
			continue
		}
		lo, hi := make([]byte, rd.addrBytes), make([]byte, rd.addrBytes)
		copy(lo, v[rd.pos:rd.pos+rd.k])
		copy(hi, v[rd.pos:rd.pos+rd.k])
		for i := 0; i < rd.addrBytes; i++ {
			var m byte
			switch {
			case (i+1)*8 <= rd.bits:
				m = 0xff
			case i*8 < rd.bits:
				m = ^byte(0xff >> (rd.bits - i*8))
			}
			lo[i] &= m
			hi[i] = hi[i]&m | ^m
		}
		// A predicate on the masked address changes only at block starts:
		// at x's block or at the block after it.
		if a, ok := netip.AddrFromSlice(lo); ok {
			emit(a)
		}
		if next, ok := plusOne(hi); ok {
			if a, ok := netip.AddrFromSlice(next); ok {
				emit(a)
			}
		}
	}
}

// cmpValues are the values a cmp or range compares a register with.
func cmpValues(e expr.Any) [][]byte {
	switch e := e.(type) {
	case *expr.Cmp:
		return [][]byte{e.Data}
	case *expr.Range:
		return [][]byte{e.FromData, e.ToData}
	}
	return nil
}

// setValues are the ends of a set's elements, for readBlocks.
func setValues(s *set) [][]byte {
	out := make([][]byte, 0, 2*len(s.ranges))
	for _, rg := range s.ranges {
		out = append(out, rg.from, rg.to)
	}
	return out
}
