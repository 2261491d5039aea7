package sim

import "golang.org/x/sys/unix"

// regs is the register file of one rule evaluation: NFT_REG_1..4 (16 bytes
// each) overlaid by NFT_REG32_00..15 (4 bytes each), with a known-bits mask,
// a reason for each unknown 4-byte word, and values the word is known not
// to hold (the interface is not loopback).
type regs struct {
	val, known [64]byte
	why        [16]string
	excl       [16][]byte
	prov       saddrProv
}

func regOffset(r uint32) (int, bool) {
	switch {
	case r >= unix.NFT_REG_1 && r <= unix.NFT_REG_4:
		return int(r-unix.NFT_REG_1) * 16, true
	case r >= unix.NFT_REG32_00 && r <= unix.NFT_REG32_15:
		return int(r-unix.NFT_REG32_00) * 4, true
	}
	return 0, false
}

func (rg *regs) set(r uint32, val, known []byte, why string) bool {
	off, ok := regOffset(r)
	if !ok || off+len(val) > len(rg.val) {
		return false
	}
	copy(rg.val[off:], val)
	rg.prov.clear(off, len(val))
	for i := range val {
		kb := byte(0xff)
		if known != nil {
			kb = known[i]
		}
		rg.known[off+i] = kb
	}
	for w := off / 4; w*4 < off+len(val); w++ {
		rg.why[w], rg.excl[w] = why, nil
	}
	// A load pads to whole 4-byte words with zeros.
	for i := off + len(val); i%4 != 0; i++ {
		rg.val[i], rg.known[i] = 0, 0xff
	}
	return true
}

func (rg *regs) get(r uint32, n int) (val, known []byte, why string, ok bool) {
	off, ok := regOffset(r)
	if !ok || off+n > len(rg.val) {
		return nil, nil, "", false
	}
	why = "a register that was never loaded"
	for w := off / 4; w*4 < off+n; w++ {
		if rg.why[w] != "" {
			why = rg.why[w]
			break
		}
	}
	return rg.val[off : off+n], rg.known[off : off+n], why, true
}

// exclude records that the value loaded at r is not v (compared over at
// least min bytes).
func (rg *regs) exclude(r uint32, v []byte, min int) {
	off, _ := regOffset(r)
	rg.excl[off/4] = append(append([]byte(nil), v...), byte(min))
}

// excluded reports whether the register at r certainly differs from d.
func (rg *regs) excluded(r uint32, d []byte) bool {
	off, ok := regOffset(r)
	if !ok || rg.excl[off/4] == nil {
		return false
	}
	ex := rg.excl[off/4]
	v, min := ex[:len(ex)-1], int(ex[len(ex)-1])
	if len(d) < min {
		return false // a prefix (wildcard) comparison
	}
	for i := range d {
		var b byte
		if i < len(v) {
			b = v[i]
		}
		if d[i] != b {
			return false
		}
	}
	return true
}
