package backend

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
)

// This file reads back what the web server logged for verify's own
// request: the http stage marks its GET / (probemark) and, when it gets a
// 5xx, Analyze looks for that mark in what the error logs grew by since
// discovery read them.

// Bounds of reading back.
const (
	// ReadBackTries is how many times the error logs are read for the
	// lines of verify's own request before Analyze goes on without them,
	// ReadBackPause apart (at most 150 ms in all). The web server writes
	// the line before it answers, so the first read normally finds it.
	ReadBackTries = 4
	ReadBackPause = 50 * time.Millisecond
	// MaxReadBack bounds what is read of one error log after discovery,
	// over a whole run (a busy server's log grows while verify runs).
	MaxReadBack = 16 << 20
	// maxOwnLines bounds the lines kept for one request.
	maxOwnLines = 8
	// maxWaiting bounds Apache's lines that name no request, waiting for
	// the next line of their thread.
	maxWaiting  = 64
	maxTailLine = 64 << 10
)

// logTail reads one error log on from where discovery stopped, and keeps
// the lines that name a request verify sent: by probemark id, and (Apache)
// by the client address.
type logTail struct {
	src  logs.Source
	path string

	mu       sync.Mutex
	readable bool // the last read could open it
	ino      uint64
	off      int64
	read     int64
	partial  []byte
	waiting  []logs.Entry
	byID     map[string][]logs.Entry
	byClient map[netip.AddrPort][]logs.Entry
}

// newTail starts at the file's end now (discovery has just read it).
func newTail(src logs.Source, path string) *logTail {
	t := &logTail{src: src, path: path, byID: map[string][]logs.Entry{}, byClient: map[netip.AddrPort][]logs.Entry{}}
	var st unix.Stat_t
	if unix.Stat(path, &st) == nil {
		t.ino, t.off = st.Ino, st.Size
	}
	return t
}

// lines are the lines logged for m so far: those carrying its id, else
// (an Apache ErrorLogFormat without the referer) those of its client
// address.
func (t *logTail) lines(m probemark.Mark) (es []logs.Entry, readable bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.catchUp()
	if es := t.byID[m.ID]; m.ID != "" && len(es) > 0 {
		return append([]logs.Entry(nil), es...), true
	}
	if m.From.IsValid() {
		return append([]logs.Entry(nil), t.byClient[m.From]...), t.readable
	}
	return nil, t.readable
}

// catchUp reads what the file grew by. A file replaced (logrotate) or
// truncated is read from its start; a FIFO or device is not read.
func (t *logTail) catchUp() {
	t.readable = false
	fd, err := unix.Open(t.path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), t.path)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	t.readable = true
	if st.Ino != t.ino || st.Size < t.off {
		t.ino, t.off, t.partial = st.Ino, 0, nil
	}
	n := min(st.Size-t.off, MaxReadBack-t.read)
	if n <= 0 {
		return
	}
	b := make([]byte, n)
	k, _ := f.ReadAt(b, t.off)
	t.off += int64(k)
	t.read += int64(k)
	data := append(t.partial, b[:k]...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if line := string(data[:i]); strings.TrimSpace(line) != "" {
			t.add(logs.Line(t.src, line))
		}
		data = data[i+1:]
	}
	if len(data) > maxTailLine {
		data = nil
	}
	t.partial = append([]byte(nil), data...)
}

// add files one line: an Apache line naming no request waits for the next
// line of its thread, whose request it is about (logs.MarkThreads).
func (t *logTail) add(e logs.Entry) {
	if e.Source == logs.Apache && e.Thread != "" {
		if e.Client == "" && e.Probe == "" {
			if e.Kind != "" {
				if len(t.waiting) == maxWaiting {
					t.waiting = t.waiting[1:]
				}
				t.waiting = append(t.waiting, e)
			}
			return
		}
		keep := t.waiting[:0]
		for _, w := range t.waiting {
			if w.Thread != e.Thread {
				keep = append(keep, w)
				continue
			}
			w.Probe, w.Client = e.Probe, e.Client
			t.keep(w)
		}
		t.waiting = keep
	}
	t.keep(e)
}

func (t *logTail) keep(e logs.Entry) {
	if e.Probe != "" && len(t.byID[e.Probe]) < maxOwnLines {
		t.byID[e.Probe] = append(t.byID[e.Probe], e)
	}
	if ap, ok := clientAddr(e.Client); ok && len(t.byClient[ap]) < maxOwnLines {
		t.byClient[ap] = append(t.byClient[ap], e)
	}
}

// clientAddr parses Apache's client field: "127.0.0.1:38622", "::1:38622".
func clientAddr(s string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(s, ':')
	if s == "" || i < 0 {
		return netip.AddrPort{}, false
	}
	host := strings.Trim(s[:i], "[]")
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	ap, err := netip.ParseAddrPort(host + s[i:])
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// ownLines are the lines the route's web server logged for verify's own
// request, read ReadBackTries times at most; looked is false when no
// error log of it could be read.
func (a *Analyzer) ownLines(ctx context.Context, rt *route, sent probemark.Mark) (own []logs.Entry, looked bool) {
	var tails []*logTail
	for _, f := range webErrorLogs(rt.web) {
		if t := a.tails[f]; t != nil {
			tails = append(tails, t)
		}
	}
	if len(tails) == 0 || sent.IsZero() {
		return nil, false
	}
	for try := range ReadBackTries {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, false
			case <-time.After(ReadBackPause):
			}
		}
		var out []logs.Entry
		looked = false
		for _, t := range tails {
			es, readable := t.lines(sent)
			out = append(out, es...)
			looked = looked || readable
		}
		if len(out) > 0 {
			return out, true
		}
	}
	return nil, looked
}

func webErrorLogs(w *webServer) []string {
	if w.nginx != nil {
		return w.nginx.ErrorLogs()
	}
	if w.apache != nil {
		return w.apache.ErrorLogs()
	}
	return nil
}
