package watch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/metrics"
)

// BenchmarkStep is one round of the watch's own work (state, metrics, log
// grouping) over 20 backends whose probes are fakes: what the watch adds to
// the probes themselves every interval.
func BenchmarkStep(b *testing.B) {
	bk := &fakeBackends{script: map[string][]backend.Check{}}
	for i := range 20 {
		bk.bs = append(bk.bs, backend.Watched{Web: "nginx", Module: "fastcgi", Target: fmt.Sprintf("unix:/run/php/pool%d.sock", i), Unit: "php8.2-fpm.service"})
	}
	e, _ := logs.Classify(logs.Nginx, strings.TrimSuffix(refused, "\n"))
	f := &fakeFollower{}
	clk := newClock()
	w := New(Config{}, Seams{Discover: func(context.Context) (Backends, error) { return bk, nil }, Guard: &fakeGuard{present: true},
		Follow: func([]backend.LogFile) Follower { return f }, Now: clk.now}, metrics.New(), slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	for b.Loop() {
		f.q = []logs.Entry{e, e, e, e, e}
		w.Step(context.Background())
		clk.step(DefaultInterval)
	}
}

// BenchmarkFollowerRead reads 1000 new nginx lines (half of them about a
// backend) from a followed file.
func BenchmarkFollowerRead(b *testing.B) {
	p := filepath.Join(b.TempDir(), "error.log")
	os.WriteFile(p, nil, 0o644)
	ff := FollowFiles([]backend.LogFile{{Source: logs.Nginx, Path: p}})
	defer ff.Close()
	chunk := []byte(strings.Repeat(refused+noise, 500))
	fh, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	defer fh.Close()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		fh.Write(chunk)
		if n := len(ff.Read()); n != 500 {
			b.Fatalf("read %d lines, want 500", n)
		}
	}
}
