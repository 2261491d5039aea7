package backend

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
)

func netipAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:38622": "127.0.0.1:38622",
		"::1:38622":       "[::1]:38622",
		"[::1]:38622":     "[::1]:38622",
		"2001:db8::7:443": "[2001:db8::7]:443",
		"127.0.0.1":       "invalid AddrPort",
		"":                "invalid AddrPort",
	} {
		ap, _ := clientAddr(in)
		if ap.String() != want {
			t.Errorf("clientAddr(%q) = %s, want %s", in, ap, want)
		}
	}
}

// TestLogTail: the tail reads only what was written after discovery, keeps
// a half-written line for the next read, finds a request by its id, and an
// Apache line that names no request by the request line after it on its
// thread, or by the client address when no referer is logged; a rotated
// file is read from its start.
func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	const id = "0123456789abcdef"
	server := "[Wed Dec 02 06:08:36.947990 2026] [proxy:error] [pid 1:tid 2] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /run/php.sock (localhost:8000) failed\n"
	other := "[Wed Dec 02 06:08:36.947991 2026] [proxy:error] [pid 1:tid 3] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /run/php.sock (localhost:8000) failed\n"
	request := "[Wed Dec 02 06:08:36.948040 2026] [proxy_fcgi:error] [pid 1:tid 2] [client 127.0.0.1:38622] AH01079: failed to make connection to backend: localhost, referer: " + probemark.Referer(id) + "\n"
	visitor := "[Wed Dec 02 06:08:36.948041 2026] [proxy_fcgi:error] [pid 1:tid 3] [client 198.51.100.7:40000] AH01079: failed to make connection to backend: localhost\n"
	write := func(s string) {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	kinds := func(es []logs.Entry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, string(e.Kind))
		}
		return out
	}
	write(server + request) // before discovery: an earlier run's
	tl := newTail(logs.Apache, p)
	mark := probemark.Mark{ID: id}
	if es, readable := tl.lines(mark); len(es) != 0 || !readable {
		t.Fatalf("lines before the request = %q (readable %v), want none of what discovery read", kinds(es), readable)
	}
	write(server + other + request[:50])
	if es, _ := tl.lines(mark); len(es) != 0 {
		t.Errorf("lines with the request half written = %q, want none", kinds(es))
	}
	write(request[50:] + visitor)
	want := []string{string(logs.NoSuchFile), string(logs.ConnectFailed)}
	es, _ := tl.lines(mark)
	if diff := cmp.Diff(want, kinds(es)); diff != "" {
		t.Errorf("the request's lines (-want +got)\n%s", diff)
	}
	byPort := probemark.Mark{ID: "fedcba9876543210", From: netipAddrPort(t, "198.51.100.7:40000")}
	es, _ = tl.lines(byPort)
	if diff := cmp.Diff(want, kinds(es)); diff != "" {
		t.Errorf("a request found by its client address (-want +got)\n%s", diff)
	}
	// Rotated: the new file is read from its start.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	const id2 = "00000000000000aa"
	write("[Wed Dec 02 06:09:00.000000 2026] [proxy_fcgi:error] [pid 1:tid 4] [client 127.0.0.1:1] AH01079: failed to make connection to backend: localhost, referer: " + probemark.Referer(id2) + "\n")
	es, _ = tl.lines(probemark.Mark{ID: id2})
	if diff := cmp.Diff([]string{string(logs.ConnectFailed)}, kinds(es)); diff != "" {
		t.Errorf("after rotation (-want +got)\n%s", diff)
	}
	os.Remove(p)
	if _, readable := tl.lines(probemark.Mark{ID: "1111111111111111"}); readable {
		t.Errorf("a log that is gone is readable")
	}
}

// BenchmarkReadBack: finding one request's line in what an nginx error log
// grew by during a run: 1,000 visitors' lines and 1,000 of verify's
// requests, each looked up once (the first lookup reads the file).
func BenchmarkReadBack(b *testing.B) {
	p := filepath.Join(b.TempDir(), "error.log")
	line := `2026/12/02 06:08:36 [crit] 27257#27257: *1 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.test"`
	os.WriteFile(p, nil, 0o644)
	var text []byte
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = probemark.New()
		text = append(text, line+"\n"...)
		text = append(text, line+`, referrer: "`+probemark.Referer(ids[i])+`"`+"\n"...)
	}
	b.ReportAllocs()
	for b.Loop() {
		tl := newTail(logs.Nginx, p)
		os.WriteFile(p, text, 0o644)
		for _, id := range ids {
			if es, _ := tl.lines(probemark.Mark{ID: id}); len(es) != 1 {
				b.Fatalf("%s: %d lines", id, len(es))
			}
		}
		os.WriteFile(p, nil, 0o644)
	}
}
