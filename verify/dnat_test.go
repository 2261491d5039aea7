package verify

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/firewall/sim"
	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/report"
)

// dnatFirewall is fakeFirewall that also says where a DNAT sends a port.
type dnatFirewall struct {
	*fakeFirewall
	to map[netip.AddrPort]sim.Translation
	// unknown lists address:ports a DNAT may send elsewhere (cannot tell).
	unknown map[netip.AddrPort]bool
}

func (f *dnatFirewall) Translation(addr netip.Addr, port int) (sim.Translation, bool) {
	k := netip.AddrPortFrom(addr, uint16(port))
	return f.to[k], !f.unknown[k]
}

// behindUpstream is fakeUpstream that names what is behind a DNAT target.
type behindUpstream struct {
	*fakeUpstream
	mu     sync.Mutex
	behind []netip.AddrPort
}

func (u *behindUpstream) Behind(_ context.Context, to netip.AddrPort, _ string, _ int) report.Outcome {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.behind = append(u.behind, to)
	return report.Outcome{Stage: report.StageUpstream, Evidence: []string{"behind " + to.String()}}
}

var toContainer = sim.Translation{To: netip.MustParseAddrPort("192.0.2.130:8080"), Family: "ip", Table: "nat", Chain: "DOCKER", Handle: 7,
	Rule: `iifname != "docker0" tcp dport 80 dnat to 192.0.2.130:8080`, Interface: "docker0"}

func TestWalkPublishedByDNAT(t *testing.T) {
	flexible := cloudflare.Settings{SSL: ModeFlexible, ProxyReadTimeout: 125 * time.Second}
	tests := []struct {
		name     string
		x        sim.Translation
		unknown  bool
		outcomes map[string]report.Outcome
		want     []string
		evidence string // a substring of the path's evidence
		cause    string // a substring of the path's cause
		probed   []string
		behind   []netip.AddrPort
		analyzed int // fakeUpstream.Analyze calls
	}{
		{name: "to a container", x: toContainer,
			want:     []string{"www.example.com A 192.0.2.1 80/http ok 200 http"},
			evidence: "published by DNAT to 192.0.2.130:8080 (table ip nat chain DOCKER, rule handle 7: iifname != \"docker0\" tcp dport 80 dnat to 192.0.2.130:8080), forwarded through docker0",
			probed:   []string{"listener 192.0.2.130:8080", "http www.example.com 192.0.2.130:8080"},
			behind:   []netip.AddrPort{toContainer.To}},
		{name: "nothing behind it", x: toContainer,
			outcomes: map[string]report.Outcome{"listener 192.0.2.130:8080": {Fail: true, Status: 521, Cause: "nothing listens on 192.0.2.130:8080"}},
			want:     []string{"www.example.com A 192.0.2.1 80/http FAIL 521 listener"},
			cause:    "nothing listens on 192.0.2.130:8080",
			probed:   []string{"listener 192.0.2.130:8080"}},
		{name: "on this host, another port", x: sim.Translation{To: netip.MustParseAddrPort("192.0.2.1:8080"), Family: "ip", Table: "nat", Chain: "pre", Handle: 3, Local: true},
			want:     []string{"www.example.com A 192.0.2.1 80/http ok 200 http"},
			evidence: "published by DNAT to 192.0.2.1:8080 (table ip nat chain pre, rule handle 3: ), on this host",
			probed:   []string{"listener 192.0.2.1:8080", "http www.example.com 192.0.2.1:8080"},
			analyzed: 1},
		{name: "cannot tell where", unknown: true,
			want:   []string{"www.example.com A 192.0.2.1 80/http ok 0 listener"},
			probed: nil},
		{name: "no DNAT", want: []string{"www.example.com A 192.0.2.1 80/http ok 200 http"},
			probed: []string{"listener 192.0.2.1:80", "http www.example.com 192.0.2.1:80"}, analyzed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(zoneWith("example.com", flexible, a("www.example.com", "192.0.2.1")))
			for k, o := range tt.outcomes {
				f.probe.outcomes[k] = o
			}
			k := netip.MustParseAddrPort("192.0.2.1:80")
			fw := &dnatFirewall{fakeFirewall: f.fw, to: map[netip.AddrPort]sim.Translation{}, unknown: map[netip.AddrPort]bool{k: tt.unknown}}
			if tt.x.Translated() {
				fw.to[k] = tt.x
			}
			up := &behindUpstream{fakeUpstream: f.up}
			rec := &recordingProbe{fakeProbe: f.probe}
			d := deps{api: f.api, probe: rec, firewall: fw, upstream: up, host: f.host, resolver: f.resolver,
				now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }}
			rep, err := run(context.Background(), f.cfg, d, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, briefs(rep)); d != "" {
				t.Errorf("paths (-want +got):\n%s", d)
			}
			p := rep.Paths[0]
			if ev := strings.Join(p.Evidence, "\n"); !strings.Contains(ev, tt.evidence) {
				t.Errorf("evidence lacks %q:\n%s", tt.evidence, ev)
			}
			if !strings.Contains(p.Cause, tt.cause) {
				t.Errorf("cause %q lacks %q", p.Cause, tt.cause)
			}
			if tt.unknown && !strings.Contains(strings.Join(p.Warnings, "\n"), "a DNAT in prerouting may send Cloudflare's connections to 192.0.2.1:80 elsewhere") {
				t.Errorf("warnings do not say the DNAT cannot be judged: %q", p.Warnings)
			}
			if d := cmp.Diff(tt.probed, rec.keys()); d != "" {
				t.Errorf("probed (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.behind, up.behind, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("Behind calls (-want +got):\n%s", d)
			}
			if up.calls != tt.analyzed {
				t.Errorf("Analyze called %d times, want %d", up.calls, tt.analyzed)
			}
		})
	}
}

// recordingProbe is fakeProbe recording the listener and http probes (and
// taking Published as the listener of a DNAT target).
type recordingProbe struct {
	*fakeProbe
	mu  sync.Mutex
	got []string
}

func (r *recordingProbe) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *recordingProbe) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *recordingProbe) Listener(ctx context.Context, t probe.Target) report.Outcome {
	r.note("listener " + hp(t))
	return r.fakeProbe.Listener(ctx, t)
}

func (r *recordingProbe) Published(ctx context.Context, t probe.Target, via string) report.Outcome {
	r.note("listener " + hp(t))
	return r.fakeProbe.Listener(ctx, t)
}

func (r *recordingProbe) HTTP(ctx context.Context, t probe.Target, c *tls.Conn, timeout time.Duration) report.Outcome {
	r.note("http " + t.Hostname + " " + hp(t))
	return r.fakeProbe.HTTP(ctx, t, c, timeout)
}

func TestDNATSeen(t *testing.T) {
	other := toContainer
	other.To = netip.MustParseAddrPort("192.0.2.131:8080")
	piece := func(x sim.Translation, unknown bool) []sim.PrefixResult {
		v := sim.Accept
		if unknown {
			v = sim.CannotTell
		}
		return []sim.PrefixResult{{Result: sim.Result{Verdict: v, DNAT: x, DNATUnknown: unknown}}}
	}
	tests := []struct {
		name       string
		pieces     [][]sim.PrefixResult
		one        bool
		cannotTell bool
	}{
		{"one translation", [][]sim.PrefixResult{piece(toContainer, false), piece(toContainer, false)}, true, false},
		{"none", [][]sim.PrefixResult{piece(sim.Translation{}, false)}, false, false},
		{"two places", [][]sim.PrefixResult{piece(toContainer, false), piece(other, false)}, false, true},
		{"some not translated", [][]sim.PrefixResult{piece(toContainer, false), piece(sim.Translation{}, false)}, false, true},
		{"a DNAT not judged", [][]sim.PrefixResult{piece(toContainer, false), piece(sim.Translation{}, true)}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d dnatSeen
			for _, p := range tt.pieces {
				d.add(p)
			}
			if _, ok := d.one(); ok != tt.one {
				t.Errorf("one: %v, want %v", ok, tt.one)
			}
			o := d.judge(report.Outcome{Stage: report.StageFirewall}, origin4, 80)
			if o.CannotTell != tt.cannotTell {
				t.Errorf("judge: cannot tell %v, want %v (%s)", o.CannotTell, tt.cannotTell, o.Cause)
			}
		})
	}
}
