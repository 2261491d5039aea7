package sim

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cfguard/cfguard/internal/nstest"
)

var (
	diffN    = flag.Int("sim.diff.n", 30, "differential test: number of random rulesets")
	diffSeed = flag.Uint64("sim.diff.seed", 1, "differential test: seed of the ruleset generator")
)

// diffWorkers is how many origin/client namespace pairs run rulesets at
// once.
const diffWorkers = 8

// maxWrongShown bounds the disagreements printed in full.
const maxWrongShown = 10

type diffStats struct {
	mu                                  sync.Mutex
	rulesets, unloadable, probes, exact int
	cannot, wrong, pieceWrong           int
	translated                          int // probes the simulator followed through a DNAT
	shown                               int
	why                                 map[string]int // cannot tell, by reason
}

// TestDifferential applies random rulesets (diffgen_test.go) with `nft -f`
// in an origin namespace, connects from every client address to every
// probed port (the SYN, then the byte the origin sends, which needs the
// packets after the SYN and IPv6 neighbour discovery), and compares each
// answer with the simulator's verdict. "cannot tell" is neutral; a definite
// verdict that differs from the kernel's fails. The piece of CheckPrefix
// that holds each source must agree with Check. Run it long with
// -sim.diff.n=500 (and -sim.diff.seed to vary).
func TestDifferential(t *testing.T) {
	nstest.RequireRoot(t, "nft", "iptables-nft", "ip6tables-nft")
	g := &gen{r: rand.New(rand.NewPCG(*diffSeed, 0x5eed))}
	texts := make([]string, *diffN)
	cmds := make([][][]string, *diffN)
	for i := range texts {
		texts[i], cmds[i] = g.ruleset(), g.iptables()
	}
	dir := t.TempDir()
	jobs := make(chan int)
	st := diffStats{why: map[string]int{}}
	var wg sync.WaitGroup
	for range min(diffWorkers, len(texts)) {
		origin, client := pair(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				diffOne(t, &st, origin, client, dir, i, texts[i], cmds[i], nil)
			}
		}()
	}
	for i := range texts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(st.probes, 1)) }
	t.Logf("differential (seed %d): %d rulesets (%d not loadable by nft), %d probes: %d exact (%.1f %%), %d cannot tell (%.1f %%), %d wrong (%.1f %%); %d prefix pieces disagreeing with Check",
		*diffSeed, st.rulesets, st.unloadable, st.probes, st.exact, pct(st.exact), st.cannot, pct(st.cannot), st.wrong, pct(st.wrong), st.pieceWrong)
	if testing.Verbose() {
		for why, n := range st.why {
			t.Logf("cannot tell %5d × %s", n, why)
		}
	}
	if st.wrong > 0 || st.pieceWrong > 0 {
		t.Errorf("%d definite verdicts differ from the kernel's, %d prefix pieces from Check", st.wrong, st.pieceWrong)
	}
}

// diffOne loads and judges one ruleset; prep (if set) prepares the
// ruleset read back (the DNAT differential gives it a router).
func diffOne(t *testing.T, st *diffStats, origin, client *nstest.NS, dir string, i int, text string, cmds [][]string, prep func(*Ruleset)) {
	path := filepath.Join(dir, fmt.Sprintf("r%d.nft", i))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Error(err)
		return
	}
	if out, err := origin.Try("nft", "-f", path); err != nil {
		if testing.Verbose() {
			t.Logf("ruleset %d not loadable: %v\n%s", i, err, out)
		}
		st.mu.Lock()
		st.unloadable++
		st.mu.Unlock()
		return
	}
	for _, c := range cmds {
		if out, err := origin.Try(c[0], c[1:]...); err != nil {
			t.Errorf("ruleset %d: %s: %v\n%s", i, strings.Join(c, " "), err, out)
			return
		}
		text += "# " + strings.Join(c, " ") + "\n"
	}
	ctx, cancel := context.WithTimeout(context.Background(), readCtxTimeout)
	defer cancel()
	rs, err := Read(ctx, origin.Fd())
	if err != nil {
		t.Errorf("ruleset %d: Read: %v", i, err)
		return
	}
	if prep != nil {
		prep(rs)
	}
	solicitOrigin(t, client)
	type pr struct {
		src  netip.Addr
		port uint16
	}
	var probes []pr
	for _, s := range diffSources {
		for _, p := range diffPorts {
			probes = append(probes, pr{netip.MustParseAddr(s), p})
		}
	}
	reals := make([]Verdict, len(probes))
	var wg sync.WaitGroup
	for j, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reals[j] = dial(t, client, p.src, p.port)
		}()
	}
	wg.Wait()

	var wrong []string
	exact, cannot, pieceWrong, translated := 0, 0, 0, 0
	why := map[string]int{}
	for j, p := range probes {
		got := rs.Check(p.src, dstFor(p.src), p.port)
		if got.DNAT.Translated() {
			translated++
		}
		switch {
		case got.Verdict == CannotTell:
			cannot++
			r := got.Reason
			if i := strings.IndexAny(r, ":("); i > 0 {
				r = r[:i]
			}
			if strings.HasPrefix(r, "IPv6") {
				r += " [" + got.Rule + "]"
			}
			why[r]++
		case got.Verdict == reals[j]:
			exact++
		default:
			wrong = append(wrong, fmt.Sprintf("%v → :%d: simulator %v (%s %s %s #%d %q; %s; packet %v), kernel %v",
				p.src, p.port, got.Verdict, got.Family, got.Table, got.Chain, got.Handle, got.Rule, got.Reason, got.Packet, reals[j]))
		}
		bits := 24
		if p.src.Is6() {
			bits = 48
		}
		for _, piece := range rs.CheckPrefix(netip.PrefixFrom(p.src, bits).Masked(), dstFor(p.src), p.port) {
			if piece.From.Compare(p.src) <= 0 && p.src.Compare(piece.To) <= 0 &&
				piece.Result.Verdict != got.Verdict && piece.Result.Verdict != CannotTell && got.Verdict != CannotTell {
				pieceWrong++
				wrong = append(wrong, fmt.Sprintf("%v → :%d: CheckPrefix piece %v-%v says %v, Check %v", p.src, p.port, piece.From, piece.To, piece.Result.Verdict, got.Verdict))
			}
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rulesets++
	st.probes += len(probes)
	st.exact += exact
	st.cannot += cannot
	st.translated += translated
	st.wrong += len(wrong) - pieceWrong
	st.pieceWrong += pieceWrong
	for r, n := range why {
		st.why[r] += n
	}
	if len(wrong) > 0 && st.shown < maxWrongShown {
		st.shown++
		t.Errorf("ruleset %d (seed %d):\n%s\n%s", i, *diffSeed, text, strings.Join(wrong, "\n"))
	}
}
