package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cfguard/cfguard/verify/cloudflare"
	"github.com/cfguard/cfguard/verify/probe"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// fakeAPI serves zones from memory.
type fakeAPI struct {
	tokenErr error
	zones    []fakeZone
	// edge answers EdgeErrors per zone id (edgeErr, when set, instead);
	// edgeCalls counts the calls.
	edge      map[string][]cloudflare.EdgeGroup
	edgeErr   error
	mu        sync.Mutex
	edgeCalls int
}

type fakeZone struct {
	zone     cloudflare.Zone
	settings cloudflare.Settings
	records  []cloudflare.Record
	rules    cloudflare.Rules
	rulesErr error
}

var _ api = (*fakeAPI)(nil)

func (f *fakeAPI) VerifyToken(context.Context) error { return f.tokenErr }
func (f *fakeAPI) Zones(_ context.Context, names []string) ([]cloudflare.Zone, error) {
	var out []cloudflare.Zone
	for _, z := range f.zones {
		if len(names) == 0 || contains(names, z.zone.Name) {
			out = append(out, z.zone)
		}
	}
	return out, nil
}
func (f *fakeAPI) Settings(_ context.Context, id string) (cloudflare.Settings, error) {
	for _, z := range f.zones {
		if z.zone.ID == id {
			return z.settings, nil
		}
	}
	return cloudflare.Settings{}, fmt.Errorf("no zone %s", id)
}
func (f *fakeAPI) DNSRecords(_ context.Context, id string) ([]cloudflare.Record, error) {
	for _, z := range f.zones {
		if z.zone.ID == id {
			return z.records, nil
		}
	}
	return nil, fmt.Errorf("no zone %s", id)
}

func (f *fakeAPI) EdgeErrors(_ context.Context, id string, _ []string, since, until time.Time) (cloudflare.EdgeCounts, error) {
	f.mu.Lock()
	f.edgeCalls++
	f.mu.Unlock()
	if f.edgeErr != nil {
		return cloudflare.EdgeCounts{}, f.edgeErr
	}
	return cloudflare.EdgeCounts{Since: since, Until: until, Groups: f.edge[id]}, nil
}

func (f *fakeAPI) Rules(_ context.Context, id string) (cloudflare.Rules, error) {
	for _, z := range f.zones {
		if z.zone.ID == id {
			return z.rules, z.rulesErr
		}
	}
	return cloudflare.Rules{}, fmt.Errorf("no zone %s", id)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// fakeProbe passes every stage unless told otherwise, and counts calls.
// Keys: "record 192.0.2.1", "elsewhere 192.0.2.9:443", "route 192.0.2.1",
// "listener 192.0.2.1:443", "tls www.example.com 192.0.2.1:443",
// "certificate www.example.com 192.0.2.1:443", "http www.example.com 192.0.2.1:80".
type fakeProbe struct {
	mu                    sync.Mutex
	outcomes              map[string]report.Outcome
	certReq               map[string]bool // tls keys where the origin asks for a client certificate
	notAfter              time.Time       // the served leaf's expiry, when set
	calls                 map[string]int  // by stage
	delay                 time.Duration   // each listener and http call takes this long
	inFlight, maxInFlight int
	targets               []probe.Target // every target the http stage was given
}

var _ prober = (*fakeProbe)(nil)

func newFakeProbe() *fakeProbe {
	return &fakeProbe{outcomes: map[string]report.Outcome{}, certReq: map[string]bool{}, calls: map[string]int{}}
}

func hp(t probe.Target) string { return net.JoinHostPort(t.Addr.String(), fmt.Sprint(t.Port)) }

func (f *fakeProbe) get(stage report.Stage, key string, pass report.Outcome) report.Outcome {
	f.mu.Lock()
	f.calls[string(stage)]++
	o, ok := f.outcomes[string(stage)+" "+key]
	f.mu.Unlock()
	if !ok {
		o = pass
	}
	o.Stage = stage
	return o
}

func (f *fakeProbe) slow() {
	if f.delay == 0 {
		return
	}
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	time.Sleep(f.delay)
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
}

func (f *fakeProbe) Record(a netip.Addr, cf []netip.Prefix) report.Outcome {
	if !a.IsValid() {
		return report.Outcome{Stage: report.StageRecord, Fail: true, Status: 403, Cause: "no address"}
	}
	return f.get(report.StageRecord, a.String(), report.Outcome{Cause: "public"})
}
func (f *fakeProbe) Elsewhere(_ context.Context, t probe.Target, _ time.Duration) report.Outcome {
	return f.get(report.StageElsewhere, hp(t), report.Outcome{Cause: t.Addr.String() + " is not this server; it answers"})
}
func (f *fakeProbe) Route(_ context.Context, src netip.Addr, _ []netip.Prefix) report.Outcome {
	return f.get(report.StageRoute, src.String(), report.Outcome{Cause: "routed"})
}
func (f *fakeProbe) Listener(_ context.Context, t probe.Target) report.Outcome {
	f.slow()
	return f.get(report.StageListener, hp(t), report.Outcome{Cause: "accepts"})
}
func (f *fakeProbe) TLS(_ context.Context, t probe.Target) probe.TLSResult {
	k := t.Hostname + " " + hp(t)
	o := f.get(report.StageTLS, k, report.Outcome{Cause: "handshake ok"})
	f.mu.Lock()
	req := f.certReq[k]
	f.mu.Unlock()
	r := probe.TLSResult{Outcome: o, ClientCertRequested: req}
	if !o.Fail {
		r.State = &tls.ConnectionState{}
		if !f.notAfter.IsZero() {
			r.State.PeerCertificates = []*x509.Certificate{{NotAfter: f.notAfter}}
		}
	}
	return r
}
func (f *fakeProbe) Certificate(t probe.Target, cs *tls.ConnectionState, _ time.Time) report.Outcome {
	if cs == nil {
		panic("certificate stage without a handshake")
	}
	return f.get(report.StageCertificate, t.Hostname+" "+hp(t), report.Outcome{Cause: "valid"})
}
func (f *fakeProbe) HTTP(_ context.Context, t probe.Target, _ *tls.Conn, _ time.Duration) report.Outcome {
	f.slow()
	f.mu.Lock()
	f.targets = append(f.targets, t)
	f.mu.Unlock()
	return f.get(report.StageHTTP, t.Hostname+" "+hp(t), report.Outcome{Status: 200, Cause: "GET / answered 200"})
}

// fakeFirewall blocks what it is told, by "addr:port".
type fakeFirewall struct {
	mu      sync.Mutex
	verdict map[string]report.Outcome
	calls   int
}

func (f *fakeFirewall) Check(_ context.Context, addr netip.Addr, port int, _ []netip.Prefix) report.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	o, ok := f.verdict[net.JoinHostPort(addr.String(), fmt.Sprint(port))]
	if !ok {
		o = report.Outcome{Cause: "allowed"}
	}
	o.Stage = report.StageFirewall
	return o
}

// fakeUpstream answers per "host:port", and keeps the request each was
// asked about (sent).
type fakeUpstream struct {
	mu       sync.Mutex
	outcomes map[string]report.Outcome
	calls    int
	sent     map[string]probemark.Mark
}

func (f *fakeUpstream) Analyze(_ context.Context, _ netip.Addr, port int, host, _ string, httpStatus int, sent probemark.Mark) report.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.sent == nil {
		f.sent = map[string]probemark.Mark{}
	}
	f.sent[fmt.Sprintf("%s:%d", host, port)] = sent
	o := f.outcomes[fmt.Sprintf("%s:%d", host, port)]
	return o
}

type fakeHost struct {
	addrs []netip.Addr
	procs []string
}

func (h fakeHost) LocalAddrs() ([]netip.Addr, error) { return h.addrs, nil }
func (h fakeHost) ProcessRunning(name string) bool   { return contains(h.procs, name) }

// fakeResolver resolves from a map; other names do not exist.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
