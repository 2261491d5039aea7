package firewall

import (
	"context"
	"testing"
)

// benchWant is about the size of Cloudflare's list: 15 IPv4 and 7 IPv6.
func benchWant(shift byte) Want {
	var w Want
	for i := range 15 {
		w.Cloudflare = append(w.Cloudflare, pfx("198.18."+itoa(int(shift)+i*8)+".0/22")...)
	}
	for i := range 7 {
		w.Cloudflare = append(w.Cloudflare, pfx("2001:db8:c"+itoa(i)+"::/48")...)
	}
	return w
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// BenchmarkApplyNoop: read the table back and find nothing to do.
func BenchmarkApplyNoop(b *testing.B) {
	ns := kernelNS(b)
	m := manager(b, ns, testCfg)
	w := benchWant(0)
	mustApply(b, m, w)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if c, err := m.Apply(ctx, w); err != nil || !c.Empty() {
			b.Fatal(c, err)
		}
	}
}

// BenchmarkApplyChange: read, diff and replace the Cloudflare sets in one
// transaction, alternating two lists.
func BenchmarkApplyChange(b *testing.B) {
	ns := kernelNS(b)
	m := manager(b, ns, testCfg)
	ws := []Want{benchWant(0), benchWant(4)}
	mustApply(b, m, ws[1])
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if c, err := m.Apply(ctx, ws[i%2]); err != nil || c.Empty() {
			b.Fatal(c, err)
		}
		i++
	}
}
