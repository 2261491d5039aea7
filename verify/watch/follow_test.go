package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

func nginxLine(errno int, msg string) string {
	return fmt.Sprintf(`2026/12/02 03:00:01 [error] 12#12: *5 connect() to unix:/run/php/php8.2-fpm.sock failed (%d: %s) while connecting to upstream, client: 198.51.100.7, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.test"`+"\n", errno, msg)
}

var (
	refused = nginxLine(111, "Connection refused")
	noFile  = nginxLine(2, "No such file or directory")
	noise   = "2026/12/02 03:00:01 [notice] 12#12: signal process started\n"
)

func kinds(es []logs.Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, string(e.Kind))
	}
	return out
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func TestFileFollower(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	later := filepath.Join(dir, "later.log")
	appendTo(t, p, refused+refused) // before the watch: not reported
	ff := FollowFiles([]backend.LogFile{{Source: logs.Nginx, Path: p}, {Source: logs.Nginx, Path: later}})
	defer ff.Close()
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"nothing new", func() {}, []string{}},
		{"two new lines, one noise", func() { appendTo(t, p, noFile+noise+refused) }, []string{"no such file", "connection refused"}},
		{"half a line waits for its end", func() { appendTo(t, p, refused[:40]) }, []string{}},
		{"its end", func() { appendTo(t, p, refused[40:]) }, []string{"connection refused"}},
		{"rotated: the rest of the old file, then the new from its start", func() {
			appendTo(t, p, noFile)
			os.Rename(p, p+".1")
			appendTo(t, p, refused)
		}, []string{"no such file", "connection refused"}},
		{"truncated (copytruncate), seen empty: read from the start", func() {
			os.Truncate(p, 0)
			ff.Read()
			appendTo(t, p, noFile)
		}, []string{"no such file"}},
		{"a file that appears later is read from its start", func() { appendTo(t, later, refused) }, []string{"connection refused"}},
	}
	for _, s := range steps {
		s.do()
		if diff := cmp.Diff(s.want, kinds(ff.Read())); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", s.name, diff)
		}
	}
}

// TestFileFollowerBounded: a log that grew by more than MaxReadPerRound is
// read from its last MaxReadPerRound bytes, and the skip is counted.
func TestFileFollowerBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "error.log")
	appendTo(t, p, "")
	ff := FollowFiles([]backend.LogFile{{Source: logs.Nginx, Path: p}})
	defer ff.Close()
	n := MaxReadPerRound/len(refused) + 100
	appendTo(t, p, strings.Repeat(refused, n))
	got := len(ff.Read())
	if got == 0 || got >= n {
		t.Errorf("read %d of %d lines, want fewer (bounded) but some", got, n)
	}
	if ff.files[0].Skipped == 0 {
		t.Error("the skip was not counted")
	}
}

// TestFileFollowerNotRegular: a FIFO or directory named as a log is not
// opened (a read would block).
func TestFileFollowerNotRegular(t *testing.T) {
	ff := FollowFiles([]backend.LogFile{{Source: logs.Nginx, Path: t.TempDir()}})
	defer ff.Close()
	if ff.files[0].f != nil {
		t.Error("a directory was opened as a log")
	}
}

// TestKernelFollowerDoesNotBlock reads the real /dev/kmsg from its end: it
// returns at once, whatever is or is not there.
func TestKernelFollowerDoesNotBlock(t *testing.T) {
	k, err := FollowKernel("/dev/kmsg")
	if err != nil {
		t.Skipf("skipped: /dev/kmsg: %v", err)
	}
	done := make(chan struct{})
	go func() { k.Read(); k.Read(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("reading /dev/kmsg blocked")
	}
	k.Close()
	if es := k.Read(); es != nil {
		t.Errorf("Read after Close = %v", es)
	}
	k.Close() // twice is harmless
	if _, err := FollowKernel(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("FollowKernel of a missing file succeeded")
	}
}

// FuzzFollower writes arbitrary bytes to a followed log in two pieces: the
// follower never panics, and reports each complete classified line once,
// as reading the whole text at once would.
func FuzzFollower(f *testing.F) {
	f.Add([]byte(refused+noise+noFile), 40)
	f.Add([]byte(strings.Repeat("\n", 10)+refused), 3)
	f.Add([]byte("no newline at all"), 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if len(data) > 1<<16 {
			return
		}
		p := filepath.Join(t.TempDir(), "error.log")
		appendTo(t, p, "")
		ff := FollowFiles([]backend.LogFile{{Source: logs.Nginx, Path: p}})
		defer ff.Close()
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		appendTo(t, p, string(data[:cut]))
		got := ff.Read()
		appendTo(t, p, string(data[cut:]))
		got = append(got, ff.Read()...)
		var want []logs.Entry
		text := string(data)
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			for _, line := range strings.Split(text[:i], "\n") {
				if e, ok := logs.Classify(logs.Nginx, line); ok {
					want = append(want, e)
				}
			}
		}
		if diff := cmp.Diff(kinds(want), kinds(got)); diff != "" {
			t.Errorf("(-whole +followed)\n%s", diff)
		}
	})
}
